"""The Ray Train worker loop: ordinary PyTorch fed by Ray Data shards, reporting once per epoch."""

from __future__ import annotations

import functools
import json
import os
import tempfile
import time
from pathlib import Path

import ray.train
import ray.train.torch
import torch

from mmray.data.shards import load_prepared
from mmray.data.text import load_tokenizer
from mmray.orchestration.feed import TrainFeed
from mmray.orchestration.shard_source import read_dataset
from mmray.results.artifacts import write_artifacts
from mmray.training import TrainParams, build_method, seed_everything, train_epoch

CHECKPOINT_FILE = "state.pt"
# Test hook for fault tolerance: "EPOCH" makes a worker exit once when it starts that epoch (1-based).
CRASH_ENV = "MMRAY_CRASH_AT_EPOCH"


def _timing_first(batches, timings: dict, started_at: float):
    """Pass batches through, noting the seconds from the trial's start to the first one (start-up latency)."""
    for batch in batches:
        timings.setdefault("first_batch_seconds", time.time() - started_at)
        yield batch


def _maybe_crash(epoch: int, marker_dir: Path) -> None:
    if os.environ.get(CRASH_ENV) == str(epoch):
        marker = marker_dir / f"crashed-at-{epoch}"
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            os._exit(1)


def _worker_nodes(world_size: int) -> str:
    """Comma-separated Ray node ids of all workers of this trial (recorded, so users see where it ran)."""
    node = ray.get_runtime_context().get_node_id()
    if world_size == 1:
        return node
    gathered = [None] * world_size
    torch.distributed.all_gather_object(gathered, node)
    return ",".join(sorted(set(gathered)))


def training_stream(prepared, seed: int, world_size: int):
    """This worker's training stream. Several workers split the one dataset the trial gave its trainer;
    a single worker reads the split itself, so its trial starts no DatasetManager actor for Train to hand
    the dataset out through (mmray.orchestration.trial.TrialTorchTrainer; benchmarks/perf)."""
    if world_size > 1:
        return ray.train.get_dataset_shard("train")
    return read_dataset(prepared, "train", seed).iterator()


def train_loop_per_worker(config: dict) -> None:
    params = TrainParams.model_validate(config["train"])
    prepared = load_prepared(config["data_dir"])
    modalities = prepared.modalities
    names = tuple(m.name for m in modalities)
    seed_everything(config["seed"])
    torch.set_num_threads(config["torch_threads"])
    context = ray.train.get_context()
    # First, so that Ray Data starts streaming while the model is built and the evaluation sets are read.
    feed = TrainFeed(training_stream(prepared, config["seed"], context.get_world_size()), modalities,
                     params.batch_size, window=params.shuffle_buffer,
                     cache_bytes=params.worker_cache_mib * 2**20,
                     seed=config["seed"] * 1000 + context.get_world_rank())
    # Imported here, not at the top: the evaluation code brings scikit-learn and SciPy (about 1 s), which the
    # trial driver (it imports this module for train_loop_per_worker) never needs, and the worker can import
    # while its first training batch is on the way.
    from mmray.model_eval import Evaluation, load_eval_sets

    model = build_method(config["method"], modalities, prepared.num_classes, config["method_params"])
    optimizer = torch.optim.AdamW(model.param_groups(params.lr), lr=params.lr, weight_decay=params.weight_decay)
    start_epoch, reported = 0, []  # reported: every epoch's metrics so far, kept in the checkpoint
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / CHECKPOINT_FILE, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"]
        reported = state["reported"]
    module = model
    model = ray.train.torch.prepare_model(model)
    rank0 = context.get_world_rank() == 0
    nodes = _worker_nodes(context.get_world_size())

    # The probe-fitting and evaluation sets are small and fixed: rank 0 reads them once, keeps them for every
    # epoch (a Ray Data pipeline each cost seconds of start-up for a few thousand rows).
    eval_sets = load_eval_sets(prepared, params) if rank0 else {}
    tokenizer = functools.cache(lambda modality: load_tokenizer(prepared, modality))  # for generated text only
    # Training runs ahead of Tune's driver, which takes reports at its own pace (mmray.orchestration.reporting):
    # a driver killed part-way may have recorded fewer epochs than this checkpoint holds. Report them all
    # again; the results recorder keeps the first report of each epoch.
    for metrics in reported:
        ray.train.report(metrics)
    startup: dict[str, float] = {}
    for epoch in range(start_epoch + 1, params.epochs + 1):
        _maybe_crash(epoch, Path(config["run_dir"]))
        module.set_epoch(epoch)
        started = time.perf_counter()
        metrics = {f"train/{k}": v for k, v in train_epoch(
            model, _timing_first(feed.epoch(), startup, config["trial_started_at"]), optimizer,
            params.grad_clip).items()}
        metrics["epoch_train_seconds"] = time.perf_counter() - started
        metrics.update(startup)  # reported with every epoch of this worker process, from the first batch on
        if rank0:
            evaluation = Evaluation(module, eval_sets, names, tokenizer)
            metrics.update(evaluation.metrics)
        metrics["epoch"] = epoch
        metrics["nodes"] = nodes
        if module.provenance:  # pretrained or randomly initialised parts: the results must say which
            metrics["weights"] = json.dumps(module.provenance, sort_keys=True)
        metrics["epoch_seconds"] = time.perf_counter() - started
        if rank0 and epoch == params.epochs:  # once per trial, so not part of an epoch's time
            # the trial's Train run folder is named after its Tune trial id (mmray.orchestration.trial)
            write_artifacts(config["results_dir"], Path(config["run_dir"]).name, evaluation.artifact_tables())
        reported.append(metrics)
        with tempfile.TemporaryDirectory(prefix="mmray-ckpt-") as saved:
            checkpoint = None
            if rank0:
                torch.save({"model": module.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                            "reported": reported}, Path(saved) / CHECKPOINT_FILE)
                checkpoint = ray.train.Checkpoint.from_directory(saved)
            ray.train.report(metrics, checkpoint=checkpoint)  # copies the checkpoint before returning
