"""Train one configuration in this process, without Ray: the same model, optimiser, batches and evaluation as
a trial, over in-memory tensors. For benchmark baselines, notebooks and debugging a method.

    from mmray.local import fit_local
    history = fit_local("pavlov", prepared, train={"epochs": 2})
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping

import torch

from mmray.batching import tensor_batches
from mmray.data.shards import PreparedData, read_split
from mmray.data.text import load_tokenizer
from mmray.methods.base import Method
from mmray.model_eval import Evaluation, load_eval_sets
from mmray.results.artifacts import write_artifacts
from mmray.training import TrainParams, build_method, seed_everything, train_epoch


def fit_local(method: str | Method, prepared: PreparedData, *, method_params: Mapping | None = None,
              train: Mapping | TrainParams | None = None, seed: int = 0, torch_threads: int | None = None,
              artifacts_dir: str | os.PathLike | None = None,
              on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train and evaluate like one trial; returns one metrics dict per epoch (also passed to `on_epoch`).

    With `artifacts_dir`, the final epoch's pictures (t-SNE maps, ...) are written there, as a trial writes its own.
    """
    params = train if isinstance(train, TrainParams) else TrainParams.model_validate(dict(train or {}))
    if torch_threads:
        torch.set_num_threads(torch_threads)
    seed_everything(seed)
    modalities = prepared.modalities
    names = tuple(m.name for m in modalities)
    train_split = read_split(prepared, "train")
    eval_sets = load_eval_sets(prepared, params)
    tokenizer = functools.cache(lambda modality: load_tokenizer(prepared, modality))
    model = method if isinstance(method, Method) else build_method(method, modalities, prepared.num_classes,
                                                                   method_params)
    optimizer = torch.optim.AdamW(model.param_groups(params.lr), lr=params.lr, weight_decay=params.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(1, params.epochs + 1):
        model.set_epoch(epoch)
        started = time.perf_counter()
        batches = tensor_batches(train_split, params.batch_size, modalities, shuffle=True, drop_last=True,
                                 generator=generator)
        metrics = {f"train/{k}": v for k, v in train_epoch(model, batches, optimizer, params.grad_clip).items()}
        metrics["epoch_train_seconds"] = time.perf_counter() - started
        evaluation = Evaluation(model, eval_sets, names, tokenizer)
        metrics.update(evaluation.metrics)
        metrics["epoch"] = epoch
        metrics["epoch_seconds"] = time.perf_counter() - started
        history.append(metrics)
        if on_epoch is not None:
            on_epoch(metrics)
    if artifacts_dir is not None:
        write_artifacts(artifacts_dir, "local", evaluation.artifact_tables())
    return history
