"""Alignment and uniformity of L2-normalised embeddings (Wang & Isola, ICML 2020).

alignment  = E ||f(x) - f(y)||^alpha over positive pairs          (lower is better; 0 = pairs coincide)
uniformity = log E exp(-t ||f(x) - f(x')||^2) over all pairs      (lower is better; -> -4 spread on a sphere, t=2)
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def alignment(a: np.ndarray, b: np.ndarray, alpha: float = 2.0) -> float:
    """Mean distance^alpha between row i of `a` and row i of `b` (positive pairs), after normalising."""
    return float((np.linalg.norm(_normalise(a) - _normalise(b), axis=1) ** alpha).mean())


def uniformity(x: np.ndarray, t: float = 2.0, max_points: int = 2000, seed: int = 0) -> float:
    """Log of the mean Gaussian potential between distinct rows, on at most `max_points` rows (O(n^2))."""
    x = _normalise(x)
    if len(x) > max_points:
        x = x[np.random.default_rng(seed).choice(len(x), max_points, replace=False)]
    squared = pdist(x, "sqeuclidean")
    return float(np.log(np.exp(-t * squared).mean()))
