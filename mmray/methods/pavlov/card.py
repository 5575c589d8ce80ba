"""pavlov's card: its params and what it fills (the model: mmray.methods.pavlov.model)."""

from __future__ import annotations

import itertools

from pydantic import Field, model_validator

from mmray.methods.card import MethodCard, MethodParams, pictured


class PavlovParams(MethodParams):
    latent_dim: int = 64
    hidden_dim: int = 128
    encoder_width: int = 32
    temperature: float = 0.5  # high: pairs share only a label, so instance-level uniformity would fight alignment
    w_same: float = 1.0
    w_cross: float = 1.0
    w_contrastive: float = 1.0
    w_orthogonality: float = 0.1  # W_e, W_d orthonormal
    w_rotation_orthogonality: float = Field(0.0, ge=0, description="the Pavlov seed's rotation term: "
                                            "trace(R_a^T R_b)^2 over modality pairs (the seed: 0.01)")
    w_views: float = 1.0  # InfoNCE between two augmented views of each modality (with augment.views: 2)

    @model_validator(mode="after")
    def _latent_within_hidden(self):
        if self.latent_dim > self.hidden_dim:
            raise ValueError(f"latent_dim {self.latent_dim} must not exceed hidden_dim {self.hidden_dim}")
        return self


class PavlovCard(MethodCard):
    name = "pavlov"
    Params = PavlovParams
    kinds = ("image", "audio")  # its decoders reconstruct by MSE, which token ids do not suit
    wants_two_views = True
    model = "mmray.methods.pavlov.model:Pavlov"

    @classmethod
    def translations(cls, modalities) -> tuple[tuple[str, str], ...]:
        """Every (source, target) pair of its modalities: same-modal (a, a) and cross-modal (a, b), targets held
        as pictures."""
        targets = pictured(modalities)
        return tuple((a, b) for a, b in itertools.product([m.name for m in modalities], repeat=2) if b in targets)
