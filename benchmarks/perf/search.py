"""Search efficiency: Optuna TPE + ASHA vs random search without early stopping, on the same space.

Both searches run on the real Tune machinery (OptunaSearch + ASHAScheduler vs BasicVariantGenerator + FIFO),
one trial at a time, over a *tabular* objective: every configuration of a discrete grid is first trained for
real (pavlov on a small synthetic-av, in-process) and its validation curve recorded; a trial then replays its
configuration's curve epoch by epoch. This is how hyperparameter-optimisation benchmarks (HPOBench, LCBench)
compare searchers fairly: both see identical, noise-free learning curves, and the comparison costs one training
of the grid instead of hundreds of trainings per searcher.

Figure: total training epochs each searcher spends to reach the best score random search finds in its
`random_trials` trials, over several seeds.
"""

from __future__ import annotations

import itertools
import tempfile

SPACE = {  # pavlov's fields and train.lr -> grid values
    "latent_dim": [8, 16, 32],
    "temperature": [0.05, 0.15, 0.5, 1.5],
    "lr": [1e-4, 3e-4, 1e-3, 3e-3],
    "w_cross": [0.0, 1.0],
}
METRIC = "val/fused_acc"


def grid(space: dict) -> list[dict]:
    keys = list(space)
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]


def key_of(config: dict) -> str:
    return ",".join(f"{k}={config[k]}" for k in sorted(config))


def train_table(args: dict) -> dict:
    """Train each configuration of args['configs'] for args['epochs'] epochs; return {key: curve}."""
    import torch

    from mmray.data import prepare
    from mmray.local import fit_local

    torch.set_num_threads(1)
    prepared = prepare("synthetic-av", args["benchmark_params"], log=lambda *_: None)
    curves = {}
    for config in args["configs"]:
        method = {k: v for k, v in config.items() if k != "lr"} | {"encoder_width": 8}
        history = fit_local("pavlov", prepared, method_params=method, seed=0,
                            train={"epochs": args["epochs"], "lr": config["lr"], "batch_size": 64,
                                   "probe_examples": 800})
        curves[key_of(config)] = [h[METRIC] for h in history]
    return {"curves": curves}


def _replay_trainable(config, table=None):
    from ray import tune

    curve = table[key_of(config)]
    for epoch, score in enumerate(curve, start=1):
        tune.report({"epoch": epoch, "score": score})


def _epochs_to_reach(results, target: float) -> int | None:
    """Epochs spent, trial after trial in creation order, until a report reaches `target`."""
    spent = 0
    for result in sorted(results, key=lambda r: r.metrics["trial_id"]):
        scores = result.metrics_dataframe["score"].tolist()
        for score in scores:
            spent += 1
            if score >= target - 1e-12:
                return spent
    return None


def _run(table: dict, space: dict, searcher: str, seed: int, trials: int, epochs: int):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator
    from ray.tune.search.optuna import OptunaSearch

    if searcher == "tpe+asha":
        search_alg, scheduler = OptunaSearch(seed=seed), ASHAScheduler(
            time_attr="epoch", max_t=epochs, grace_period=1, reduction_factor=3)
    else:
        search_alg, scheduler = BasicVariantGenerator(random_state=seed, max_concurrent=1), None
    tuner = tune.Tuner(
        tune.with_parameters(_replay_trainable, table=table),
        param_space={k: tune.choice(v) for k, v in space.items()},
        tune_config=tune.TuneConfig(metric="score", mode="max", search_alg=search_alg, scheduler=scheduler,
                                    num_samples=trials, max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="mmray-perf-search-"), verbose=0),
    )
    return list(tuner.fit())


def replay(args: dict) -> dict:
    import logging
    import os

    import optuna
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ray.init(address="local", num_cpus=2, logging_level=logging.WARNING, log_to_driver=False, include_dashboard=False)
    table, space, epochs = args["table"], args["space"], args["epochs"]
    rows = []
    for seed in args["seeds"]:
        random_results = _run(table, space, "random", seed, args["random_trials"], epochs)
        target = max(max(r.metrics_dataframe["score"]) for r in random_results)
        smart_results = _run(table, space, "tpe+asha", seed, args["smart_trials"], epochs)
        rows.append({"seed": seed, "target": target,
                     "random_epochs": _epochs_to_reach(random_results, target),
                     "smart_epochs": _epochs_to_reach(smart_results, target),
                     "smart_total_epochs": sum(len(r.metrics_dataframe) for r in smart_results),
                     "smart_best": max(max(r.metrics_dataframe["score"]) for r in smart_results)})
    ray.shutdown()
    return {"seeds": rows}
