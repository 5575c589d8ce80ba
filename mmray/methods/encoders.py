"""Shared building blocks: methods pick an encoder by modality kind and shape.

Every encoder sees its input as a set of feature tokens (positions of a conv feature map, time steps of a
sentence): `tokens(x)` returns them with a mask of the valid ones, and calling the encoder returns their
masked mean, one vector per example. Methods that fuse modalities token by token use `tokens`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mmray.data.spec import ModalitySpec

SMALL_IMAGE_SIDE = 32  # images up to this side (MNIST 28, CIFAR 32) get the small CNN, larger ones a ResNet
MAX_TOKEN_GRID = 8  # a ResNet's feature map is pooled to at most 8 x 8 tokens, so attention stays cheap


def masked_mean(tokens: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean over the token axis of (B, T, D) tokens, counting only positions where `valid` (B, T) is true."""
    if valid is None:
        return tokens.mean(1)
    weights = valid.to(tokens.dtype).unsqueeze(-1)
    return (tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class TokenEncoder(nn.Module):
    """Base of the encoders: `tokens(x)` -> ((B, T, out_dim) tokens, (B, T) bool mask of valid ones or None)."""

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return masked_mean(*self.tokens(x))


def _grid_tokens(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) feature map -> (B, H*W, C) tokens."""
    return features.flatten(2).transpose(1, 2)


class ConvEncoder(TokenEncoder):
    """Three conv blocks over a small (C, H, W) array (an image or a log-mel spectrogram); a token per position
    of the quarter-resolution feature map."""

    def __init__(self, shape: tuple[int, ...], out_dim: int, width: int = 32):
        super().__init__()
        channels = shape[0]
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        )
        self.project = nn.Linear(2 * width, out_dim)

    def tokens(self, x):
        return self.project(_grid_tokens(self.features(x))), None

    def forward(self, x):
        # the mean of linearly projected tokens is the projected mean: project once
        return self.project(self.features(x).mean((2, 3)))


class ResidualBlock(nn.Module):
    """Two 3x3 convs with batch norm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Identity() if stride == 1 and in_channels == out_channels else nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNetEncoder(TokenEncoder):
    """A stride-2 stem, one residual block at its resolution, then stride-2 residual blocks (channels doubling
    up to 4 x width) until the feature map is at most 8 on a side; a token per position."""

    def __init__(self, shape: tuple[int, ...], out_dim: int, width: int = 32):
        super().__init__()
        channels, height, wide = shape
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        blocks, side, current = [ResidualBlock(width, width, 1)], math.ceil(max(height, wide) / 2), width
        while side > MAX_TOKEN_GRID:
            nxt = min(2 * current, 4 * width)
            blocks.append(ResidualBlock(current, nxt, 2))
            side, current = math.ceil(side / 2), nxt
        self.blocks = nn.Sequential(*blocks)
        self.project = nn.Linear(current, out_dim)

    def tokens(self, x):
        return self.project(_grid_tokens(self.blocks(self.stem(x)))), None


def text_lengths(tokens: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Length of each (right-padded) row of token ids: one past its last non-pad token, at least 1."""
    positions = torch.arange(1, tokens.shape[1] + 1, device=tokens.device)
    return ((tokens != pad_id) * positions).amax(1).clamp(min=1)


class LSTMEncoder(TokenEncoder):
    """Token ids (B, L) -> embedding -> bidirectional LSTM over the packed (unpadded) sequences; a token per
    time step, pads masked out."""

    def __init__(self, vocab_size: int, pad_id: int, out_dim: int, width: int = 32):
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, width, padding_idx=pad_id)
        self.lstm = nn.LSTM(width, width, batch_first=True, bidirectional=True)
        self.project = nn.Linear(2 * width, out_dim)

    def tokens(self, x):
        lengths = text_lengths(x, self.pad_id)
        packed = pack_padded_sequence(self.embedding(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=x.shape[1])
        valid = torch.arange(x.shape[1], device=x.device) < lengths[:, None]
        return self.project(states), valid


WAVEFORM_STRIDES = (5, 4, 2, 2, 2)  # CPC's raw-audio encoder: one latent per 160 samples (20 ms at 8 kHz)
WAVEFORM_HOP = math.prod(WAVEFORM_STRIDES)


def waveform_convs(channels: int, out_dim: int, width: int) -> nn.Sequential:
    """(B, channels, samples) -> (B, out_dim, samples / 160): strided 1-D convolutions over a raw waveform,
    as CPC's audio encoder (kernel twice the stride, so neighbouring windows overlap)."""
    layers, current = [], channels
    for stride in WAVEFORM_STRIDES:
        layers += [nn.Conv1d(current, width, 2 * stride, stride, padding=stride // 2), nn.BatchNorm1d(width),
                   nn.ReLU()]
        current = width
    return nn.Sequential(*layers, nn.Conv1d(width, out_dim, 1))


class WaveformEncoder(TokenEncoder):
    """A raw waveform (C, samples) through `waveform_convs`; a token per 160 samples."""

    def __init__(self, shape: tuple[int, ...], out_dim: int, width: int = 32):
        super().__init__()
        self.net = waveform_convs(shape[0], out_dim, width)

    def tokens(self, x):
        return self.net(x).transpose(1, 2), None


class MLPEncoder(TokenEncoder):
    """Flattened array -> two ReLU layers -> vector; one token. Unlike the pooled CNN it keeps where things
    are in the array, which an autoencoder's latent needs to reconstruct it (MLPDecoder is its mirror)."""

    def __init__(self, shape: tuple[int, ...], out_dim: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), 2 * hidden), nn.ReLU(),
                                 nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def tokens(self, x):
        return self.net(x).unsqueeze(1), None

    def forward(self, x):
        return self.net(x)


class MLPDecoder(nn.Module):
    """Vector -> flattened array of `shape`, for reconstruction losses."""

    def __init__(self, in_dim: int, shape: tuple[int, ...], hidden: int = 256):
        super().__init__()
        self.shape = shape
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, math.prod(shape)))

    def forward(self, z):
        return self.net(z).view(-1, *self.shape)


class LSTMTextDecoder(nn.Module):
    """Vector -> next-token logits of a sentence, teacher-forced: an LSTM whose initial state is computed from
    the vector reads the sentence shifted right by one (pad id as start token) and predicts each token and
    the first pad after it, which marks the end (so `generate` knows where to stop)."""

    def __init__(self, in_dim: int, vocab_size: int, pad_id: int, width: int = 64):
        super().__init__()
        self.pad_id = pad_id
        self.initial = nn.Linear(in_dim, 2 * width)
        self.embedding = nn.Embedding(vocab_size, width, padding_idx=pad_id)
        self.lstm = nn.LSTM(width, width, batch_first=True)
        self.vocab = nn.Linear(width, vocab_size)

    def _initial_state(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h0, c0 = torch.tanh(self.initial(z)).unsqueeze(0).chunk(2, dim=-1)
        return h0.contiguous(), c0.contiguous()

    def forward(self, z: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, vocab) at the N positions of `tokens` up to and including each row's end-marking pad,
        and the N token ids they must predict.

        Only those positions get logits: with a 50k-word vocabulary, logits at every position of every
        padded sentence would take most of a training step's memory."""
        inputs = torch.cat([torch.full_like(tokens[:, :1], self.pad_id), tokens[:, :-1]], dim=1)
        states, _ = self.lstm(self.embedding(inputs), self._initial_state(z))
        keep = torch.arange(tokens.shape[1], device=tokens.device) <= text_lengths(tokens, self.pad_id)[:, None]
        return self.vocab(states[keep]), tokens[keep]

    def generate(self, z: torch.Tensor, length: int) -> torch.Tensor:
        """Greedy decoding: (B, length) token ids, pad from each row's first predicted pad on."""
        state = self._initial_state(z)
        token = torch.full((len(z), 1), self.pad_id, dtype=torch.long, device=z.device)
        ended = torch.zeros(len(z), dtype=torch.bool, device=z.device)
        out = []
        for _ in range(length):
            step, state = self.lstm(self.embedding(token), state)
            token = torch.where(ended[:, None], self.pad_id, self.vocab(step).argmax(-1))
            ended |= token[:, 0] == self.pad_id
            out.append(token)
        return torch.cat(out, dim=1)


def build_encoder(spec: ModalitySpec, out_dim: int, width: int) -> TokenEncoder:
    """A small CNN for small images and log-mel audio, 1-D convolutions for a raw waveform, a ResNet for larger
    images, an LSTM for text."""
    if spec.kind == "text":
        return LSTMEncoder(spec.vocab_size, spec.pad_id, out_dim, width)
    if spec.kind == "audio" and len(spec.shape) == 2 and spec.shape[1] >= WAVEFORM_HOP:
        return WaveformEncoder(spec.shape, out_dim, width)
    if spec.kind in ("image", "audio") and len(spec.shape) == 3:
        if spec.kind == "image" and max(spec.shape[1:]) > SMALL_IMAGE_SIDE:
            return ResNetEncoder(spec.shape, out_dim, width)
        return ConvEncoder(spec.shape, out_dim, width)
    raise ValueError(f"no encoder for modality {spec.name!r} of kind {spec.kind} and shape {spec.shape}")
