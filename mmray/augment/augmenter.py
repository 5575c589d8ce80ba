"""A trial's training batches through its augmentations: per modality kind, on the fly, from the trial's seed.

The engine's epoch loop passes every training batch through `Augmenter.epoch`; evaluation never sees it. Each
epoch draws from a generator seeded by (seed, epoch), so a trial resumed at an epoch replays its augmentations,
and the shards keep unaugmented examples."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch

from mmray.augment import ops
from mmray.augment.params import AugmentParams
from mmray.data.audio import utterance_normalise
from mmray.data.spec import ModalitySpec
from mmray.methods.base import Batch
from mmray.methods.card import second_view

# librosa's default for log-mels in mmray.data.audio; generated benchmarks without one in their parameters
DEFAULT_SAMPLE_RATE = 16000


class Augmenter:
    def __init__(self, params: AugmentParams, modalities: tuple[ModalitySpec, ...], manifest: dict, seed: int,
                 two_views: bool):
        self.params, self.seed, self.two_views = params, seed, two_views
        self.modalities = tuple(m for m in modalities if params.active(m.kind) or two_views)
        audio = [m for m in self.modalities if m.kind == "audio"]
        self.scale = log_mel_scale(manifest, audio[0]) if audio else None
        self.utterance_norm = bool(manifest.get("params", {}).get("utterance_norm", False))

    @classmethod
    def build(cls, params: AugmentParams | None, modalities, manifest: dict, seed: int,
              wants_two_views: bool) -> Augmenter | None:
        """The augmenter of a trial, or None where nothing would change a batch."""
        params = params or AugmentParams()
        two_views = params.views == 2 and wants_two_views
        if not two_views and not any(params.active(m.kind) for m in modalities):
            return None
        return cls(params, modalities, manifest, seed, two_views)

    def generator(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)

    def epoch(self, batches: Iterable[Batch], epoch: int) -> Iterator[Batch]:
        generator = self.generator(epoch)
        for batch in batches:
            yield self.batch(batch, generator)

    def batch(self, batch: Batch, generator: torch.Generator) -> Batch:
        out = dict(batch)
        for m in self.modalities:
            if m.name not in batch:
                continue
            out[m.name] = self.view(m, batch[m.name], generator)
            if self.two_views:
                out[second_view(m.name)] = self.view(m, batch[m.name], generator)
        return out

    def view(self, modality: ModalitySpec, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if not self.params.active(modality.kind):
            return x
        if modality.kind == "audio":
            return self.audio(x, generator)
        if modality.kind == "image":
            return self.image(x, generator)
        return ops.token_dropout(x, self.params.text.token_dropout, modality.pad_id, generator)

    def audio(self, mels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        p, n = self.params.audio, len(mels)
        if p.shift or p.speed or p.pitch_semitones:
            shift = ops.symmetric(n, p.shift * mels.shape[-1], g)
            speed = 1 + ops.symmetric(n, p.speed, g)
            pitch = 2 ** (ops.symmetric(n, p.pitch_semitones, g) / 12)
            mels = ops.warp_log_mel(mels, shift, speed, pitch, self.scale.centres_hz)
        if p.gain_db:
            mels = ops.gain(mels, ops.symmetric(n, p.gain_db, g), self.scale)
        if p.noise_p:
            mels = ops.add_noise(mels, p.noise_snr_db, torch.rand(n, generator=g) < p.noise_p, self.scale, g)
        if self.utterance_norm:  # as the shards were: gain and noise must not undo it
            mels = utterance_normalise(mels)
        if p.time_masks:
            mels = ops.mask_stretches(mels, 3, p.time_masks, p.time_mask_frames, g)
        if p.freq_masks:
            mels = ops.mask_stretches(mels, 2, p.freq_masks, p.freq_mask_bins, g)
        return mels

    def image(self, images: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        p, n = self.params.image, len(images)
        if p.translate or p.rotate_degrees or p.crop_scale < 1:
            zoom = torch.sqrt(p.crop_scale + (1 - p.crop_scale) * torch.rand(n, generator=g))
            # a crop may sit anywhere inside the image; a translation moves it further
            room = (1 - zoom)[:, None] * (2 * torch.rand(n, 2, generator=g) - 1)
            offset = room + 2 * p.translate * (2 * torch.rand(n, 2, generator=g) - 1)
            images = ops.affine_images(images, ops.symmetric(n, p.rotate_degrees, g), zoom, offset)
        if images.shape[1] == 3 and (p.brightness or p.contrast or p.saturation):
            images = ops.colour_jitter(images, 1 + ops.symmetric(n, p.brightness, g),
                                       1 + ops.symmetric(n, p.contrast, g), 1 + ops.symmetric(n, p.saturation, g))
        return images


def log_mel_scale(manifest: dict, audio: ModalitySpec) -> ops.LogMelScale:
    """The log-mel scale of a shard set, from its manifest: training statistics and sample rate (a benchmark
    without them, generated audio, is taken as unstandardised natural-log power at DEFAULT_SAMPLE_RATE)."""
    norm = manifest.get("normalization", {})
    rate = manifest.get("params", {}).get("sample_rate", DEFAULT_SAMPLE_RATE)
    return ops.LogMelScale(mean=float(norm.get("audio_log_mel_mean", 0.0)),
                           std=float(norm.get("audio_log_mel_std", 1.0)),
                           centres_hz=ops.mel_centres(audio.shape[-2], int(rate)))
