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
from mmray.engine.training import build_method, seed_everything

TINY = {"n_train": 256, "n_val": 64, "n_test": 64, "image_size": 16, "n_mels": 16, "frames": 16, "noise": 0.3,
        "distractor": 0.2}
PAVLOV = {"encoder_width": 8, "hidden_dim": 32, "latent_dim": 16}
PARAMS = TrainParams(epochs=3, batch_size=64, probe_examples=128)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return prepare("synthetic-av", TINY, cache_dir=tmp_path_factory.mktemp("cache"), log=lambda *_: None)


def _loop(prepared) -> EpochLoop:
    seed_everything(0)
    model = build_method("pavlov", prepared.modalities, prepared.num_classes, PAVLOV)
    return EpochLoop(model, PARAMS, prepared)


def _batches(prepared):
    """Epoch e's batches depend on e alone, so two runs see the same data whatever happened between them."""
    train = read_split(prepared, "train")
    return lambda epoch: tensor_batches(train, PARAMS.batch_size, prepared.modalities, shuffle=True,
                                        drop_last=True, generator=torch.Generator().manual_seed(epoch))


def test_a_restored_loop_continues_from_its_checkpoint_as_if_never_stopped(prepared):
    batches = _batches(prepared)
    straight = [epoch.metrics for epoch in _loop(prepared).run(batches)]

    first = _loop(prepared)
    stopped = [epoch.metrics for epoch in itertools.islice(first.run(batches), 2)]
    state = copy.deepcopy(first.state_dict())  # as a checkpoint file holds it
    restored = _loop(prepared)  # a fresh process: new model and optimiser, then the checkpoint
    restored.load_state_dict(state)
    resumed = [epoch.metrics for epoch in restored.run(batches)]

    assert [m["epoch"] for m in stopped] == [1, 2] and [m["epoch"] for m in resumed] == [3]
    assert resumed[0]["train/loss"] == pytest.approx(straight[2]["train/loss"], rel=1e-5)
    assert resumed[0]["val/fused_acc"] == pytest.approx(straight[2]["val/fused_acc"], abs=1e-6)
    # from scratch instead, epoch 3 would train a model that has seen one epoch, not two
    assert _loop(prepared).run(batches).__next__().metrics["train/loss"] > straight[2]["train/loss"]


def test_fit_local_learns(prepared):
    history = fit_local("pavlov", prepared, method_params=PAVLOV, train=PARAMS)
    assert [m["epoch"] for m in history] == [1, 2, 3]
    assert history[-1]["train/loss"] < history[0]["train/loss"]
    assert history[-1]["val/fused_acc"] > 1.5 / prepared.num_classes  # well above chance
