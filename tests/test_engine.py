"""The one epoch loop (mmray.engine.loop) that Ray workers and fit_local share: it learns, and a run restored
from a checkpoint continues where it stopped, exactly as if it had never stopped."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from mmray.data import prepare
from mmray.data.shards import read_split
from mmray.engine.batching import tensor_batches
from mmray.engine.local import fit_local
from mmray.engine.loop import EpochLoop
from mmray.engine.params import TrainParams
from mmray.engine.schedule import lr_factor
from mmray.engine.training import build_method, seed_everything

TINY = {"n_train": 256, "n_val": 64, "n_test": 64, "image_size": 16, "n_mels": 16, "frames": 16, "noise": 0.3,
        "distractor": 0.2}
PAVLOV = {"encoder_width": 8, "hidden_dim": 32, "latent_dim": 16}
PARAMS = TrainParams(epochs=3, batch_size=64, probe_examples=128)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare("synthetic-av", TINY, cache_dir=tmp_path_factory.mktemp("cache"), log=lambda *_: None)


def _loop(prepared, params: TrainParams = PARAMS) -> EpochLoop:
    seed_everything(0)
    model = build_method("pavlov", prepared.modalities, prepared.num_classes, PAVLOV)
    return EpochLoop(model, params, prepared)


def _batches(prepared):
    """Epoch e's batches depend on e alone, so two runs see the same data whatever happened between them."""
    train = read_split(prepared, "train")
    return lambda epoch: tensor_batches(train, PARAMS.batch_size, prepared.modalities, shuffle=True,
                                        drop_last=True, generator=torch.Generator().manual_seed(epoch))


COSINE = PARAMS.model_copy(update={"lr_schedule": "cosine", "warmup_fraction": 0.06})


@pytest.mark.parametrize("params", [PARAMS, COSINE], ids=["constant", "cosine"])
def test_a_restored_loop_continues_from_its_checkpoint_as_if_never_stopped(prepared, params):
    batches = _batches(prepared)
    straight = [epoch.metrics for epoch in _loop(prepared, params).run(batches)]

    first = _loop(prepared, params)
    stopped = [epoch.metrics for epoch in itertools.islice(first.run(batches), 2)]
    state = copy.deepcopy(first.state_dict())  # as a checkpoint file holds it
    restored = _loop(prepared, params)  # a fresh process: new model and optimiser, then the checkpoint
    restored.load_state_dict(state)
    resumed = [epoch.metrics for epoch in restored.run(batches)]

    assert [m["epoch"] for m in stopped] == [1, 2] and [m["epoch"] for m in resumed] == [3]
    assert resumed[0]["train/loss"] == pytest.approx(straight[2]["train/loss"], rel=1e-5)
    assert resumed[0]["val/fused_acc"] == pytest.approx(straight[2]["val/fused_acc"], abs=1e-6)
    # from scratch instead, epoch 3 would train a model that has seen one epoch, not two
    assert _loop(prepared, params).run(batches).__next__().metrics["train/loss"] > straight[2]["train/loss"]


def test_lr_factor_warms_up_linearly_then_follows_a_half_cosine_to_zero():
    factors = [lr_factor(step, 100, "cosine", 6) for step in range(100)]
    assert factors[:6] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0])
    assert factors[6] == 1.0 and factors[-1] == pytest.approx(0.0, abs=1e-12)
    assert factors[6 + 47] == pytest.approx(0.5, abs=0.02)  # half-way down at the middle of the decay
    assert all(a >= b for a, b in zip(factors[5:], factors[6:]))  # never rises after the warm-up
    assert lr_factor(120, 100, "cosine", 6) == pytest.approx(0.0, abs=1e-12)  # past the estimate: stays
    assert [lr_factor(s, 10, "constant", 2) for s in range(4)] == [0.5, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="unknown lr_schedule 'linear'; valid: constant, cosine"):
        lr_factor(0, 10, "linear", 0)


def test_a_cosine_schedule_ends_the_run_near_a_zero_learning_rate(prepared):
    loop = _loop(prepared, COSINE)
    for _ in loop.run(_batches(prepared)):
        pass
    steps = COSINE.epochs * (prepared.rows("train") // COSINE.batch_size)
    assert loop.scheduler.last_epoch == steps  # one step per batch: the estimate is exact on one worker
    assert loop.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_fit_local_learns(prepared):
    history = fit_local("pavlov", prepared, method_params=PAVLOV, train=PARAMS)
    assert [m["epoch"] for m in history] == [1, 2, 3]
    assert history[-1]["train/loss"] < history[0]["train/loss"]
    assert history[-1]["val/fused_acc"] > 1.5 / prepared.num_classes  # well above chance
