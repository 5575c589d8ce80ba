"""Audio preprocessing with librosa/soundfile (torchaudio is not required)."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping
from pathlib import Path

import librosa
import numpy as np
import scipy.sparse
import soundfile as sf

from mmray.data.sources import require_file
from mmray.errors import DataError


def load_wav(path: Path, sample_rate: int,
             note: Callable[[str], None] | None = None) -> tuple[np.ndarray, int]:
    """Mono float32 waveform at `sample_rate` (resampled from any other rate) and the file's own rate.

    Several channels are averaged to one. `note`, when given, is told each conversion applied, one line each
    (`Benchmark.preprocess` passes it on; a whole-dataset build reports rates with `note_resampling`)."""
    require_file(path, "audio file")
    try:
        wave, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DataError(f"audio file {path} cannot be decoded ({exc}); replace it with a valid WAV or FLAC "
                        "file") from exc
    if len(wave) == 0:
        raise DataError(f"audio file {path} holds no samples; replace it with a valid WAV or FLAC file")
    if wave.shape[1] > 1 and note is not None:
        note(f"audio file {path}: mixed {wave.shape[1]} channels to mono (their mean)")
    wave = wave.mean(axis=1)
    if rate != sample_rate:
        if note is not None:
            note(f"audio file {path}: resampled from {rate} Hz to {sample_rate} Hz (librosa, soxr_hq)")
        wave = librosa.resample(wave, orig_sr=rate, target_sr=sample_rate)
    return wave, rate


def read_wav(path: Path, sample_rate: int) -> np.ndarray:
    """Mono float32 waveform at `sample_rate`, resampled if the file has another rate."""
    return load_wav(path, sample_rate)[0]


def note_resampling(paths: list[Path], rates: list[int], sample_rate: int, log) -> dict[str, int]:
    """Log once per foreign sample rate how many files were resampled (naming the first); the counts, for
    the manifest. Resampling is right, but a surprise rate usually means a mixed-up copy of the dataset."""
    counts: dict[str, int] = {}
    for path, rate in zip(paths, rates):
        if rate == sample_rate:
            continue
        if str(rate) not in counts:
            log(f"audio file {path} is at {rate} Hz, not sample_rate={sample_rate}: resampling it and every "
                f"other file at {rate} Hz (counted in the manifest)")
        counts[str(rate)] = counts.get(str(rate), 0) + 1
    return counts


def log_mel(wave: np.ndarray, sample_rate: int, n_mels: int, n_fft: int, hop_length: int, frames: int) -> np.ndarray:
    """Log-mel spectrogram (n_mels, frames): centre-cropped or zero-padded (in power) to a fixed width."""
    mel = librosa.feature.melspectrogram(
        y=wave, sr=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, power=2.0
    )
    if mel.shape[1] >= frames:
        start = (mel.shape[1] - frames) // 2
        mel = mel[:, start:start + frames]
    else:
        pad = frames - mel.shape[1]
        mel = np.pad(mel, ((0, 0), (pad // 2, pad - pad // 2)))
    return np.log(mel + 1e-6).astype(np.float32)


def wav_log_mel(path: Path, p, note: Callable[[str], None] | None = None) -> tuple[np.ndarray, int]:
    """Log-mel (n_mels, frames) of one audio file with a benchmark's `sample_rate`, `n_mels`, `n_fft`,
    `hop_length` and `frames`, and the file's own sample rate: the per-recording step of the benchmarks
    built from recordings (unstandardised; `standardise` follows with the training statistics), each
    normalised on its own first where `p.utterance_norm`."""
    wave, rate = load_wav(path, p.sample_rate, note)
    mel = log_mel(wave, p.sample_rate, p.n_mels, p.n_fft, p.hop_length, p.frames)
    return (utterance_normalise(mel) if p.utterance_norm else mel), rate


def utterance_normalise(mels, axes=(-2, -1)):
    """Per-utterance normalisation: each log-mel (numpy or torch, (..., n_mels, frames)) to mean 0 and
    variance 1 over its own bins and frames, so a recording's loudness and channel offset are gone. The
    benchmarks' `utterance_norm` applies it while preparing; mmray.augment again after augmenting."""
    centred = mels - mels.mean(axis=axes, keepdims=True)
    return centred / ((centred ** 2).mean(axis=axes, keepdims=True) + 1e-10) ** 0.5


def log_mel_stats(train: np.ndarray) -> dict[str, float]:
    """Mean and std of the training log-mels: what every split is standardised with, kept in the manifest."""
    return {"audio_log_mel_mean": float(train.mean()), "audio_log_mel_std": float(train.std())}


def standardise(mels: np.ndarray, stats: dict[str, float]) -> np.ndarray:
    return ((mels - stats["audio_log_mel_mean"]) / stats["audio_log_mel_std"]).astype(np.float32)


# Griffin-Lim iterations of `waveform_from_log_mel`. On an AV-MNIST log-mel the re-analysed log-mel errs by
# 0.15 / 0.13 / 0.12 / 0.11 with 8 / 16 / 32 / 64 iterations (benchmarks/report_sections.py). With 16, one
# inversion costs ~12 ms of CPU (`griffin_lim`, sparse mel products); librosa.griffinlim and dense products took
# 54 ms side by side on the same busy machine (43 ms on an idle core). 8 would save ~5 ms for audio the model's
# own probe recognises a little less often (82 % vs 83 % of inputs keep their class): not worth it.
GRIFFIN_LIM_ITERATIONS = 16
GRIFFIN_LIM_MOMENTUM = 0.99  # librosa's default: the "fast" Griffin-Lim of Perraudin et al. (2013)
MEL_INVERSION_UPDATES = 10  # multiplicative updates after the pseudo-inverse: half its error, < 1 ms
LOG_MEL_FLOOR = 1e-6  # what `log_mel` adds to the power before the log


def _param(params, name: str):
    return params[name] if isinstance(params, Mapping) else getattr(params, name)


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int):
    """librosa's mel filter bank B (n_mels, 1 + n_fft // 2) and its transpose as sparse matrices (each STFT bin
    lies in at most two filters: 5 % of B is nonzero), and B's dense pseudo-inverse."""
    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).astype(np.float64)
    return scipy.sparse.csr_matrix(basis), scipy.sparse.csr_matrix(basis.T), np.linalg.pinv(basis)


def stft_power_from_mel(mel_power: np.ndarray, sample_rate: int, n_fft: int) -> np.ndarray:
    """Non-negative STFT power X with B X close to `mel_power` (n_mels, frames): the pseudo-inverse, clipped
    and refined by multiplicative updates (X <- X * B^T M / B^T B X, which keep X >= 0 and lower |B X - M|).
    On FSDD digits and tones the re-analysed mel power is within 7-9 % of the input (pseudo-inverse alone
    13-16 %, librosa's NNLS in mel_to_stft 6-16 % at ~50x the time). The products are einsum's own loops and
    scipy's sparse ones, not BLAS: on a busy machine threaded BLAS made these small ones take 10x as long. The
    updates use B's sparsity: dense einsum made them 85 % of this function's time (~5 ms on a 40-frame log-mel,
    now ~0.7 ms)."""
    basis, transposed, inverse = _mel_basis(sample_rate, n_fft, len(mel_power))
    floor = 1e-12 * max(float(mel_power.max(initial=0.0)), 1e-30)
    power = np.maximum(np.einsum("fm,mt->ft", inverse, mel_power), floor)
    projected = transposed @ mel_power
    for _ in range(MEL_INVERSION_UPDATES):
        power *= projected / np.maximum(transposed @ (basis @ power), 1e-30)
    return power


_TINY = np.finfo(np.float64).tiny


@functools.lru_cache(maxsize=8)
def _frame_plan(n_fft: int, hop_length: int, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For centred STFT frames of a signal: librosa's periodic Hann window, each frame's sample positions in the
    padded signal (frames, n_fft), and 1 / the overlapped windows' sum of squares (1 where it is ~0), which
    undoes the windowing of an overlap-add."""
    window = librosa.filters.get_window("hann", n_fft, fftbins=True)
    positions = (np.arange(frames) * hop_length)[:, None] + np.arange(n_fft)
    squares = np.bincount(positions.ravel(), weights=np.tile(window ** 2, frames),
                          minlength=n_fft + hop_length * (frames - 1))
    return window, positions, np.divide(1.0, squares, out=np.ones_like(squares), where=squares > _TINY)


def griffin_lim(magnitude: np.ndarray, n_iter: int, hop_length: int, n_fft: int) -> np.ndarray:
    """A waveform (hop_length * (frames - 1) samples) whose centred Hann STFT has the magnitudes `magnitude`
    (1 + n_fft // 2, frames): what librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=hop_length,
    n_fft=n_fft, init=None) gives (within 1e-10), in about a quarter of its time. On a 40-frame log-mel most of
    librosa's time goes to re-deriving windows and padding in every stft/istft; this plans them once per shape."""
    window, positions, undo = _frame_plan(n_fft, hop_length, magnitude.shape[1])
    half, flat = n_fft // 2, positions.ravel()

    def istft(spectrum: np.ndarray) -> np.ndarray:
        frames = np.fft.irfft(spectrum.T, n=n_fft, axis=1) * window
        return (np.bincount(flat, weights=frames.ravel(), minlength=len(undo)) * undo)[half:len(undo) - half]

    def stft(wave: np.ndarray) -> np.ndarray:
        return np.fft.rfft(np.pad(wave, half)[positions] * window, axis=1).T

    drag = GRIFFIN_LIM_MOMENTUM / (1 + GRIFFIN_LIM_MOMENTUM)
    angles, previous = magnitude.astype(np.complex128), None  # init=None: every phase starts at 0
    for _ in range(n_iter):
        rebuilt = stft(istft(angles))
        angles = rebuilt if previous is None else rebuilt - drag * previous
        angles = angles / (np.abs(angles) + _TINY) * magnitude
        previous = rebuilt
    return istft(angles)


def waveform_from_log_mel(log_mel: np.ndarray, params, stats: dict, n_iter: int = GRIFFIN_LIM_ITERATIONS
                          ) -> np.ndarray:
    """A waveform that sounds like a standardised log-mel (n_mels, frames) as the shards hold it (a model's
    decoded audio too): float32 at `params.sample_rate`, hop_length * (frames - 1) samples.

    `params` holds the benchmark's sample_rate, n_fft and hop_length (its params object, or the manifest's
    "params" dict); `stats` the log-mel statistics the shards were standardised with (`manifest_stats`).
    The log-mel is de-standardised to mel power, taken to STFT magnitudes (`stft_power_from_mel`) and given a
    phase by `n_iter` Griffin-Lim iterations (fixed initial phase: the same input gives the same waveform).
    A waveform louder than full scale (a model's decoded log-mel may be) is scaled down to a peak of 0.99.
    Shards prepared with `utterance_norm` kept each recording's spectral shape but not its level or dynamic
    range (unit variance in natural log units, where speech spans several): their audio sounds flatter."""
    mel = np.asarray(log_mel, dtype=np.float64)
    if mel.ndim == 3 and mel.shape[0] == 1:  # (1, n_mels, frames), as a shard row
        mel = mel[0]
    if mel.ndim != 2:
        raise ValueError(f"a log-mel must be (n_mels, frames), got shape {mel.shape}")
    sample_rate, n_fft, hop_length = (int(_param(params, k)) for k in ("sample_rate", "n_fft", "hop_length"))
    power = np.exp(mel * stats["audio_log_mel_std"] + stats["audio_log_mel_mean"]) - LOG_MEL_FLOOR
    magnitude = np.sqrt(stft_power_from_mel(np.maximum(power, 0), sample_rate, n_fft))
    wave = griffin_lim(magnitude, n_iter, hop_length, n_fft)
    peak = float(np.abs(wave).max(initial=0.0))
    if peak > 0.99:
        wave = wave * (0.99 / peak)
    return wave.astype(np.float32)


def wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    """A mono 16-bit PCM WAV file of `wave` (floats in -1..1) as bytes: what a browser's <audio> plays."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(np.asarray(wave, dtype=np.float32), -1.0, 1.0), int(sample_rate), format="WAV",
             subtype="PCM_16")
    return buffer.getvalue()


def manifest_stats(manifest: dict) -> dict[str, float]:
    """The training log-mel statistics a shard set was standardised with (its manifest's "normalization")."""
    norm = manifest.get("normalization", {})
    keys = ("audio_log_mel_mean", "audio_log_mel_std")
    if not all(isinstance(norm.get(k), (int, float)) for k in keys):
        raise DataError(f"the shard manifest of {manifest.get('benchmark', 'this benchmark')!r} holds no "
                        f"log-mel statistics (normalization.{keys[0]} / {keys[1]}); prepare its shards again")
    return {k: float(norm[k]) for k in keys}



def playable_stats(params, manifest: dict) -> dict[str, float] | None:
    """The log-mel statistics that undo a shard set's standardisation, where its log-mels were made from
    waveforms with a sample rate, FFT and hop (`params`: the benchmark's params, as an object or the manifest's
    dict), so `waveform_from_log_mel` can play them; None where they were not (synthetic-av draws its
    spectrograms)."""
    values = params if isinstance(params, dict) else params.model_dump()
    if not all(k in values for k in ("sample_rate", "n_fft", "hop_length")):
        return None
    try:
        return manifest_stats(manifest)
    except DataError:
        return None