"""ASHA really stops: in a real sweep on a real local Ray instance, configurations that are clearly bad are
stopped at the first rung (after grace_period epochs), while a good one runs to its last epoch.

How Ray's ASHAScheduler (2.60, ray.tune.schedulers.async_hyperband._Bracket) decides at a rung: a trial that
reaches it is stopped when its value is below the rung's cutoff, the (1 - 1/reduction_factor) percentile
(here the median) of the values recorded there *before* it; the first trial at a rung always continues. So a
bad configuration is stopped only when enough good ones reached the rung before it. Here trials run one at a
time (max_concurrent_trials 1), in the order the seeded random search draws them, and the bad ones all score
the same (they keep the shared seed's initial weights, see BAD_LR): a bad trial is stopped exactly when at
least one good trial, and at least as many good as bad trials, reached the rung before it. The test checks
that the draw order gives that (search.seed below was chosen so) before asserting what ASHA did.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_sweep_ray import ray_session  # noqa: F401 - the module-scoped local Ray fixture

from mmray import api
from mmray.config import parse_spec
from mmray.results import schema

pytestmark = pytest.mark.ray

# The demo's noise and distractor (harder than the other Ray tests' data): a random encoder's fused probe
# scores about 0.3 on it (chance 0.1), a trained one about 0.55 after one epoch.
DATA = {"n_train": 2000, "n_val": 300, "n_test": 300, "image_size": 16, "n_mels": 16, "frames": 16}
EPOCHS, GRACE = 2, 1
# Clearly bad: AdamW moves each weight by at most about lr per step, so in the 62 steps of an epoch (2000 rows,
# batch 32) no weight moves by more than ~1e-5: the model is still its random initialisation, whose fused probe
# scores ~0.27 on validation (both bad learning rates score exactly the same), while lr 3e-3 and 1e-2 reach
# ~0.55 after one epoch (measured). That gap is some 9 standard errors of an accuracy on 300 validation pairs.
# (A diverging lr would be bad too, but its NaN metric never falls below a cutoff: NaN < x is false, so ASHA
# would let it go on.)
BAD_LR = (1e-8, 1e-7)
GOOD_LR = (3e-3, 1e-2)
SEARCH_SEED = 16  # draws lr 1e-2, 1e-8, 1e-7 in that order (mmray.orchestration.distinct.RandomDraws)


@pytest.fixture(scope="module")
def asha_sweep(tmp_path_factory, ray_session):  # noqa: F811
    tmp = tmp_path_factory.mktemp("asha")
    spec = parse_spec({
        "name": "asha-stops", "benchmarks": [{"name": "synthetic-av", "params": DATA}], "methods": ["pavlov"],
        "train": {"epochs": EPOCHS, "batch_size": 32, "probe_examples": 400},
        "method_params": {"pavlov": {"encoder_width": 8, "hidden_dim": 32, "latent_dim": 16}},
        "search_space": {"train.lr": {"choice": [*GOOD_LR, *BAD_LR]}},
        "search": {"algorithm": "random", "num_samples": 3, "seed": SEARCH_SEED,
                   "metric": "val/fused_acc", "mode": "max"},
        "scheduler": {"type": "asha", "grace_period": GRACE, "reduction_factor": 2},
        "resources": {"workers_per_trial": 1, "cpus_per_worker": 1, "torch_threads": 2,
                      "max_concurrent_trials": 1},
    }, "test")
    out = api.run_sweep(spec, cache_dir=tmp / "cache", results_dir=tmp / "results", report=False,
                        log=lambda *_: None)
    return api.load_results(out)


def test_bad_configurations_are_stopped_at_the_first_rung(asha_sweep):
    trials = asha_sweep.trials.sort_values(schema.FINISHED_AT)  # one at a time: in the order they were made
    epochs = asha_sweep.epochs
    lr = trials["config/train/lr"]
    bad = lr.isin(BAD_LR)
    print(trials[[schema.TRIAL_ID, "config/train/lr", schema.STATUS, schema.EPOCHS_RUN, "best/val/fused_acc"]])

    # Precondition, about the seeded draw rather than ASHA: good and bad configurations were both drawn, and
    # every bad one came after at least one good one and after at least as many good as bad ones.
    assert bad.any() and (~bad).any(), f"search.seed {SEARCH_SEED} drew {list(lr)}: choose another seed"
    goods_before = (~bad).cumsum() - (~bad)
    bads_before = bad.cumsum() - bad
    assert ((goods_before >= 1) & (goods_before >= bads_before))[bad].all(), (
        f"search.seed {SEARCH_SEED} drew {list(lr)} in an order where ASHA may keep a bad one: choose another")
    # ... and they reached the first rung in that order: one at a time, each after the one before had ended
    started = trials[schema.FINISHED_AT] - pd.to_timedelta(trials[schema.WALL_SECONDS], unit="s")
    overlap = (trials[schema.FINISHED_AT].shift() - started).dt.total_seconds().iloc[1:]
    assert (overlap < 1.0).all(), f"trials overlapped by {list(overlap)} s: max_concurrent_trials 1 not honoured"

    # they were indeed bad and good
    assert trials.loc[bad, "best/val/fused_acc"].max() < 0.4
    assert trials.loc[~bad, "best/val/fused_acc"].min() > trials.loc[bad, "best/val/fused_acc"].max() + 0.1

    # every bad configuration ran exactly grace_period epochs and was stopped
    for _, row in trials[bad].iterrows():
        ran = epochs.loc[epochs[schema.TRIAL_ID] == row[schema.TRIAL_ID], schema.EPOCH]
        assert sorted(ran) == list(range(1, GRACE + 1)), (row[schema.TRIAL_ID], list(ran))
        assert row[schema.EPOCHS_RUN] == GRACE
        assert row[schema.STATUS] == schema.STATUS_STOPPED

    # at least one good configuration ran every epoch and completed
    finished = trials[~bad & (trials[schema.STATUS] == schema.STATUS_COMPLETED)]
    assert len(finished) >= 1
    for trial_id in finished[schema.TRIAL_ID]:
        ran = epochs.loc[epochs[schema.TRIAL_ID] == trial_id, schema.EPOCH]
        assert sorted(ran) == list(range(1, EPOCHS + 1))
    assert (finished[schema.EPOCHS_RUN] == EPOCHS).all()


def test_the_trial_after_a_stopped_one_runs_in_the_same_reused_actor(asha_sweep):
    """ASHA's stop ends the stopped trial's training inside its report, so Tune hands its actor the next trial:
    three trials, one stopped in the middle, ran in one process (Tune's own result.json records each report's
    pid)."""
    import json

    from mmray.orchestration.ray_adapter import actor_classes

    assert (asha_sweep.trials[schema.STATUS] == schema.STATUS_STOPPED).sum() >= 1
    reports = sorted(Path(asha_sweep.path).glob("tune/*/*/result.json"))
    pids = {json.loads(line)["pid"] for path in reports for line in path.read_text().splitlines() if line}
    assert len(reports) == 3 and len(pids) == 1, (len(reports), pids, actor_classes())
