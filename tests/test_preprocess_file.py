"""Benchmark.preprocess: one raw file (or text) through exactly the preprocessing a build applies to a
whole dataset, so it equals the shard row of the same example bit for bit; each conversion said once; bad
input refused in one line naming the file.
"""

from __future__ import annotations

import io
from pathlib import Path

import hf_fixtures as fx
import librosa
import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from PIL import Image, ImageOps
from test_cremad import SMALL as CREMAD_SMALL
from test_cremad import make_cremad

from mmray.data import prepare
from mmray.data.benchmarks.avmnist import AVMNIST, AVMNISTParams
from mmray.data.benchmarks.cifar2_audio import Cifar2Audio, Cifar2AudioParams
from mmray.data.benchmarks.synthetic_av import SyntheticAV, SyntheticAVParams
from mmray.data.prepare import resolve_params
from mmray.data.shards import read_split
from mmray.data.spec import ModalitySpec
from mmray.data.text import load_tokenizer
from mmray.data.video import video_frame
from mmray.errors import DataError

SINE = {"n_train": 24, "n_val": 8, "n_test": 8}


def quiet(*_args, **_kwargs):
    pass


def spec_of(prepared, name: str) -> ModalitySpec:
    return next(m for m in prepared.modalities if m.name == name)


def embed(prepared, name: str, source, notes: list[str] | None = None) -> np.ndarray:
    """preprocess() as a user of an exported model calls it: benchmark and parameters from the manifest."""
    bench, params = resolve_params(prepared.manifest["benchmark"], prepared.manifest["params"])
    return bench.preprocess(params, spec_of(prepared, name), source, prepared.manifest,
                            (notes if notes is not None else []).append)


def shard_rows(prepared, split: str, name: str) -> np.ndarray:
    """The split's rows of one modality exactly as the shards store them (float16 / int64)."""
    spec = spec_of(prepared, name)
    return read_split(prepared, split).modalities[name].astype(spec.dtype)  # float16 -> 32 -> 16 is exact


def rows_by_content(rows: np.ndarray) -> dict[bytes, list[int]]:
    index: dict[bytes, list[int]] = {}
    for i, row in enumerate(rows):
        index.setdefault(row.tobytes(), []).append(i)
    return index


def write_png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def one_line_naming(exc: pytest.ExceptionInfo, path) -> str:
    message = str(exc.value)
    assert "\n" not in message and str(path) in message, message
    return message


# --- AV-MNIST from the real-data mirror: FSDD recordings and MNIST digits from disk equal shard rows ---

@pytest.fixture(scope="module")
def avmnist(mirror, tmp_path_factory):
    # max_eval None: the test split pairs all 10,000 MNIST test digits with the 300 test recordings (index
    # 0-4), so every test recording is in it; train and val stay small.
    return prepare("avmnist", {"max_train": 50, "max_eval": None, "n_val_images": 50}, mirror=mirror,
                   cache_dir=tmp_path_factory.mktemp("cache"), log=quiet)


@pytest.mark.mirror
def test_every_fsdd_test_recording_equals_a_shard_row(avmnist, mirror):
    recordings = sorted((mirror / "fsdd" / "recordings").glob("*_[0-4].wav"))
    assert len(recordings) == 300
    notes: list[str] = []
    embedded = [embed(avmnist, "audio", path, notes) for path in recordings]
    assert notes == []  # FSDD is 8 kHz mono: nothing to convert
    assert all(e.dtype == np.float16 and e.shape == (1, 40, 40) for e in embedded)
    rows = rows_by_content(shard_rows(avmnist, "test", "audio"))
    unmatched = [p.name for p, e in zip(recordings, embedded) if e.tobytes() not in rows]
    assert unmatched == []  # every recording from disk is, bit for bit, a test row
    assert set(rows) == {e.tobytes() for e in embedded}  # and every test row is one of them
    assert len(rows) == 300  # 300 different recordings, 300 different rows


@pytest.mark.mirror
def test_flac_copy_of_a_recording_embeds_the_same(avmnist, mirror, tmp_path):
    wav = mirror / "fsdd" / "recordings" / "7_theo_3.wav"
    samples, rate = sf.read(wav, dtype="int16")
    flac = tmp_path / "7_theo_3.flac"
    sf.write(flac, samples, rate, subtype="PCM_16")  # lossless: the same samples
    notes: list[str] = []
    assert embed(avmnist, "audio", flac, notes).tobytes() == embed(avmnist, "audio", wav).tobytes()
    assert notes == []


@pytest.mark.mirror
def test_mnist_test_digits_written_as_png_equal_their_shard_rows(avmnist, mirror, tmp_path):
    with np.load(mirror / "mnist" / "test.npz") as data:
        digits = data["images"][:40]
    rows = shard_rows(avmnist, "test", "image")
    by_content = rows_by_content(rows)
    notes: list[str] = []
    for i, digit in enumerate(digits):
        embedded = embed(avmnist, "image", write_png(tmp_path / f"{i}.png", digit), notes)
        assert embedded.dtype == np.float16 and embedded.shape == (1, 28, 28)
        assert i in by_content.get(embedded.tobytes(), [])  # the test split keeps MNIST's order
    assert notes == []  # MNIST digits are 28x28 grey already


# --- cifar2-audio from the mirror, and generated tones written as WAV files ---------------------------------

@pytest.fixture
def tone_waves(monkeypatch):
    """Every waveform the generated benchmarks turn into a log-mel while building, in order."""
    import mmray.data.tones as tones

    waves: list[np.ndarray] = []

    def recording(wave, *args, **kwargs):
        waves.append(wave.copy())
        return librosa_log_mel(wave, *args, **kwargs)

    librosa_log_mel = tones.log_mel
    monkeypatch.setattr(tones, "log_mel", recording)
    return waves


def write_float_wav(path: Path, wave: np.ndarray, rate: int) -> Path:
    sf.write(path, wave, rate, subtype="FLOAT")  # float32 samples, stored exactly
    return path


def test_generated_sine_tones_written_as_wav_equal_their_shard_rows(tone_waves, tmp_path):
    prepared = prepare("sine", SINE, cache_dir=tmp_path / "cache", log=quiet)
    assert len(tone_waves) == 40  # train, val, test in that order
    rows = shard_rows(prepared, "test", "audio")
    notes: list[str] = []
    for j, wave in enumerate(tone_waves[32:]):
        path = write_float_wav(tmp_path / f"tone{j}.wav", wave, 8000)
        assert embed(prepared, "audio", path, notes).tobytes() == rows[j].tobytes()
    assert notes == []


@pytest.mark.mirror
def test_cifar2_images_and_tones_from_files_equal_their_shard_rows(mirror, tone_waves, tmp_path):
    prepared = prepare("cifar2-audio", {"max_train": 20, "n_val_images": 20}, mirror=mirror,
                       cache_dir=tmp_path / "cache", log=quiet)  # max_eval None: all 2,000 test images
    with np.load(mirror / "cifar10_2class" / "test.npz") as data:
        images = data["images"][::200]  # both classes (the file is ordered by class)
    image_rows = rows_by_content(shard_rows(prepared, "test", "image"))
    notes: list[str] = []
    for i, image in enumerate(images):
        embedded = embed(prepared, "image", write_png(tmp_path / f"{i}.png", image), notes)
        assert embedded.shape == (3, 32, 32) and embedded.tobytes() in image_rows
    audio_rows = shard_rows(prepared, "test", "audio")
    test_waves = tone_waves[-len(audio_rows):]  # train, val, then test tones
    for j in range(0, len(audio_rows), 250):
        path = write_float_wav(tmp_path / f"tone{j}.wav", test_waves[j], 8000)
        assert embed(prepared, "audio", path, notes).tobytes() == audio_rows[j].tobytes()
    assert notes == []


# --- the Hugging Face benchmarks (fixtures in the hub's schema): image files and texts ---------------------

@pytest.fixture(scope="module")
def hf_mirror(tmp_path_factory):
    return fx.write_mirror(tmp_path_factory.mktemp("hf-mirror"))


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("hf-cache")


@pytest.fixture(scope="module")
def mnist_captions(hf_mirror, hf_cache):
    return prepare("mnist-captions", {}, mirror=hf_mirror, cache_dir=hf_cache, log=quiet)


def hub_rows(folder: Path, split: str) -> list[dict]:
    return pq.read_table(folder / "data" / f"{split}-00000-of-00001.parquet").to_pylist()


def image_files(rows: list[dict], folder: Path, column: str = "image") -> list[Path]:
    """Each row's image cell written out as the file a user would have (its PNG bytes)."""
    folder.mkdir(exist_ok=True)
    paths = []
    for i, row in enumerate(rows):
        paths.append(folder / f"{i}.png")
        paths[-1].write_bytes(row[column]["bytes"])
    return paths


def test_mnist_captions_image_and_caption_equal_their_shard_rows(mnist_captions, hf_mirror, tmp_path):
    rows = hub_rows(hf_mirror / "mnist-captions", "test")  # the hub's test split is the test split, in order
    images = shard_rows(mnist_captions, "test", "image")
    captions = shard_rows(mnist_captions, "test", "caption")
    notes: list[str] = []
    for i, (row, path) in enumerate(zip(rows, image_files(rows, tmp_path))):
        assert embed(mnist_captions, "image", path, notes).tobytes() == images[i].tobytes()
        caption = embed(mnist_captions, "caption", row["caption"], notes)
        assert caption.dtype == np.int64 and caption.tobytes() == captions[i].tobytes()
    assert notes == []


def test_animal_faces_resized_like_the_build(hf_mirror, hf_cache, tmp_path):
    """96x80 RGB photos: the build resizes them to 64x64; the same file from disk takes the same resize.
    Val and test are carved from train, so rows are found by content, and the caption of the same hub row
    must sit in the same shard row."""
    prepared = prepare("animal-faces", {}, mirror=hf_mirror, cache_dir=hf_cache, log=quiet)
    rows = hub_rows(hf_mirror / "animal-faces", "train")
    notes: list[str] = []
    by_image = {embed(prepared, "image", path, notes).tobytes(): row
                for path, row in zip(image_files(rows, tmp_path), rows)}
    assert len(notes) == len(rows) and all("resized from 96x80 to 64x64 (centre crop to a square, bicubic)"
                                           in n for n in notes)
    for split in ("train", "val", "test"):
        images, captions = shard_rows(prepared, split, "image"), shard_rows(prepared, split, "caption")
        for image, caption in zip(images, captions):
            row = by_image[image.tobytes()]  # KeyError: a shard image no file reproduces
            assert embed(prepared, "caption", row["caption"]).tobytes() == caption.tobytes()


@pytest.fixture(scope="module")
def pathvqa_hf_tokenizer(hf_mirror, hf_cache, tmp_path_factory):
    words = sorted({w.lower() for row in hub_rows(hf_mirror / "pathvqa", "train")
                    for w in f"{row['question']} {row['answer']}".replace("?", " ?").split()})
    folder = fx.word_tokenizer(tmp_path_factory.mktemp("tokenizer"), words)
    return prepare("pathvqa", {"image_size": 32, "tokenizer": str(folder)}, mirror=hf_mirror,
                   cache_dir=hf_cache, log=quiet)


def test_pathvqa_image_question_answer_equal_their_shard_rows(pathvqa_hf_tokenizer, hf_mirror, tmp_path):
    prepared = pathvqa_hf_tokenizer
    rows = hub_rows(hf_mirror / "pathvqa", "test")
    shard = {name: shard_rows(prepared, "test", name) for name in ("image", "question", "answer")}
    notes: list[str] = []
    for i, (row, path) in enumerate(zip(rows, image_files(rows, tmp_path))):
        assert embed(prepared, "image", path, notes).tobytes() == shard["image"][i].tobytes()
        for name in ("question", "answer"):
            assert embed(prepared, name, row[name], notes).tobytes() == shard[name][i].tobytes()
    assert len(notes) == len(rows)  # the fixture's 56x40 images are resized, nothing else is converted
    assert all("resized from 40x56 to 32x32" in n for n in notes)


# --- CREMA-D (a generated tree in the dataset's layout): clips, face stills and speech --------------------

@pytest.fixture(scope="module")
def cremad(tmp_path_factory):
    root = make_cremad(tmp_path_factory.mktemp("cremad"), actors=("1001", "1002", "1003", "1004"),
                       sentences=("DFA",))
    return root, prepare("cremad", CREMAD_SMALL, mirror=root, cache_dir=tmp_path_factory.mktemp("cache"),
                         log=quiet)


def test_cremad_clip_still_and_speech_equal_their_shard_rows(cremad, tmp_path):
    root, prepared = cremad
    actor = prepared.manifest["actors_per_split"]["test"][0]
    faces, audio = shard_rows(prepared, "test", "face"), shard_rows(prepared, "test", "audio")
    face_rows, audio_rows = rows_by_content(faces), rows_by_content(audio)
    notes: list[str] = []
    for wav in sorted((root / "cremad" / "AudioWAV").glob(f"{actor}_*.wav")):
        flv = root / "cremad" / "VideoFlash" / f"{wav.stem}.flv"
        face, speech = embed(prepared, "face", flv, notes), embed(prepared, "audio", wav, notes)
        assert face.shape == (1, 16, 16) and speech.shape == (1, 16, 12)
        # the clip's face and its speech are the same shard row
        assert set(face_rows[face.tobytes()]) & set(audio_rows[speech.tobytes()])
        # a still of that face, as a grey PNG of the shards' size, embeds to the same row
        grey = np.rint(face[0].astype(np.float32) * 255).astype(np.uint8)
        assert embed(prepared, "face", write_png(tmp_path / f"{wav.stem}.png", grey), notes).tobytes() \
            == face.tobytes()
    assert notes == []


def test_cremad_colour_photo_is_converted_and_resized_as_frames_are(cremad, tmp_path):
    _, prepared = cremad
    photo = write_png(tmp_path / "face.png",
                      np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    notes: list[str] = []
    face = embed(prepared, "face", photo, notes)
    assert notes == [
        f"image file {photo}: converted from mode RGB to grey (FFmpeg's luma, as for the clips' frames)",
        f"image file {photo}: resized from 48x64 to 16x16 (centre crop to a square, bilinear, as CREMA-D's "
        "frames)"]
    assert face.tobytes() == video_frame(photo, 16)[None].astype(np.float16).tobytes()


# --- conversions: each said once, in one line naming the file --------------------------------------------

@pytest.fixture(scope="module")
def sine(tmp_path_factory):
    return prepare("sine", SINE, cache_dir=tmp_path_factory.mktemp("sine-cache"), log=quiet)


def test_wav_at_another_rate_is_resampled_and_said_once(sine, tmp_path):
    wave = tone(1.0, 16000, 600.0)
    path = write_float_wav(tmp_path / "16k.wav", wave, 16000)
    notes: list[str] = []
    embedded = embed(sine, "audio", path, notes)
    assert notes == [f"audio file {path}: resampled from 16000 Hz to 8000 Hz (librosa, soxr_hq)"]
    # exactly the tone resampled to 8 kHz, then the benchmark's log-mel and standardisation
    at_8k = write_float_wav(tmp_path / "8k.wav", librosa.resample(wave, orig_sr=16000, target_sr=8000), 8000)
    again: list[str] = []
    assert embedded.tobytes() == embed(sine, "audio", at_8k, again).tobytes() and again == []


def test_stereo_wav_is_mixed_to_mono_and_said_once(sine, tmp_path):
    left, right = tone(1.0, 8000, 500.0), tone(1.0, 8000, 1500.0) * 0.5
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    notes: list[str] = []
    embedded = embed(sine, "audio", path, notes)
    assert notes == [f"audio file {path}: mixed 2 channels to mono (their mean)"]
    mono = write_float_wav(tmp_path / "mono.wav", np.stack([left, right], axis=1).mean(axis=1), 8000)
    assert embedded.tobytes() == embed(sine, "audio", mono).tobytes()
    both: list[str] = []  # stereo at 44.1 kHz: two conversions, each once
    sf.write(tmp_path / "cd.wav", np.stack([tone(1.0, 44100)] * 2, axis=1), 44100)
    embed(sine, "audio", tmp_path / "cd.wav", both)
    assert [n.split(": ")[1].split(" (")[0] for n in both] == ["mixed 2 channels to mono",
                                                               "resampled from 44100 Hz to 8000 Hz"]


def test_rgba_image_of_another_size_is_converted_and_resized(mnist_captions, tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (40, 56, 4), dtype=np.uint8)
    path = write_png(tmp_path / "rgba.png", pixels)
    notes: list[str] = []
    embedded = embed(mnist_captions, "image", path, notes)
    assert notes == [f"image file {path}: converted from mode RGBA to L (transparency dropped, not "
                     "composited)",
                     f"image file {path}: resized from 40x56 to 28x28 (centre crop to a square, bicubic)"]
    with Image.open(path) as image:  # what the build does to every dataset image
        expected = ImageOps.fit(image.convert("L"), (28, 28), method=Image.Resampling.BICUBIC)
    assert embedded.tobytes() == (np.asarray(expected, np.float32)[None] / 255).astype(np.float16).tobytes()


def test_avmnist_and_cifar2_images_of_another_mode_and_size(tmp_path):
    """Their builds never resize (MNIST and CIFAR-10 come at 28x28 and 32x32); a file of another size is
    centre-cropped and resized like the Hugging Face benchmarks' images, and the note says so."""
    rgb = write_png(tmp_path / "rgb.png", np.full((56, 56, 3), (200, 100, 0), np.uint8))
    params = AVMNISTParams()
    notes: list[str] = []
    digit = AVMNIST().preprocess(params, AVMNIST().modalities(params)[0], rgb, {}, notes.append)
    assert digit.dtype == np.float16 and digit.shape == (1, 28, 28)
    assert notes == [f"image file {rgb}: converted from mode RGB to L",
                     f"image file {rgb}: resized from 56x56 to 28x28 (centre crop to a square, bicubic; "
                     "MNIST's own digits are 28x28)"]
    assert np.all(digit == np.float16(round(0.299 * 200 + 0.587 * 100) / 255))  # PIL's L of a flat colour
    grey = write_png(tmp_path / "grey.png", np.full((64, 48), 51, np.uint8))
    params = Cifar2AudioParams()
    notes.clear()
    image = Cifar2Audio().preprocess(params, Cifar2Audio().modalities(params)[0], grey, {}, notes.append)
    assert image.shape == (3, 32, 32) and np.all(image == np.float16(51 / 255))
    assert notes == [f"image file {grey}: converted from mode L to RGB",
                     f"image file {grey}: resized from 64x48 to 32x32 (centre crop to a square, bicubic; "
                     "CIFAR-10's own images are 32x32)"]


def test_text_longer_than_max_length_is_truncated_and_said(mnist_captions, pathvqa_hf_tokenizer):
    long = " ".join(["a picture of a"] * 6) + " digit"  # 25 words: <bos> + 25 + <eos> = 27 > 16
    notes: list[str] = []
    ids = embed(mnist_captions, "caption", long, notes)
    assert notes == ["caption text 'a picture of a a picture of a a pictu...': truncated 11 tokens to "
                     "max_length=16 (27 with special tokens, vocab tokenizer)"]
    tokenizer = load_tokenizer(mnist_captions, "caption")
    assert ids.tolist() == tokenizer.encode([long], 16)[0].tolist()
    assert ids[0] == tokenizer.bos_id and ids[-1] == tokenizer.eos_id and tokenizer.pad_id not in ids
    assert tokenizer.decode(ids) == " ".join(long.split()[:14])
    short: list[str] = []
    embed(mnist_captions, "caption", "a picture of a digit", short)
    assert short == []
    # a Hugging Face tokenizer (BART's layout) truncates keeping its </s>, and says so
    question = "is there tissue " * 12 + "?"  # 37 words -> <s> 37 </s> = 39 > 32
    notes.clear()
    ids = embed(pathvqa_hf_tokenizer, "question", question, notes)
    assert len(notes) == 1 and "truncated 7 tokens to max_length=32 (39 with special tokens" in notes[0]
    assert ids[0] == 0 and ids[-1] == 2 and 1 not in ids  # <s> ... </s>, no <pad>


# --- bad input: one line naming the file and the fix -----------------------------------------------------

def test_bad_audio_files(sine, tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    folder = tmp_path / "recordings.wav"
    folder.mkdir()
    missing = tmp_path / "missing.wav"
    cases = {empty: f"audio file {empty} is empty (0 bytes); pass a WAV or FLAC file that holds data",
             text: f"audio file {text} cannot be decoded (",
             folder: f"audio file {folder} is a folder; pass the path of a WAV or FLAC file inside it",
             missing: f"audio file {missing} does not exist; pass the path of a WAV or FLAC file"}
    for path, expected in cases.items():
        with pytest.raises(DataError) as exc:
            embed(sine, "audio", path)
        assert expected in one_line_naming(exc, path)
    with pytest.raises(DataError) as exc:
        embed(sine, "audio", text)
    assert str(exc.value).endswith("; replace it with a valid WAV or FLAC file")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(0, np.float32), 8000)  # a valid header and no samples
    with pytest.raises(DataError) as exc:
        embed(sine, "audio", silent)
    assert f"audio file {silent} holds no samples" in one_line_naming(exc, silent)


def test_bad_image_files(mnist_captions, cremad, tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG but not really")
    good = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(good, "PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.getvalue()[:200])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    folder = tmp_path / "images"
    folder.mkdir()
    wav = tmp_path / "sound.png"
    sf.write(wav, tone(0.1, 8000), 8000, format="WAV")
    cases = {
        corrupt: f"image file {corrupt} does not decode as an image (not an image file PIL knows); pass a "
                 "PNG or JPEG image",
        wav: f"image file {wav} does not decode as an image (not an image file PIL knows)",
        truncated: f"image file {truncated} does not decode (",
        empty: f"image file {empty} is empty (0 bytes)",
        folder: f"image file {folder} is a folder",
        tmp_path / "nowhere.png": f"image file {tmp_path / 'nowhere.png'} does not exist; pass the path of a "
                                  "PNG or JPEG",
    }
    _, cremad_prepared = cremad
    for prepared, modality in ((mnist_captions, "image"), (cremad_prepared, "face")):
        for path, expected in cases.items():
            if prepared is cremad_prepared and path == truncated:
                expected = f"image file {truncated} does not decode as a frame ("  # PIL reads the header
            with pytest.raises(DataError) as exc:
                embed(prepared, modality, path)
            assert expected in one_line_naming(exc, path)
    clip = tmp_path / "clip.flv"
    clip.write_bytes(b"FLV but not really, just bytes")
    with pytest.raises(DataError) as exc:
        embed(cremad_prepared, "face", clip)
    assert f"video file {clip} cannot be decoded" in one_line_naming(exc, clip)


def test_bad_sources_and_manifests(mnist_captions, sine, tmp_path):
    with pytest.raises(DataError, match=r"text input for 'caption' must be the text itself \(a str\), not "
                                        r"PosixPath"):
        embed(mnist_captions, "caption", tmp_path / "caption.txt")
    with pytest.raises(DataError, match=r"image input for 'image' must be a file path \(str or Path\), not "
                                        r"ndarray"):
        embed(mnist_captions, "image", np.zeros((28, 28)))
    wav = write_float_wav(tmp_path / "a.wav", tone(0.5, 8000), 8000)
    bench, params = resolve_params("sine", sine.manifest["params"])
    spec = spec_of(sine, "audio")
    with pytest.raises(DataError, match=r"holds no log-mel statistics .*; prepare its shards again"):
        bench.preprocess(params, spec, wav, {"benchmark": "sine"}, quiet)
    bench_c, params_c = resolve_params("mnist-captions", mnist_captions.manifest["params"])
    with pytest.raises(DataError, match=r"saves no tokenizer for text modality 'caption'"):
        bench_c.preprocess(params_c, spec_of(mnist_captions, "caption"), "a digit", {}, quiet)
    other = ModalitySpec("audio", "audio", (1, 64, 40))
    with pytest.raises(DataError, match=r"makes 'audio' audio \(1, 40, 40\), not audio \(1, 64, 40\)"):
        bench.preprocess(params, other, wav, sine.manifest, quiet)
    with pytest.raises(DataError, match=r"benchmark 'sine' has no modality 'image' \(it has audio\)"):
        bench.preprocess(params, ModalitySpec("image", "image", (1, 28, 28)), wav, sine.manifest, quiet)


def test_synthetic_av_is_generated_and_refuses_raw_files(tmp_path):
    params = SyntheticAVParams()
    png = write_png(tmp_path / "digit.png", np.zeros((28, 28), np.uint8))
    notes: list[str] = []
    for spec in SyntheticAV().modalities(params):
        with pytest.raises(DataError) as exc:
            SyntheticAV().preprocess(params, spec, png, {}, notes.append)
        assert str(exc.value) == (
            f"benchmark 'synthetic-av' does not preprocess raw {spec.kind} files (its {spec.name!r} examples "
            f"are generated, not read from files); pass arrays of shape {spec.shape} as its shards hold them "
            "instead")
    assert notes == []
