"""Shared building blocks: methods pick an encoder by modality kind and shape."""

from __future__ import annotations

import math

from torch import nn

from mmray.data.spec import ModalitySpec


class ConvEncoder(nn.Module):
    """Three conv blocks over a (C, H, W) array (an image or a log-mel spectrogram), pooled to a vector."""

    def __init__(self, shape: tuple[int, ...], out_dim: int, width: int = 32):
        super().__init__()
        channels = shape[0]
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(2 * width, out_dim),
        )

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


def build_encoder(spec: ModalitySpec, out_dim: int, width: int) -> nn.Module:
    if spec.kind in ("image", "audio") and len(spec.shape) == 3:
        return ConvEncoder(spec.shape, out_dim, width)
    raise ValueError(f"no encoder for modality {spec.name!r} of kind {spec.kind} and shape {spec.shape}")
