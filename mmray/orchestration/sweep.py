"""The sweep driver: one Tune run per (benchmark, method, seed), each searching with Optuna (or random)
under ASHA (or no early stopping), all writing into one results folder."""

from __future__ import annotations

import logging
import os

import optuna
import ray
import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import BasicVariantGenerator
from ray.tune.search.optuna import OptunaSearch

from mmray import storage
from mmray.config import SweepSpec
from mmray.data import prepare
from mmray.data.sources import cache_root
from mmray.errors import MmrayError
from mmray.orchestration import tracking
from mmray.orchestration.placement import PlacementGroupReaper
from mmray.orchestration.recorder import ResultsRecorder
from mmray.orchestration.trial import run_trial
from mmray.results import schema
from mmray.storage import Location

# Custom resource that trial drivers hold instead of a CPU (a driver holding a CPU starves Ray Data's reads).
# A node offers as many units as it has CPUs, and a trial asks for its workers' CPU count (at most 1): a node
# drives the trials its CPUs could run, so on a cluster whose every node offers it, drivers spread with the work
# (each driver's Train controller and Ray Data coordinator run on its node) instead of all loading the head.
TRIAL_DRIVER = "trial_driver"


# Ray settings for instances whose nodes all run on this one machine: a local instance (where a variable the
# user has set wins) and mmray.orchestration.local_cluster.LocalCluster.
ONE_MACHINE_RAY_ENV = {
    # Train's preemption watcher (one actor per trial, polling for node drains) has nothing to watch on one
    # machine; not starting it saves every trial a process start-up.
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    # Nothing scrapes these Prometheus metrics: Ray's metric export and Train's per-run metric callbacks only
    # cost CPU beside the trials (~4 s of CPU in a 60 s one-trial sweep on 2 cores, benchmarks/perf). Set
    # either variable to 1 to have them.
    "RAY_enable_metrics_collection": "0",
    "RAY_TRAIN_METRICS_ENABLED": "0",
}


# Set to 1 to have the local instance start Ray's dashboard (on 127.0.0.1:8265).
DASHBOARD_ENV = "MMRAY_RAY_DASHBOARD"


def ensure_ray(address: str | None = None, verbose: bool = False) -> None:
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1" if not verbose else "0")
    if not verbose:  # Tune's boxed tables and Optuna's per-study lines; mmray prints one line per trial instead
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    quiet = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.WARNING}
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, **quiet)
    else:
        # address="local": always a new instance, never a `ray start` cluster that happens to run on this
        # machine (plain ray.init() would join that one). No dashboard unless asked for: nothing of mmray's
        # needs it, and its processes take memory and CPU beside the trials (benchmarks/perf).
        for name, value in ONE_MACHINE_RAY_ENV.items():  # workers inherit this environment
            os.environ.setdefault(name, value)
        ray.init(address="local", num_cpus=os.cpu_count(), resources={TRIAL_DRIVER: os.cpu_count()},
                 include_dashboard=os.environ.get(DASHBOARD_ENV) == "1", dashboard_host="127.0.0.1", **quiet)
    start_shared_actors()


def start_shared_actors() -> None:
    """Ray Data's stats actor and the autoscaling coordinator (which Train asks for a trial's workers) are
    cluster-wide actors that Ray creates on first use: inside the first trial, each a process to start on its
    path to the first batch (about 3 s each on 2 cores, benchmarks/perf). Asked for here (it returns at once;
    an existing actor is reused), they start while Tune does. Ray's own helpers, as Ray names them in 2.60."""
    from ray.data._internal.cluster_autoscaler.default_autoscaling_coordinator import (
        get_or_create_autoscaling_coordinator,
    )
    from ray.data._internal.stats import get_or_create_stats_actor

    get_or_create_stats_actor()
    get_or_create_autoscaling_coordinator()


def trial_resources(spec: SweepSpec) -> tune.PlacementGroupFactory:
    if ray.cluster_resources().get(TRIAL_DRIVER, 0) > 0:
        share = min(1.0, spec.resources.workers_per_trial * spec.resources.cpus_per_worker)
        return tune.PlacementGroupFactory([{"CPU": 0, TRIAL_DRIVER: share}])
    return tune.PlacementGroupFactory([{"CPU": 0.01}])


def default_concurrency(spec: SweepSpec) -> int:
    """As many trials as leave one CPU free for Ray Data reads, at least one."""
    per_trial = spec.resources.workers_per_trial * spec.resources.cpus_per_worker
    cpus = ray.cluster_resources().get("CPU", 1)
    return max(1, int((cpus - 1) // per_trial))


def param_space(spec: SweepSpec, benchmark, method: str, seed: int, *, mirror, cache_dir, results_dir) -> dict:
    space = {
        "sweep": spec.name,
        "run": run_name(benchmark.name, method, seed),
        "benchmark": benchmark.name,
        "method": method,
        "seed": seed,
        "benchmark_params": dict(benchmark.params),
        "method_params": dict(spec.method_params.get(method, {})),
        "train": dict(spec.train),
        "resources": spec.resources.model_dump(),
        "mirror": str(mirror) if mirror else None,
        "cache_dir": str(cache_dir),
        "results_dir": str(results_dir),
        "max_worker_failures": 1,
    }
    for key, dim in spec.search_space.items():
        scope, _, field = key.partition(".")
        if scope == "train":
            space["train"][field] = dim.to_tune()
        elif scope == "benchmark":
            space["benchmark_params"][field] = dim.to_tune()
        elif scope in ("method", method):
            space["method_params"][field] = dim.to_tune()
    return space


def run_name(benchmark: str, method: str, seed: int) -> str:
    return f"{benchmark}__{method}__seed{seed}"


def run_sweep(spec: SweepSpec, *, mirror=None, cache_dir=None, results_dir=None,
              resume: bool = False, overwrite: bool = False, address: str | None = None,
              verbose: bool = False, log=print) -> Location:
    """Run the sweep into `results_dir` (default: the spec's storage_path/name), a local folder or a URI."""
    results_dir = storage.location(results_dir) if results_dir else spec.results_dir()
    if storage.listdir(results_dir) and not (resume or overwrite):
        raise MmrayError(f"{results_dir} already holds results; pass --resume to continue that sweep "
                         "or --overwrite to start it again")
    if overwrite:
        storage.delete(results_dir)
    storage.makedirs(results_dir)
    storage.write_text(storage.join(results_dir, schema.SPEC_FILE),
                       yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    cache_dir = cache_root(cache_dir)

    for entry in spec.benchmarks:  # prepare once here, with progress; trials then find the cached shards
        if not any(key.startswith("benchmark.") for key in spec.search_space):
            prepare(entry.name, entry.params, mirror=mirror, cache_dir=cache_dir, log=log)

    # Save Tune's experiment state at least every second (default: every 10 s or more), so a trial that
    # finished just before the driver was killed is known as finished on --resume and never re-run.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
    ensure_ray(address, verbose)
    callbacks = [ResultsRecorder(results_dir, spec.name, spec.search.metric, spec.search.mode, log=log),
                 PlacementGroupReaper()]
    if spec.wandb.enabled:
        tracking.ensure_mode(log)
        callbacks.append(tracking.trial_callback(spec, results_dir))
    concurrency = spec.resources.max_concurrent_trials or default_concurrency(spec)
    trainable = tune.with_resources(run_trial, trial_resources(spec))
    first_seed, *other_seeds = spec.seeds
    runs, left_out = spec.runs()
    for benchmark, method, reason in left_out:
        log(f"[mmray] not running {method} on {benchmark}: {reason}")
    for entry, method in runs:
        name = run_name(entry.name, method, first_seed)
        space = param_space(spec, entry, method, first_seed, mirror=mirror, cache_dir=cache_dir,
                            results_dir=results_dir)
        search = f"{spec.search.algorithm} search" if spec.search_space else "fixed config"
        results = _restore_or_tune(
            spec, trainable, name, results_dir, resume, log, lambda: _tuner(
                spec, trainable, space, name, results_dir, callbacks, concurrency, first_seed),
            f"{spec.search.num_samples} trials, {search}, {spec.scheduler.type} scheduler, "
            f"{concurrency} at a time").fit()
        if not other_seeds:
            continue
        for rank, config in enumerate(_best_configs(results, spec), start=1):
            repeat = f"{entry.name}__{method}__best{rank}_seeds"
            _restore_or_tune(
                spec, trainable, repeat, results_dir, resume, log, lambda: _repeat_tuner(
                    spec, trainable, config, other_seeds, repeat, results_dir, callbacks, concurrency),
                f"configuration #{rank} of {name} again on seeds {other_seeds}").fit()
    return results_dir


def _restore_or_tune(spec: SweepSpec, trainable, name: str, results_dir: Location, resume: bool, log,
                     make_tuner, description: str) -> tune.Tuner:
    run_path = storage.join(results_dir, "tune", name)
    if resume and tune.Tuner.can_restore(str(run_path)):
        log(f"[mmray] resuming {name}")
        return tune.Tuner.restore(str(run_path), trainable, resume_unfinished=True, restart_errored=True)
    log(f"[mmray] {name}: {description}")
    return make_tuner()


def _best_configs(results, spec: SweepSpec) -> list[dict]:
    """The trial configs of the best `repeat_top` trials (by their best epoch), best first."""
    scored = []
    for result in results:
        frame = result.metrics_dataframe
        if result.error is None and frame is not None and spec.search.metric in frame:
            values = frame[spec.search.metric].dropna()
            if len(values):
                scored.append((values.max() if spec.search.mode == "max" else -values.min(), result.config))
    scored.sort(key=lambda pair: pair[0], reverse=True)
    return [config for _, config in scored[:spec.search.repeat_top]]


def _repeat_tuner(spec: SweepSpec, trainable, config: dict, seeds: list[int], name: str,
                  results_dir: Location, callbacks: list, concurrency: int) -> tune.Tuner:
    """Re-run one chosen configuration, unchanged and to the last epoch (no early stopping), once per seed."""
    space = {**config, "run": name, "seed": tune.grid_search(seeds)}
    return tune.Tuner(
        trainable, param_space=space,
        tune_config=tune.TuneConfig(metric=spec.search.metric, mode=spec.search.mode,
                                    max_concurrent_trials=concurrency),
        run_config=tune.RunConfig(name=name, storage_path=str(storage.join(results_dir, "tune")),
                                  callbacks=callbacks, verbose=0),
    )


def _tuner(spec: SweepSpec, trainable, space: dict, name: str, results_dir: Location, callbacks: list,
           concurrency: int, seed: int) -> tune.Tuner:
    if spec.search.algorithm == "optuna" and spec.search_space:
        search_alg = OptunaSearch(seed=spec.search.seed + seed)
    else:  # random sampling of the space, seeded so that a sweep draws the same configurations every time
        # (Tune does not apply max_concurrent_trials to a generator passed in: it must be given here)
        search_alg = BasicVariantGenerator(random_state=spec.search.seed + seed, max_concurrent=concurrency)
    scheduler = None
    if spec.scheduler.type == "asha":
        scheduler = ASHAScheduler(time_attr="epoch", max_t=spec.train_params.epochs,
                                  grace_period=spec.scheduler.grace_period,
                                  reduction_factor=spec.scheduler.reduction_factor)
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(metric=spec.search.metric, mode=spec.search.mode, search_alg=search_alg,
                                    scheduler=scheduler, num_samples=spec.search.num_samples,
                                    max_concurrent_trials=concurrency),
        run_config=tune.RunConfig(name=name, storage_path=str(storage.join(results_dir, "tune")),
                                  callbacks=callbacks, verbose=0),
    )
