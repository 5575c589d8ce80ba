"""The sweep driver: one Tune run per (benchmark, method, seed), each searching with Optuna (or random)
under ASHA (or no early stopping), all writing into one results folder."""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import ray
import yaml
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
from ray.tune.schedulers import AsyncHyperBandScheduler
from ray.tune.search import BasicVariantGenerator
from ray.tune.search.optuna import OptunaSearch

from mmray import storage
from mmray.config import (
    BenchmarkEntry,
    ResourcesConfig,
    SchedulerConfig,
    SearchConfig,
    SweepSpec,
    TrialConfig,
    first_point,
    searched_paths,
)
from mmray.data import prepare
from mmray.data.sources import cache_root
from mmray.errors import MmrayError, SpecError
from mmray.orchestration import tracking
from mmray.orchestration.distinct import DistinctConfigurations, RandomDraws
from mmray.orchestration.placement import PlacementGroupReaper
from mmray.orchestration.ray_adapter import (
    ONE_MACHINE_RAY_ENV,
    process_environment,
    start_shared_actors,
    sweep_env,
)
from mmray.orchestration.recorder import ResultsRecorder
from mmray.orchestration.trial import run_trial, trains_in_trial_actor
from mmray.results import schema
from mmray.results.best import top_configs
from mmray.storage import Location

# Custom resource that trial drivers hold instead of a CPU (a driver holding a CPU starves Ray Data's reads).
# A node offers as many units as it has CPUs, and a trial asks for its workers' CPU count (at most 1): a node
# drives the trials its CPUs could run, so on a cluster whose every node offers it, drivers spread with the work
# (each driver's Train controller and Ray Data coordinator run on its node) instead of all loading the head.
TRIAL_DRIVER = "trial_driver"


# Set to 1 to have the local instance start Ray's dashboard (on 127.0.0.1:8265).
DASHBOARD_ENV = "MMRAY_RAY_DASHBOARD"


def ensure_ray(address: str | None = None, verbose: bool = False) -> None:
    if ray.is_initialized():
        return
    if not verbose:  # Optuna's per-study lines; mmray prints one line per trial instead
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    quiet = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.WARNING}
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, **quiet)
    else:
        # address="local": always a new instance, never a `ray start` cluster that happens to run on this
        # machine (plain ray.init() would join that one). No dashboard unless asked for: nothing of mmray's
        # needs it, and its processes take memory and CPU beside the trials (benchmarks/perf). The instance's
        # processes inherit the one-machine settings; this process's environment is restored.
        with process_environment({**ONE_MACHINE_RAY_ENV, **sweep_env(verbose)}):
            ray.init(address="local", num_cpus=os.cpu_count(), resources={TRIAL_DRIVER: os.cpu_count()},
                     include_dashboard=os.environ.get(DASHBOARD_ENV) == "1", dashboard_host="127.0.0.1",
                     **quiet)


def trial_resources(spec: SweepSpec) -> tune.PlacementGroupFactory:
    if trains_in_trial_actor(spec.resources):  # the actor is the trial's one worker
        return tune.PlacementGroupFactory([{"CPU": spec.resources.cpus_per_worker}])
    if ray.cluster_resources().get(TRIAL_DRIVER, 0) > 0:
        share = min(1.0, spec.resources.workers_per_trial * spec.resources.cpus_per_worker)
        return tune.PlacementGroupFactory([{"CPU": 0, TRIAL_DRIVER: share}])
    return tune.PlacementGroupFactory([{"CPU": 0.01}])


def default_concurrency(resources: ResourcesConfig, cpus: float) -> int:
    """As many trials as `cpus` hold, at least one. Trials fed by Ray Data (several workers, or GPUs) leave one
    CPU free for its reads; a one-CPU-worker trial reads its shards itself, in its own process."""
    per_trial = resources.workers_per_trial * resources.cpus_per_worker
    for_reads = 0 if trains_in_trial_actor(resources) else 1
    return max(1, int((cpus - for_reads) // per_trial))


def param_space(spec: SweepSpec, entry: BenchmarkEntry, method: str, seed: int, *, mirror, cache_dir,
                results_dir) -> dict:
    """Tune's param_space of one run: a TrialConfig as a dict, with a search dimension at every searched field."""
    space = TrialConfig.for_run(spec, entry, method, seed, run=run_name(entry.name, method, seed), mirror=mirror,
                                cache_dir=cache_dir, results_dir=results_dir).model_dump()
    for path, dim in searched_paths(spec, method).values():
        *parents, leaf = path  # augment.<kind>.<knob> sits one level deeper than the other sections' fields
        target = space
        for part in parents:
            target = target[part]
        target[leaf] = dim.to_tune(grid=spec.search.algorithm == "grid")
    return space


def check_batch_fits(spec: SweepSpec, benchmark: str, train_rows: int) -> None:
    """Every batch size the sweep may train with must fit in each worker's share of the training split (workers
    drop an epoch's last partial batch): a trial would otherwise fail with no batch to train on."""
    searched = spec.search_space.get("train.batch_size")
    largest = max(searched.sample_values()) if searched else spec.train_params.batch_size
    workers = spec.resources.workers_per_trial
    share = train_rows // workers
    if largest > share:
        per_worker = f", {share} per worker of {workers}" if workers > 1 else ""
        raise SpecError(f"train.batch_size {largest} is larger than {benchmark}'s training split ({train_rows} "
                        f"rows{per_worker}); use a batch size of at most {share}")


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
            prepared = prepare(entry.name, entry.params, mirror=mirror, cache_dir=cache_dir, log=log)
            check_batch_fits(spec, entry.name, prepared.rows("train"))

    env = sweep_env(verbose) | (tracking.offline_env(log) if spec.wandb.enabled else {})
    with process_environment(env):
        ensure_ray(address, verbose)
        if not trains_in_trial_actor(spec.resources):  # TorchTrainer trials, fed by Ray Data
            start_shared_actors()
        _run_tune(spec, results_dir, resume, mirror, cache_dir, verbose, log)
    return results_dir


def _run_tune(spec: SweepSpec, results_dir: Location, resume: bool, mirror, cache_dir, verbose: bool, log) -> None:
    # Tune's per-trial result.json and progress.csv, as Ray users know them; not its TensorBoard files, whose
    # writer (tensorboardX) loads torch into the driver (~125 MiB): `tensorboard: true` writes mmray's own.
    # TUNE_DISABLE_AUTO_CALLBACK_LOGGERS (ray_adapter.sweep_env) keeps Tune from adding it.
    callbacks = [PlacementGroupReaper(), JsonLoggerCallback(), CSVLoggerCallback()]
    if spec.wandb.enabled:
        callbacks.append(tracking.trial_callback(spec, results_dir))
    if spec.tensorboard:
        callbacks.append(TensorBoardScalars(results_dir))

    def recording(max_epochs: int | None) -> list:
        """The callbacks with a results recorder told of the run's epoch budget (a search's; repeats have none)."""
        return [ResultsRecorder(results_dir, spec.name, spec.search.metric, spec.search.mode, log=log,
                                max_epochs=max_epochs), *callbacks]

    concurrency = (spec.resources.max_concurrent_trials
                   or default_concurrency(spec.resources, ray.cluster_resources().get("CPU", 1)))
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
        first = (first_point(spec, entry, method)
                 if spec.search.first_trial == "defaults" and spec.search_space else None)
        results = _restore_or_tune(
            spec, trainable, name, results_dir, resume, log, lambda: _tuner(
                spec, trainable, space, name, results_dir, recording(spec.search.max_epochs), concurrency,
                first_seed, first),
            f"{trial_count(spec)} trials, {search}, {spec.scheduler.type} scheduler, "
            f"{concurrency} at a time").fit()
        if not other_seeds:
            continue
        for rank, config in enumerate(_best_configs(results, spec), start=1):
            repeat = f"{entry.name}__{method}__best{rank}_seeds"
            _restore_or_tune(
                spec, trainable, repeat, results_dir, resume, log, lambda: _repeat_tuner(
                    spec, trainable, config, other_seeds, repeat, results_dir, recording(None), concurrency),
                f"configuration #{rank} of {name} again on seeds {other_seeds}").fit()


class TensorBoardScalars(tune.Callback):
    """`tensorboard: true` (`mmray sweep --tensorboard`): every metric a trial reports, as a TensorBoard scalar per
    epoch (tag: its column in epochs.parquet, e.g. val/fused_acc; step: the epoch), in one folder per trial,
    <results>/tensorboard/<run>/<trial id>/ (Tune's own TensorBoard logger is not used: _run_tune). Each epoch is
    on disk when the callback returns (tensorboardX's EventsWriter; its SummaryWriter
    writes from a thread of its own); with remote results the files are written in a local temp folder and
    uploaded every epoch."""

    def __init__(self, results_dir: Location):
        self.logdir = storage.join(results_dir, "tensorboard")
        self._open: dict = {}  # trial id -> (event file writer, its location, its local folder)
        self._epochs: dict[str, int] = {}  # trial id -> the last epoch written

    def __getstate__(self) -> dict:  # Tune pickles its callbacks into the experiment state: no open files
        return {**self.__dict__, "_open": {}, "_epochs": {}}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        epoch = int(result["epoch"])
        if epoch <= self._epochs.get(trial.trial_id, 0):
            return  # a worker restored from a checkpoint reports its epochs again: the first report stands
        self._epochs[trial.trial_id] = epoch
        if trial.trial_id not in self._open:
            where = storage.join(self.logdir, trial.config["run"], trial.trial_id)
            local = Path(tempfile.mkdtemp(prefix="mmray-tensorboard-") if storage.is_uri(where) else where)
            local.mkdir(parents=True, exist_ok=True)
            # a file of its own per writer: a name from the second alone would collide with the file of a
            # writer for the same trial opened in the same second (a driver's restored callback), and replace it
            writer = EventsWriter(str(local / "events"), filename_suffix=f".{os.urandom(4).hex()}")
            self._open[trial.trial_id] = (writer, where, local)
        writer, where, local = self._open[trial.trial_id]
        values = [Summary.Value(tag=name, simple_value=value) for name, value in result.items()
                  if schema.is_metric_column(name) and isinstance(value, (int, float)) and not isinstance(value, bool)]
        writer.write_event(Event(wall_time=time.time(), step=epoch, summary=Summary(value=values)))
        writer.flush()
        if storage.is_uri(where):
            storage.upload(where, local)

    def on_trial_complete(self, iteration, trials, trial, **info):
        opened = self._open.pop(trial.trial_id, None)
        self._epochs.pop(trial.trial_id, None)
        if opened:
            opened[0].close()
            if storage.is_uri(opened[1]):
                shutil.rmtree(opened[2], ignore_errors=True)

    on_trial_error = on_trial_complete


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
    return top_configs(((r.metrics_dataframe if r.error is None else None, r.config) for r in results),
                       spec.search.metric, spec.search.mode, spec.search.repeat_top)


def _repeat_tuner(spec: SweepSpec, trainable, config: dict, seeds: list[int], name: str,
                  results_dir: Location, callbacks: list, concurrency: int) -> tune.Tuner:
    """Re-run one chosen configuration, unchanged and to the last epoch (no early stopping), once per seed."""
    space = {**config, "run": name, "seed": tune.grid_search(seeds)}
    return tune.Tuner(
        trainable, param_space=space,
        tune_config=tune.TuneConfig(metric=spec.search.metric, mode=spec.search.mode,
                                    max_concurrent_trials=concurrency, reuse_actors=True),
        run_config=_run_config(spec, name, results_dir, callbacks, config["max_worker_failures"]),
    )


def _run_config(spec: SweepSpec, name: str, results_dir: Location, callbacks: list, max_failures: int,
                stop=None) -> tune.RunConfig:
    """A run's Tune settings. Trials that train in their Tune actor (mmray.orchestration.trial) restart from their
    last checkpoint when that actor dies, as a TorchTrainer restarts its worker group (which then does it)."""
    in_actor = trains_in_trial_actor(spec.resources)
    return tune.RunConfig(name=name, storage_path=str(storage.join(results_dir, "tune")), callbacks=callbacks,
                          verbose=0, stop=stop, checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                          failure_config=tune.FailureConfig(max_failures=max_failures if in_actor else 0))


def search_algorithm(search: SearchConfig, seed: int, concurrency: int, searched: bool = True,
                     first: dict[tuple[str, ...], Any] | None = None):
    """The spec's `search` section as a Tune search algorithm (the tabular benchmark, benchmarks/perf/search.py,
    builds its searchers here too). `seed` is added to search.seed: the run's seed. `first`: the values of the
    first trial, by their path in the param space (search.first_trial)."""
    if search.algorithm == "optuna" and searched:
        with warnings.catch_warnings():  # optuna calls `group` experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(
                seed=search.seed + seed, n_startup_trials=search.startup_trials, multivariate=search.multivariate,
                group=search.multivariate, constant_liar=concurrency > 1)
        return DistinctConfigurations(OptunaSearch(sampler=sampler, points_to_evaluate=[
            {"/".join(path): value for path, value in first.items()}] if first else None), seed=search.seed + seed)
    if search.algorithm == "random" and searched:
        # seeded, so that a sweep draws the same configurations every time; no repeats (distinct.py)
        return DistinctConfigurations(RandomDraws(search.seed + seed, points=[_nested(first)] if first else None),
                                      seed=search.seed + seed)
    # a grid, or nothing searched: Tune's generator (Tune does not apply max_concurrent_trials to a generator
    # passed in: it must be given here)
    return BasicVariantGenerator(random_state=search.seed + seed, max_concurrent=concurrency,
                                 points_to_evaluate=[_nested(first)] if first else None)


def _nested(point: dict[tuple[str, ...], Any]) -> dict:
    nested: dict = {}
    for path, value in point.items():
        target = nested
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return nested


def trial_scheduler(scheduler: SchedulerConfig, epochs: int):
    """The spec's `scheduler` section as a Tune scheduler over `epochs`-epoch trials (None: no early stopping)."""
    if scheduler.type == "none":
        return None
    return AsyncHyperBandScheduler(time_attr="epoch", max_t=epochs, grace_period=scheduler.grace_period,
                                   reduction_factor=scheduler.reduction_factor, brackets=scheduler.brackets)


def trial_count(spec: SweepSpec) -> int:
    """Trials of one run's search (at most): search.num_samples, every combination of a grid search once, and
    random search and TPE run each configuration of a finite space once (mmray.orchestration.distinct)."""
    sizes = [dim.size for dim in spec.search_space.values()]
    if spec.search.algorithm == "grid":  # every dimension a choice (validated)
        return math.prod(sizes)
    if sizes and None not in sizes:
        return min(spec.search.num_samples, math.prod(sizes))
    return spec.search.num_samples


def _tuner(spec: SweepSpec, trainable, space: dict, name: str, results_dir: Location, callbacks: list,
           concurrency: int, seed: int, first: dict | None = None) -> tune.Tuner:
    search_alg = search_algorithm(spec.search, seed, concurrency, searched=bool(spec.search_space), first=first)
    scheduler = trial_scheduler(spec.scheduler, spec.train_params.epochs)
    return tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(metric=spec.search.metric, mode=spec.search.mode, search_alg=search_alg,
                                    scheduler=scheduler,
                                    # a grid's variants are its trials: one sample of it runs each once
                                    num_samples=1 if spec.search.algorithm == "grid" else spec.search.num_samples,
                                    # a generator limits itself (search_algorithm); Tune warns when told to
                                    max_concurrent_trials=None if isinstance(search_alg, BasicVariantGenerator)
                                    else concurrency,
                                    # a trial's actor runs the next trial: imports and start-up paid once
                                    reuse_actors=True),
        run_config=_run_config(spec, name, results_dir, callbacks, space["max_worker_failures"],
                               stop=None if spec.search.max_epochs is None else EpochBudget(spec.search.max_epochs)),
    )


class EpochBudget(tune.Stopper):
    """search.max_epochs: stops the whole search once its trials have reported that many epochs in all (an
    epoch a restored trial reports again counts once)."""

    def __init__(self, max_epochs: int):
        self.max_epochs, self.reported = max_epochs, set()

    def __call__(self, trial_id: str, result: dict) -> bool:
        if schema.EPOCH in result:
            self.reported.add((trial_id, result[schema.EPOCH]))
        return self.stop_all()

    def stop_all(self) -> bool:
        return len(self.reported) >= self.max_epochs
