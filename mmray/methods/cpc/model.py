"""cpc: contrastive predictive coding (van den Oord, Li & Vinyals 2018) on every modality of a benchmark.

Each modality becomes a sequence of latents z_1..z_T: a log-mel (1, mels, frames) through 1-D convolutions
over its frames (mels are the channels; one latent per two frames), a raw waveform (1, samples) through CPC's
strided convolutions (one latent per 160 samples), an image (C, H, W) through one small conv
net per non-overlapping `patch_size` patch, the patches in raster order. One GRU, shared by all modalities
(told which one by a learned embedding added to its input), summarises the past: c_t = GRU(z_1..z_t). For
k = 1..K a linear map W_k predicts z_{t+k} from c_t, scored by cosine / temperature against the latents at t+k
of the other sequences in the batch (`inbatch`), plus, as `negatives` combines them with "+":
    queue            the latents at t + k of a FIFO queue of past sequences of the same modality (`queue_size`
                     sequences), encoded by a momentum (exponential moving average) copy of the encoders as in
                     MoCo, so the queue does not go stale as the encoders move (`momentum`; 0: the online
                     encoders' latents, detached),
    synthetic        two hard negatives per prediction: the positive with Gaussian noise (`noise_scale`,
                     detached) and a latent of the same sequence at another time,
    crossmodal       the other modality's latents of the batch (when it is present).
With two modalities, InfoNCE between the mean contexts of a pair aligns them (weight `w_align`). With
`augment.views: 2`, InfoNCE between the mean contexts of each example's two augmented views, against the batch's
other examples (weight `w_views`), as SimCLR does.
The embedding of a modality is its mean context; 'fused' is the mean of the normalised ones present.
`modalities` trains on a subset of the benchmark's modalities (CIFAR-2's images without the tone that names
their class): the others are never read. Defaults follow the seed where it is specific (a context of 256).
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn.functional as F
from torch import nn

from mmray.data.spec import ModalitySpec
from mmray.methods.base import Batch, Method
from mmray.methods.card import second_view
from mmray.methods.cpc.card import CPCCard, CPCParams
from mmray.methods.encoders import WaveformEncoder
from mmray.methods.losses import cpc_info_nce, info_nce, perturbed_negatives, time_shifted_negatives


class LatentQueue(nn.Module):
    """A bounded FIFO of past latents (rows of `shape`) kept as buffers (saved in checkpoints, never trained):
    the oldest rows are overwritten first."""

    def __init__(self, size: int, shape: tuple[int, ...]):
        super().__init__()
        self.register_buffer("items", torch.zeros(size, *shape))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def contents(self) -> torch.Tensor:
        """The rows pushed so far (at most the capacity), oldest first."""
        size, count, pointer = len(self.items), int(self.count), int(self.pointer)
        if count < size:
            return self.items[:count].clone()
        return torch.cat([self.items[pointer:], self.items[:pointer]])

    @torch.no_grad()
    def push(self, latents: torch.Tensor) -> None:
        latents = latents.detach()[-len(self.items):]  # more rows than the capacity: the newest win
        positions = (int(self.pointer) + torch.arange(len(latents), device=latents.device)) % len(self.items)
        self.items[positions] = latents.to(self.items.dtype)
        self.pointer.fill_((int(self.pointer) + len(latents)) % len(self.items))
        self.count.fill_(min(int(self.count) + len(latents), len(self.items)))


class AudioSequenceEncoder(nn.Module):
    """(B, 1, mels, frames) -> (B, ceil(frames / 2), z_dim): 1-D convolutions over time, mels as channels."""

    def __init__(self, shape: tuple[int, ...], z_dim: int, width: int):
        super().__init__()
        mels = shape[0] * shape[1]
        self.net = nn.Sequential(
            nn.Conv1d(mels, width, 3, padding=1), nn.ReLU(),
            nn.Conv1d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(width, z_dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1, 2)).transpose(1, 2)


class WaveformSequenceEncoder(WaveformEncoder):
    """(B, C, samples) -> (B, samples / 160, z_dim): the shared waveform encoder's tokens, not pooled."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tokens(x)[0]


class PatchSequenceEncoder(nn.Module):
    """(B, C, H, W) -> (B, (H/p) * (W/p), z_dim): one conv net applied to each p x p patch, raster order."""

    def __init__(self, shape: tuple[int, ...], z_dim: int, width: int, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.net = nn.Sequential(
            nn.Conv2d(shape[0], width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(2 * width, z_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, p = x.shape[0], x.shape[1], self.patch_size
        patches = x.unfold(2, p, p).unfold(3, p, p)  # (B, C, H/p, W/p, p, p)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, p, p)  # row-major over the patch grid
        return self.net(patches).view(b, -1, self.net[-1].out_features)


def build_sequence_encoder(spec: ModalitySpec, p: CPCParams) -> nn.Module:
    if spec.kind == "audio" and len(spec.shape) == 3:
        return AudioSequenceEncoder(spec.shape, p.z_dim, p.encoder_width)
    if spec.kind == "audio" and len(spec.shape) == 2:  # a raw waveform: CPC's own strided convolutions
        return WaveformSequenceEncoder(spec.shape, p.z_dim, p.encoder_width)
    if spec.kind == "image" and len(spec.shape) == 3:
        height, width = spec.shape[1:]
        if height % p.patch_size or width % p.patch_size or height * width < 2 * p.patch_size ** 2:
            raise ValueError(f"cpc: patch_size {p.patch_size} must divide image {spec.name!r} of "
                             f"{height}x{width} into at least 2 patches")
        return PatchSequenceEncoder(spec.shape, p.z_dim, p.encoder_width, p.patch_size)
    raise ValueError(f"cpc: no sequence encoder for modality {spec.name!r} of kind {spec.kind} "
                     f"and shape {spec.shape}")


class CPC(CPCCard, Method):
    def __init__(self, modalities, num_classes: int, params: CPCParams):
        modalities = self.modalities_used(params, modalities)
        super().__init__(modalities, num_classes, params)
        p = params
        self.negative_kinds = set(p.negatives.split("+"))
        self.encoders = nn.ModuleDict({m.name: build_sequence_encoder(m, p) for m in modalities})
        self.modality_embedding = nn.ParameterDict(
            {m.name: nn.Parameter(torch.zeros(p.z_dim)) for m in modalities})
        self.context = nn.GRU(p.z_dim, p.c_dim, batch_first=True)
        self.predictors = nn.ModuleList(
            nn.Linear(p.c_dim, p.z_dim, bias=False) for _ in range(p.prediction_steps))
        # whole latent sequences are queued, so that a prediction of time t + k meets past latents of t + k,
        # like its in-batch negatives (a patch's raster position shows in it: other times are easy negatives)
        queued = "queue" in self.negative_kinds
        self.queues = nn.ModuleDict(
            {m.name: LatentQueue(p.queue_size, self.sequence_shape(m)) for m in modalities} if queued else {})
        self.momentum_encoders = (copy.deepcopy(self.encoders).requires_grad_(False) if queued and p.momentum > 0
                                  else None)

    @torch.no_grad()
    def sequence_shape(self, spec: ModalitySpec) -> tuple[int, ...]:
        return tuple(self.encoders[spec.name](torch.zeros(1, *spec.shape)).shape[1:])

    def sequences(self, modality: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents z (B, T, z_dim) and contexts c (B, T, c_dim) of one modality."""
        z = self.encoders[modality](x)
        c, _ = self.context(z + self.modality_embedding[modality])
        return z, c

    @torch.no_grad()
    def queued_latents(self, modality: str, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """What a training batch adds to its modality's queue: the momentum encoder's latents, after one EMA
        step towards the online encoder (or, without momentum, the online latents)."""
        if self.momentum_encoders is None:
            return z.detach()
        online, key = self.encoders[modality], self.momentum_encoders[modality]
        for target, source in zip(key.parameters(), online.parameters()):
            target.lerp_(source.detach(), 1 - self.params.momentum)
        return key(x)

    def cpc_loss(self, modality: str, z: torch.Tensor, c: torch.Tensor,
                 other: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        """Mean InfoNCE over the prediction steps that fit in the sequence; `other`: another modality's z;
        `x` the modality's input (encoded again by the momentum encoder for the queue)."""
        p = self.params
        steps = min(p.prediction_steps, z.shape[1] - 1)
        queued = self.queues[modality].contents() if modality in self.queues else None
        terms = []
        for k in range(1, steps + 1):
            # time-major groups: the prediction at t competes with the latents at t + k of the whole batch
            predictions = self.predictors[k - 1](c[:, :-k]).transpose(0, 1)
            positives = z[:, k:].transpose(0, 1)
            hard = None
            if "synthetic" in self.negative_kinds:
                hard = torch.stack([perturbed_negatives(positives, p.noise_scale),
                                    time_shifted_negatives(z.transpose(0, 1), k)], dim=2)
            negatives = [queued[:, k:].transpose(0, 1)] if queued is not None else []
            if "crossmodal" in self.negative_kinds and other is not None:
                picks = torch.randint(other.shape[1], (len(positives),), device=other.device)
                negatives.append(other[:, picks].transpose(0, 1))  # one random time of every pair, per group
            negatives = torch.cat(negatives, dim=1) if negatives else None
            terms.append(cpc_info_nce(predictions, positives, negatives, p.temperature, hard_negatives=hard))
        if modality in self.queues and self.training:
            # after use, so a sequence is never its own negative
            self.queues[modality].push(self.queued_latents(modality, x, z))
        return torch.stack(terms).mean()

    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        p = self.params
        names = [m.name for m in self.modalities if m.name in batch]
        seq = {m: self.sequences(m, batch[m]) for m in names}
        out = {}
        for m in names:
            other = next((seq[n][0] for n in names if n != m), None)
            out[f"cpc_{m}"] = self.cpc_loss(m, *seq[m], other, batch[m])
        cpc = torch.stack(list(out.values())).mean()
        total = p.w_cpc * cpc
        out["cpc"] = cpc
        pooled = {m: seq[m][1].mean(1) for m in names}  # each modality's embedding: its mean context
        if len(names) > 1:
            align = torch.stack([info_nce(pooled[a], pooled[b], p.align_temperature)
                                 for a, b in itertools.combinations(names, 2)]).mean()
            total = total + p.w_align * align
            out["align"] = align
        viewed = [m for m in names if second_view(m) in batch]
        if viewed:
            out["views"] = torch.stack([
                info_nce(pooled[m], self.sequences(m, batch[second_view(m)])[1].mean(1), p.temperature)
                for m in viewed]).mean()
            total = total + p.w_views * out["views"]
        out["loss"] = total
        return out

    def embed(self, batch: Batch) -> dict[str, torch.Tensor]:
        out = {m.name: self.sequences(m.name, batch[m.name])[1].mean(1)
               for m in self.modalities if m.name in batch}
        out["fused"] = torch.stack([F.normalize(v, dim=-1) for v in out.values()]).mean(0)
        return out

