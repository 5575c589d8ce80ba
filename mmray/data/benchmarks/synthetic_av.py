"""synthetic-av: generated image/audio pairs of 10 classes, from a seed alone (the demo's default benchmark).

Each class has an image prototype (a few Gaussian blobs) and an audio prototype (two frequency bands with
their own temporal rhythm). Examples shift, rescale and corrupt the prototype with noise and a distractor
from a random other class, so that a random encoder's probe is far from perfect while a trained one can
recover the class from either modality.
"""

from __future__ import annotations

import numpy as np

from mmray.data.spec import Benchmark, BenchmarkParams, ModalitySpec, SplitArrays

NUM_CLASSES = 10


class SyntheticAVParams(BenchmarkParams):
    n_train: int = 3000
    n_val: int = 500
    n_test: int = 1000
    image_size: int = 28
    n_mels: int = 32
    frames: int = 32
    noise: float = 0.6
    distractor: float = 0.5


def _blob(size: int, cy: float, cx: float, width: float) -> np.ndarray:
    grid = np.arange(size, dtype=np.float32)
    return np.exp(-((grid[:, None] - cy) ** 2 + (grid[None, :] - cx) ** 2) / (2 * width**2))


def _prototypes(p: SyntheticAVParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    s = p.image_size
    images = np.zeros((NUM_CLASSES, s, s), np.float32)
    for c in range(NUM_CLASSES):
        for _ in range(3):
            images[c] += _blob(s, *rng.uniform(0.2 * s, 0.8 * s, 2), rng.uniform(0.06 * s, 0.12 * s))
        images[c] /= images[c].max()
    audio = np.zeros((NUM_CLASSES, p.n_mels, p.frames), np.float32)
    t = np.arange(p.frames, dtype=np.float32)
    bins = np.arange(p.n_mels, dtype=np.float32)[:, None]
    for c in range(NUM_CLASSES):
        for _ in range(2):
            centre = rng.uniform(0.1, 0.9) * p.n_mels
            rhythm = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.03, 0.2) * t + rng.uniform(0, 2 * np.pi))
            audio[c] += np.exp(-((bins - centre) ** 2) / 4.0) * rhythm[None, :]
        audio[c] /= audio[c].max()
    return images, audio


def _examples(protos: np.ndarray, labels: np.ndarray, p: SyntheticAVParams, rng: np.random.Generator,
              max_shift: tuple[int, int]) -> np.ndarray:
    out = np.empty((len(labels), *protos.shape[1:]), np.float32)
    others = (labels + rng.integers(1, NUM_CLASSES, len(labels))) % NUM_CLASSES
    for i, (label, other) in enumerate(zip(labels, others)):
        shift = [rng.integers(-m, m + 1) for m in max_shift]
        x = rng.uniform(0.6, 1.4) * np.roll(protos[label], shift, axis=(0, 1))
        x += p.distractor * np.roll(protos[other], [rng.integers(-m, m + 1) for m in max_shift], axis=(0, 1))
        out[i] = x
    out += p.noise * rng.standard_normal(out.shape).astype(np.float32)
    return out


class SyntheticAV(Benchmark):
    name = "synthetic-av"
    Params = SyntheticAVParams

    def modalities(self, p: SyntheticAVParams) -> tuple[ModalitySpec, ...]:
        return (
            ModalitySpec("image", "image", (1, p.image_size, p.image_size)),
            ModalitySpec("audio", "audio", (1, p.n_mels, p.frames)),
        )

    def class_names(self, p: SyntheticAVParams) -> tuple[str, ...]:
        return tuple(f"class{c}" for c in range(NUM_CLASSES))

    def build(self, p: SyntheticAVParams, raw) -> tuple[dict[str, SplitArrays], dict]:
        rng = np.random.default_rng(p.seed)
        image_protos, audio_protos = _prototypes(p, rng)
        splits = {}
        for split, n in (("train", p.n_train), ("val", p.n_val), ("test", p.n_test)):
            labels = rng.integers(0, NUM_CLASSES, n)
            images = _examples(image_protos, labels, p, rng, (p.image_size // 7, p.image_size // 7))
            audio = _examples(audio_protos, labels, p, rng, (1, p.frames // 5))
            splits[split] = SplitArrays(labels, {"image": images[:, None], "audio": audio[:, None]})
        return splits, {"source": "generated from seed"}
