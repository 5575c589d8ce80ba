"""Missing-modality robustness of the fused probe: pure functions over per-example correctness.

The fused probe is fit on complete pairs. At test time a modality may be absent: `missing_curve` gives the
probe's accuracy when a seeded share of the examples lacks it, from the correctness of each example with
the modality present and with it absent (so the curve needs one pass of each, not one per fraction).
"""

from __future__ import annotations

import numpy as np

DROP_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)


def missing_curve(correct_full: np.ndarray, correct_missing: np.ndarray, fractions=DROP_FRACTIONS,
                  seed: int = 0) -> dict[float, float]:
    """Accuracy when a share `f` of the examples (a seeded random subset; larger shares contain smaller ones)
    is scored without the modality and the rest with it, for each `f` in `fractions`.

    At f = 0 this is the full accuracy, at f = 1 the accuracy without the modality."""
    full, missing = np.asarray(correct_full, dtype=bool), np.asarray(correct_missing, dtype=bool)
    if full.shape != missing.shape or full.ndim != 1 or not len(full):
        raise ValueError(f"correctness arrays must be 1-D, non-empty and alike, got {full.shape} and "
                         f"{missing.shape}")
    order = np.random.default_rng(seed).permutation(len(full))
    curve = {}
    for fraction in fractions:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"drop fraction {fraction} is not within 0..1")
        dropped = np.zeros(len(full), dtype=bool)
        dropped[order[:round(fraction * len(full))]] = True
        curve[fraction] = float(np.where(dropped, missing, full).mean())
    return curve
