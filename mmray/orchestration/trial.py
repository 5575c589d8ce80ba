"""One trial = one (benchmark, method, config, seed): a Tune function trainable.

A trial of one CPU worker trains right here, in its Tune actor, which Tune reuses for the sweep's next trial
(`reuse_actors`): the actor's Python, torch, Ray Train and scikit-learn are loaded once per concurrent slot, not
once per trial, and a one-epoch trial costs a model build and its epoch (benchmarks/perf, short trials). It
reads its training split's shards itself (mmray.orchestration.worker.TrialActorSession).

A trial of several workers (or with GPUs, which Ray Train places and prepares the model for) fits a
TorchTrainer here instead. Ray 2.60 runs Train V2, where Tune cannot tune a TorchTrainer directly; this
function hands each of its epoch reports to Tune (and so to ASHA): mmray.orchestration.reporting.
"""

from __future__ import annotations

import time

from ray import tune
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig

from mmray import storage
from mmray.config import ResourcesConfig, TrialConfig
from mmray.data import prepare
from mmray.orchestration import ray_adapter
from mmray.orchestration.reporting import ReportForwarder, fit_reporting_to_tune, new_channel
from mmray.orchestration.shard_source import read_dataset


def trains_in_trial_actor(resources: ResourcesConfig) -> bool:
    return resources.workers_per_trial == 1 and resources.gpus_per_worker == 0


def run_trial(config: dict) -> None:
    """Tune trainable. `config` is a TrialConfig as a dict, with Tune's samples in place of its search space."""
    started_at = time.time()  # the worker reports how long its first batch took from here
    trial = TrialConfig.model_validate(config)
    prepared = prepare(trial.benchmark, trial.benchmark_params, mirror=trial.mirror, cache_dir=trial.cache_dir,
                       log=lambda *_: None)
    trial = trial.model_copy(update={"trial_id": tune.get_context().get_trial_id(), "started_at": started_at,
                                     "data_dir": str(prepared.path)})
    # Imported here, in the trial's actor: the training code loads torch, which the sweep's driver (it imports
    # this module for run_trial) never needs.
    from mmray.orchestration.worker import TrialActorSession, train_loop_per_worker, train_trial

    if trains_in_trial_actor(trial.resources):
        train_trial(trial, TrialActorSession())
        return
    resources = trial.resources
    # Only the training split streams through Ray Data, split among the workers by Train; rank 0 reads the
    # small, fixed evaluation sets itself (mmray.engine.evaluation.load_eval_sets).
    channel = new_channel()
    trainer = ray_adapter.TrialTorchTrainer(
        train_loop_per_worker,
        train_loop_config=trial,
        scaling_config=ScalingConfig(
            num_workers=resources.workers_per_trial,
            use_gpu=resources.gpus_per_worker > 0,
            resources_per_worker={"CPU": resources.cpus_per_worker, "GPU": resources.gpus_per_worker},
            placement_strategy=resources.placement_strategy,
        ),
        datasets={"train": read_dataset(prepared, "train", trial.seed, readers=resources.workers_per_trial)},
        run_config=RunConfig(
            name=trial.trial_id,
            storage_path=str(storage.join(trial.results_dir, "train")),
            callbacks=[ReportForwarder(channel)],
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            failure_config=FailureConfig(max_failures=trial.max_worker_failures),
        ),
    )
    fit_reporting_to_tune(trainer, channel, last_epoch=trial.train.epochs)
