"""Quality of what a method generates: pure functions over strings and image arrays.

- `bleu`: corpus BLEU (sacrebleu, 0..100) of generated texts against one reference each.
- `answer_scores`: exact match and token accuracy of generated answers (VQA), overall and split into
  closed questions (the reference answer is yes or no, as PathVQA defines them) and open ones.
- `ssim`: mean structural similarity of reconstructed images (or log-mels) against the originals: scikit-image's
  `structural_similarity` of each, computed for a whole batch at once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from scipy.ndimage import uniform_filter

YES_NO = frozenset({"yes", "no"})
SSIM_K1, SSIM_K2 = 0.01, 0.03  # scikit-image's (and Wang et al.'s) constants
_NOT_WORD = re.compile(r"[^\w\s]")


def normalise_answer(text: str) -> str:
    """Lower case, punctuation removed, single spaces: 'Yes.' and 'yes' are the same answer."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def _check_lengths(generated: Sequence, references: Sequence) -> None:
    if len(generated) != len(references):
        raise ValueError(f"{len(generated)} generated items but {len(references)} references")
    if not len(references):
        raise ValueError("no generated items to score")


def bleu(generated: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0..100, sacrebleu's 13a tokenisation). Effective order: n-gram orders that no hypothesis is
    long enough to have are left out, so one-word answers still score (identical texts score 100)."""
    _check_lengths(generated, references)
    # Imported here: sacrebleu takes 0.25 s to import (tabulate), which only methods that generate text need,
    # and every Train worker imports this module on its way to its first batch.
    import sacrebleu

    return float(sacrebleu.metrics.BLEU(effective_order=True).corpus_score(list(generated), [list(references)]).score)


def token_accuracy(generated: str, reference: str) -> float:
    """Share of positions whose (normalised) word agrees, over the longer of the two texts: a missing or an
    extra word counts as a mistake. Two empty texts agree fully."""
    g, r = normalise_answer(generated).split(), normalise_answer(reference).split()
    longest = max(len(g), len(r))
    return 1.0 if longest == 0 else sum(a == b for a, b in zip(g, r)) / longest


def answer_scores(generated: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Exact match and token accuracy of normalised answers: overall, on yes/no questions ('_yesno') and on the
    others ('_open'); a subset without questions is left out."""
    _check_lengths(generated, references)
    exact = np.array([normalise_answer(g) == normalise_answer(r) for g, r in zip(generated, references)])
    tokens = np.array([token_accuracy(g, r) for g, r in zip(generated, references)])
    closed = np.array([normalise_answer(r) in YES_NO for r in references])
    scores = {}
    for suffix, keep in (("", np.ones_like(closed)), ("_yesno", closed), ("_open", ~closed)):
        if keep.any():
            scores[f"exact_match{suffix}"] = float(exact[keep].mean())
            scores[f"token_acc{suffix}"] = float(tokens[keep].mean())
    return scores


def ssim(originals: np.ndarray, reconstructions: np.ndarray) -> float:
    """Mean SSIM over images (N, C, H, W) or (N, H, W): scikit-image's `structural_similarity` of each image
    (each channel, then their mean; 7-pixel uniform window, sample covariance, K1 0.01, K2 0.03), averaged,
    computed for the whole batch at once. The data range is that of all originals (images and log-mels are
    standardised, not 0..1), and the window shrinks to fit images smaller than 7 pixels."""
    x, y = np.asarray(originals, dtype=np.float64), np.asarray(reconstructions, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"reconstructions {y.shape} do not match the originals {x.shape}")
    if x.ndim not in (3, 4) or not len(x):
        raise ValueError(f"ssim expects images (N, C, H, W) or (N, H, W), got shape {x.shape}")
    if x.ndim == 3:
        x, y = x[:, None], y[:, None]
    data_range = max(float(x.max() - x.min()), 1e-12)
    side = min(x.shape[-2:])
    window = min(7, side if side % 2 else side - 1)
    size = (1, 1, window, window)  # each channel of each image on its own, as structural_similarity does

    def mean(values: np.ndarray) -> np.ndarray:
        return uniform_filter(values, size=size)

    points = window * window
    norm = points / (points - 1)  # sample covariance
    ux, uy = mean(x), mean(y)
    vx, vy, vxy = norm * (mean(x * x) - ux * ux), norm * (mean(y * y) - uy * uy), norm * (mean(x * y) - ux * uy)
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    index = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    pad = (window - 1) // 2  # the filter's edge strip is left out, as structural_similarity does
    height, width = x.shape[-2:]
    return float(index[..., pad:height - pad, pad:width - pad].mean())
