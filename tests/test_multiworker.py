"""Multi-worker trials are correct: a 2-worker trial (data-parallel: each worker trains on half of the training
split, gradients averaged across workers) reaches the same metrics as a 1-worker trial with the same global
batch, in real sweeps on a real local Ray instance.

`train.batch_size` is per worker: each Train worker's feed (mmray.orchestration.feed.TrainFeed) cuts its own
shard of the split into batches of that size, and Train's DistributedDataParallel averages the workers'
gradients. So 2 workers x 32 rows take the same optimiser steps per epoch, each on the mean gradient of 64 rows,
as 1 worker x 64 rows, with the same learning rate. What differs: which rows share a batch (each worker
shuffles its own half), and pavlov's InfoNCE, whose negatives are the other rows of a worker's own batch (31
instead of 63). Both move the result about as much as another shuffle of the data does.
"""

from __future__ import annotations

import pytest
from test_sweep_ray import ray_session  # noqa: F401 - the module-scoped local Ray fixture

from mmray import api
from mmray.config import parse_spec
from mmray.results import schema

pytestmark = pytest.mark.ray

# Easy enough (the other Ray tests' noise and distractor) that 4 epochs come close to a plateau (~0.9 fused
# accuracy; 10 classes, chance 0.1), where another data order moves the result least.
DATA = {"n_train": 2000, "n_val": 1000, "n_test": 1000, "image_size": 16, "n_mels": 16, "frames": 16,
        "noise": 0.3, "distractor": 0.2}
GLOBAL_BATCH = 64
EPOCHS = 4
LR = 3e-3

# Tolerances, from the spread over data orders measured with mmray.engine.local.fit_local (the same model, loop
# and evaluation in one process), the same initial weights and ten data orders:
# - Final accuracies after 4 epochs: val/fused_acc sd 0.023, test/fused_acc 0.018, test/image_acc 0.023,
#   test/audio_acc 0.012. The difference of two runs has an sd of at most 0.033: 0.1 is more than 3 of those.
ACCURACY_TOLERANCE = 0.1
ACCURACIES = ("val/fused_acc", "test/fused_acc", "test/image_acc", "test/audio_acc")
# - The first epoch's mean reconstruction losses (per-example MSE: comparable across batch sizes) hardly depend
#   on the data order: train/same 0.152 sd 0.0004, train/cross 0.155 sd 0.0002. They do depend on the steps
#   taken: a 2-worker trial given 64 rows per worker (twice the global batch, half the steps) was 0.0085 and
#   0.0065 above the 1-worker trial's (checked). A 2-worker trial reports its rank 0's half of the epoch, a bit
#   noisier than the whole: 0.003 is still more than 4 sd of a difference. (InfoNCE, train/contrastive, is left
#   out: it grows with the number of in-batch negatives, which differs by design.)
FIRST_EPOCH_LOSS_TOLERANCE = 0.003
FIRST_EPOCH_LOSSES = ("train/same", "train/cross")


def _train_workers_started() -> int:
    """How many Ray Train worker actors this Ray instance has started so far (dead ones included)."""
    from mmray.orchestration.ray_adapter import actor_classes

    return actor_classes()["RayTrainWorker"]


def _sweep(tmp, workers: int):
    name = f"workers{workers}"
    spec = parse_spec({
        "name": name, "benchmarks": [{"name": "synthetic-av", "params": DATA}], "methods": ["pavlov"],
        "train": {"epochs": EPOCHS, "batch_size": GLOBAL_BATCH // workers, "lr": LR, "probe_examples": 1000},
        "method_params": {"pavlov": {"encoder_width": 8, "hidden_dim": 32, "latent_dim": 16}},
        "search": {"num_samples": 1}, "scheduler": {"type": "none"},
        # 2 workers x 0.5 CPU and their two read tasks x 0.25 CPU fit the 2 cores of the development machine
        "resources": {"workers_per_trial": workers, "cpus_per_worker": 1 / workers, "torch_threads": 1},
    }, "test")
    before = _train_workers_started()
    out = api.run_sweep(spec, cache_dir=tmp / "cache", results_dir=tmp / name, report=False, log=lambda *_: None)
    return api.load_results(out), _train_workers_started() - before


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory, ray_session):  # noqa: F811
    tmp = tmp_path_factory.mktemp("multiworker")
    return {workers: _sweep(tmp, workers) for workers in (1, 2)}


def test_two_workers_reach_the_metrics_of_one_with_the_same_global_batch(sweeps):
    rows, first_epochs = {}, {}
    for workers, (results, started) in sweeps.items():
        # the trial really ran on that many Train workers; a one-worker trial trains in its Tune actor
        assert started == (0 if workers == 1 else workers)
        assert len(results.trials) == 1
        row = rows[workers] = results.trials.iloc[0]
        assert row[schema.STATUS] == schema.STATUS_COMPLETED and row[schema.EPOCHS_RUN] == EPOCHS
        assert workers * row["config/train/batch_size"] == GLOBAL_BATCH and row["config/train/lr"] == LR
        first_epochs[workers] = results.epochs.set_index(schema.EPOCH).loc[1]
    print({metric: (rows[1][schema.FINAL_PREFIX + metric], rows[2][schema.FINAL_PREFIX + metric])
           for metric in ACCURACIES},
          {loss: (first_epochs[1][loss], first_epochs[2][loss]) for loss in FIRST_EPOCH_LOSSES})

    for metric in ACCURACIES:
        one, two = rows[1][schema.FINAL_PREFIX + metric], rows[2][schema.FINAL_PREFIX + metric]
        assert min(one, two) > 0.6, (metric, one, two)  # both learned: 10 classes, chance is 0.1
        assert abs(one - two) <= ACCURACY_TOLERANCE, (metric, one, two)
    # the same optimisation: as many steps of the same size in the first epoch
    for loss in FIRST_EPOCH_LOSSES:
        one, two = first_epochs[1][loss], first_epochs[2][loss]
        assert abs(one - two) <= FIRST_EPOCH_LOSS_TOLERANCE, (loss, one, two)
