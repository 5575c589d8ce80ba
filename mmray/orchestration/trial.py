"""One trial = one (benchmark, method, config, seed): a Tune function trainable that fits one TorchTrainer.

Ray 2.60 runs Train V2, where Tune cannot tune a TorchTrainer directly; the trainer is built and fitted
inside this function, which hands each epoch's report to Tune (and so to ASHA): mmray.orchestration.reporting.
"""

from __future__ import annotations

import asyncio
import os
import time

import ray
from ray import tune
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.train.v2._internal.callbacks import DatasetsCallback
from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback
from ray.train.v2._internal.constants import HEALTH_CHECK_INTERVAL_S_ENV_VAR
from ray.train.v2._internal.execution.controller import TrainController

from mmray import storage
from mmray.data import prepare
from mmray.orchestration.placement import PlacementGroupRecorder
from mmray.orchestration.reporting import ReportForwarder, fit_reporting_to_tune, new_channel
from mmray.orchestration.shard_source import read_dataset
from mmray.orchestration.worker import train_loop_per_worker

# Train's controller polls its workers every 2 s by default, and only a poll tells it that the training function
# has returned: every trial ended 2 s after its last report (benchmarks/perf; 0.2 s now). A poll is one actor
# call per worker: five a second left the trial actor's CPU time within its run-to-run spread.
WORKER_POLL_SECONDS = 0.2


class TrialTorchTrainer(TorchTrainer):
    """A TorchTrainer that starts fewer processes per trial than Train's own (Ray 2.60; benchmarks/perf):
    - its controller runs in the trial's actor, not in an actor of its own;
    - given no datasets (one worker reads its own split), no DatasetsCallback, which starts a DatasetManager
      actor in every run even with nothing to hand out: a process start beside the worker's, and one more
      process polling beside the training;
    - PlacementGroupRecorder instead of PlacementGroupCleanerCallback, whose per-trial cleaner actor polls the
      dashboard's State API (mmray.orchestration.placement). The recorder goes first: Train runs the callbacks
      in order after a worker group starts, and a controller dying in a later one (the backend's process-group
      set-up) must leave its group recorded."""

    def _initialize_and_run_controller(self, **controller_init_kwargs):
        # Train starts its controller as an actor of its own: one more process, ~3 s of start-up on 2 cores on
        # every trial's path to its first batch. The trial's actor would only wait on it, so it runs the control
        # loop itself. The worker group is then the trial actor's and ends with it (ASHA stopping the trial)
        # as it ended with the controller, and PlacementGroupRecorder files its group under the trial actor.
        if ray.get_runtime_context().get_actor_id() is None:  # fitted from a driver script (benchmarks/perf)
            return super()._initialize_and_run_controller(**controller_init_kwargs)
        os.environ.setdefault(HEALTH_CHECK_INTERVAL_S_ENV_VAR, str(WORKER_POLL_SECONDS))  # read by the controller
        controller = TrainController(**controller_init_kwargs)
        asyncio.run(controller.run())
        return controller.get_result()

    def _create_default_callbacks(self):
        left_out = (PlacementGroupCleanerCallback,) + (() if self.datasets else (DatasetsCallback,))
        return [PlacementGroupRecorder()] + [callback for callback in super()._create_default_callbacks()
                                            if not isinstance(callback, left_out)]


def run_trial(config: dict) -> None:
    """Tune trainable. `config` is the resolved trial config built by `mmray.orchestration.sweep`."""
    started_at = time.time()  # the worker reports how long its first batch took from here
    prepared = prepare(config["benchmark"], config["benchmark_params"], mirror=config["mirror"],
                       cache_dir=config["cache_dir"], log=lambda *_: None)
    resources = config["resources"]
    trial_id = tune.get_context().get_trial_id()
    run_dir = storage.join(config["results_dir"], "train", trial_id)
    # Only the training split streams through Ray Data; rank 0 reads the small, fixed evaluation sets itself
    # (mmray.model_eval.load_eval_sets). Several workers split one stream, which Train hands out (a split
    # coordinator); a single worker reads the split itself (mmray.orchestration.worker.training_stream).
    workers = resources["workers_per_trial"]
    datasets = {}
    if workers > 1:
        datasets["train"] = read_dataset(prepared, "train", config["seed"], readers=workers)
    worker_config = {
        **config,
        "data_dir": str(prepared.path),
        "run_dir": str(run_dir),
        "trial_started_at": started_at,
        "torch_threads": resources["torch_threads"] or max(1, int(resources["cpus_per_worker"])),
    }
    channel = new_channel()
    trainer = TrialTorchTrainer(
        train_loop_per_worker,
        train_loop_config=worker_config,
        scaling_config=ScalingConfig(
            num_workers=workers,
            use_gpu=resources["gpus_per_worker"] > 0,
            resources_per_worker={"CPU": resources["cpus_per_worker"], "GPU": resources["gpus_per_worker"]},
            placement_strategy=resources["placement_strategy"],
        ),
        datasets=datasets,
        run_config=RunConfig(
            name=trial_id,
            storage_path=str(storage.join(config["results_dir"], "train")),
            callbacks=[ReportForwarder(channel)],
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            failure_config=FailureConfig(max_failures=config["max_worker_failures"]),
        ),
    )
    fit_reporting_to_tune(trainer, channel)
