"""Raw waveforms as a modality (the aecluster seed's audio input: 8 kHz, 8,192 samples): a recording decoded,
centred in a fixed number of samples and scaled by the training recordings' standard deviation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from mmray.data.audio import load_wav
from mmray.errors import DataError

STD_KEY = "audio_waveform_std"  # the manifest's normalization entry every split was divided by


def fixed_length(wave: np.ndarray, samples: int) -> np.ndarray:
    """`wave` centre-cropped or zero-padded (evenly on both sides) to exactly `samples` samples."""
    if len(wave) >= samples:
        start = (len(wave) - samples) // 2
        return wave[start:start + samples].astype(np.float32)
    pad = samples - len(wave)
    return np.pad(wave, (pad // 2, pad - pad // 2)).astype(np.float32)


def wav_waveform(path: Path, p, note: Callable[[str], None] | None = None) -> tuple[np.ndarray, int]:
    """(waveform_samples,) of one audio file at the benchmark's `sample_rate` (resampled, mixed to mono), and
    the file's own rate: the waveform counterpart of `wav_log_mel` (unscaled; `scale` follows)."""
    wave, rate = load_wav(path, p.sample_rate, note)
    return fixed_length(wave, p.waveform_samples), rate


def waveform_stats(train: np.ndarray) -> dict[str, float]:
    """The training waveforms' standard deviation (their mean is ~0: no offset is taken off), for the manifest."""
    return {STD_KEY: float(train.std()) or 1.0}


def scale(waves: np.ndarray, stats: dict[str, float]) -> np.ndarray:
    return (waves / stats[STD_KEY]).astype(np.float32)


def manifest_waveform_stats(manifest: dict) -> dict[str, float]:
    """The waveform scale a shard set's manifest records (its "normalization")."""
    value = manifest.get("normalization", {}).get(STD_KEY)
    if not isinstance(value, (int, float)):
        raise DataError(f"the shard manifest of {manifest.get('benchmark', 'this benchmark')!r} holds no "
                        f"normalization.{STD_KEY}; prepare its shards again")
    return {STD_KEY: float(value)}
