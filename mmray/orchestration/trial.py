"""One trial = one (benchmark, method, config, seed): a Tune function trainable that fits one TorchTrainer.

Ray 2.60 runs Train V2, where Tune cannot tune a TorchTrainer directly; the trainer is built and fitted
inside this function, which hands each epoch's report to Tune (and so to ASHA): mmray.orchestration.reporting.
"""

from __future__ import annotations

import time

from ray import tune
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig

from mmray import storage
from mmray.config import TrialConfig
from mmray.data import prepare
from mmray.orchestration.ray_adapter import TrialTorchTrainer
from mmray.orchestration.reporting import ReportForwarder, fit_reporting_to_tune, new_channel
from mmray.orchestration.shard_source import read_dataset
from mmray.orchestration.worker import train_loop_per_worker


def run_trial(config: dict) -> None:
    """Tune trainable. `config` is a TrialConfig as a dict, with Tune's samples in place of its search space."""
    started_at = time.time()  # the worker reports how long its first batch took from here
    trial = TrialConfig.model_validate(config)
    prepared = prepare(trial.benchmark, trial.benchmark_params, mirror=trial.mirror, cache_dir=trial.cache_dir,
                       log=lambda *_: None)
    trial = trial.model_copy(update={"trial_id": tune.get_context().get_trial_id(), "started_at": started_at,
                                     "data_dir": str(prepared.path)})
    resources = trial.resources
    # Only the training split streams through Ray Data; rank 0 reads the small, fixed evaluation sets itself
    # (mmray.engine.evaluation.load_eval_sets). Several workers split one stream, which Train hands out (a split
    # coordinator); a single worker reads the split itself (mmray.orchestration.worker.training_stream).
    datasets = {}
    if resources.workers_per_trial > 1:
        datasets["train"] = read_dataset(prepared, "train", trial.seed, readers=resources.workers_per_trial)
    channel = new_channel()
    trainer = TrialTorchTrainer(
        train_loop_per_worker,
        train_loop_config=trial,
        scaling_config=ScalingConfig(
            num_workers=resources.workers_per_trial,
            use_gpu=resources.gpus_per_worker > 0,
            resources_per_worker={"CPU": resources.cpus_per_worker, "GPU": resources.gpus_per_worker},
            placement_strategy=resources.placement_strategy,
        ),
        datasets=datasets,
        run_config=RunConfig(
            name=trial.trial_id,
            storage_path=str(storage.join(trial.results_dir, "train")),
            callbacks=[ReportForwarder(channel)],
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            failure_config=FailureConfig(max_failures=trial.max_worker_failures),
        ),
    )
    fit_reporting_to_tune(trainer, channel, last_epoch=trial.train.epochs)
