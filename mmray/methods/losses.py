"""Pure loss functions shared by methods. Tensors in, scalar tensor out; tested on hand-made inputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE: row i of `a` and row i of `b` are positives, every other row a negative."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / temperature
    targets = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


def reconstruction(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(prediction, target)


def orthogonality(weight: torch.Tensor) -> torch.Tensor:
    """||W W^T - I||_F^2 / k for W of shape (k, d), k <= d: zero exactly when W's rows are orthonormal."""
    k = weight.shape[0]
    gram = weight @ weight.T
    return ((gram - torch.eye(k, device=weight.device, dtype=weight.dtype)) ** 2).sum() / k


def rotation_overlap(rotations: list[torch.Tensor]) -> torch.Tensor:
    """The Pavlov seed's "rotation orthogonality regularization": trace(R_i^T R_j)^2 averaged over the pairs of
    rotations, zero when every pair is orthogonal as matrices (Frobenius inner product 0), i.e. the modalities'
    rotations pushed apart. Not the orthogonality of each R (exact in SO(k)); 0 for fewer than two."""
    pairs = [torch.trace(a.T @ b) ** 2 for i, a in enumerate(rotations) for b in rotations[i + 1:]]
    return torch.stack(pairs).mean() if pairs else rotations[0].sum() * 0.0


def rotation_from_skew(parameter: torch.Tensor) -> torch.Tensor:
    """Map an unconstrained square matrix to SO(k): A = P - P^T is skew-symmetric (in so(k)), exp(A) in SO(k)."""
    return torch.linalg.matrix_exp(parameter - parameter.T)


def cpc_info_nce(predictions: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor | None,
                 temperature: float, hard_negatives: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE of contrastive predictive coding, scored by cosine similarity / temperature.

    predictions, positives: (G, N, D), G independent groups (CPC: time steps) of N rows (sequences). Row i of a
    group must pick positive i over the group's other positives (in-batch negatives), over `negatives` shared
    by the group ((G, M, D) or (M, D) for every group; None: none) and over its own `hard_negatives` (G, N, H, D).
    """
    predictions, positives = F.normalize(predictions, dim=-1), F.normalize(positives, dim=-1)
    logits = [predictions @ positives.transpose(-1, -2)]  # (G, N, N), positives on the diagonal
    if negatives is not None and negatives.shape[-2] > 0:
        logits.append(predictions @ F.normalize(negatives, dim=-1).transpose(-1, -2))
    if hard_negatives is not None:
        logits.append(torch.einsum("gnd,gnhd->gnh", predictions, F.normalize(hard_negatives, dim=-1)))
    groups, rows = predictions.shape[:2]
    targets = torch.arange(rows, device=predictions.device).repeat(groups)
    return F.cross_entropy(torch.cat(logits, dim=-1).flatten(0, 1) / temperature, targets)


def perturbed_negatives(positives: torch.Tensor, noise_scale: float) -> torch.Tensor:
    """Synthetic hard negatives: each normalised positive plus Gaussian noise of std `noise_scale`, detached."""
    positives = F.normalize(positives.detach(), dim=-1)
    return positives + noise_scale * torch.randn_like(positives)


def time_shifted_negatives(latents: torch.Tensor, k: int) -> torch.Tensor:
    """Synthetic hard negatives: for the targets latents[k:] of a (T, N, D) sequence batch, a latent of the same
    sequence at a random other time step, detached; (T - k, N, D)."""
    steps, rows = latents.shape[:2]
    targets = torch.arange(k, steps, device=latents.device)[:, None]
    shift = torch.randint(1, steps, (steps - k, rows), device=latents.device)  # never 0: never the target itself
    times = (targets + shift) % steps
    return latents.detach()[times, torch.arange(rows, device=latents.device)]


def cosine_alignment(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(prediction_i, target_i) over rows: 0 when every row points along its target, 2 opposite.
    The target is detached: it is a teacher's output, never pulled towards the prediction."""
    return (1 - F.cosine_similarity(prediction, target.detach(), dim=-1)).mean()


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (B, T, V) logits against (B, T) target ids over the positions where the (B, T)
    mask is true (padding is not); zero, still differentiable, when nothing is masked in."""
    if not mask.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[mask], targets[mask])
