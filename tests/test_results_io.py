"""mmray.results.load: typed trials and epochs tables, the joined view, the spec and artifact folders."""

from __future__ import annotations

import pandas as pd
import pytest

from mmray.report.synthetic import synthetic_results
from mmray.results import load, schema
from mmray.results.io import write_table


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return synthetic_results(tmp_path_factory.mktemp("results"), n_trials=24, epochs=3, benchmarks=2,
                             methods=2, seeds=2)


def test_load_types_every_column(folder):
    results = load(folder)
    trials, epochs = results.trials, results.epochs
    assert len(trials) == 24 and len(epochs) == trials[schema.EPOCHS_RUN].sum()
    for column in (schema.SEED, schema.EPOCHS_RUN, schema.EPOCHS_PLANNED):
        assert trials[column].dtype == "int64", column
    assert trials[schema.BEST_EPOCH].dtype == "Int64"
    assert str(trials[schema.FINISHED_AT].dtype).startswith("datetime64") and trials[schema.FINISHED_AT].dt.tz
    assert all(trials[c].dtype == "float64" for c in trials if c.startswith(("best/", "final/")))
    assert epochs[schema.EPOCH].dtype == "int64"
    assert all(epochs[c].dtype == "float64" for c in results.metric_columns)
    assert results.spec["search"]["metric"] == "val/fused_acc"


def test_joined_view_puts_trial_columns_beside_each_epoch(folder):
    results = load(folder)
    joined = results.joined
    assert len(joined) == len(results.epochs)
    assert {schema.STATUS, schema.WALL_SECONDS, "config/train/lr", "val/fused_acc"} <= set(joined.columns)
    one = results.trials.iloc[0]
    rows = joined[joined[schema.TRIAL_ID] == one[schema.TRIAL_ID]]
    assert len(rows) == one[schema.EPOCHS_RUN]
    assert (rows["config/train/lr"] == one["config/train/lr"]).all()
    assert (rows[schema.STATUS] == one[schema.STATUS]).all()


def test_artifact_dir(folder):
    results = load(folder)
    first = results.trials[schema.TRIAL_ID].iloc[0]
    assert results.artifact_dir(first) == folder / "artifacts" / first
    assert results.artifact_dir(first).parent.is_dir()


def test_load_coerces_what_an_older_writer_stored_loosely(tmp_path):
    # a failed trial: no best epoch and no metric; numbers written as objects must still come back typed
    trials = pd.DataFrame({schema.TRIAL_ID: ["a", "b"], schema.SEED: [0, 1], schema.EPOCHS_RUN: [2, 0],
                           schema.BEST_EPOCH: [2, None], "best/val/fused_acc": pd.Series([0.5, None], dtype=object),
                           schema.STATUS: [schema.STATUS_COMPLETED, schema.STATUS_FAILED]})
    write_table(trials, tmp_path / schema.TRIALS_FILE)
    results = load(tmp_path)
    assert results.trials["best/val/fused_acc"].dtype == "float64"
    assert results.trials[schema.BEST_EPOCH].tolist()[0] == 2 and pd.isna(results.trials[schema.BEST_EPOCH][1])
    assert results.epochs.empty and results.joined.empty and results.spec == {}


def test_missing_folder_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="run `mmray sweep` first"):
        load(tmp_path / "nope")
