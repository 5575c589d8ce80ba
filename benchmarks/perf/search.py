"""Search efficiency: the default search (and random search, TPE, ASHA, TPE + ASHA) against random search
without early stopping, on tabular objectives.

A table is every configuration of a discrete grid (PROBLEMS: pavlov on synthetic-av, 144 configurations; cpc
on sine, 126; fusion on synthetic-av, 108) trained for real, once (one process per core), its validation curve
recorded: the `val/fused_acc` that `fit_local` and a trial report after each epoch (same seed, model,
optimiser, batches and linear probe; `python benchmarks/perf/search.py check` retrains configurations as
`fit_local` does, compares, and records that in the table's `checked` field). The rest of the metric suite
is skipped, as the table needs this one number. Tables are cached in benchmarks/tables/ (`python
benchmarks/perf/search.py build [NAME]` retrains them), so replays and `make bench` need no training.

A searcher is a spec's `search` and `scheduler` sections (SEARCHERS), built into Tune's search algorithm and
scheduler by mmray.orchestration.sweep, as a sweep builds them. Each of its trials replays its configuration's
curve epoch by epoch, one trial at a time, so the order trials run in is the order epochs are spent in. Two
drivers: `_run` runs the search through Tune (Tuner, controller, actors, the searcher and scheduler objects);
`_run_in_process` calls the same objects as Tune 2.60's controller calls them, without the controller and
actors: report by report equal to `_run` (`python benchmarks/perf/search.py verify --seeds 0 1`; checked on
2026-12-06 on a generated 72-configuration table, seeds 0 and 1, every searcher, and through run.py --quick on
pavlov-synthetic-av's seed 0 at a 48-epoch budget; on 2026-12-07 on pavlov-synthetic-av's seed 0 at the full
768-epoch budget, every searcher of SEARCHERS, equal report by report), ~50x faster, so that 200 seeds x 7
searchers x 3 tables fit about 20 minutes on 2 cores. `make bench` uses it; `run.py --search-through-tune`
uses Tune.

Why replay is a fair comparison: every searcher sees the very same learning curves, so none gets training
noise another did not, and an epoch costs the same whichever searcher asks for it. This is how HPOBench and
LCBench compare optimisers. All search the grid as the index of each axis's value; every numeric axis is
geometric, so the index is the value on its log scale. Random search draws indices uniformly, which is a uniform
draw of a grid point; TPE sees the same ordered axes a real sweep declares with `loguniform`. Each seed seeds
every searcher (its random draws, TPESampler's seed, numpy's global generator that ASHA draws brackets from);
the seeds are 0, 1, 2, ... and nothing else, except that the two references draw from seed + 10,000
(REFERENCE_SEED_OFFSET): a searcher drawing as a reference does must not meet the reference's own draws.

Budget rule, per seed: random search runs `random_trials` (64) trials of all `epochs` (12) epochs; every other
searcher runs until it has spent as many epochs (mmray's own `search.max_epochs` stopper, EpochBudget). Two
references (REFERENCES): random search as Tune draws it (with repeats) and mmray's (without). The target is the
best score the reference reached; a searcher's cost is the epochs it spent up to its first report of the
target, its whole budget if it never reported it (a ratio below 1, not 0). The figures (run.py): the reference's
epochs over the searcher's, per seed; their geometric mean, median and worst seed; the share of seeds never
reaching the target; total epochs over all seeds; and the anytime curve, best score so far against epochs spent.

pavlov-synthetic-av: learning rates over 2.5 decades, latent sizes 4 to 64, temperatures 0.03 to 1 and the
contrastive weight spread each configuration's best accuracy from 0.2 to 0.69; 2,000 validation pairs keep the
standard error of one score near 1 point. cpc-sine: CPC on ten noisy sine-tone bands, learning rates over 3
decades (at 0.1 every configuration collapses to chance, 0.10), in-batch or queued negatives, temperatures and
prediction horizons; best accuracies 0.10 to 0.94. A random CPC network's features already score ~0.7 there,
and the best configurations climb from below that to 0.93 only in their last epochs: early scores predict final
ones poorly, the hard case for early stopping. fusion-synthetic-av: fusion (classifier head, contrastive and
image-decoder losses) on pavlov's synthetic-av, learning rates over 4.5 decades (1e-5 barely moves the network
in 12 epochs, 0.1 and 0.3 diverge towards chance), attention or concatenation, three modality-dropout rates and
two classifier weights.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import time
from pathlib import Path

SPACE = {  # pavlov's fields and train.lr -> grid values, each numeric axis geometric
    "lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2],
    "latent_dim": [4, 16, 64],
    "temperature": [0.03, 0.1, 0.3, 1.0],
    "w_contrastive": [0.1, 1.0],
}
FIXED_METHOD_PARAMS = {"encoder_width": 8}  # small encoders: the grid must train in minutes on 2 cores
METRIC = "val/fused_acc"
# The tabular problems: a method on a benchmark, a grid over its fields and train.lr ("lr"), the fields held
# fixed, and the training. Each table is trained once (`python benchmarks/perf/search.py build`) and cached
# in benchmarks/tables/<name>.json; the replays and `make bench` read the cache.
PROBLEMS = {
    "pavlov-synthetic-av": {
        "method": "pavlov", "benchmark": "synthetic-av", "space": SPACE, "fixed": FIXED_METHOD_PARAMS,
        "epochs": 12, "train": {"batch_size": 128, "probe_examples": 1000},
        "benchmark_params": {"n_train": 1000, "n_val": 2000, "n_test": 100, "image_size": 16, "n_mels": 16,
                             "frames": 16},
    },
    # Another method on another (audio-only, generated) benchmark: CPC on ten noisy sine-tone bands. Learning
    # rates over 3 decades: at 0.1 every configuration is at chance (0.10) from its first epoch, clearly bad
    # early. But a random CPC network's features already score ~0.7, and the best configurations start below
    # that and climb to 0.93 only in their last epochs: early scores rank configurations poorly here.
    "cpc-sine": {
        "method": "cpc", "benchmark": "sine",
        "space": {"lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1], "negatives": ["inbatch", "queue"],
                  "temperature": [0.05, 0.2, 0.5], "prediction_steps": [1, 2, 4]},
        "fixed": {"z_dim": 16, "c_dim": 32, "encoder_width": 8, "queue_size": 256},
        "epochs": 12, "train": {"batch_size": 64, "probe_examples": 1000},
        "benchmark_params": {"n_train": 1000, "n_val": 1000, "n_test": 100, "n_classes": 10, "noise": 1.5,
                             "n_mels": 16, "frames": 16},
    },
    # A third: fusion (supervised classifier head, contrastive and image-decoder losses) on pavlov's small
    # synthetic-av. Learning rates over 4.5 decades: the lowest barely move a network in 12 epochs and the
    # highest diverge, both clearly bad from the first epochs; the other axes change how fast good ones climb.
    "fusion-synthetic-av": {
        "method": "fusion", "benchmark": "synthetic-av",
        "space": {"lr": [1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1], "fusion": ["attention", "concat"],
                  "modality_dropout": [0.0, 0.3, 0.7], "w_classifier": [0.1, 1.0]},
        "fixed": {"latent_dim": 16, "hidden_dim": 16, "encoder_width": 8, "heads": 2},
        "epochs": 12, "train": {"batch_size": 128, "probe_examples": 1000},
        "benchmark_params": {"n_train": 1000, "n_val": 2000, "n_test": 100, "image_size": 16, "n_mels": 16,
                             "frames": 16},
    },
}
TABLES_DIR = Path(__file__).resolve().parents[1] / "tables"


def grid(space: dict) -> list[dict]:
    keys = list(space)
    return [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]


def key_of(config: dict) -> str:
    return ",".join(f"{k}={config[k]}" for k in sorted(config))


# --- the table: every configuration trained once ---------------------------------------------------------

def train_table(args: dict) -> dict:
    """Train each configuration of args['configs'] of problem args['problem'] (default pavlov-synthetic-av)
    for its epochs: {"curves": {key: [score, ...]}, "cpu_seconds": ...}."""
    import threadpoolctl
    import torch

    import mmray.eval.probes  # noqa: F401  (loads scikit-learn's BLAS and OpenMP before they are limited)
    from mmray.data import prepare
    from mmray.data.shards import read_split

    problem = {**PROBLEMS[args.get("problem", "pavlov-synthetic-av")], **{k: v for k, v in args.items()
                                                                          if k in ("epochs", "train",
                                                                                   "benchmark_params")}}
    # One process per core: one thread each, for torch and for the probe's BLAS alike.
    torch.set_num_threads(1)
    threadpoolctl.threadpool_limits(1)
    prepared = prepare(problem["benchmark"], problem["benchmark_params"], log=lambda *_: None)
    splits = {split: read_split(prepared, split) for split in ("train", "val")}
    train = {**problem["train"], "epochs": problem["epochs"]}
    started = time.process_time()
    curves = {key_of(config): validation_curve_for(problem["method"], problem["fixed"], prepared, splits, config,
                                                   train)
              for config in args["configs"]}
    return {"curves": curves, "cpu_seconds": time.process_time() - started}


def build_table(name: str, cores: int | None = None) -> dict:
    """Train problem `name`'s whole grid, one child process per core, and cache it in benchmarks/tables/."""
    from concurrent.futures import ThreadPoolExecutor

    from common import machine, run_child

    problem = PROBLEMS[name]
    cores = cores or os.cpu_count() or 1
    configs = grid(problem["space"])
    parts = [configs[i::cores] for i in range(cores)]
    started = time.perf_counter()
    with ThreadPoolExecutor(len(parts)) as pool:
        # no time limit: on a busy machine a part can take well over run_child's default half hour
        done = list(pool.map(lambda part: run_child("search_table", {"problem": name, "configs": part},
                                                    timeout=None), parts))
    table = {"problem": name, **problem, "machine": machine(),
             "wall_seconds": time.perf_counter() - started, "cpu_seconds": sum(p["cpu_seconds"] for p in done),
             "curves": {key: curve for part in done for key, curve in part["curves"].items()}}
    TABLES_DIR.mkdir(exist_ok=True)
    (TABLES_DIR / f"{name}.json").write_text(json.dumps(table, indent=1) + "\n")
    return table


def check_table(name: str, keys: list[str] | None = None) -> list[dict]:
    """Train configurations of a cached table again as real trials train (`fit_local`: the full epoch loop and
    metric suite) and compare their val/fused_acc per epoch with the table. Default: the table's best and
    its median configuration (by best score)."""
    import threadpoolctl
    import torch

    from mmray.data import prepare
    from mmray.engine.local import fit_local

    table = load_table(name)
    curves = table["curves"]
    ranked = sorted(curves, key=lambda key: max(curves[key]), reverse=True)
    keys = keys or [ranked[0], ranked[len(ranked) // 2]]
    by_key = {key_of(config): config for config in grid(table["space"])}
    torch.set_num_threads(1)
    threadpoolctl.threadpool_limits(1)
    prepared = prepare(table["benchmark"], table["benchmark_params"], log=lambda *_: None)
    out = []
    for key in keys:
        config = by_key[key]
        history = fit_local(table["method"], prepared,
                            method_params={k: v for k, v in config.items() if k != "lr"} | table["fixed"],
                            train={**table["train"], "epochs": table["epochs"], "lr": config["lr"]}, seed=0)
        trial = [h[METRIC] for h in history]
        out.append({"key": key, "table": curves[key], "trial": trial,
                    "max_abs_difference": max(abs(a - b) for a, b in zip(curves[key], trial))})
    return out


def load_table(name: str) -> dict:
    """The cached table of problem `name` (benchmarks/tables/<name>.json), checked against PROBLEMS."""
    path = TABLES_DIR / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"{path} is missing: build it with `python benchmarks/perf/search.py build {name}`")
    table = json.loads(path.read_text())
    problem = PROBLEMS[name]
    for field in ("method", "benchmark", "space", "fixed", "epochs", "train", "benchmark_params"):
        if json.loads(json.dumps(problem[field])) != table[field]:
            raise SystemExit(f"{path} was built for another {field}: rebuild it with "
                             f"`python benchmarks/perf/search.py build {name}`")
    return table


def validation_curve_for(method: str, fixed: dict, prepared, splits: dict, config: dict, train: dict) -> list[float]:
    """`fit_local`'s training of one configuration (seed 0), with only its val/fused_acc evaluated per epoch."""
    import torch

    from mmray.engine.batching import tensor_batches
    from mmray.engine.evaluation import EVAL_BATCH
    from mmray.engine.params import TrainParams
    from mmray.engine.training import build_method, embed_all, seed_everything, train_epoch
    from mmray.eval.probes import fit_probe, probe_accuracy

    params = TrainParams.model_validate({**train, "lr": config["lr"]})
    method_params = {k: v for k, v in config.items() if k != "lr"} | fixed
    seed_everything(0)
    modalities = prepared.modalities
    probe_batches = list(tensor_batches(splits["train"].head(params.probe_examples), EVAL_BATCH, modalities))
    val_batches = list(tensor_batches(splits["val"], EVAL_BATCH, modalities))
    model = build_method(method, modalities, prepared.num_classes, method_params)
    optimizer = torch.optim.AdamW(model.param_groups(params.lr), lr=params.lr, weight_decay=params.weight_decay)
    generator = torch.Generator().manual_seed(0)
    curve = []
    for epoch in range(1, params.epochs + 1):
        model.set_epoch(epoch)
        batches = tensor_batches(splits["train"], params.batch_size, modalities, shuffle=True, drop_last=True,
                                 generator=generator)
        train_epoch(model, batches, optimizer, params.grad_clip)
        probe_features, probe_labels = embed_all(model, probe_batches)
        val_features, val_labels = embed_all(model, val_batches)
        curve.append(probe_accuracy(fit_probe(probe_features["fused"], probe_labels), val_features["fused"],
                                    val_labels))
    return curve


# --- the searches: Tune replaying the table --------------------------------------------------------------

# Each searcher as a sweep declares it: the spec's `search` and `scheduler` sections (mmray.config), built into
# Tune's search algorithm and scheduler by the very functions a sweep uses (mmray.orchestration.sweep).
# "default" is the spec's defaults, whatever they are (since issue 26: multivariate TPE with 5 start-up trials
# under ASHA, grace period 1, reduction factor 3); "random+ASHA" is random search under the same scheduler (the
# default before); "TPE+ASHA" is TPE as it was before (univariate, 10 start-up trials) under it. Random search
# and TPE never run a configuration twice on a finite space (mmray.orchestration.distinct). The reference,
# "random", is random search as Tune draws it ("draws": "tune", BasicVariantGenerator: with repeats), the search
# a Tune user runs; "random, no repeats" is mmray's, a stronger reference the default is also measured against.
SEARCHERS = {
    "random": {"search": {"algorithm": "random"}, "scheduler": {"type": "none"}, "draws": "tune"},
    "random, no repeats": {"search": {"algorithm": "random"}, "scheduler": {"type": "none"}},
    "TPE": {"search": {"algorithm": "optuna"}, "scheduler": {"type": "none"}},
    "random+ASHA": {"search": {"algorithm": "random"}, "scheduler": {}},
    "TPE+ASHA": {"search": {"algorithm": "optuna", "multivariate": False, "startup_trials": 10}, "scheduler": {}},
    "default": {"search": {}, "scheduler": {}},
}
REFERENCES = ("random", "random, no repeats")  # what the searchers are measured against (summarise)
# The references draw from seeds of their own. With the same seed, random search + ASHA drew the very configurations
# random search drew, in the same order (common random numbers): it was measured against its own draws, bound to
# meet random's best within the trials random needed, and its ratios flattered (2.79x and 2.62x on pavlov and
# fusion, 100 seeds, against 2.16x and 2.05x drawn apart). TPE draws from a stream of its own either way.
REFERENCE_SEED_OFFSET = 10_000


def _replay_trainable(config, table=None, space=None):
    from ray import tune

    values = {name: space[name][index] for name, index in config.items()}
    started = time.time()  # orders the trials: a SearchGenerator's trial ids are random, not a counter
    for epoch, score in enumerate(table[key_of(values)], start=1):
        tune.report({"epoch": epoch, METRIC: score, "trial_started": started})


def _run(table: dict, space: dict, seed: int, epochs: int, searcher: dict, budget: int) -> list:
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    from mmray.config import SchedulerConfig, SearchConfig
    from mmray.orchestration.sweep import EpochBudget, search_algorithm, trial_scheduler

    search = SearchConfig.model_validate({**searcher["search"], "seed": seed, "metric": METRIC})
    scheduler = SchedulerConfig.model_validate(searcher["scheduler"])
    random = search.algorithm == "random" and scheduler.type == "none"
    tuner = tune.Tuner(
        tune.with_parameters(_replay_trainable, table=table, space=space),
        param_space={name: tune.randint(0, len(values)) for name, values in space.items()},
        tune_config=tune.TuneConfig(metric=METRIC, mode="max",
                                    search_alg=BasicVariantGenerator(random_state=seed, max_concurrent=1)
                                    if searcher.get("draws") == "tune" else
                                    search_algorithm(search, seed=0, concurrency=1),
                                    scheduler=trial_scheduler(scheduler, epochs),
                                    # random search runs its trials to the end: budget // epochs of them
                                    num_samples=budget // epochs if random else budget,
                                    max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="mmray-perf-search-"), verbose=0,
                                  stop=None if random else EpochBudget(budget)),
    )
    return list(tuner.fit())


def _run_in_process(table: dict, space: dict, seed: int, epochs: int, searcher: dict, budget: int
                    ) -> list[list[float]]:
    """What `_run` does, without Tune's controller and actors: the same search algorithm and scheduler objects
    (mmray.orchestration.sweep builds them), called as Tune 2.60's TuneController calls them, one trial at a
    time (suggest; per report: the stopper, then the scheduler, then, unless stopped, the searcher's
    on_trial_result; at the end on_trial_complete of both); the reference random search ("draws": "tune")
    draws as BasicVariantGenerator does. Checked equal to `_run` report by report (`python
    benchmarks/perf/search.py verify`); about 50x faster, so the statistics over many seeds and the searches for
    a default are affordable on 2 cores."""
    from ray import tune
    from ray.tune.search import Searcher
    from ray.tune.search.sample import _BackwardsCompatibleNumpyRng
    from ray.tune.search.variant_generator import generate_variants

    from mmray.config import SchedulerConfig, SearchConfig
    from mmray.orchestration.sweep import EpochBudget, search_algorithm, trial_scheduler

    search = SearchConfig.model_validate({**searcher["search"], "seed": seed, "metric": METRIC})
    scheduler = trial_scheduler(SchedulerConfig.model_validate(searcher["scheduler"]), epochs)
    param_space = {name: tune.randint(0, len(values)) for name, values in space.items()}
    random = search.algorithm == "random"
    tune_draws = searcher.get("draws") == "tune"
    if tune_draws:
        rng = _BackwardsCompatibleNumpyRng(seed)
        draw = lambda _: next(generate_variants({"config": param_space}, random_state=rng))[1]["config"]  # noqa: E731
    else:
        algorithm = search_algorithm(search, seed=0, concurrency=1)
        algorithm.set_search_properties(METRIC, "max", param_space)
        draw = algorithm.suggest
    if scheduler is not None:
        scheduler.set_search_properties(METRIC, "max")
    stopper = EpochBudget(budget)
    trials = budget // epochs if random and scheduler is None else budget

    class Trial:  # what the scheduler reads of a trial
        def __init__(self, trial_id):
            self.trial_id = trial_id

    curves = []
    for number in range(trials):
        trial = Trial(f"t{number:05d}")
        config = draw(trial.trial_id)
        if config == Searcher.FINISHED:  # a finite space, every configuration run
            break
        if scheduler is not None:
            scheduler.on_trial_add(None, trial)
        curve, result = [], None
        values = {name: space[name][index] for name, index in config.items()}
        for epoch, score in enumerate(table[key_of(values)], start=1):
            result = {"epoch": epoch, METRIC: score, "training_iteration": epoch, "trial_id": trial.trial_id}
            curve.append(score)
            stop = stopper(trial.trial_id, result) or (
                scheduler is not None and scheduler.on_trial_result(None, trial, result) == "STOP")
            if stop:
                break
            if not tune_draws:
                algorithm.on_trial_result(trial.trial_id, result)
        if scheduler is not None:
            scheduler.on_trial_complete(None, trial, result)
        if not tune_draws:
            algorithm.on_trial_complete(trial.trial_id, result={**result, "done": True})
        curves.append(curve)
        if stopper.stop_all():
            break
    return curves


def _in_creation_order(results) -> list[list[float]]:
    """Each trial's reported scores, trials in the order they ran (one at a time)."""
    ran = [r for r in results if r.metrics and "trial_started" in r.metrics]  # not the trials stopped unstarted
    return [r.metrics_dataframe[METRIC].tolist() for r in sorted(ran, key=lambda r: r.metrics["trial_started"])]


def _epochs_to_reach(scores: list[float], target: float) -> int | None:
    """Epochs spent until a report reaches `target`; None if none does."""
    return next((spent for spent, score in enumerate(scores, start=1) if score >= target), None)


def search_seed(table: dict, space: dict, seed: int, epochs: int, random_trials: int, searchers: dict,
                in_process: bool = False) -> dict:
    """Every searcher on one seed, each spending random search's whole budget (`random_trials` x `epochs`);
    through Tune, or with `in_process` through the same objects without Tune's controller (_run_in_process)."""
    import numpy as np

    budget = random_trials * epochs
    runs = {}
    for name, searcher in searchers.items():
        drawn_from = seed + REFERENCE_SEED_OFFSET if name in REFERENCES else seed
        np.random.seed(drawn_from)  # ASHA draws a trial's bracket from numpy's global generator
        started = time.perf_counter()
        if in_process:
            curves = _run_in_process(table, space, drawn_from, epochs, searcher, budget)
        else:
            curves = _in_creation_order(_run(table, space, drawn_from, epochs, searcher, budget))
        scores = [score for curve in curves for score in curve][:budget]
        runs[name] = {"scores": scores, "trials": len(curves), "seconds": time.perf_counter() - started}
    target = max(runs["random"]["scores"])
    for run in runs.values():
        run["epochs_to_target"] = _epochs_to_reach(run["scores"], target)
        run["best"] = max(run["scores"])
    return {"seed": seed, "target": target, "budget_epochs": budget, "runs": runs}


def replay(args: dict) -> dict:
    import logging

    import optuna
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    in_process = args.get("in_process", False)
    if not in_process:
        ray.init(address="local", num_cpus=2, logging_level=logging.WARNING, log_to_driver=False,
                 include_dashboard=False)
    table = args["table"]
    rows = [search_seed(table["curves"], table["space"], seed, table["epochs"], args["random_trials"],
                        args["searchers"], in_process)
            for seed in args["seeds"]]
    if not in_process:
        ray.shutdown()
    return {"seeds": rows}


# --- the statistics --------------------------------------------------------------------------------------

def summarise(rows: list[dict], searchers: list[str], reference: str = "random") -> dict:
    """Per searcher, over seeds: epochs to the `reference` search's best (geometric mean and median of the
    reference's epochs over the searcher's, worst seed, share never reaching it, total epochs; never reaching
    it costs the whole budget), and the anytime curve (best score so far after each epoch: mean, 25th and 75th
    percentile)."""
    import statistics

    import numpy as np

    out = {}
    targets = [max(row["runs"][reference]["scores"]) for row in rows]
    reach = [{name: _epochs_to_reach(row["runs"][name]["scores"], target) for name in {reference, *searchers}}
             for row, target in zip(rows, targets)]
    random_epochs = [r[reference] for r in reach]
    for name in searchers:
        spent = [r[name] or row["budget_epochs"] for r, row in zip(reach, rows)]
        ratios = [r / s for r, s in zip(random_epochs, spent)]
        # a search that ended before its budget (a finite space, every configuration run) keeps its best
        best = np.array([np.pad(np.maximum.accumulate(row["runs"][name]["scores"]),
                                (0, row["budget_epochs"] - len(row["runs"][name]["scores"])), mode="edge")
                         for row in rows])
        out[name] = {
            "epochs_to_target": [r[name] for r in reach], "ratios": ratios,
            "geometric_mean": statistics.geometric_mean(ratios), "median": statistics.median(ratios),
            "worst": min(ratios), "never": sum(r[name] is None for r in reach),
            "total_epochs": sum(spent), "random_total_epochs": sum(random_epochs),
            "trials": [row["runs"][name]["trials"] for row in rows],
            "anytime": anytime_points(best),
        }
    return out


def meets_goal(figures: dict) -> bool:
    """Issue 26's goal for one searcher against one reference (a summarise entry): geometric mean >= 3x fewer
    epochs, median >= 2x, total epochs no more than the reference's."""
    return bool(figures["geometric_mean"] >= 3 and figures["median"] >= 2
                and figures["total_epochs"] <= figures["random_total_epochs"])


def anytime_points(best) -> dict:
    """Best score so far over seeds (rows) after each epoch (columns): mean, 25th and 75th percentile at ~200
    epochs evenly spread on a log scale (the figure's x axis), 4 decimals: a small RESULTS.json."""
    import numpy as np

    epochs = np.unique(np.geomspace(1, best.shape[1], 200).round().astype(int))
    columns = best[:, epochs - 1]
    return {"epochs": epochs.tolist(), "mean": columns.mean(0).round(4).tolist(),
            "p25": np.percentile(columns, 25, 0).round(4).tolist(),
            "p75": np.percentile(columns, 75, 0).round(4).tolist()}


# --- the figure: anytime curves as a self-contained SVG (no plotting library needed) ---------------------

COLOURS = {"random": "#7f7f7f", "random, no repeats": "#8c564b", "TPE": "#1f77b4", "random+ASHA": "#2ca02c",
           "TPE+ASHA": "#ff7f0e", "default": "#d62728"}


def anytime_svg(panels: list[dict], width: int = 460, height: int = 300) -> str:
    """One panel per table: {"title", "budget", "summary": summarise(...)}; best score so far (mean over seeds,
    band 25th-75th percentile) against epochs spent, one line per searcher."""
    import numpy as np

    left, right, top, bottom = 52, 12, 28, 40
    total_width = width * len(panels)
    legend_height = 22
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_width}" height="{height + legend_height}" '
            'font-family="sans-serif" font-size="11">'), '<rect width="100%" height="100%" fill="white"/>']
    for p, panel in enumerate(panels):
        x0 = p * width
        curves = panel["summary"]
        # y from the lowest mean after 12 epochs (one full trial) to the top; x logarithmic, 1 to the budget
        low = min(np.interp(12, c["anytime"]["epochs"], c["anytime"]["mean"]) for c in curves.values())
        y_max = float(np.ceil(max(max(c["anytime"]["p75"]) for c in curves.values()) * 50) / 50)
        y_min = float(np.floor(low * 20) / 20)
        budget = panel["budget"]
        sx = lambda e, x0=x0, b=budget: x0 + left + (width - left - right) * np.log(max(e, 1)) / np.log(b)  # noqa: E731
        sy = lambda v, lo=y_min, hi=y_max: top + (height - top - bottom) * (1 - (v - lo) / (hi - lo))  # noqa: E731
        out.append(f'<text x="{x0 + width / 2}" y="16" text-anchor="middle" font-weight="bold">'
                   f'{panel["title"]}</text>')
        for tick in [t for t in (1, 3, 10, 30, 100, 300) if t < budget] + [budget]:
            out.append(f'<line x1="{sx(tick):.1f}" y1="{height - bottom}" x2="{sx(tick):.1f}" y2="{top}" '
                       f'stroke="#eee"/><text x="{sx(tick):.1f}" y="{height - bottom + 14}" '
                       f'text-anchor="middle">{tick}</text>')
        for tick in np.arange(y_min, y_max + 1e-9, (y_max - y_min) / 5):
            out.append(f'<line x1="{sx(1):.1f}" y1="{sy(tick):.1f}" x2="{sx(budget):.1f}" y2="{sy(tick):.1f}" '
                       f'stroke="#eee"/><text x="{sx(1) - 4:.1f}" y="{sy(tick) + 4:.1f}" '
                       f'text-anchor="end">{tick:.2f}</text>')
        out.append(f'<text x="{x0 + left + (width - left - right) / 2}" y="{height - 8}" text-anchor="middle">'
                   'epochs spent (log scale)</text>')
        out.append(f'<text transform="translate({x0 + 12},{top + (height - top - bottom) / 2}) rotate(-90)" '
                   'text-anchor="middle">best val/fused_acc so far</text>')
        for name, c in curves.items():
            colour = COLOURS.get(name, "#9467bd")
            epochs = np.asarray(c["anytime"]["epochs"])
            clip = lambda values, lo=y_min, hi=y_max: np.clip(values, lo, hi)  # noqa: E731
            upper = " ".join(f"{sx(e):.1f},{sy(v):.1f}" for e, v in zip(epochs, clip(c["anytime"]["p75"])))
            lower = " ".join(f"{sx(e):.1f},{sy(v):.1f}" for e, v in zip(epochs[::-1],
                                                                         clip(c["anytime"]["p25"])[::-1]))
            out.append(f'<polygon points="{upper} {lower}" fill="{colour}" fill-opacity="0.12" stroke="none"/>')
            line = " ".join(f"{sx(e):.1f},{sy(v):.1f}" for e, v in zip(epochs, clip(c["anytime"]["mean"])))
            out.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        out.append(f'<rect x="{sx(1):.1f}" y="{top}" width="{sx(budget) - sx(1):.1f}" '
                   f'height="{height - top - bottom}" fill="none" stroke="#888"/>')
    names = list(panels[0]["summary"])
    step = total_width / (len(names) + 1)
    for i, name in enumerate(names):
        x = step * (i + 0.6)
        out.append(f'<line x1="{x:.0f}" y1="{height + 8}" x2="{x + 22:.0f}" y2="{height + 8}" '
                   f'stroke="{COLOURS.get(name, "#9467bd")}" stroke-width="3"/>'
                   f'<text x="{x + 26:.0f}" y="{height + 12}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- the command line ------------------------------------------------------------------------------------

def record_check(name: str, rows: list[dict]) -> None:
    """Write a check's outcome into the cached table (its `checked` field, which run.py reports)."""
    path = TABLES_DIR / f"{name}.json"
    table = json.loads(path.read_text())
    table["checked"] = {"date": time.strftime("%Y-%m-%d", time.gmtime()),
                        "how": "search.py check: retrained as fit_local trains a trial (full epoch loop and metric "
                               "suite), val/fused_acc per epoch compared",
                        "configurations": [{"configuration": row["key"],
                                            "max_abs_difference": row["max_abs_difference"]} for row in rows]}
    path.write_text(json.dumps(table, indent=1) + "\n")


def compare(name: str, searchers: dict, seeds: list[int]) -> None:
    """Replay `searchers` (and random search, the reference) in-process on table `name` over `seeds` and print
    each one's statistics: how the levers for a default are compared before one goes into the spec."""
    references = {name: SEARCHERS[name] for name in REFERENCES}
    rows = replay({"table": load_table(name), "random_trials": 64, "seeds": seeds, "in_process": True,
                   "searchers": {**references, **searchers}})["seeds"]
    for reference in references:
        for searcher, x in summarise(rows, list(searchers), reference).items():
            print(f"{name} | {searcher} against {reference} | geo {x['geometric_mean']:.2f}x | median "
                  f"{x['median']:.2f}x | worst {x['worst']:.2f}x | never {x['never']}/{len(rows)} | total "
                  f"{x['total_epochs']} ({x['random_total_epochs']}) | {'met' if meets_goal(x) else 'missed'}",
                  flush=True)


def main() -> None:
    import argparse
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    parser = argparse.ArgumentParser(description="Build, check and verify the cached tables of the search "
                                                 "benchmark, and compare searchers on them.")
    parser.add_argument("command", choices=["build", "check", "verify", "compare"],
                        help="build: train the tables and cache them; check: retrain two configurations of each "
                             "cached table as a trial trains (fit_local), compare, and record it in the table; "
                             "verify: replay seeds of each table through Tune and in-process, every searcher, and "
                             "compare report by report; compare: replay --searcher's in-process and print their "
                             "statistics against random search")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="verify, compare: the seeds")
    parser.add_argument("--searcher", action="append", default=[], metavar="NAME=JSON",
                        help='compare: a searcher as spec sections, e.g. \'gp2={"search": {}, "scheduler": '
                             '{"grace_period": 2}}\' (repeatable; default: the SEARCHERS)')
    parser.add_argument("problems", nargs="*", default=list(PROBLEMS), help=f"default: all of {', '.join(PROBLEMS)}")
    cli = parser.parse_intermixed_args()  # the problems may follow the options
    for name in cli.problems:
        if cli.command == "compare":
            searchers = dict(item.split("=", 1) for item in cli.searcher)
            compare(name, {k: json.loads(v) for k, v in searchers.items()} or SEARCHERS, cli.seeds)
            continue
        if cli.command == "verify":
            table = load_table(name)
            args = {"table": table, "random_trials": 64, "searchers": SEARCHERS, "seeds": cli.seeds}
            in_process, tune_rows = replay({**args, "in_process": True}), replay(args)
            for a, b in zip(in_process["seeds"], tune_rows["seeds"]):
                for searcher in SEARCHERS:
                    x, y = a["runs"][searcher], b["runs"][searcher]
                    print(f"{name} seed {a['seed']} {searcher}: {x['trials']} trials, {len(x['scores'])} reports: "
                          f"{'equal' if x['scores'] == y['scores'] else 'DIFFERENT'} (Tune {y['seconds']:.0f} s, "
                          f"in-process {x['seconds']:.1f} s)", flush=True)
            continue
        if cli.command == "check":
            rows = check_table(name)
            record_check(name, rows)
            for row in rows:
                print(f"{name} {row['key']}: max |table - trial| {row['max_abs_difference']:.6f}\n"
                      f"  table {[round(x, 4) for x in row['table']]}\n  trial {[round(x, 4) for x in row['trial']]}",
                      flush=True)
            continue
        built = build_table(name)
        scores = [x for curve in built["curves"].values() for x in curve]
        print(f"{name}: {len(built['curves'])} configurations in {built['wall_seconds']:.0f} s "
              f"({built['cpu_seconds']:.0f} CPU s), val/fused_acc {min(scores):.3f} to {max(scores):.3f}",
              flush=True)


if __name__ == "__main__":
    main()
