"""Generated one-second tones as log-mel spectrograms: the audio of the generated benchmarks (sine,
cifar2-audio), with the knobs they share."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from mmray.data.audio import log_mel, utterance_normalise
from mmray.data.spec import BenchmarkParams


class ToneParams(BenchmarkParams):
    """The generated-audio knobs shared by every benchmark built on `tone_log_mels`."""

    sample_rate: int = Field(8000, gt=0)
    noise: float = Field(0.3, ge=0)  # Gaussian noise std; tone amplitudes are 0.3-1.0
    n_mels: int = Field(40, gt=0)
    n_fft: int = Field(512, gt=0)
    hop_length: int = Field(200, gt=0)  # 25 ms at 8 kHz: 40 frames cover the 1-s tone
    frames: int = Field(40, gt=0)
    utterance_norm: bool = Field(False, description="each log-mel to mean 0 and variance 1 over its own bins "
                                 "and frames, before the training statistics standardise the split")

    def check_band(self, what: str, low: float, high: float) -> None:
        if not 0 < low < high < self.sample_rate / 2:
            raise ValueError(f"{what} {low:g}-{high:g} Hz must satisfy 0 < low < high < sample_rate / 2 "
                             f"= {self.sample_rate / 2:g} Hz (the Nyquist frequency)")


def tone_log_mels(f_start: np.ndarray, f_end: np.ndarray, p: ToneParams,
                  rng: np.random.Generator) -> np.ndarray:
    """(N, n_mels, frames) unstandardised log-mels (per utterance normalised where `p.utterance_norm`) of 1-s
    tones gliding log-linearly from f_start to f_end Hz.

    f_start == f_end gives a steady sine. Each tone has a random phase and amplitude and additive noise.
    """
    t = np.arange(p.sample_rate) / p.sample_rate
    phases = rng.uniform(0, 2 * np.pi, len(f_start))
    amplitudes = rng.uniform(0.3, 1.0, len(f_start))
    out = np.empty((len(f_start), p.n_mels, p.frames), np.float32)
    for i, (f0, f1) in enumerate(zip(f_start, f_end)):
        freq = f0 * (f1 / f0) ** t
        wave = amplitudes[i] * np.sin(phases[i] + 2 * np.pi * np.cumsum(freq) / p.sample_rate)
        wave += p.noise * rng.standard_normal(len(t))
        out[i] = log_mel(wave.astype(np.float32), p.sample_rate, p.n_mels, p.n_fft, p.hop_length, p.frames)
    return utterance_normalise(out) if p.utterance_norm else out
