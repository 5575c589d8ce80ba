"""Quality of what a method generates: pure functions over strings and image arrays.

- `bleu`: corpus BLEU (sacrebleu, 0..100) of generated texts against one reference each.
- `answer_scores`: exact match and token accuracy of generated answers (VQA), overall and split into
  closed questions (the reference answer is yes or no, as PathVQA defines them) and open ones.
- `ssim`: mean structural similarity (scikit-image) of reconstructed images against the originals.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from skimage.metrics import structural_similarity

YES_NO = frozenset({"yes", "no"})
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
    """Mean SSIM over images (N, C, H, W) or (N, H, W). The data range is that of all originals (images are
    standardised, not 0..1), and the window shrinks to fit images smaller than the default 7 pixels."""
    x, y = np.asarray(originals, dtype=np.float64), np.asarray(reconstructions, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"reconstructions {y.shape} do not match the originals {x.shape}")
    if x.ndim not in (3, 4) or not len(x):
        raise ValueError(f"ssim expects images (N, C, H, W) or (N, H, W), got shape {x.shape}")
    data_range = max(float(x.max() - x.min()), 1e-12)
    side = min(x.shape[-2:])
    window = min(7, side if side % 2 else side - 1)
    channel_axis = 0 if x.ndim == 4 else None
    return float(np.mean([structural_similarity(a, b, data_range=data_range, win_size=window,
                                                channel_axis=channel_axis) for a, b in zip(x, y)]))
