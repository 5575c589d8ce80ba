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


def rotation_from_skew(parameter: torch.Tensor) -> torch.Tensor:
    """Map an unconstrained square matrix to SO(k): A = P - P^T is skew-symmetric (in so(k)), exp(A) in SO(k)."""
    return torch.linalg.matrix_exp(parameter - parameter.T)
