"""pavlov: a shared latent space reached through per-modality rotations in SO(k).

For modality m with encoder f_m, the shared encode projection W_e and rotation R_m = exp(A_m - A_m^T):
    z_m = R_m W_e f_m(x_m)                    (embedding in the shared space)
    x̂_{m->n} = g_n(W_d R_n^T z_m)            (decode in modality n; m = n is same-modal reconstruction)
Losses: same-modal and cross-modal reconstruction (MSE), InfoNCE between paired z's, and orthogonality of
the shared projections (W_e W_e^T = I, W_d^T W_d = I) so that rotating in the shared space stays meaningful.
The rotations need no such term: exp of a skew-symmetric matrix is orthogonal exactly. The Pavlov seed's
"rotation orthogonality regularization" is another term, trace(R_a^T R_b)^2 over pairs of modalities, which
pushes the modalities' rotations apart (`w_rotation_orthogonality`, the seed's weight 0.01; off by default).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from mmray.methods.base import Batch, Method
from mmray.methods.card import second_view
from mmray.methods.encoders import MLPDecoder, build_encoder
from mmray.methods.losses import info_nce, orthogonality, reconstruction, rotation_from_skew, rotation_overlap
from mmray.methods.pavlov.card import PavlovCard, PavlovParams


class Pavlov(PavlovCard, Method):
    def __init__(self, modalities, num_classes: int, params: PavlovParams):
        super().__init__(modalities, num_classes, params)
        p = params
        self.encoders = nn.ModuleDict({m.name: build_encoder(m, p.hidden_dim, p.encoder_width) for m in modalities})
        self.decoders = nn.ModuleDict({m.name: MLPDecoder(p.hidden_dim, m.shape) for m in modalities})
        self.encode = nn.Linear(p.hidden_dim, p.latent_dim, bias=False)
        self.decode = nn.Linear(p.latent_dim, p.hidden_dim, bias=False)
        self.skew = nn.ParameterDict(
            {m.name: nn.Parameter(0.01 * torch.randn(p.latent_dim, p.latent_dim)) for m in modalities}
        )

    def rotation(self, modality: str) -> torch.Tensor:
        return rotation_from_skew(self.skew[modality])

    def latent(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        return self.encode(self.encoders[modality](x)) @ self.rotation(modality).T

    def reconstruct(self, z: torch.Tensor, modality: str) -> torch.Tensor:
        return self.decoders[modality](self.decode(z @ self.rotation(modality)))

    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        p = self.params
        names = [m.name for m in self.modalities]
        z = {m: self.latent(m, batch[m]) for m in names}
        same = torch.stack([reconstruction(self.reconstruct(z[m], m), batch[m]) for m in names]).mean()
        cross = torch.stack([
            reconstruction(self.reconstruct(z[a], b), batch[b]) for a, b in itertools.permutations(names, 2)
        ]).mean()
        contrastive = torch.stack([
            info_nce(z[a], z[b], p.temperature) for a, b in itertools.combinations(names, 2)
        ]).mean()
        ortho = orthogonality(self.encode.weight) + orthogonality(self.decode.weight.T)
        total = p.w_same * same + p.w_cross * cross + p.w_contrastive * contrastive + p.w_orthogonality * ortho
        out = {"same": same, "cross": cross, "contrastive": contrastive, "orthogonality": ortho}
        if p.w_rotation_orthogonality > 0:
            out["rotation_orthogonality"] = rotation_overlap([self.rotation(m) for m in names])
            total = total + p.w_rotation_orthogonality * out["rotation_orthogonality"]
        viewed = [m for m in names if second_view(m) in batch]
        if viewed:  # SimCLR-style: an example's two augmented views against the batch's other examples
            out["views"] = torch.stack([info_nce(z[m], self.latent(m, batch[second_view(m)]), p.temperature)
                                        for m in viewed]).mean()
            total = total + p.w_views * out["views"]
        return {"loss": total, **out}

    def embed(self, batch: Batch) -> dict[str, torch.Tensor]:
        z = {m.name: self.latent(m.name, batch[m.name]) for m in self.modalities if m.name in batch}
        z["fused"] = torch.stack([F.normalize(v, dim=-1) for v in z.values()]).mean(0)
        return z


    def translate(self, batch: Batch, source: str, target: str) -> torch.Tensor | None:
        """x̂_{source->target}: the source's latent decoded in the target modality (the losses' path)."""
        if (source, target) not in self.translations(self.modalities) or source not in batch:
            return None
        return self.reconstruct(self.latent(source, batch[source]), target)

    def rotations(self) -> dict[str, torch.Tensor]:
        return {m.name: self.rotation(m.name).detach() for m in self.modalities}
