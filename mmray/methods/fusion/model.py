"""fusion: per-modality encoders fused by cross-attention or concatenation, trained to survive a missing modality.

Each modality m is encoded into tokens t_m (conv-map positions, time steps) and pooled into h_m.
    z_m = P_m h_m                                   (per-modality embedding, aligned across modalities)
    attention: u_m = CrossAttn_m(t_m | t_n, n != m) (each modality's tokens attend to every other's), pooled
    concat:    u_m = h_m
    fused = F([u_1, ..., u_M])                      (an MLP over the concatenation)
Modality dropout: while training, each modality of each example is replaced, with probability p, by a learned
"missing" token (never every modality of an example); a modality absent from an evaluated batch gets the same
token, so embeddings of incomplete examples come from the same network the training shaped for them.
Losses: InfoNCE between the z's of each pair of modalities, cross-entropy of a classifier head on the fused
embedding, and decoders from the fused embedding: MSE for images (and audio, off by default), next-token
cross-entropy for text (pads ignored, but the one ending the sentence). The decoders also serve the optional
evaluation hooks: an image (or audio) decoded from the fused embedding of one modality alone, e.g. an image
from its caption, and text generated from the other modalities.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from mmray.methods.base import Batch, Method
from mmray.methods.encoders import LSTMTextDecoder, MLPDecoder, build_encoder, masked_mean
from mmray.methods.fusion.card import FusionCard, FusionParams
from mmray.methods.losses import info_nce, reconstruction


def modality_keep_mask(batch_size: int, modalities: int, p: float,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, M) bool: which modality of which example is kept. Each is dropped with probability p; an example
    that lost them all gets one back, chosen at random, so no example is left with nothing."""
    keep = torch.rand(batch_size, modalities, generator=generator) >= p
    empty = ~keep.any(1)
    revived = torch.randint(modalities, (batch_size,), generator=generator)
    keep[empty, revived[empty]] = True
    return keep


class CrossAttention(nn.Module):
    """Pre-norm residual multi-head attention whose queries are one modality's tokens and whose keys/values are
    the other modalities'. No per-token MLP after it: the tokens are pooled next and the fusion MLP follows,
    and on ~150 tokens per example a token MLP would cost as much as the encoders."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm_query, self.norm_context = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, tokens: torch.Tensor, context: torch.Tensor, context_valid: torch.Tensor) -> torch.Tensor:
        context = self.norm_context(context)
        attended, _ = self.attention(self.norm_query(tokens), context, context, key_padding_mask=~context_valid,
                                     need_weights=False)
        return tokens + attended


class Fusion(FusionCard, Method):
    def __init__(self, modalities, num_classes: int, params: FusionParams):
        super().__init__(modalities, num_classes, params)
        p = params
        names = [m.name for m in modalities]
        self.encoders = nn.ModuleDict({m.name: build_encoder(m, p.hidden_dim, p.encoder_width) for m in modalities})
        self.projections = nn.ModuleDict({n: nn.Linear(p.hidden_dim, p.latent_dim) for n in names})
        self.missing = nn.ParameterDict({n: nn.Parameter(0.02 * torch.randn(p.hidden_dim)) for n in names})
        if p.fusion == "attention":
            # which modality a token comes from, so a query can tell its contexts apart
            self.modality_embedding = nn.ParameterDict({n: nn.Parameter(0.02 * torch.randn(p.hidden_dim))
                                                        for n in names})
            self.cross = nn.ModuleDict({n: CrossAttention(p.hidden_dim, p.heads) for n in names})
        self.fuse = nn.Sequential(nn.Linear(len(names) * p.hidden_dim, p.hidden_dim), nn.ReLU(),
                                  nn.Linear(p.hidden_dim, p.latent_dim))
        self.classifier = nn.Linear(p.latent_dim, num_classes)
        self.decoders = nn.ModuleDict()
        weights = {"image": p.w_image, "audio": p.w_audio, "text": p.w_text}
        for m in modalities:
            if weights[m.kind] > 0:
                self.decoders[m.name] = (LSTMTextDecoder(p.latent_dim, m.vocab_size, m.pad_id, 2 * p.encoder_width)
                                         if m.kind == "text" else MLPDecoder(p.latent_dim, m.shape))

    def _encode(self, batch: Batch, keep: torch.Tensor | None):
        """Tokens, their valid masks and pooled vectors of every modality, with the missing token standing in
        for a modality absent from the batch or dropped (keep[:, i] false) for an example.

        Returns (tokens, valid, pooled, present): pooled and present hold only the modalities in the batch,
        encoded from their real input (the contrastive loss and the per-modality embeddings use those)."""
        names = [m.name for m in self.modalities]
        present = [n for n in names if n in batch]
        if not present:
            raise ValueError(f"fusion: the batch holds none of the modalities {names}")
        size = len(batch[present[0]])
        tokens, valid, pooled = {}, {}, {}
        for i, name in enumerate(names):
            missing = self.missing[name].expand(size, 1, -1)
            if name not in batch:
                tokens[name], valid[name] = missing, torch.ones(size, 1, dtype=torch.bool, device=missing.device)
                continue
            t, v = self.encoders[name].tokens(batch[name])
            v = torch.ones(t.shape[:2], dtype=torch.bool, device=t.device) if v is None else v
            pooled[name] = masked_mean(t, v)
            if keep is not None:
                # a dropped modality becomes one missing token: keep its first position, mask the rest
                dropped = ~keep[:, i].to(t.device)
                t = torch.where(dropped[:, None, None], missing, t)
                first = torch.arange(t.shape[1], device=t.device) == 0
                v = torch.where(dropped[:, None], first[None, :], v)
            tokens[name], valid[name] = t, v
        return tokens, valid, pooled, present

    def _fused(self, tokens, valid) -> torch.Tensor:
        names = [m.name for m in self.modalities]
        if self.params.fusion == "attention":
            tokens = {n: t + self.modality_embedding[n] for n, t in tokens.items()}
            parts = []
            for name in names:
                others = [n for n in names if n != name]
                context = torch.cat([tokens[n] for n in others], dim=1)
                context_valid = torch.cat([valid[n] for n in others], dim=1)
                parts.append(masked_mean(self.cross[name](tokens[name], context, context_valid), valid[name]))
        else:
            parts = [masked_mean(tokens[n], valid[n]) for n in names]
        return self.fuse(torch.cat(parts, dim=-1))

    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        p = self.params
        size = len(batch["label"])
        keep = (modality_keep_mask(size, len(self.modalities), p.modality_dropout)
                if self.training and p.modality_dropout > 0 else None)
        tokens, valid, pooled, present = self._encode(batch, keep)
        fused = self._fused(tokens, valid)
        z = {n: self.projections[n](pooled[n]) for n in present}
        out = {"classifier": F.cross_entropy(self.classifier(fused), batch["label"])}
        total = p.w_classifier * out["classifier"]
        if len(present) > 1:
            out["contrastive"] = torch.stack([info_nce(z[a], z[b], p.temperature)
                                              for a, b in itertools.combinations(present, 2)]).mean()
            total = total + p.w_contrastive * out["contrastive"]
        weights = {"image": p.w_image, "audio": p.w_audio, "text": p.w_text}
        for m in self.modalities:
            if m.name not in self.decoders or m.name not in batch:
                continue
            if m.kind == "text":
                logits, targets = self.decoders[m.name](fused, batch[m.name])
                term = F.cross_entropy(logits, targets)
            else:
                term = reconstruction(self.decoders[m.name](fused), batch[m.name])
            out[f"decoder_{m.name}"] = term
            total = total + weights[m.kind] * term
        return {"loss": total, **out}

    def embed(self, batch: Batch) -> dict[str, torch.Tensor]:
        tokens, valid, pooled, present = self._encode(batch, None)
        out = {n: self.projections[n](pooled[n]) for n in present}
        out["fused"] = self._fused(tokens, valid)
        return out


    def translate(self, batch: Batch, source: str, target: str) -> torch.Tensor | None:
        """`target` decoded from the fused embedding of `source` alone: every other modality missing (the
        learned missing token stands in for it, as for an incomplete example)."""
        if (target not in self.decoders or isinstance(self.decoders[target], LSTMTextDecoder)
                or source not in self.encoders or source not in batch):
            return None
        tokens, valid, _, _ = self._encode({source: batch[source]}, None)
        return self.decoders[target](self._fused(tokens, valid))

    def generate_text(self, batch: Batch) -> dict[str, torch.Tensor] | None:
        """Each text modality decoded greedily from the fused embedding of the batch without that modality
        (a caption from the image)."""
        out = {}
        for m in self.modalities:
            rest = {k: v for k, v in batch.items() if k != m.name}
            if (m.kind != "text" or m.name not in self.decoders or m.name not in batch
                    or not any(n.name in rest for n in self.modalities)):
                continue
            tokens, valid, _, _ = self._encode(rest, None)
            out[m.name] = self.decoders[m.name].generate(self._fused(tokens, valid), m.shape[0])
        return out or None

    def predict(self, batch: Batch) -> torch.Tensor:
        """Class logits of the classifier head on the fused embedding (modalities absent from the batch missing)."""
        tokens, valid, _, _ = self._encode(batch, None)
        return self.classifier(self._fused(tokens, valid))
