"""What "best" means, defined once: the best epoch of a trial, the best trials, the configurations to repeat.

One rule everywhere: a value that is not finite (NaN: not reported; inf: diverged) is never best, and among
equal values the first one wins (the earliest epoch, the first trial in the table's order). `mode` is 'max'
or 'min', as in a sweep's `search.mode`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from mmray.results import schema

MODES = ("max", "min")


def ranked(frame: pd.DataFrame, column: str, mode: str) -> pd.DataFrame:
    """The rows of `frame` with a finite `column`, best first; equal values keep their order in `frame`."""
    if mode not in MODES:
        raise ValueError(f"mode must be 'max' or 'min', not {mode!r}")
    if column not in frame:
        return frame.iloc[:0]
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    finite = np.flatnonzero(np.isfinite(values))
    # a stable sort of the negated values keeps ties in table order for 'max' too
    order = finite[np.argsort(-values[finite] if mode == "max" else values[finite], kind="stable")]
    return frame.iloc[order]


def best_rows(frame: pd.DataFrame, column: str, mode: str, by: Sequence[str] = (), k: int = 1) -> pd.DataFrame:
    """The `k` best rows by `column` of each group of `by` (of the whole frame when `by` is empty), best first."""
    best = ranked(frame, column, mode)
    return best.groupby(list(by), sort=False).head(k) if by else best.head(k)


def best_epoch(epochs: pd.DataFrame, metric: str, mode: str) -> pd.Series | None:
    """The row of one trial's epochs (epochs.parquet rows, or Tune's metrics_dataframe) with the best `metric`;
    the earliest such epoch on a tie; None when no epoch has a finite value of it."""
    if schema.EPOCH in epochs:
        epochs = epochs.sort_values(schema.EPOCH, kind="stable")
    best = ranked(epochs, metric, mode)
    return best.iloc[0] if len(best) else None


def best_trials(trials: pd.DataFrame, metric: str, mode: str, k: int = 1,
                by: Sequence[str] = (schema.BENCHMARK, schema.METHOD)) -> pd.DataFrame:
    """The `k` best trials of each group of `by` (default: each benchmark and method; `by=()`: of all) by their
    best-epoch `metric` (trials.parquet's best/ column), best first."""
    return best_rows(trials, schema.BEST_PREFIX + metric, mode, by, k)


def top_configs(histories: Iterable[tuple[pd.DataFrame | None, dict]], metric: str, mode: str, k: int
                ) -> list[dict]:
    """The configs of the `k` trials whose best epoch scores best, best first, from (epochs, config) pairs, one
    per trial; a trial whose epochs are None (it failed) or hold no finite `metric` is never picked."""
    configs, scores = [], []
    for epochs, config in histories:
        best = best_epoch(epochs, metric, mode) if epochs is not None else None
        configs.append(config)
        scores.append(np.nan if best is None else best[metric])
    picked = best_rows(pd.DataFrame({"score": scores}, dtype=float), "score", mode, k=k)
    return [configs[i] for i in picked.index]
