"""A trial's training: the engine's epoch loop fed by the split's shards, reporting and checkpointing once per
epoch, in the trial's Tune actor (one CPU worker, reading its shards itself) or in each Ray Train worker of a
TorchTrainer (several, fed by Ray Data). The two differ only in their session: where the shard, the checkpoint
and the reports go."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import ray.train
import ray.train.torch
import torch
from ray import tune

from mmray import storage
from mmray.config import TrialConfig
from mmray.data.shards import load_prepared
from mmray.engine.training import build_method, seed_everything
from mmray.orchestration.feed import TrainFeed, ray_data_blocks
from mmray.orchestration.shard_source import ShardSource
from mmray.results import schema
from mmray.results.artifacts import write_artifacts
from mmray.results.best import best_epoch

CHECKPOINT_FILE = "state.pt"
# Test hook for fault tolerance: "EPOCH" makes a worker exit once when it starts that epoch (1-based).
CRASH_ENV = "MMRAY_CRASH_AT_EPOCH"
# Train's controller learns of a report, and of its checkpoint, when it next polls the worker (every 0.2 s,
# mmray.orchestration.ray_adapter): a worker dying sooner after a report restarts from the checkpoint before.
# The hook waits out a few polls, so it always tests a restart from the epoch just reported.
CRASH_AFTER_POLLS_SECONDS = 1.0


def _timing_first(batches, timings: dict, started_at: float):
    """Pass batches through, noting the seconds from the trial's start to the first one (start-up latency)."""
    for batch in batches:
        timings.setdefault(schema.FIRST_BATCH_SECONDS, time.time() - started_at)
        yield batch


def _maybe_crash(epoch: int, marker_dir: Path) -> None:
    if os.environ.get(CRASH_ENV) == str(epoch):
        marker = marker_dir / f"crashed-at-{epoch}"
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            time.sleep(CRASH_AFTER_POLLS_SECONDS)
            os._exit(1)


def _worker_nodes(world_size: int) -> str:
    """Comma-separated Ray node ids of all processes that trained this trial (recorded, so users see where it
    ran)."""
    node = ray.get_runtime_context().get_node_id()
    if world_size == 1:
        return node
    gathered = [None] * world_size
    torch.distributed.all_gather_object(gathered, node)
    return ",".join(sorted(set(gathered)))


class TrainWorkerSession:
    """A Ray Train worker of a TorchTrainer trial: its share of the trial's dataset, its model wrapped for
    distributed data parallel (and moved to its GPU), Train's checkpoints and reports."""

    def __init__(self):
        context = ray.train.get_context()
        self.rank, self.world_size = context.get_world_rank(), context.get_world_size()

    def training_stream(self, prepared, seed: int):
        return ray_data_blocks(ray.train.get_dataset_shard("train"))

    def train_model(self, module: torch.nn.Module) -> torch.nn.Module:
        return ray.train.torch.prepare_model(module)

    def checkpoint(self):
        return ray.train.get_checkpoint()

    def report(self, metrics: dict, folder: str | None) -> None:
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder) if folder else None)


class TrialActorSession:
    """A one-worker trial training in its own Tune actor: it reads its split's shards itself (in the feed's
    background thread; no Ray Data, whose actors and read worker would cost the trial more memory than its
    model) and reports to Tune directly. Tune's reports are synchronous: training waits at each until
    Tune's driver has taken it, so an epoch ASHA stops is the last one trained."""

    rank, world_size = 0, 1

    def training_stream(self, prepared, seed: int):
        return ShardSource(prepared, "train", seed).read_epoch

    def train_model(self, module: torch.nn.Module) -> torch.nn.Module:
        return module

    def checkpoint(self):
        return tune.get_checkpoint()

    def report(self, metrics: dict, folder: str | None) -> None:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder) if folder else None)


def _restore(loop, session) -> list[dict]:
    """Load the last checkpoint of this trial's run, if any, into `loop`; returns every epoch's metrics so far."""
    checkpoint = session.checkpoint()
    if checkpoint is None:
        return []
    with checkpoint.as_directory() as folder:
        state = torch.load(Path(folder) / CHECKPOINT_FILE, weights_only=True)
    loop.load_state_dict(state)
    return state["reported"]


def _keep_if_best(trial: TrialConfig, module, epoch, reported: list[dict], manifest: dict) -> None:
    """Save this epoch's model as the trial's exported model when it is the trial's best so far by the sweep's
    metric (mmray.results.best: the rule the results tables use); written before the epoch is reported, so
    the best epoch the recorder names is the one saved."""
    best = best_epoch(pd.DataFrame(reported), trial.metric, trial.mode)
    if best is None or int(best[schema.EPOCH]) != epoch.number:
        return
    from mmray.models.save import save_model

    folder = storage.join(trial.results_dir, *schema.model_dir(trial.trial_id).split("/"))
    save_model(folder, module, epoch.evaluation.probes.fitted(), manifest, epoch=epoch.number, metrics=epoch.metrics,
               trial={"sweep": trial.sweep, "trial_id": trial.trial_id, "run": trial.run, "seed": trial.seed,
                      "train": trial.train.model_dump(), "augment": trial.augment.model_dump(),
                      "metric": trial.metric, "mode": trial.mode,
                      "threads": trial.torch_threads})


def train_loop_per_worker(trial: TrialConfig) -> None:
    """The TorchTrainer's training function."""
    train_trial(trial, TrainWorkerSession())


def train_trial(trial: TrialConfig, session: TrainWorkerSession | TrialActorSession) -> None:
    params = trial.train
    prepared = load_prepared(trial.data_dir)
    seed_everything(trial.seed)
    torch.set_num_threads(trial.torch_threads)
    # First, so that the shards stream in while the model is built and the evaluation sets are read.
    feed = TrainFeed(session.training_stream(prepared, trial.seed), prepared.modalities,
                     params.batch_size, window=params.shuffle_buffer,
                     cache_bytes=params.worker_cache_mib * 2**20,
                     seed=trial.seed * 1000 + session.rank)
    # Imported here, not at the top: the evaluation code brings scikit-learn and SciPy (about 1 s), which the
    # trial driver (it imports this module for train_loop_per_worker) never needs, and the worker can import
    # while its first training batch is on the way.
    from mmray.engine.loop import EpochLoop

    module = build_method(trial.method, prepared.modalities, prepared.num_classes, trial.method_params,
                          allow_random_weights=trial.allow_random_weights)
    rank0 = session.rank == 0
    loop = EpochLoop(module, params, prepared, evaluate=rank0, train_model=session.train_model(module),
                     augment=trial.augment, augment_seed=trial.seed * 1000 + session.rank,
                     world_size=session.world_size)
    reported = _restore(loop, session)  # every epoch's metrics so far, kept in the checkpoint
    # Evidence of where this process's run began: 0 from scratch, k when restored from epoch k's checkpoint.
    resumed_from = {schema.RESUMED_FROM_EPOCH: loop.epochs_done}
    nodes = _worker_nodes(session.world_size)
    # A driver killed part-way may have recorded fewer epochs than this checkpoint holds (a Train worker runs
    # ahead of Tune's driver, mmray.orchestration.reporting). Report them all again; the results recorder
    # keeps the first report of each epoch.
    for metrics in reported:
        session.report(metrics, None)
    startup: dict[str, float] = {}
    run_dir = Path(storage.join(trial.results_dir, "train", trial.trial_id))

    def batches(epoch: int):
        _maybe_crash(epoch, run_dir)
        return _timing_first(feed.epoch(), startup, trial.started_at)

    for epoch in loop.run(batches):
        metrics = {**epoch.metrics, **startup, **resumed_from, schema.NODES: nodes}
        if module.provenance:  # pretrained or randomly initialised parts: the results must say which
            metrics[schema.WEIGHTS] = json.dumps(module.provenance, sort_keys=True)
        reported.append(metrics)
        if rank0:  # not part of an epoch's time
            _keep_if_best(trial, module, epoch, reported, prepared.manifest)
            if epoch.number == params.epochs:
                write_artifacts(trial.results_dir, trial.trial_id, epoch.evaluation.artifact_tables())
        with tempfile.TemporaryDirectory(prefix="mmray-ckpt-") as saved:
            folder = None
            if rank0:
                torch.save({**loop.state_dict(), "reported": reported}, Path(saved) / CHECKPOINT_FILE)
                folder = saved
            session.report(metrics, folder)  # copies the checkpoint before returning
