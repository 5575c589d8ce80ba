"""One measurement in a fresh interpreter: `child.py MODE JSON_ARGS`; prints `RESULT {json}` last.

Modes: plain (the in-process loop), sweep (a one-configuration mmray sweep, locally or on a cluster address),
short_plain / short_sweep (many short trials: a plain Optuna loop over fit_local, and mmray sweep),
ingest_ray (Ray Data -> a trial's feed, iteration only), ingest_memory (the in-memory batching fit_local uses),
search_table (train a grid of configurations for the search-efficiency table), search_replay (Tune searches
over that table).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULT_PREFIX  # noqa: E402


def _prepared(args: dict):
    from mmray.data import prepare

    return prepare(args["benchmark"], args["benchmark_params"], mirror=args.get("mirror"), log=lambda *_: None)


def plain(args: dict) -> dict:
    from mmray.engine.local import fit_local

    prepared = _prepared(args)
    started = time.perf_counter()
    history = fit_local(args["method"], prepared, method_params=args["method_params"], train=args["train"],
                        seed=0, torch_threads=args["torch_threads"],
                        artifacts_dir=tempfile.mkdtemp(prefix="mmray-perf-plain-"))  # a trial writes them too
    return {"fit_seconds": time.perf_counter() - started,
            "epoch_train_seconds": [h["epoch_train_seconds"] for h in history],
            "val_fused_acc": history[-1].get("val/fused_acc")}


def sweep(args: dict) -> dict:
    import pandas as pd

    from mmray import api
    from mmray.config import parse_spec
    from mmray.results import schema

    spec = parse_spec({
        "name": "perf", "benchmarks": [{"name": args["benchmark"], "params": args["benchmark_params"]}],
        "methods": [args["method"]], "method_params": {args["method"]: args["method_params"]},
        "train": args["train"], "search": {"num_samples": args.get("trials", 1), "algorithm": "random"},
        "scheduler": {"type": "none"},
        "resources": {"torch_threads": args["torch_threads"], "cpus_per_worker": args.get("cpus_per_worker", 1),
                      "max_concurrent_trials": args.get("concurrent")},
    }, "benchmarks/perf")
    from mmray.orchestration.sweep import ensure_ray

    results = Path(tempfile.mkdtemp(prefix="mmray-perf-")) / "perf"
    started = time.perf_counter()
    ensure_ray(args.get("address"))
    ray_up = time.perf_counter()
    api.run_sweep(spec, mirror=args.get("mirror"), results_dir=results, overwrite=True, report=False,
                  address=args.get("address"), log=lambda *_: None)
    wall = time.perf_counter() - started
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    epochs = pd.read_parquet(results / schema.EPOCHS_FILE).sort_values([schema.TRIAL_ID, schema.EPOCH])
    return {"sweep_seconds": wall, "submitted_seconds": time.perf_counter() - ray_up, "trials": len(trials),
            "data_wait_seconds": epochs[schema.DATA_WAIT_SECONDS].tolist(),
            "completed": int((trials[schema.STATUS] == schema.STATUS_COMPLETED).sum()),
            "trial_seconds": trials[schema.WALL_SECONDS].tolist(),
            "first_batch_seconds": epochs[epochs[schema.EPOCH] == 1][schema.FIRST_BATCH_SECONDS].tolist(),
            "epoch_train_seconds": epochs[schema.EPOCH_TRAIN_SECONDS].tolist(),
            "nodes": sorted({n for value in trials[schema.NODES].dropna() for n in value.split(",")}),
            "val_fused_acc": float(trials["final/val/fused_acc"].iloc[0])}


def short_plain(args: dict) -> dict:
    """The strongest plain way to run the same configurations: one process, one Optuna study over `fit_local`
    (the configurations enqueued, as the sweep's grid lists them), the data read once."""
    import optuna

    from mmray.engine.local import fit_local

    prepared = _prepared(args)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for lr in args["lrs"]:
        study.enqueue_trial({"lr": lr})
    seconds = []

    def objective(trial):
        began = time.perf_counter()
        history = fit_local(args["method"], prepared, method_params=args["method_params"],
                            train={**args["train"], "lr": trial.suggest_float("lr", 1e-6, 1.0, log=True)},
                            seed=0, torch_threads=args["torch_threads"])
        seconds.append(time.perf_counter() - began)
        return history[-1]["val/fused_acc"]

    study.optimize(objective, n_trials=len(args["lrs"]))
    return {"loop_seconds": time.perf_counter() - started, "trial_seconds": seconds,
            "best": study.best_value}


def short_sweep(args: dict) -> dict:
    """The same configurations as one mmray sweep (a grid over them, no early stopping), timed from before Ray
    starts and from the moment Ray is up (Tune submits the first trial soon after)."""
    import pandas as pd

    from mmray import api
    from mmray.config import parse_spec
    from mmray.orchestration.sweep import ensure_ray
    from mmray.results import schema

    spec = parse_spec({
        "name": "short", "benchmarks": [{"name": args["benchmark"], "params": args["benchmark_params"]}],
        "methods": [args["method"]], "method_params": {args["method"]: args["method_params"]},
        "train": args["train"], "search": {"algorithm": "grid"}, "scheduler": {"type": "none"},
        "search_space": {"train.lr": {"choice": args["lrs"]}},
        "resources": {"torch_threads": args["torch_threads"], "max_concurrent_trials": args.get("concurrent")},
    }, "benchmarks/perf")
    _prepared(args)  # the shards exist before either clock starts, as for the plain loop
    results = Path(tempfile.mkdtemp(prefix="mmray-perf-short-")) / "short"
    started = time.perf_counter()
    ensure_ray()
    ray_up = time.perf_counter()
    api.run_sweep(spec, results_dir=results, overwrite=True, report=False, log=lambda *_: None)
    ended = time.perf_counter()
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    epochs = pd.read_parquet(results / schema.EPOCHS_FILE)
    return {"sweep_seconds": ended - started, "ray_start_seconds": ray_up - started,
            "submitted_seconds": ended - ray_up, "trials": len(trials),
            "completed": int((trials[schema.STATUS] == schema.STATUS_COMPLETED).sum()),
            "trial_seconds": trials[schema.WALL_SECONDS].tolist(), "most_at_once": _most_at_once(trials),
            "best": float(epochs["val/fused_acc"].max())}


def _most_at_once(trials) -> int:
    """The most trials of the table that were running at one moment."""
    import pandas as pd

    from mmray.results import schema

    started = trials[schema.FINISHED_AT] - pd.to_timedelta(trials[schema.WALL_SECONDS], unit="s")
    events = sorted([(t, 1) for t in started] + [(t, -1) for t in trials[schema.FINISHED_AT]])
    running, most = 0, 0
    for _, step in events:  # an end sorts before a start at the same moment
        running += step
        most = max(most, running)
    return most


def ingest_ray(args: dict) -> dict:
    """Ray Data -> TrainFeed, iteration only, as a TorchTrainer trial's worker streams its share of the split (a
    process connected to Ray, as this one is; a one-worker trial reads its shards itself)."""
    from mmray.orchestration.feed import TrainFeed, ray_data_blocks
    from mmray.orchestration.shard_source import read_dataset
    from mmray.orchestration.sweep import ensure_ray

    prepared = _prepared(args)
    ensure_ray()
    shard = read_dataset(prepared, "train", seed=0).iterator()
    feed = functools.partial(TrainFeed, ray_data_blocks(shard), prepared.modalities, args["batch_size"],
                             window=args["shuffle_buffer"], seed=0)
    # Every epoch read from the shards (a shard too big to keep); then what a trial does: stream the first
    # epoch, keep the rows, serve later epochs from memory.
    return {"samples_per_second": {"streamed": _epoch_rates(feed(cache_bytes=0).epoch, args["epochs"]),
                                   "kept": _epoch_rates(feed(cache_bytes=args["cache_mib"] * 2**20).epoch,
                                                        args["epochs"])},
            "rows": prepared.rows("train")}


def ingest_memory(args: dict) -> dict:
    """The project's own in-memory batching (what fit_local trains on): the split read once into arrays, each
    epoch a permutation of them cut into batches."""
    import torch

    from mmray.data.shards import read_split
    from mmray.engine.batching import tensor_batches

    prepared = _prepared(args)
    arrays = read_split(prepared, "train")
    generator = torch.Generator().manual_seed(0)
    epoch = functools.partial(tensor_batches, arrays, args["batch_size"], prepared.modalities, shuffle=True,
                              drop_last=True, generator=generator)
    return {"samples_per_second": _epoch_rates(epoch, args["epochs"]), "rows": len(arrays)}


def _epoch_rates(epoch, epochs: int) -> list[float]:
    """Rows per second of each of `epochs` passes over `epoch()`'s batches."""
    rates = []
    for _ in range(epochs):
        started, rows = time.perf_counter(), 0
        for batch in epoch():
            rows += len(batch["label"])
        rates.append(rows / (time.perf_counter() - started))
    return rates


def search_table(args: dict) -> dict:
    from search import train_table

    return train_table(args)


def search_replay(args: dict) -> dict:
    from search import replay

    return replay(args)


MODES = {f.__name__: f for f in (plain, sweep, short_plain, short_sweep, ingest_ray, ingest_memory, search_table, search_replay)}

if __name__ == "__main__":
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    mode, raw = sys.argv[1], json.loads(sys.argv[2])
    print(RESULT_PREFIX + json.dumps(MODES[mode](raw)), flush=True)
