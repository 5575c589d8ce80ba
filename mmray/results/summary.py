"""Leaderboards derived from trials.parquet: the terminal table at the end of a sweep and the report read these."""

from __future__ import annotations

import pandas as pd

from mmray.results import schema


# The test-split figures shown beside the search metric in the terminal leaderboard and the report.
HEADLINE_METRICS = ("test/fused_acc", "test/transfer_image_to_audio", "test/recall@1_image_to_audio")


def score_column(metric: str, which: str = schema.BEST_PREFIX) -> str:
    """The trials-table column holding a trial's `which` ('best/' or 'final/') value of `metric`."""
    return which + metric


def leaderboard(trials: pd.DataFrame, metric: str, mode: str = "max",
                columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Best trial of each (benchmark, method), ranked within each benchmark by its best `metric`.

    `columns` are extra metric names (without prefix) shown from the same trial's best epoch.
    """
    score = score_column(metric)
    if score not in trials.columns:
        raise KeyError(f"the trials table has no column {score!r}; metrics it holds: "
                       f"{sorted(c for c in trials.columns if c.startswith(schema.BEST_PREFIX))}")
    scored = trials.dropna(subset=[score])
    if scored.empty:
        return pd.DataFrame(columns=[schema.BENCHMARK, schema.METHOD, "trials", metric, *columns])
    ascending = mode == "min"
    best_index = scored.sort_values(score, ascending=ascending).groupby(
        [schema.BENCHMARK, schema.METHOD], sort=False).head(1).index
    counts = trials.groupby([schema.BENCHMARK, schema.METHOD]).size().rename("trials")
    rows = scored.loc[best_index, [schema.BENCHMARK, schema.METHOD, schema.TRIAL_ID, score,
                                   *(score_column(c) for c in columns if score_column(c) in scored)]]
    rows = rows.rename(columns={score_column(c): c for c in (metric, *columns)})
    rows = rows.join(counts, on=[schema.BENCHMARK, schema.METHOD])
    rows = rows.sort_values([schema.BENCHMARK, metric], ascending=[True, ascending])
    rows.insert(2, "rank", rows.groupby(schema.BENCHMARK).cumcount() + 1)
    return rows.reset_index(drop=True)


def format_table(frame: pd.DataFrame) -> str:
    """A plain fixed-width table for the terminal (floats with 4 decimals)."""
    if frame.empty:
        return "(no finished trial has a score yet)"
    return frame.to_string(index=False, float_format=lambda v: f"{v:.4f}")
