"""One trial = one (benchmark, method, config, seed): a Tune function trainable that fits one TorchTrainer.

Ray 2.60 runs Train V2, where Tune cannot tune a TorchTrainer directly; the trainer is built and fitted
inside this function, and TuneReportCallback forwards each epoch's report to Tune (and so to ASHA).
"""

from __future__ import annotations

import time
import warnings

import ray
import ray.data
from ray import tune
from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.tune.integration.ray_train import TuneReportCallback

from mmray import storage
from mmray.data import prepare
from mmray.orchestration.shard_source import ShardSource
from mmray.orchestration.worker import train_loop_per_worker


# Blocks of a streamed split: a few thousand rows each, so the first arrives soon and windows seldom span two.
READ_BLOCK_BYTES = 32 * 2**20


def read_dataset(prepared, split: str, seed: int, readers: int = 1):
    """A split's shards in a seeded random file order (a new one every epoch), read by `readers` tasks that
    each stream their files' blocks. Shuffling files at read time streams; randomising the block order
    afterwards is an all-to-all step that holds back the first batch until every file is read."""
    # Reading shards is I/O-bound: a quarter CPU per read task lets reads run beside Train workers that hold
    # fractional CPUs on every node (a whole-CPU read could then never be scheduled). Passed as ray_remote_args
    # despite its deprecation warning: the named `num_cpus` argument makes the second trial of a sweep wait
    # for read resources forever (Ray 2.60; found by tests/test_sweep_ray.py).
    # One read task per training worker (a trial asks one reader per worker), each reading its files one after
    # another: one task decodes shards far faster than a worker trains on them. A task per file cost the worker
    # a task submission per file each epoch, and ran an epoch at 0.8x the rows/s (benchmarks/perf, ingest);
    # more concurrent tasks are more worker processes that Ray starts (importing Ray Data, ~1.5 s of CPU) and,
    # once idle, stops again between epochs.
    source = ShardSource(prepared, split, seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        dataset = ray.data.read_datasource(source, ray_remote_args={"num_cpus": 0.25}, concurrency=readers,
                                           override_num_blocks=min(readers, len(source.files)))
    dataset.context.target_max_block_size = READ_BLOCK_BYTES
    return dataset


def data_config(workers: int) -> DataConfig:
    """Several workers split the training stream (a split-coordinator actor hands out its blocks); a single
    worker iterates the dataset itself: one actor fewer to start per trial, and no actor call per block."""
    return DataConfig(datasets_to_split=["train"] if workers > 1 else [])


def run_trial(config: dict) -> None:
    """Tune trainable. `config` is the resolved trial config built by `mmray.orchestration.sweep`."""
    started_at = time.time()  # the worker reports how long its first batch took from here
    prepared = prepare(config["benchmark"], config["benchmark_params"], mirror=config["mirror"],
                       cache_dir=config["cache_dir"], log=lambda *_: None)
    resources = config["resources"]
    trial_id = tune.get_context().get_trial_id()
    run_dir = storage.join(config["results_dir"], "train", trial_id)
    # Only the training split streams through Ray Data; rank 0 reads the small, fixed evaluation sets itself
    # (mmray.model_eval.load_eval_sets).
    workers = resources["workers_per_trial"]
    datasets = {"train": read_dataset(prepared, "train", config["seed"], readers=workers)}
    worker_config = {
        **config,
        "data_dir": str(prepared.path),
        "run_dir": str(run_dir),
        "trial_started_at": started_at,
        "torch_threads": resources["torch_threads"] or max(1, int(resources["cpus_per_worker"])),
    }
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config=worker_config,
        scaling_config=ScalingConfig(
            num_workers=workers,
            use_gpu=resources["gpus_per_worker"] > 0,
            resources_per_worker={"CPU": resources["cpus_per_worker"], "GPU": resources["gpus_per_worker"]},
            placement_strategy=resources["placement_strategy"],
        ),
        datasets=datasets,
        dataset_config=data_config(workers),
        run_config=RunConfig(
            name=trial_id,
            storage_path=str(storage.join(config["results_dir"], "train")),
            callbacks=[TuneReportCallback()],
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            failure_config=FailureConfig(max_failures=config["max_worker_failures"]),
        ),
    )
    trainer.fit()
