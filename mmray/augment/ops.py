"""Augmentations as pure tensor functions: a batch and per-example draws in, a new batch out (never in place).

Audio works on log-mels (B, 1, mels, frames) standardised by a `LogMelScale` (x = (ln power - mean) / std);
images on (B, C, H, W); text on (B, L) token ids. Random draws come from a caller's torch.Generator, so a
trial's seed and epoch decide them (mmray.augment.augmenter)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LogMelScale:
    """How a shard set's log-mels relate to power: x = (ln(power) - mean) / std, bins centred on `centres_hz`."""

    mean: float
    std: float
    centres_hz: torch.Tensor  # (mels,) centre frequency of each mel bin


def slaney_mel(hz: torch.Tensor) -> torch.Tensor:
    """librosa's default (Slaney) mel scale: linear below 1 kHz, logarithmic above."""
    linear = hz / (200.0 / 3)
    log = 15.0 + torch.log(hz.clamp(min=1e-3) / 1000.0) / (math.log(6.4) / 27.0)
    return torch.where(hz < 1000.0, linear, log)


def mel_centres(n_mels: int, sample_rate: int) -> torch.Tensor:
    """Centre frequencies (Hz) of librosa's `n_mels` mel bins from 0 Hz to Nyquist (as mmray.data.audio.log_mel)."""
    import librosa

    return torch.from_numpy(librosa.mel_frequencies(n_mels + 2, fmin=0.0, fmax=sample_rate / 2)[1:-1]).float()


def warp_log_mel(mels: torch.Tensor, shift: torch.Tensor, speed: torch.Tensor, pitch: torch.Tensor,
                 centres_hz: torch.Tensor) -> torch.Tensor:
    """Time shift, speed and pitch change of (B, 1, mels, frames) log-mels, per example, as one resampling.

    shift: frames (positive: later); speed: factor (> 1 faster: the recording is shorter about its centre and
    every frequency is `speed` times higher, as resampling the waveform does); pitch: frequency factor alone.
    An approximation of doing it to the waveform: the log-mel is interpolated (bilinear) rather than recomputed,
    and frames or bins read from beyond the edges repeat the edge (silence, for centred recordings)."""
    batch, _, bins, frames = mels.shape
    t = torch.arange(frames, dtype=mels.dtype, device=mels.device)
    centre = (frames - 1) / 2
    source_t = centre + (t[None] - centre) * speed[:, None] - shift[:, None]  # (B, frames)
    mel_of = slaney_mel(centres_hz.to(mels.device))
    source_hz = centres_hz.to(mels.device)[None] / (speed * pitch)[:, None]  # (B, bins)
    # mel bins are evenly spaced in mel, so a frequency's fractional bin index is linear in its mel
    source_f = (slaney_mel(source_hz) - mel_of[0]) / ((mel_of[-1] - mel_of[0]) / max(bins - 1, 1))
    grid_t = (2 * source_t / max(frames - 1, 1) - 1)[:, None, :].expand(batch, bins, frames)
    grid_f = (2 * source_f / max(bins - 1, 1) - 1)[:, :, None].expand(batch, bins, frames)
    grid = torch.stack([grid_t, grid_f], dim=-1)
    return F.grid_sample(mels, grid, mode="bilinear", padding_mode="border", align_corners=True)


def gain(mels: torch.Tensor, db: torch.Tensor, scale: LogMelScale) -> torch.Tensor:
    """A gain of `db` (B,) decibels: ln(power) rises by db * ln(10) / 10."""
    return mels + (db * (math.log(10) / 10) / scale.std).view(-1, 1, 1, 1)


def add_noise(mels: torch.Tensor, snr_db: float, chosen: torch.Tensor, scale: LogMelScale,
              generator: torch.Generator) -> torch.Tensor:
    """White noise at `snr_db` (its power against the recording's mean power) added in the power domain to the
    examples `chosen` (B,) bool. Each bin's noise power is exponentially distributed (a periodogram of white
    noise); equal across mel bins, as librosa's area-normalised (Slaney) filters make white noise."""
    rows = torch.nonzero(chosen).flatten().to(mels.device)  # only those: most of the cost is per element
    power = torch.exp(mels.index_select(0, rows) * scale.std + scale.mean)
    level = power.mean(dim=(1, 2, 3), keepdim=True) / 10 ** (snr_db / 10)
    noise = level * -torch.log1p(-torch.rand(power.shape, generator=generator)).to(mels.device)
    return mels.index_copy(0, rows, (torch.log(power + noise) - scale.mean) / scale.std)


def mask_stretches(x: torch.Tensor, dim: int, count: int, max_width: int, generator: torch.Generator,
                   fill: float = 0.0) -> torch.Tensor:
    """SpecAugment: `count` stretches along `dim` per example, each of a width drawn from 0..max_width and at
    a random start, set to `fill` (0: the standardised mean)."""
    batch, length = x.shape[0], x.shape[dim]
    width = torch.randint(0, max_width + 1, (batch, count), generator=generator)
    start = (torch.rand(batch, count, generator=generator) * (length - width + 1)).long()
    position = torch.arange(length)
    masked = ((position >= start[..., None]) & (position < (start + width)[..., None])).any(1)  # (B, length)
    shape = [batch] + [1] * (x.dim() - 1)
    shape[dim] = length
    return x.masked_fill(masked.view(shape).to(x.device), fill)


def affine_images(images: torch.Tensor, angle_degrees: torch.Tensor, zoom: torch.Tensor,
                  offset: torch.Tensor) -> torch.Tensor:
    """Rotate by `angle_degrees` (B,), read a window `zoom` (B,) times the side (< 1: a crop, resized back)
    moved by `offset` (B, 2) fractions of the half-side (x, y); zeros fill what comes from outside."""
    angle = torch.deg2rad(angle_degrees)
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], -1), torch.stack([sin, cos, offset[:, 1]], -1)], 1)
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def colour_jitter(images: torch.Tensor, brightness: torch.Tensor, contrast: torch.Tensor,
                  saturation: torch.Tensor) -> torch.Tensor:
    """torchvision's order and meaning, per example factors (B,): brightness scales, contrast pulls towards the
    image's mean grey, saturation towards each pixel's grey. (B, 3, H, W) colour images."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    view = lambda factor: factor.view(-1, 1, 1, 1).to(images)
    out = images * view(brightness)
    mean_grey = (out * weights).sum(1, keepdim=True).mean(dim=(2, 3), keepdim=True)
    out = mean_grey + (out - mean_grey) * view(contrast)
    grey = (out * weights).sum(1, keepdim=True)
    return grey + (out - grey) * view(saturation)


def token_dropout(ids: torch.Tensor, p: float, pad_id: int, generator: torch.Generator) -> torch.Tensor:
    """Each token but the first (a start token, where a tokenizer adds one) becomes `pad_id` with chance p."""
    dropped = torch.rand(ids.shape, generator=generator) < p
    dropped[:, 0] = False
    return ids.masked_fill(dropped.to(ids.device), pad_id)


def symmetric(batch: int, largest: float, generator: torch.Generator) -> torch.Tensor:
    """(batch,) draws uniform in [-largest, largest]."""
    return (2 * torch.rand(batch, generator=generator) - 1) * largest
