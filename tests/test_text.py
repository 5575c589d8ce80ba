"""Tokenisation of text modalities: the training-split vocabulary and Hugging Face tokenizers."""

from __future__ import annotations

import numpy as np
import pytest
from hf_fixtures import word_tokenizer

from mmray.data import text
from mmray.data.text import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIALS,
    UNK_ID,
    HFTokenizer,
    TextParams,
    VocabTokenizer,
    normalise,
    text_spec,
    tokenize_splits,
    tokenizer_from_state,
)
from mmray.errors import DataError

TRAIN = ["A handwritten digit Seven, slanted.", "The digit seven again!", "a zero; round and thick"]


def test_vocab_round_trip_is_the_normalised_text():
    tokenizer = VocabTokenizer.build(TRAIN, vocab_size=100)
    ids = tokenizer.encode(TRAIN, max_length=12)
    assert ids.dtype == np.int64 and ids.shape == (3, 12)
    assert tokenizer.decode(ids) == [normalise(t) for t in TRAIN]
    assert normalise(TRAIN[0]) == "a handwritten digit seven , slanted ."
    assert tokenizer.decode(ids[1]) == "the digit seven again !"
    # <bos> words <eos>, then padding with the pad id
    n_words = len(normalise(TRAIN[1]).split())
    assert ids[1, 0] == BOS_ID and ids[1, n_words + 1] == EOS_ID and (ids[1, n_words + 2:] == PAD_ID).all()


def test_vocab_specials_frequency_order_and_min_freq():
    tokenizer = VocabTokenizer.build(TRAIN, vocab_size=100)
    assert tuple(tokenizer.words[:4]) == SPECIALS == ("<pad>", "<unk>", "<bos>", "<eos>")
    assert tokenizer.words[4:7] == ["a", "digit", "seven"]  # twice each (case-folded); ties alphabetical
    assert len(tokenizer.words) == 4 + len(set(" ".join(normalise(t) for t in TRAIN).split()))
    frequent = VocabTokenizer.build(TRAIN, vocab_size=100, min_freq=2)
    assert frequent.words == [*SPECIALS, "a", "digit", "seven"]
    capped = VocabTokenizer.build(TRAIN, vocab_size=6)
    assert capped.words == [*SPECIALS, "a", "digit"]


def test_vocab_unknown_words_and_truncation():
    tokenizer = VocabTokenizer.build(TRAIN, vocab_size=100)
    ids = tokenizer.encode(["a zebra digit", "seven " * 20], max_length=6)
    assert ids[0, 2] == UNK_ID and tokenizer.decode(ids[0]) == "a <unk> digit"
    assert ids[1, -1] == EOS_ID and tokenizer.decode(ids[1]) == "seven seven seven seven"


def test_vocab_comes_from_train_only_and_survives_the_manifest():
    params = TextParams(vocab_size=50)
    ids, tokenizer = tokenize_splits({"train": TRAIN, "val": ["an eight"], "test": ["nine zebras"]}, params)
    assert "eight" not in tokenizer.words and "zebras" not in tokenizer.words
    assert tokenizer.decode(ids["test"][0]) == "<unk> <unk>"
    again = tokenizer_from_state(tokenizer.state())
    assert again.words == tokenizer.words and again.decode(ids["train"]) == [normalise(t) for t in TRAIN]
    spec = text_spec("caption", params)
    assert (spec.kind, spec.shape, spec.vocab_size) == ("text", (32,), 50)
    assert (spec.tokenizer, spec.pad_id) == ("vocab", 0)
    assert int(max(a.max() for a in ids.values())) < spec.vocab_size


def test_hugging_face_tokenizer_from_a_local_folder(tmp_path):
    folder = str(word_tokenizer(tmp_path / "tok", ["a", "picture", "of", "cat", "dog"]))
    params = TextParams(tokenizer=folder, max_length=8)
    spec = text_spec("caption", params)
    assert (spec.tokenizer, spec.vocab_size, spec.pad_id) == (folder, 9, 1)  # BART-like: pad id 1, not 0
    ids, tokenizer = tokenize_splits({"train": ["A picture of a cat"], "test": ["a dog"]}, params)
    assert ids["train"].tolist() == [[0, 4, 5, 6, 4, 7, 2, 1]] and ids["test"].dtype == np.int64
    assert tokenizer.decode(ids["train"][0]) == "a picture of a cat"
    assert isinstance(tokenizer_from_state(tokenizer.state()), HFTokenizer)


def test_missing_hugging_face_tokenizer_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    text._auto_tokenizer.cache_clear()
    with pytest.raises(DataError, match="run once online to cache it, or use tokenizer: vocab") as info:
        text_spec("question", TextParams(tokenizer="no-such-org/no-such-tokenizer"))
    assert "'no-such-org/no-such-tokenizer'" in str(info.value) and "\n" not in str(info.value)
