"""Seeds: the search runs on the first seed, its best configurations run again, unchanged, on the others, and
the leaderboard gives each a mean and a 95 % interval over the seeds."""

from __future__ import annotations

import pytest
from test_sweep_ray import ray_session  # noqa: F401 - the module-scoped local Ray fixture

from mmray import api
from mmray.config import parse_spec
from mmray.results import schema
from mmray.results.summary import SEEDS, ci_column, leaderboard_ci

pytestmark = pytest.mark.ray

TINY = {"n_train": 300, "n_val": 100, "n_test": 100, "image_size": 16, "n_mels": 16, "frames": 16}


def test_best_configuration_is_repeated_on_every_other_seed(tmp_path, ray_session):  # noqa: F811
    spec = parse_spec({
        "name": "seeds", "benchmarks": [{"name": "synthetic-av", "params": TINY}], "methods": ["pavlov"],
        "seeds": [0, 1, 2],
        "train": {"epochs": 1, "batch_size": 64, "probe_examples": 200},
        "method_params": {"pavlov": {"encoder_width": 8, "hidden_dim": 32}},
        "search_space": {"method.latent_dim": {"choice": [8, 16]}, "train.lr": {"loguniform": [1e-3, 3e-3]}},
        "search": {"algorithm": "random", "num_samples": 2, "repeat_top": 1},
        "scheduler": {"type": "none"},
    }, "test")
    out = api.run_sweep(spec, cache_dir=tmp_path / "cache", results_dir=tmp_path / "results", report=False,
                        log=lambda *_: None)
    trials = api.load_results(out).trials
    assert len(trials) == 2 + 2  # two searched on seed 0, the best one again on seeds 1 and 2
    assert sorted(trials[schema.SEED]) == [0, 0, 1, 2]
    searched = trials.loc[trials[schema.SEED] == 0]
    # the best score on 100 validation pairs after one epoch can be a tie: then either trial is the best
    best = searched[searched["best/val/fused_acc"] == searched["best/val/fused_acc"].max()]
    config_columns = [c for c in trials.columns if c.startswith(schema.CONFIG_PREFIX)]
    repeats = trials[trials[schema.SEED] != 0]
    # compared as text with missing values filled: the effective configuration holds None values (e.g.
    # train.eval_examples), which never equal themselves
    as_text = repeats[config_columns].astype(str).fillna("")
    assert any((as_text == row[config_columns].astype(str).fillna("")).all(axis=None) for _, row in best.iterrows())
    board = leaderboard_ci(trials, "val/fused_acc")
    assert board.loc[0, SEEDS] == 3 and board.loc[0, ci_column("val/fused_acc")] >= 0
