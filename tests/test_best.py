"""One definition of "best": not-finite values are never best, and ties go to the earliest epoch / first trial."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmray.results import schema
from mmray.results.best import best_epoch, best_trials, ranked, top_configs

METRIC = "val/fused_acc"
NAN, INF = np.nan, np.inf


def epochs(values, order=None) -> pd.DataFrame:
    """One trial's epochs 1..n with these metric values, rows in `order` (default: by epoch)."""
    frame = pd.DataFrame({schema.EPOCH: range(1, len(values) + 1), METRIC: values})
    return frame.iloc[list(order)] if order is not None else frame


@pytest.mark.parametrize("values, mode, epoch", [
    ([0.2, 0.7, 0.5], "max", 2),
    ([0.2, 0.7, 0.5], "min", 1),
    ([NAN, 0.3, NAN], "max", 2),  # NaN is never best, in either direction
    ([NAN, 0.3, NAN], "min", 2),
    ([0.3, INF, 0.1], "max", 1),  # inf (diverged) neither
    ([0.3, -INF, 0.1], "min", 3),
    ([0.4, 0.6, 0.6, 0.6], "max", 2),  # a tie: the earliest epoch
    ([0.6, 0.4, 0.4], "min", 2),
])
def test_best_epoch(values, mode, epoch):
    assert best_epoch(epochs(values), METRIC, mode)[schema.EPOCH] == epoch


def test_best_epoch_tie_is_the_earliest_epoch_whatever_the_row_order():
    assert best_epoch(epochs([0.5, 0.9, 0.9, 0.9], order=[3, 2, 0, 1]), METRIC, "max")[schema.EPOCH] == 2


def test_best_epoch_without_a_value():
    assert best_epoch(epochs([NAN, NAN]), METRIC, "max") is None
    assert best_epoch(epochs([0.1]), "val/other", "max") is None  # a column the trial never reported
    assert best_epoch(epochs([]), METRIC, "min") is None


def test_best_epoch_row_holds_every_column_of_that_epoch():
    frame = epochs([0.2, 0.7]).assign(**{"test/fused_acc": [0.1, 0.65]})
    assert best_epoch(frame, METRIC, "max")["test/fused_acc"] == 0.65


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode must be 'max' or 'min'"):
        ranked(epochs([0.1]), METRIC, "maximum")


TRIALS = pd.DataFrame({
    schema.TRIAL_ID: ["t0", "t1", "t2", "t3", "t4", "t5", "t6"],
    schema.BENCHMARK: ["b1", "b1", "b1", "b1", "b2", "b2", "b2"],
    schema.METHOD: ["a", "a", "a", "c", "a", "a", "a"],
    schema.BEST_PREFIX + METRIC: [0.5, 0.8, 0.8, 0.9, NAN, 0.4, 0.6],
})


def test_best_trials_per_benchmark_and_method():
    best = best_trials(TRIALS, METRIC, "max")
    assert list(best[schema.TRIAL_ID]) == ["t3", "t1", "t6"]  # best first; t1 and t2 tie: the first in the table
    worst = best_trials(TRIALS, METRIC, "min")
    assert sorted(worst[schema.TRIAL_ID]) == ["t0", "t3", "t5"]  # the NaN of t4 is not the lowest


def test_best_trials_k_and_overall():
    assert list(best_trials(TRIALS, METRIC, "max", k=2)[schema.TRIAL_ID]) == ["t3", "t1", "t2", "t6", "t5"]
    assert list(best_trials(TRIALS, METRIC, "max", k=3, by=())[schema.TRIAL_ID]) == ["t3", "t1", "t2"]
    assert best_trials(TRIALS, "val/bogus", "max").empty


def test_top_configs_skip_failed_and_unscored_trials():
    histories = [
        (epochs([0.2, 0.6]), {"lr": 1}),
        (None, {"lr": 2}),  # failed
        (epochs([NAN]), {"lr": 3}),  # never scored
        (epochs([0.7, 0.5]), {"lr": 4}),
        (epochs([0.1, 0.6, 0.3]), {"lr": 5}),  # ties with lr 1 on its best epoch: lr 1 came first
    ]
    assert top_configs(histories, METRIC, "max", 2) == [{"lr": 4}, {"lr": 1}]
    assert top_configs(histories, METRIC, "max", 10) == [{"lr": 4}, {"lr": 1}, {"lr": 5}]
    assert top_configs(histories, METRIC, "min", 1) == [{"lr": 5}]  # its best epoch under 'min' is 0.1
    assert top_configs([], METRIC, "max", 3) == []
