"""cifar2-audio: CIFAR-10 airplane (0) / automobile (1) images paired with generated class-dependent audio.

Images are CIFAR-10's own, from the `cifar10_2class` folder (`train.npz` 10,000 and `test.npz` 2,000, ordered
by class then file name); `n_val_images` random training images are held out as the validation split, and
every split is shuffled before `max_train` / `max_eval` cap it. Each image gets its own freshly generated
1-s tone (mmray.data.tones): airplanes a steady low hum (`hum_hz`), automobiles an upward chirp that starts
in `chirp_hz` and ends `chirp_ratio` times higher, with random phase, amplitude and noise. The audio is
standardised with the training split's mean and std.
"""

from __future__ import annotations

import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from mmray.data.audio import log_mel_stats, standardise
from mmray.data.benchmarks.raw_input import CROP_RESIZE, audio_file, image_file, stored
from mmray.data.sources import download
from mmray.data.spec import Benchmark, ModalitySpec, Note, SplitArrays
from mmray.data.tones import ToneParams, tone_log_mels
from mmray.errors import DataError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CLASS_NAMES = ("airplane", "automobile")  # CIFAR-10 labels 0 and 1
FOLDER = "cifar10_2class"


class Cifar2AudioParams(ToneParams):
    n_val_images: int = Field(1000, ge=2)
    max_train: int | None = Field(None, ge=2)  # cap on pairs per split, for quick tests
    max_eval: int | None = Field(None, ge=2)
    hum_hz: tuple[float, float] = (100.0, 250.0)  # airplane: steady tone drawn from this range
    chirp_hz: tuple[float, float] = (500.0, 1000.0)  # automobile: chirp start drawn from this range
    chirp_ratio: float = Field(2.0, ge=1)  # chirp end frequency / start frequency

    @model_validator(mode="after")
    def _bands(self):
        self.check_band("hum_hz", *self.hum_hz)
        self.check_band("chirp_hz x chirp_ratio", self.chirp_hz[0], self.chirp_hz[1] * self.chirp_ratio)
        return self


def fetch_cifar2(folder: Path) -> None:
    """Download the CIFAR-10 python batches and keep classes 0 and 1, in the mirror's layout and order."""
    archive = download(CIFAR10_URL, folder / "cifar-10-python.tar.gz")
    batches = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
    with tarfile.open(archive, "r:gz") as tar:
        def load(name: str) -> dict:
            member = tar.extractfile(f"cifar-10-batches-py/{name}")
            if member is None:
                raise DataError(f"{archive} has no cifar-10-batches-py/{name}; delete it to download again")
            return pickle.load(member, encoding="bytes")  # the official format: pickled numpy batches

        names = [n.decode() for n in load("batches.meta")[b"label_names"]][:2]
        for split in ("train", "test"):  # test.npz last: it is the folder's completeness marker
            images, labels, files = [], [], []
            for batch in map(load, batches[split]):
                keep = np.isin(batch[b"labels"], (0, 1))
                images.append(batch[b"data"][keep].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
                labels.append(np.asarray(batch[b"labels"])[keep])
                files.extend(f.decode() for f, k in zip(batch[b"filenames"], keep) if k)
            labels_all = np.concatenate(labels).astype(np.int64)
            order = sorted(range(len(files)), key=lambda i: (labels_all[i], files[i]))  # the mirror's order
            tmp = folder / f".{split}.npz.partial"
            with open(tmp, "wb") as out:
                np.savez(out, images=np.concatenate(images)[order], labels=labels_all[order],
                         class_names=np.array(names), filenames=np.array(files)[order])
            os.replace(tmp, folder / f"{split}.npz")
    archive.unlink()


def load_cifar2(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    path = folder / f"{split}.npz"
    fix = f"restore it from the mirror's {FOLDER}/ or delete the folder to download again"
    try:
        with np.load(path) as data:
            images, labels, names = data["images"], data["labels"], tuple(str(n) for n in data["class_names"])
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path} is not a CIFAR-10 two-class npz with 'images', 'labels' and 'class_names' "
                        f"({exc}); {fix}") from exc
    if images.dtype != np.uint8 or images.shape[1:] != (32, 32, 3) or labels.shape != images.shape[:1]:
        raise DataError(f"{path}: images {images.dtype} {images.shape} / labels {labels.shape}, expected "
                        f"uint8 (N, 32, 32, 3) / (N,); {fix}")
    if names != CLASS_NAMES:
        raise DataError(f"{path}: class_names {list(names)}, expected {list(CLASS_NAMES)} "
                        f"(CIFAR-10 labels 0 and 1); {fix}")
    found = set(np.unique(labels).tolist())
    if found != {0, 1}:
        raise DataError(f"{path}: labels {sorted(found)}, expected both 0 and 1 and nothing else; {fix}")
    return images, labels.astype(np.int64)


def cifar_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 (..., 32, 32, 3) RGB images as shards hold them: float32 (..., 3, 32, 32), pixels / 255."""
    return np.moveaxis(images, -1, -3).astype(np.float32) / 255.0


class Cifar2Audio(Benchmark):
    name = "cifar2-audio"
    Params = Cifar2AudioParams

    def modalities(self, p: Cifar2AudioParams) -> tuple[ModalitySpec, ...]:
        return (ModalitySpec("image", "image", (3, 32, 32)),
                ModalitySpec("audio", "audio", (1, p.n_mels, p.frames)))

    def class_names(self, p: Cifar2AudioParams) -> tuple[str, ...]:
        return CLASS_NAMES  # load_cifar2 checks that the npz files name the same classes

    def build(self, p: Cifar2AudioParams, raw) -> tuple[dict[str, SplitArrays], dict]:
        rng = np.random.default_rng(p.seed)
        folder = raw.folder(FOLDER, fetch_cifar2, "test.npz")
        train_images, train_labels = load_cifar2(folder, "train")
        test_images, test_labels = load_cifar2(folder, "test")
        if p.n_val_images >= len(train_images):
            raise DataError(f"n_val_images={p.n_val_images} leaves no training images "
                            f"({folder / 'train.npz'} has {len(train_images)}); lower it")
        train_order, test_order = rng.permutation(len(train_images)), rng.permutation(len(test_images))
        chosen = {
            "train": train_order[p.n_val_images:][:p.max_train],
            "val": train_order[:p.n_val_images][:p.max_eval],
            "test": test_order[:p.max_eval],
        }
        source = {"train": (train_images, train_labels), "val": (train_images, train_labels),
                  "test": (test_images, test_labels)}
        log_hum, log_chirp = np.log(p.hum_hz), np.log(p.chirp_hz)
        labels, images, mels = {}, {}, {}
        for split, index in chosen.items():
            labels[split] = source[split][1][index]
            images[split] = cifar_pixels(source[split][0][index])
            chirp = labels[split] == 1
            start = np.exp(np.where(chirp, rng.uniform(*log_chirp, len(index)),
                                    rng.uniform(*log_hum, len(index))))
            mels[split] = tone_log_mels(start, np.where(chirp, start * p.chirp_ratio, start), p, rng)
        stats = log_mel_stats(mels["train"])
        splits = {s: SplitArrays(labels[s], {"image": images[s], "audio": standardise(mels[s], stats)[:, None]})
                  for s in chosen}
        extra = {
            "source": f"{FOLDER}/train.npz + test.npz (CIFAR-10 classes 0, 1); audio generated from the seed",
            "normalization": {**stats, "image": "pixels / 255"},
        }
        return splits, extra

    def preprocess(self, p: Cifar2AudioParams, modality: ModalitySpec, source, manifest: dict,
                   note: Note) -> np.ndarray:
        """An image file as a CIFAR-10 image (RGB, 32x32; another mode is converted, another size centre-
        cropped and resized). A WAV/FLAC file as one of the generated tones: they are waveforms at
        `sample_rate` made into log-mels, so a recording (resampled to `sample_rate` if needed) takes the
        same log-mel and the training tones' standardisation."""
        spec = self.declared(p, modality)
        if spec.kind == "image":
            pixels = image_file(source, spec, note, resize=f"{CROP_RESIZE}; CIFAR-10's own images are 32x32")
            return stored(cifar_pixels(pixels.transpose(1, 2, 0)), spec)
        return audio_file(source, spec, p, manifest, note)
