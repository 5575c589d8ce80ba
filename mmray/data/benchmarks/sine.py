"""sine: one-second noisy sine tones whose frequency band is the class, generated from a seed (audio only).

The range `f_min`..`f_max` Hz is cut into `n_classes` log-spaced bands (or at the given `class_edges`); a
class's tones are drawn from the inner `band_fill` fraction of its band (in log frequency), so neighbouring
classes never overlap. The CPC seed's binary task is `class_edges: [150, 500, 900]`, `band_fill: 1`: one sine
in 150-900 Hz, low below 500 Hz, high from 500 Hz (here with balanced classes, drawn in log frequency). Each example
has a random frequency in its band, a random phase, a random amplitude (0.3-1.0) and additive Gaussian noise
(`noise`, the standard deviation relative to full scale); it becomes a log-mel spectrogram standardised with
the training split's mean and std. One modality, so methods that need pairs (pavlov) refuse it at validation.

The tones come from `mmray.data.tones`, which cifar2-audio shares.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from mmray.data.audio import log_mel_stats, standardise
from mmray.data.benchmarks.raw_input import audio_file
from mmray.data.spec import Benchmark, ModalitySpec, Note, SplitArrays
from mmray.data.tones import ToneParams, tone_log_mels


class SineParams(ToneParams):
    n_train: int = Field(2000, ge=1)
    n_val: int = Field(400, ge=1)
    n_test: int = Field(800, ge=1)
    n_classes: int = Field(4, ge=2)
    f_min: float = 100.0
    f_max: float = 3000.0
    band_fill: float = Field(0.7, gt=0, le=1)  # the rest of each log band is a guard gap between classes
    class_edges: list[float] | None = Field(None, description="the bands' n_classes + 1 increasing edges in Hz "
                                            "(then f_min and f_max are unused); None: log-spaced f_min..f_max")

    @model_validator(mode="after")
    def _consistent(self):
        if self.class_edges is not None:
            edges = self.class_edges
            if len(edges) != self.n_classes + 1 or any(a >= b for a, b in zip(edges, edges[1:])):
                raise ValueError(f"class_edges {edges} must be n_classes + 1 = {self.n_classes + 1} increasing "
                                 "frequencies")
            self.check_band("class_edges", edges[0], edges[-1])
        else:
            self.check_band("f_min-f_max", self.f_min, self.f_max)
        for split in ("n_train", "n_val", "n_test"):
            if getattr(self, split) < self.n_classes:
                raise ValueError(f"{split}={getattr(self, split)} is below n_classes={self.n_classes}: "
                                 "every split must hold every class")
        return self


def class_bands(p: SineParams) -> np.ndarray:
    """(n_classes, 2) frequency range in Hz that each class's tones are drawn from."""
    edges = np.log(p.class_edges if p.class_edges is not None else np.geomspace(p.f_min, p.f_max, p.n_classes + 1))
    centre, half = (edges[:-1] + edges[1:]) / 2, (edges[1:] - edges[:-1]) * p.band_fill / 2
    return np.exp(np.stack([centre - half, centre + half], axis=1))


def balanced_labels(n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """n labels in random order, each class n // n_classes or n // n_classes + 1 times."""
    return rng.permutation(np.arange(n) % n_classes).astype(np.int64)


class Sine(Benchmark):
    name = "sine"
    Params = SineParams

    def modalities(self, p: SineParams) -> tuple[ModalitySpec, ...]:
        return (ModalitySpec("audio", "audio", (1, p.n_mels, p.frames)),)

    def class_names(self, p: SineParams) -> tuple[str, ...]:
        return tuple(f"{low:.0f}-{high:.0f}Hz" for low, high in class_bands(p))

    def build(self, p: SineParams, raw) -> tuple[dict[str, SplitArrays], dict]:
        rng = np.random.default_rng(p.seed)
        log_bands = np.log(class_bands(p))
        labels, mels = {}, {}
        for split, n in (("train", p.n_train), ("val", p.n_val), ("test", p.n_test)):
            labels[split] = balanced_labels(n, p.n_classes, rng)
            freq = np.exp(rng.uniform(log_bands[labels[split], 0], log_bands[labels[split], 1]))
            mels[split] = tone_log_mels(freq, freq, p, rng)
        stats = log_mel_stats(mels["train"])
        splits = {split: SplitArrays(labels[split], {"audio": standardise(mels[split], stats)[:, None]})
                  for split in labels}
        extra = {
            "source": "generated from seed",
            "normalization": stats,
            "class_bands_hz": class_bands(p).round(1).tolist(),
        }
        return splits, extra

    def preprocess(self, p: SineParams, modality: ModalitySpec, source, manifest: dict,
                   note: Note) -> np.ndarray:
        """A WAV/FLAC file as one of the generated tones: they are waveforms at `sample_rate` made into
        log-mels, so a recording (resampled to `sample_rate` if needed) takes the same log-mel and the
        training tones' standardisation."""
        return audio_file(source, self.declared(p, modality), p, manifest, note)
