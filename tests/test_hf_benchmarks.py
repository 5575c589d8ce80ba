"""The Hugging Face benchmarks (pathvqa, mnist-captions, animal-faces) prepared from local copies in the hub's
schema (tests/hf_fixtures.py): shapes, splits, labels, text round trips, caching and bad input."""

from __future__ import annotations

import io

import hf_fixtures as fx
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import datasets
from mmray.data import prepare, verify_prepared
from mmray.data.shards import read_split
from mmray.data.text import VocabTokenizer, load_tokenizer, normalise
from mmray.errors import DataError

PATHVQA = {"image_size": 32}


def quiet(*_args, **_kwargs):
    pass


def hub_column(folder, split: str, column: str) -> list:
    return pq.read_table(folder / "data" / f"{split}-00000-of-00001.parquet").column(column).to_pylist()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    return fx.write_mirror(tmp_path_factory.mktemp("mirror"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def pathvqa(mirror, cache):
    return prepare("pathvqa", PATHVQA, mirror=mirror, cache_dir=cache, log=quiet)


def test_pathvqa_keeps_its_splits_and_shapes(pathvqa):
    assert [(m.name, m.kind, m.shape) for m in pathvqa.modalities] == [
        ("image", "image", (3, 32, 32)), ("question", "text", (32,)), ("answer", "text", (16,))]
    assert pathvqa.class_names == ("yes/no", "open")
    assert {s: pathvqa.rows(s) for s in ("train", "val", "test")} == {"train": 18, "val": 9, "test": 9}
    assert pathvqa.manifest["carved_from_train"] == {}
    for split in ("train", "val", "test"):
        arrays = read_split(pathvqa, split)
        image = arrays.modalities["image"]
        assert image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1 and image.std() > 0.1
        assert arrays.modalities["question"].dtype == np.int64
    verify_prepared(pathvqa.path)


def test_pathvqa_marks_yes_no_versus_open_questions(pathvqa, mirror):
    answers = hub_column(mirror / "pathvqa", "validation", "answer")
    val = read_split(pathvqa, "val")
    assert val.labels.tolist() == [0 if a.lower() in ("yes", "no") else 1 for a in answers]
    assert pathvqa.manifest["splits"]["train"]["label_counts"] == {"0": 6, "1": 12}  # every third is yes/no


def test_pathvqa_texts_round_trip_and_vocab_is_from_train(pathvqa, mirror):
    questions = load_tokenizer(pathvqa, "question")
    answers = load_tokenizer(pathvqa, "answer")
    assert isinstance(questions, VocabTokenizer) and questions.pad_id == 0
    train = read_split(pathvqa, "train")
    assert questions.decode(train.modalities["question"]) == [
        normalise(q) for q in hub_column(mirror / "pathvqa", "train", "question")]
    assert answers.decode(train.modalities["answer"]) == [
        normalise(a) for a in hub_column(mirror / "pathvqa", "train", "answer")]
    # the fixture's questions name their split: only the training ones are in the vocabulary
    assert "train" in questions.words
    assert "validation" not in questions.words and "test" not in questions.words
    first_test_question = read_split(pathvqa, "test").modalities["question"][0]
    assert questions.decode(first_test_question) == "is there <unk> tissue number 0 ?"
    assert answers.words != questions.words  # one vocabulary per text modality


def test_pathvqa_decodes_each_image_once_and_pairs_it_with_its_questions(pathvqa, mirror):
    train = read_split(pathvqa, "train").modalities["image"]
    assert np.array_equal(train[0], train[2]) and not np.array_equal(train[0], train[3])  # 3 questions each
    cell = hub_column(mirror / "pathvqa", "train", "image")[3]
    source = Image.open(io.BytesIO(cell["bytes"])).convert("RGB")
    stretched = source.resize((32, 32), Image.BICUBIC)
    cropped = source.crop((8, 0, 48, 40)).resize((32, 32), Image.BICUBIC)  # 56 x 40: the centre square
    def gap(other):
        return float(np.abs(train[3] - np.asarray(other, np.float32).transpose(2, 0, 1) / 255).mean())

    assert gap(cropped) < 1 / 255 and gap(stretched) > 20 / 255  # (resampling differs at the crop's edge)


def test_cache_is_reused(pathvqa, mirror, cache):
    lines = []
    again = prepare("pathvqa", PATHVQA, mirror=mirror, cache_dir=cache, log=lines.append)
    assert again.path == pathvqa.path and not lines  # nothing rebuilt, nothing logged
    other = prepare("pathvqa", {**PATHVQA, "answer_max_length": 8}, mirror=mirror, cache_dir=cache, log=quiet)
    assert other.path != pathvqa.path and [m.shape for m in other.modalities][2] == (8,)


def test_mnist_captions_carves_a_seeded_val_split(mirror, cache):
    prepared = prepare("mnist-captions", {}, mirror=mirror, cache_dir=cache, log=quiet)
    assert [(m.name, m.shape) for m in prepared.modalities] == [("image", (1, 28, 28)), ("caption", (16,))]
    assert prepared.class_names == tuple(str(d) for d in range(10))
    # the hub set has train (40) and test (20): a tenth of train becomes val
    assert {s: prepared.rows(s) for s in ("train", "val", "test")} == {"train": 36, "val": 4, "test": 20}
    assert prepared.manifest["carved_from_train"] == {"val": 4}
    test = read_split(prepared, "test")
    assert test.labels.tolist() == [i % 10 for i in range(20)]  # the digit label is kept
    first = hub_column(mirror / "mnist-captions", "test", "image")[0]
    # float16 shards keep every 8-bit level: scaled back and rounded, the pixels are the hub's exactly
    assert np.array_equal(np.round(test.modalities["image"][0, 0] * 255),
                          np.asarray(Image.open(io.BytesIO(first["bytes"])), np.float32))
    captions = load_tokenizer(prepared, "caption").decode(test.modalities["caption"][:2])
    assert captions == ["a picture of a 0 , <unk> example 0 .", "a picture of a 1 , <unk> example 1 ."]
    reseeded = prepare("mnist-captions", {"seed": 1}, mirror=mirror, cache_dir=cache, log=quiet)
    val_a, val_b = read_split(prepared, "val"), read_split(reseeded, "val")
    assert not np.array_equal(val_a.modalities["image"], val_b.modalities["image"])
    train_and_val = np.concatenate([read_split(prepared, "train").modalities["image"],
                                    val_a.modalities["image"]])
    assert len(np.unique(train_and_val.reshape(40, -1), axis=0)) == 40  # val is held out of train, not copied


def test_animal_faces_resizes_and_counts_labels(mirror, cache):
    prepared = prepare("animal-faces", {"image_size": 24, "max_length": 20}, mirror=mirror, cache_dir=cache,
                       log=quiet)
    assert [(m.name, m.shape) for m in prepared.modalities] == [("image", (3, 24, 24)), ("caption", (20,))]
    assert prepared.class_names == ("cat", "dog", "wild")
    assert {s: prepared.rows(s) for s in ("train", "val", "test")} == {"train": 24, "val": 3, "test": 3}
    counts = {}
    for split in ("train", "val", "test"):
        for label, n in prepared.manifest["splits"][split]["label_counts"].items():
            counts[label] = counts.get(label, 0) + n
    assert counts == {"0": 10, "1": 10, "2": 10}


def test_hub_class_names_must_match_the_class_list(mirror, cache):
    with pytest.raises(DataError, match=r"labels \['wild'\] that are not in the class list \['cat', 'dog'\]"):
        prepare("animal-faces", {"class_names": ["cat", "dog"]}, mirror=mirror, cache_dir=cache, log=quiet)


def test_missing_column_lists_the_columns_found(tmp_path):
    fx.captioned(tmp_path / "animal-faces", fx.ANIMALS, (16, 16, 3), {"train": 20}, text_column="blurb")
    with pytest.raises(DataError) as info:
        prepare("animal-faces", {}, mirror=tmp_path, cache_dir=tmp_path / "cache", log=quiet)
    message = str(info.value)
    assert "no caption column (looked for caption, captions, text" in message
    assert "columns found: ['image', 'blurb', 'label']" in message and "text_column" in message
    prepared = prepare("animal-faces", {"text_column": "blurb"}, mirror=tmp_path,
                       cache_dir=tmp_path / "cache", log=quiet)
    assert prepared.manifest["columns"] == {"image": "image", "caption": "blurb", "label": "label"}


def test_corrupt_image_is_named_and_skipped_only_when_asked(tmp_path):
    fx.mnist_captions(tmp_path / "mnist-captions", corrupt={"test": 7})
    with pytest.raises(DataError, match=r"split test row 7 \(column 'image', test/7.png\): the image does "
                                        r"not decode .*--skip-bad"):
        prepare("mnist-captions", {}, mirror=tmp_path, cache_dir=tmp_path / "cache", log=quiet)
    prepared = prepare("mnist-captions", {}, mirror=tmp_path, cache_dir=tmp_path / "cache", skip_bad=True,
                       log=quiet)
    assert prepared.manifest["skipped_files"]["count"] == 1 and prepared.rows("test") == 19
    assert "split test row 7" in prepared.manifest["skipped_files"]["problems"][0]
    test = read_split(prepared, "test")
    assert test.labels.tolist()[:9] == [0, 1, 2, 3, 4, 5, 6, 8, 9]  # row 7 (digit 7) is gone
    # the MM-JEPA seed's way: the row stays, its image black, and the manifest counts it
    zero_filled = prepare("mnist-captions", {"unreadable_images": "zero_fill"}, mirror=tmp_path,
                          cache_dir=tmp_path / "cache", log=quiet)
    assert zero_filled.rows("test") == 20
    assert zero_filled.manifest["zero_filled_images"]["test"]["count"] == 1
    assert "split test row 7" in zero_filled.manifest["zero_filled_images"]["test"]["first"]
    images = read_split(zero_filled, "test").modalities["image"]
    assert images[7].max() == 0 and images[6].max() > 0


def test_saved_dataset_from_data_dir_and_a_hugging_face_tokenizer(tmp_path):
    """data_dir beats the mirror, a save_to_disk copy reads like hub files, and the caption can use a
    Hugging Face tokenizer (a local one standing in for facebook/bart-base)."""
    hub = fx.mnist_captions(tmp_path / "hub", {"train": 30, "validation": 6, "test": 6})
    saved = tmp_path / "saved"
    datasets.DatasetDict({
        split: datasets.Dataset.from_parquet(str(hub / "data" / f"{split}-00000-of-00001.parquet"),
                                             cache_dir=str(tmp_path / "hf-cache"))
        for split in ("train", "validation", "test")}).save_to_disk(str(saved))
    tokenizer = str(fx.word_tokenizer(tmp_path / "tok", ["a", "picture", "of", "0", "1", "2", "3"]))
    prepared = prepare("mnist-captions", {"data_dir": str(saved), "tokenizer": tokenizer},
                       mirror=tmp_path / "empty-mirror-is-not-read", cache_dir=tmp_path / "cache", log=quiet)
    assert {s: prepared.rows(s) for s in ("train", "val", "test")} == {"train": 30, "val": 6, "test": 6}
    caption = next(m for m in prepared.modalities if m.name == "caption")
    assert (caption.tokenizer, caption.vocab_size, caption.pad_id) == (tokenizer, 11, 1)
    ids = read_split(prepared, "test").modalities["caption"]
    assert ids[0, 0] == 0 and (ids[:, -1] == 1).all()  # <s> first, padded with BART's pad id 1
    assert load_tokenizer(prepared, "caption").decode(ids[1]) == "a picture of a 1 1"  # unknown words dropped


def test_mirror_without_the_dataset_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match=r"has no pathvqa/; copy flaviagiammarino/path-vqa there"):
        prepare("pathvqa", {}, mirror=tmp_path, cache_dir=tmp_path / "cache", log=quiet)


def test_load_tokenizer_rejects_a_modality_without_one(pathvqa):
    with pytest.raises(DataError, match=r"no tokenizer saved for modality 'image'.*\['answer', 'question'\]"):
        load_tokenizer(pathvqa, "image")


def test_limit_caps_every_split_before_decoding(mirror, tmp_path):
    prepared = prepare("mnist-captions", {"limit": 5}, mirror=mirror, cache_dir=tmp_path, log=quiet)
    assert {s: prepared.rows(s) for s in ("train", "val", "test")} == {"train": 5, "val": 4, "test": 5}
    full = prepare("mnist-captions", {}, mirror=mirror, cache_dir=tmp_path, log=quiet)
    assert np.array_equal(read_split(prepared, "val").labels, read_split(full, "val").labels)  # same carve
