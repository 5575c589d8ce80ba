"""The one epoch loop. A Ray worker (mmray.orchestration.worker) and `fit_local` (mmray.engine.local) both
drive it and differ only in where batches come from and what they do with each finished epoch (report and
checkpoint it, or keep it in a list)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch

from mmray.augment.augmenter import Augmenter
from mmray.augment.params import AugmentParams
from mmray.data.shards import PreparedData
from mmray.data.text import load_tokenizer
from mmray.engine.evaluation import Evaluation, input_contents, load_eval_sets, wav_writers
from mmray.engine.params import TrainParams
from mmray.engine.schedule import lr_scheduler
from mmray.engine.training import recompute_batch_norm, train_epoch
from mmray.methods.base import Batch, Method


@dataclass(frozen=True)
class FinishedEpoch:
    number: int  # 1-based
    metrics: dict  # train/<term>, <split>/<metric>, epoch, epoch_seconds, epoch_train_seconds, data_wait_seconds
    evaluation: Evaluation | None  # None where this process does not evaluate (ranks other than 0)


class EpochLoop:
    """A method, its optimiser and the fixed evaluation sets; `run` trains the epochs not yet done.

    `train_model` is what the training pass calls: the method itself, or a DistributedDataParallel wrapper of
    it in a multi-worker trial (its hooks must see the pass). Evaluation and checkpoints use the method.
    `augment` applies to the training batches only, drawn from `augment_seed` and the epoch (mmray.augment);
    batch norm then evaluates with statistics of clean inputs unless `params.batch_norm_stats` says otherwise."""

    def __init__(self, module: Method, params: TrainParams, prepared: PreparedData, *, evaluate: bool = True,
                 train_model: torch.nn.Module | None = None, augment: AugmentParams | None = None,
                 augment_seed: int = 0, world_size: int = 1):
        self.module, self.params = module, params
        self.augmenter = Augmenter.build(augment, module.modalities, prepared.manifest, augment_seed,
                                         module.wants_two_views)
        self.train_model = train_model if train_model is not None else module
        self.clean_batch_norm = params.batch_norm_stats == "clean" or (
            params.batch_norm_stats == "auto" and self.augmenter is not None)
        self.optimizer = torch.optim.AdamW(module.param_groups(params.lr), lr=params.lr,
                                           weight_decay=params.weight_decay)
        self.scheduler = None
        if params.lr_schedule != "constant" or params.warmup_fraction > 0:
            # each worker steps once per batch of its share of the training split (full batches only)
            steps_per_epoch = max(1, prepared.rows("train") // (params.batch_size * world_size))
            self.scheduler = lr_scheduler(self.optimizer, params.lr_schedule, params.warmup_fraction,
                                          params.epochs * steps_per_epoch)
        # Small and fixed, read once and scored every epoch (a Ray Data pipeline would cost seconds each).
        self.eval_sets = load_eval_sets(prepared, params) if evaluate else None
        self.names = tuple(m.name for m in module.modalities)
        self.contents = input_contents(self.eval_sets, self.names) if evaluate else None
        self.tokenizer = functools.cache(lambda modality: load_tokenizer(prepared, modality))  # decoding only
        self.wav = wav_writers(prepared)  # the artifacts' audio
        self.epochs_done = 0

    def state_dict(self) -> dict:
        state = {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "epoch": self.epochs_done}
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epochs_done = int(state["epoch"])

    def run(self, batches: Callable[[int], Iterable[Batch]]) -> Iterator[FinishedEpoch]:
        """Train and evaluate each remaining epoch, yielding it when done. `batches(epoch)` gives that epoch's
        training batches; it is called as the epoch starts."""
        for epoch in range(self.epochs_done + 1, self.params.epochs + 1):
            self.module.set_epoch(epoch)
            started = time.perf_counter()
            waited = [0.0]
            training = _waiting_timed(batches(epoch), waited)
            if self.augmenter is not None:
                training = self.augmenter.epoch(training, epoch)
            losses = train_epoch(self.train_model, training, self.optimizer, self.params.grad_clip,
                                 self.scheduler)
            metrics = {f"train/{k}": v for k, v in losses.items()}
            metrics["epoch_train_seconds"] = time.perf_counter() - started
            metrics["data_wait_seconds"] = waited[0]
            evaluation = None
            if self.eval_sets is not None:
                if self.clean_batch_norm:
                    recompute_batch_norm(self.module, self.eval_sets["probe"])
                evaluation = Evaluation(self.module, self.eval_sets, self.names, self.tokenizer, self.contents,
                                        self.wav)
                metrics.update(evaluation.metrics)
            metrics["epoch"] = epoch
            metrics["epoch_seconds"] = time.perf_counter() - started
            self.epochs_done = epoch
            yield FinishedEpoch(epoch, metrics, evaluation)


def _waiting_timed(batches: Iterable[Batch], waited: list[float]) -> Iterator[Batch]:
    """Pass `batches` through, adding to waited[0] the seconds spent waiting for each one."""
    iterator, end = iter(batches), object()
    while True:
        asked = time.perf_counter()
        batch = next(iterator, end)
        waited[0] += time.perf_counter() - asked
        if batch is end:
            return
        yield batch
