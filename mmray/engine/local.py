"""Train one configuration in this process, without Ray: the same model, optimiser, batches, loop and evaluation
as a trial, over in-memory tensors. For benchmark baselines, notebooks and debugging a method.

    from mmray.engine.local import fit_local
    history = fit_local("pavlov", prepared, train={"epochs": 2}, augment={"audio": {"time_masks": 2}})
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import torch

from mmray.augment.params import AugmentParams
from mmray.data.shards import PreparedData, read_split
from mmray.engine.batching import tensor_batches
from mmray.engine.loop import EpochLoop
from mmray.engine.params import TrainParams
from mmray.engine.training import build_method, seed_everything
from mmray.methods.base import Method
from mmray.results.artifacts import draw_maps, write_artifacts


def fit_local(method: str | Method, prepared: PreparedData, *, method_params: Mapping | None = None,
              train: Mapping | TrainParams | None = None, augment: Mapping | AugmentParams | None = None,
              seed: int = 0, torch_threads: int | None = None,
              artifacts_dir: str | os.PathLike | None = None, allow_random_weights: bool = False,
              on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train and evaluate like one trial; returns one metrics dict per epoch (also passed to `on_epoch`).

    With `artifacts_dir`, the final epoch's pictures (t-SNE maps, ...) are written there, as a trial writes its own.
    """
    params = train if isinstance(train, TrainParams) else TrainParams.model_validate(dict(train or {}))
    if torch_threads:
        torch.set_num_threads(torch_threads)
    seed_everything(seed)
    modalities = prepared.modalities
    train_split = read_split(prepared, "train")
    model = method if isinstance(method, Method) else build_method(
        method, modalities, prepared.num_classes, method_params, allow_random_weights=allow_random_weights)
    augment = augment if isinstance(augment, AugmentParams) else AugmentParams.model_validate(dict(augment or {}))
    loop = EpochLoop(model, params, prepared, augment=augment, augment_seed=seed)
    generator = torch.Generator().manual_seed(seed)
    history, last = [], None
    for last in loop.run(lambda epoch: tensor_batches(train_split, params.batch_size, modalities, shuffle=True,
                                                      drop_last=True, generator=generator)):
        history.append(last.metrics)
        if on_epoch is not None:
            on_epoch(last.metrics)
    if artifacts_dir is not None and last is not None:
        write_artifacts(artifacts_dir, "local", last.evaluation.artifact_tables())
        draw_maps(artifacts_dir, "local")
    return history
