"""AV-MNIST: MNIST digits paired with spoken digits from the Free Spoken Digit Dataset (FSDD).

Every MNIST image is paired with a random FSDD recording of the same digit from the same split.
FSDD's official split puts recording index 0-4 in test and 5-49 in train; we hold recordings
5..(5+val_recordings-1) and `n_val_images` MNIST training images out of train as the validation split,
so test pairs use only test recordings and test images, and no split shares a recording with another.

`speaker_holdout` names one FSDD speaker instead: every recording of that speaker is test audio, and the
other five speakers' recordings 0..(val_recordings-1) are validation and the rest training, so the test
split measures transfer to an unheard voice.

`audio_input: waveform` gives the audio as the raw recording instead of its log-mel (the aecluster seed's input):
(1, waveform_samples) samples at `sample_rate` (8,192 at 8 kHz, ~1 s), centre-cropped or zero-padded, divided by
the training recordings' standard deviation. A full build then holds 55,000 x 8,192 training samples
(0.9 GB of float16 shards): `max_train` keeps it small.
"""

from __future__ import annotations

import gzip
import re
import zipfile
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from mmray.data.audio import log_mel_stats, note_resampling, standardise, wav_log_mel
from mmray.data.benchmarks.raw_input import (
    AUDIO_FILE,
    CROP_RESIZE,
    audio_file,
    image_file,
    input_file,
    stored,
)
from mmray.data.parallel import map_files
from mmray.data.sources import download
from mmray.data.spec import Benchmark, BenchmarkParams, ModalitySpec, Note, SplitArrays
from mmray.data.waveform import manifest_waveform_stats, scale, wav_waveform, waveform_stats
from mmray.errors import DataError

MNIST_URLS = (  # canonical idx files; the second is the long-lived copy torchvision uses
    "https://yann.lecun.com/exdb/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FSDD_COMMIT = "26eb9aaf76e81b692f806f9140c2d2777410d7a1"
FSDD_ZIP = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{FSDD_COMMIT}.zip"
FSDD_NAME = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")  # at FSDD_COMMIT


class AVMNISTParams(BenchmarkParams):
    KEYED_WHEN_SET = frozenset({"audio_input", "waveform_samples"})
    sample_rate: int = 8000
    audio_input: Literal["log_mel", "waveform"] = Field(
        "log_mel", description="the audio modality: the log-mel (1, n_mels, frames), or the raw recording "
                               "(1, waveform_samples) at sample_rate (the aecluster seed's input)")
    waveform_samples: int = Field(8192, ge=16, description="audio_input waveform: samples per recording")
    n_mels: int = 40
    n_fft: int = 512
    hop_length: int = 200  # 25 ms at 8 kHz: 40 frames cover 1 s, longer than 99 % of FSDD recordings
    frames: int = 40
    n_val_images: int = 5000
    val_recordings: int = 5  # recording indices 5..9 of each speaker and digit
    max_train: int | None = None  # cap on pairs per split, for quick tests
    max_eval: int | None = None
    speaker_holdout: str | None = None  # an FSDD speaker whose recordings alone form the test audio
    utterance_norm: bool = Field(False, description="each log-mel to mean 0 and variance 1 over its own bins "
                                 "and frames, before the training statistics standardise the split")

    @field_validator("speaker_holdout")
    @classmethod
    def _known_speaker(cls, speaker: str | None) -> str | None:
        if speaker is not None and speaker not in FSDD_SPEAKERS:
            raise ValueError(f"unknown FSDD speaker {speaker!r}; valid speakers: {', '.join(FSDD_SPEAKERS)}")
        return speaker


def fetch_mnist(folder: Path) -> None:
    for split, (images_name, labels_name) in MNIST_FILES.items():
        arrays = {}
        for key, name in (("images", images_name), ("labels", labels_name)):
            for base in MNIST_URLS:
                try:
                    path = download(base + name, folder / name)
                    break
                except DataError as exc:
                    error = exc
            else:
                raise error
            with gzip.open(path, "rb") as f:
                raw = f.read()
            arrays[key] = (np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28) if key == "images"
                           else np.frombuffer(raw, np.uint8, offset=8).astype(np.int64))
        np.savez(folder / f"{split}.npz", **arrays)


def fetch_fsdd(folder: Path) -> None:
    archive = download(FSDD_ZIP, folder / "fsdd.zip")
    (folder / "recordings").mkdir(exist_ok=True)
    with zipfile.ZipFile(archive) as z:
        for member in z.namelist():
            if "/recordings/" in member and member.endswith(".wav"):
                (folder / "recordings" / Path(member).name).write_bytes(z.read(member))


def load_mnist(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    path = folder / f"{split}.npz"
    try:
        with np.load(path) as data:
            images, labels = data["images"], data["labels"]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not an MNIST npz with 'images' and 'labels' ({exc}); "
                        "restore it from the mirror or delete it to download again") from exc
    if images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise DataError(f"{path}: images {images.shape} / labels {labels.shape}, expected (N, 28, 28) / (N,)")
    outside = labels[(labels < 0) | (labels > 9)]
    if len(outside):
        raise DataError(f"{path}: label {int(outside[0])} is not a digit 0-9; restore the file from the "
                        "mirror or delete it to download again")
    return images, labels


def fsdd_recordings(folder: Path, raw) -> list[tuple[Path, int, str, int]]:
    """(path, digit, speaker, index) for every recording, sorted by name.

    A file named otherwise carries no digit or speaker, so it is a bad raw file: `raw.bad` stops the build
    or, with --skip-bad, leaves it out and counts it.
    """
    recordings = []
    for path in sorted((folder / "recordings").glob("*.wav")):
        match = FSDD_NAME.match(path.name)
        if match is None:
            raw.bad(f"{path}: not an FSDD name like 7_george_12.wav; remove or rename it")
            continue
        recordings.append((path, int(match[1]), match[2], int(match[3])))
    if not recordings:
        raise DataError(f"no FSDD recordings in {folder / 'recordings'}")
    return recordings


def fsdd_split(speaker: str, index: int, p: AVMNISTParams) -> str:
    if p.speaker_holdout is not None:
        if speaker == p.speaker_holdout:
            return "test"
        return "val" if index < p.val_recordings else "train"
    if index < 5:
        return "test"
    return "val" if index < 5 + p.val_recordings else "train"


def fsdd_log_mel(path: Path, p: AVMNISTParams, note: Note | None = None) -> tuple[np.ndarray, int]:
    """Log-mel of one recording and the file's own sample rate; runs in a worker process."""
    return wav_log_mel(path, p, note)


def fsdd_audio(path: Path, p: AVMNISTParams, note: Note | None = None) -> tuple[np.ndarray, int]:
    """One recording as `audio_input` asks (log-mel or waveform) and its own sample rate; in a worker process."""
    return wav_waveform(path, p, note) if p.audio_input == "waveform" else fsdd_log_mel(path, p, note)


def mnist_pixels(digits: np.ndarray) -> np.ndarray:
    """uint8 (..., 28, 28) grey digits as shards hold them: float32 (..., 1, 28, 28), pixels / 255."""
    return (digits.astype(np.float32) / 255.0)[..., None, :, :]


def pair_with_audio(labels: np.ndarray, audio: np.ndarray, audio_digits: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """For each image label, the index of a random recording of the same digit."""
    choice = np.empty(len(labels), np.int64)
    for digit in range(10):
        candidates = np.flatnonzero(audio_digits == digit)
        where = np.flatnonzero(labels == digit)
        if len(where) and not len(candidates):
            raise DataError(f"no FSDD recording of digit {digit} in this split; the recordings are incomplete")
        choice[where] = rng.choice(candidates, len(where))
    return choice


class AVMNIST(Benchmark):
    name = "avmnist"
    Params = AVMNISTParams

    def modalities(self, p: AVMNISTParams) -> tuple[ModalitySpec, ...]:
        audio = (1, p.waveform_samples) if p.audio_input == "waveform" else (1, p.n_mels, p.frames)
        return ModalitySpec("image", "image", (1, 28, 28)), ModalitySpec("audio", "audio", audio)

    def class_names(self, p: AVMNISTParams) -> tuple[str, ...]:
        return tuple(str(d) for d in range(10))

    def build(self, p: AVMNISTParams, raw) -> tuple[dict[str, SplitArrays], dict]:
        rng = np.random.default_rng(p.seed)
        mnist = raw.folder("mnist", fetch_mnist, "test.npz")
        fsdd = raw.folder("fsdd", fetch_fsdd, "recordings")
        recordings = fsdd_recordings(fsdd, raw)
        if p.speaker_holdout is not None and p.speaker_holdout not in {r[2] for r in recordings}:
            raise DataError(f"{fsdd / 'recordings'} has no recording of speaker {p.speaker_holdout!r} "
                            f"(speaker_holdout); it has {', '.join(sorted({r[2] for r in recordings}))}")
        decoded = map_files(partial(fsdd_audio, p=p), [r[0] for r in recordings], raw,
                            desc="FSDD waveform" if p.audio_input == "waveform" else "FSDD log-mel")
        usable = [(r, d) for r, d in zip(recordings, decoded) if d is not None]
        if not usable:
            raise DataError(f"no usable FSDD recording in {fsdd / 'recordings'}; restore the dataset")
        recordings, decoded = zip(*usable)
        resampled = note_resampling([r[0] for r in recordings], [d[1] for d in decoded], p.sample_rate,
                                    raw.log)
        mels = np.stack([d[0] for d in decoded])
        digits = np.array([r[1] for r in recordings])
        audio_split = np.array([fsdd_split(r[2], r[3], p) for r in recordings])
        train_audio = audio_split == "train"
        if p.audio_input == "waveform":
            stats = waveform_stats(mels[train_audio])
            mels = scale(mels, stats)
        else:
            stats = log_mel_stats(mels[train_audio])
            mels = standardise(mels, stats)

        train_images, train_labels = load_mnist(mnist, "train")
        test_images, test_labels = load_mnist(mnist, "test")
        held_out = rng.permutation(len(train_images))
        image_sets = {
            "train": (train_images[held_out[p.n_val_images:]], train_labels[held_out[p.n_val_images:]]),
            "val": (train_images[held_out[:p.n_val_images]], train_labels[held_out[:p.n_val_images]]),
            "test": (test_images, test_labels),
        }
        splits = {}
        for split, (images, labels) in image_sets.items():
            limit = p.max_train if split == "train" else p.max_eval
            if limit is not None:
                images, labels = images[:limit], labels[:limit]
            in_split = np.flatnonzero(audio_split == split)
            audio_index = in_split[pair_with_audio(labels, mels[in_split], digits[in_split], rng)]
            splits[split] = SplitArrays(
                labels.astype(np.int64),
                {"image": mnist_pixels(images), "audio": mels[audio_index][:, None]},
            )
        extra = {
            "normalization": {**stats, "image": "pixels / 255"},
            "recordings_per_split": {s: int((audio_split == s).sum()) for s in ("train", "val", "test")},
            "speakers_per_split": {s: sorted({r[2] for r, a in zip(recordings, audio_split) if a == s})
                                   for s in ("train", "val", "test")},
            "resampled_audio_files": resampled,
        }
        return splits, extra

    def preprocess(self, p: AVMNISTParams, modality: ModalitySpec, source, manifest: dict,
                   note: Note) -> np.ndarray:
        """An image file as an MNIST digit (grey, 28x28; another mode is converted, another size centre-
        cropped and resized), or a WAV/FLAC file as an FSDD recording (mono, `sample_rate`, log-mel or waveform
        as `audio_input` says, scaled with the training recordings' statistics)."""
        spec = self.declared(p, modality)
        if spec.kind == "image":
            pixels = image_file(source, spec, note, resize=f"{CROP_RESIZE}; MNIST's own digits are 28x28")
            return stored(mnist_pixels(pixels[0]), spec)
        if p.audio_input == "waveform":
            wave, _ = wav_waveform(input_file(source, spec, AUDIO_FILE), p, note)
            return stored(scale(wave, manifest_waveform_stats(manifest))[None], spec)
        return audio_file(source, spec, p, manifest, note)
