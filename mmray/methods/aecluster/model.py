"""aecluster: one autoencoder per modality; clusters of each modality's latents, and how they relate, are read
off afterwards by k-means (`mmray.eval.clustering.cluster_analysis`), not trained for.

For modality m with encoder f_m and decoder g_m:  z_m = f_m(x_m),  x̂_m = g_m(z_m). Each modality kind has its
own latent size (the seed system: image 16, audio 32); `latent_dim`, when set, is every modality's.
f_m is an MLP over the flattened array by default ("mlp"): it keeps the layout that reconstruction needs and
its latents cluster by digit on AV-MNIST; "conv" takes the shared pooled CNN/ResNet (`build_encoder`).
Loss: sum over modalities of w_recon_<kind> * MSE(x̂_m, x_m), plus w_align * InfoNCE between paired z's.
As in the seed system the autoencoders stay separate (w_align = 0): the modalities' latent spaces are only
compared through their clusters. A small w_align pulls the paired latents together, for comparison (it needs
the latents to be the same size). The fused embedding is the joint one the joint k-means clusters: each
modality's latent L2-normalised, concatenated (zeros for a modality absent from the batch). Metrics that compare
two modalities' latents element by element (transfer, retrieval, alignment) are left out where their sizes
differ: separate latent spaces have no common coordinates.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmray.eval.clustering import ClusterAnalysis, cluster_analysis
from mmray.methods.aecluster.card import AEClusterCard, AEClusterParams
from mmray.methods.base import Batch, Method
from mmray.methods.encoders import MLPDecoder, MLPEncoder, build_encoder
from mmray.methods.losses import info_nce, reconstruction


class AECluster(AEClusterCard, Method):
    def __init__(self, modalities, num_classes: int, params: AEClusterParams):
        super().__init__(modalities, num_classes, params)
        p = params
        self.encoders = nn.ModuleDict({m.name: self._encoder(m) for m in modalities})
        self.latent_sizes = {m.name: p.latent_size(m.kind) for m in modalities}
        self.decoders = nn.ModuleDict({m.name: MLPDecoder(self.latent_sizes[m.name], m.shape, p.decoder_hidden)
                                       for m in modalities})
        self.recon_weights = {m.name: getattr(p, f"w_recon_{m.kind}") for m in modalities}

    def _encoder(self, spec) -> nn.Module:
        p = self.params
        if p.encoder == "mlp":
            return MLPEncoder(spec.shape, p.latent_size(spec.kind), p.encoder_width)
        return build_encoder(spec, p.latent_size(spec.kind), p.encoder_width)

    @property
    def n_clusters(self) -> int:
        return self.params.n_clusters or self.num_classes

    def _present(self, batch: Batch) -> list[str]:
        names = [m.name for m in self.modalities if m.name in batch]
        if not names:
            expected = [m.name for m in self.modalities]
            raise ValueError(f"aecluster: the batch holds none of the modalities {expected}")
        return names

    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        p = self.params
        names = self._present(batch)
        z = {m: self.encoders[m](batch[m]) for m in names}
        recon = {m: reconstruction(self.decoders[m](z[m]), batch[m]) for m in names}
        total = sum(self.recon_weights[m] * recon[m] for m in names)
        out = {f"recon_{m}": recon[m] for m in names}
        if len(names) > 1 and len({self.latent_sizes[m] for m in names}) == 1:
            # logged even at weight 0: how far apart the separate latent spaces are (where they can be compared)
            out["align"] = torch.stack([
                info_nce(z[a], z[b], p.align_temperature) for a, b in itertools.combinations(names, 2)
            ]).mean()
            total = total + p.w_align * out["align"]
        return {"loss": total, **out}

    def embed(self, batch: Batch) -> dict[str, torch.Tensor]:
        z = {m: self.encoders[m](batch[m]) for m in self._present(batch)}
        first = next(iter(z.values()))
        z["fused"] = torch.cat([F.normalize(z[m.name], dim=-1) if m.name in z
                                else first.new_zeros(len(first), self.latent_sizes[m.name]) for m in self.modalities],
                               dim=-1)
        return z


    def translate(self, batch: Batch, source: str, target: str) -> torch.Tensor | None:
        if (source, target) not in self.translations(self.modalities) or source not in batch:
            return None
        return self.decoders[source](self.encoders[source](batch[source]))

    def cluster_analysis(self, embeddings: dict[str, np.ndarray], labels: np.ndarray, seed: int = 0
                         ) -> ClusterAnalysis:
        """k-means of each modality's latents (and the joint one) with this method's k, relationship tables
        and convergence/divergence zones; `embeddings` is what `embed` gave (its 'fused' key is left out)."""
        per_modality = {m.name: embeddings[m.name] for m in self.modalities if m.name in embeddings}
        return cluster_analysis(per_modality, labels, self.n_clusters, seed)
