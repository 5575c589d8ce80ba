"""The typed sweep specification (YAML under sweeps/), its validation, and the typed config of one trial.

Everything is checked before Ray starts: an unknown key, a bad range, an unknown method or benchmark, or a
method that cannot run on a benchmark is one `SpecError` line naming the file, the key and the valid choices.
A validated spec holds the effective values, defaults included, which is what sweep.yaml records.
"""

from __future__ import annotations

import builtins
import copy
import difflib
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mmray import storage
from mmray.augment.params import KINDS as AUGMENT_KINDS
from mmray.augment.params import AugmentParams
from mmray.engine.params import TrainParams
from mmray.errors import SpecError, validation_problem
from mmray.results import schema
from mmray.storage import Location

DIM_KINDS = ("choice", "uniform", "loguniform", "int")


class SearchDim(BaseModel):
    """One searched value: exactly one of choice / uniform / loguniform / int (inclusive integer range)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    choice: list[Any] | None = None
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    # `builtins.int`: inside the class body the name `int` is this field (default None), so a bare
    # `tuple[int, int]` resolved to tuple[None, None] and rejected every integer range.
    int: tuple[builtins.int, builtins.int] | None = None

    @model_validator(mode="after")
    def _one_kind(self):
        given = [k for k in DIM_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(DIM_KINDS)} (got {given or 'none'})")
        kind = given[0]
        if kind == "choice":
            if not self.choice:
                raise ValueError("choice needs at least one value")
        else:
            low, high = getattr(self, kind)
            if not low < high:
                raise ValueError(f"{kind} range [{low}, {high}]: low must be below high")
            if kind == "loguniform" and low <= 0:
                raise ValueError(f"loguniform range [{low}, {high}]: low must be positive")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in DIM_KINDS if getattr(self, k) is not None)

    @property
    def size(self) -> builtins.int | None:
        """How many values a choice or an integer range holds; None for a continuous range."""
        if self.kind == "choice":
            return len(self.choice)
        return self.int[1] - self.int[0] + 1 if self.kind == "int" else None

    def sample_values(self) -> list[Any]:
        """Values that stand for the whole dimension when type-checking it against a parameter model."""
        return list(self.choice) if self.kind == "choice" else list(getattr(self, self.kind))

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return value in self.choice
        low, high = getattr(self, self.kind)
        return isinstance(value, builtins.int | float) and low <= value <= high

    def to_tune(self, grid: bool = False):
        from ray import tune

        if grid:
            return tune.grid_search(list(self.choice))
        if self.kind == "choice":
            return tune.choice(self.choice)
        if self.kind == "uniform":
            return tune.uniform(*self.uniform)
        if self.kind == "loguniform":
            return tune.loguniform(*self.loguniform)
        return tune.randint(self.int[0], self.int[1] + 1)  # randint's upper bound is exclusive


@dataclass(frozen=True)
class SearchKey:
    """A search_space key resolved: the section of a trial's config it sets, the field, and for a
    '<method>.<field>' key the one method it applies to ('method.<field>' applies to every method)."""

    section: Literal["train", "method", "benchmark", "augment"]
    field: str  # augment: '<modality kind>.<knob>' or 'views'
    method: str | None = None

    @classmethod
    def parse(cls, key: str, methods: list[str] | None = None) -> SearchKey:
        """`methods`: the sweep's methods; None takes any other scope for a method's name (a spec checked
        already, as sweep.yaml holds it)."""
        scope, _, field = key.partition(".")
        if not field:
            raise SpecError(f"search_space key '{key}' must look like train.lr, method.latent_dim, "
                            "<method>.latent_dim, benchmark.n_mels or augment.audio.noise_p")
        if scope in ("train", "method", "benchmark", "augment"):
            return cls(scope, field)
        if methods is None or scope in methods:
            return cls("method", field, scope)
        raise SpecError(f"search_space key '{key}': '{scope}' is not train, method, benchmark "
                        f"or one of the sweep's methods {methods}")

    def applies_to(self, method: str) -> bool:
        return self.method in (None, method)

    @property
    def trial_field(self) -> str:
        """The TrialConfig field this key sets a value of."""
        return {"train": "train", "method": "method_params", "benchmark": "benchmark_params",
                "augment": "augment"}[self.section]

    @property
    def column(self) -> str:
        """The trials-table column that records the value (method.<p> and <method>.<p> land in one)."""
        return schema.config_column(self.section, self.field)


class BenchmarkEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class SearchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # optuna (TPE, multivariate, 5 start-up trials) under ASHA (the scheduler's default) reached random search's
    # best in 3.78x and 2.97x fewer epochs than random search (geometric mean, 200 seeds, benchmarks/perf's pavlov
    # and fusion tables); random search under ASHA in 2.33x and 2.47x (README, Search)
    # grid: every combination of the search_space's choices, once each (they must all be choices)
    algorithm: Literal["optuna", "random", "grid"] = "optuna"
    metric: str = "val/fused_acc"
    mode: Literal["max", "min"] | None = Field(None, description="left out: the metric's direction in the "
                                               "results schema (validate_spec refuses a mode against it)")
    num_samples: int = Field(8, ge=1)
    seed: int = 0
    repeat_top: int = Field(1, ge=1, description="with several seeds: how many of the best configurations the "
                            "search found (on the first seed) are re-run on every other seed")
    # Optuna's TPE (algorithm optuna); with trials running concurrently it always uses the constant liar
    startup_trials: int = Field(5, ge=1, description="TPE: trials drawn at random before it models the space")
    multivariate: bool = Field(True, description="TPE: model the searched parameters jointly (grouped), not "
                               "each on its own")
    max_epochs: int | None = Field(None, ge=1, description="an epoch budget: the search stops once its trials "
                                   "have run this many epochs in all (None: num_samples trials, however long)")
    first_trial: Literal["drawn", "defaults"] = Field(
        "drawn", description="defaults: the first trial of every run takes, for each searched key, the value the "
                             "spec and the code's defaults give it (a preset's own), and the search goes on from there")

    @model_validator(mode="before")
    @classmethod
    def _mode_from_schema(cls, value):
        # filled here, so every reader of a spec (and sweep.yaml) sees 'max' or 'min'; an unknown metric keeps
        # None until validate_spec refuses it with suggestions
        if isinstance(value, dict) and value.get("mode") is None:
            metric = value.get("metric", cls.model_fields["metric"].default)
            if isinstance(metric, str) and schema.metric_info(metric) is not None:
                value = {**value, "mode": schema.search_mode(metric)}
        return value


class SchedulerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["asha", "none"] = "asha"
    grace_period: int = Field(1, ge=1)
    # 3: no other factor (2, 3.5, 4, 5) nor 2-3 brackets did better on both benchmarks/perf tables it has to win
    # on, pavlov and fusion (3.5 did on seeds 0-19, not on seeds 20-39): README, Search
    reduction_factor: float = Field(3.0, gt=1)
    brackets: int = Field(1, ge=1, description="ASHA's brackets (Hyperband-style): bracket s stops trials first "
                          "at grace_period x reduction_factor^s epochs; each trial is drawn into one")


class ResourcesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    workers_per_trial: int = Field(1, ge=1)
    cpus_per_worker: float = Field(1, gt=0)
    gpus_per_worker: float = Field(0, ge=0)
    torch_threads: int | None = Field(None, ge=1, description="None: one per CPU of the worker")
    placement_strategy: Literal["PACK", "SPREAD"] = Field(
        "PACK", description="where a trial's workers go: PACK onto few nodes, SPREAD across nodes")
    max_concurrent_trials: int | None = Field(None, ge=1, description="None: as many as the CPUs allow")


class WandbConfig(BaseModel):
    """Optional W&B dashboards: one run per trial grouped by sweep, plus a summary run with the tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = False
    project: str = "mmray"
    entity: str | None = None


class SweepSpec(BaseModel):
    """A whole sweep: which benchmarks x methods x seeds, what to search, how to schedule, where to write."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    benchmarks: list[BenchmarkEntry] = Field(min_length=1)
    methods: list[str] = Field(min_length=1)
    # The search runs on the first seed; the best `search.repeat_top` configurations are then re-run, fully and
    # unchanged, on every other seed, so the leaderboard can give each a mean and a confidence interval.
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    # all: every method must fit every benchmark (a mismatch is an error); fitting: each method runs on the
    # benchmarks whose modalities it can use, and the pairs left out are listed
    pairs: Literal["all", "fitting"] = "all"
    train: dict[str, Any] = Field(default_factory=dict)
    # augmentation of the training batches per modality kind (mmray.augment.params); every knob off by default
    augment: dict[str, Any] = Field(default_factory=dict)
    method_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    search_space: dict[str, SearchDim] = Field(default_factory=dict)
    search: SearchConfig = SearchConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    resources: ResourcesConfig = ResourcesConfig()
    wandb: WandbConfig = WandbConfig()
    # Every trial's metrics per epoch as TensorBoard scalars, in <results>/tensorboard/<run>/<trial id>/
    # (mmray.orchestration.sweep.TensorBoardScalars): `tensorboard --logdir results/<name>/tensorboard`.
    tensorboard: bool = False
    # Pretrained weights a method's params name must be in the local cache, or the sweep stops before it
    # starts; true lets those parts start from random weights instead (logged, and recorded per trial).
    allow_random_weights: bool = False
    storage_path: str = "results"

    @field_validator("benchmarks", mode="before")
    @classmethod
    def _names_to_entries(cls, value):
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("search_space", mode="before")
    @classmethod
    def _search_dims(cls, value):
        # A plain value pins the parameter; a mapping is a searched dimension.
        if isinstance(value, dict):
            return {k: v if isinstance(v, dict) else {"choice": [v]} for k, v in value.items()}
        return value

    @property
    def train_params(self) -> TrainParams:
        return TrainParams.model_validate(self.train)

    def runs(self) -> tuple[list[tuple[BenchmarkEntry, str]], list[tuple[str, str, str]]]:
        """The (benchmark entry, method) pairs this sweep runs, and the (benchmark, method, reason) pairs it
        leaves out because the method cannot use the benchmark's modalities."""
        from mmray.data.prepare import resolve_params
        from mmray.methods import METHODS

        kept, left_out = [], []
        for entry in self.benchmarks:
            bench, params = resolve_params(entry.name, entry.params)
            modalities = bench.modalities(params)
            for method in self.methods:
                reason = METHODS.get(method).incompatibility(modalities)
                if reason:
                    left_out.append((entry.name, method, reason))
                else:
                    kept.append((entry, method))
        return kept, left_out

    def results_dir(self) -> Location:
        """This sweep's results: an absolute local folder (Ray needs absolute storage paths) or a URI such
        as s3://bucket/prefix/<name> (storage every node of a cluster reaches)."""
        return storage.join(self.storage_path, self.name)


class TrialConfig(BaseModel):
    """Everything one trial runs with, from the sweep driver through the trial to its workers, the results
    recorder and W&B. Tune samples the searched fields (mmray.orchestration.sweep.param_space builds the space
    from `for_run`); validating the sampled dict fills every default, so the values recorded are the ones used."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # The fields that say what was run (recorded, logged to W&B); the others are paths and bookkeeping.
    DESCRIBES_THE_RUN: ClassVar[tuple[str, ...]] = ("benchmark", "method", "seed", "benchmark_params",
                                                     "method_params", "train", "augment")
    sweep: str
    run: str  # the Tune run: <benchmark>__<method>__seed<seed>, or a re-run of a chosen configuration
    benchmark: str
    method: str
    seed: int
    benchmark_params: dict[str, Any]
    method_params: dict[str, Any]
    train: TrainParams
    augment: AugmentParams = AugmentParams()
    resources: ResourcesConfig
    mirror: str | None
    cache_dir: str
    results_dir: str
    max_worker_failures: int = Field(1, ge=0, description="worker-group restarts from the last checkpoint")
    allow_random_weights: bool = False
    # The search's metric and direction: the worker keeps the model of the trial's best epoch by them.
    metric: str
    mode: Literal["max", "min"]
    # Set by the trial for its workers: the Tune trial id (which names its Train run and artifacts), when it
    # started, and where its prepared shard set lies.
    trial_id: str | None = None
    started_at: float | None = None
    data_dir: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data):
        # Filled, not checked: a combination the search drew that a method or benchmark rejects (heads that do
        # not divide a width) fails its trial when the model or shards are built, with that message, and is
        # recorded as failed; the driver's recorder must still read the trial's config.
        if isinstance(data, dict) and "method" in data and "benchmark" in data:
            from mmray.data.benchmarks import BENCHMARKS
            from mmray.methods import METHODS

            data = {**data,
                    "method_params": with_defaults(METHODS.get(data["method"]).Params, data.get("method_params")),
                    "benchmark_params": with_defaults(BENCHMARKS.get(data["benchmark"]).Params,
                                                      data.get("benchmark_params"))}
        return data

    @classmethod
    def for_run(cls, spec: SweepSpec, entry: BenchmarkEntry, method: str, seed: int, *, run: str,
                mirror, cache_dir, results_dir) -> TrialConfig:
        """A trial of this (benchmark, method, seed) with the spec's values, before any search."""
        return cls(sweep=spec.name, run=run, benchmark=entry.name, method=method, seed=seed,
                   benchmark_params=dict(entry.params), method_params=dict(spec.method_params.get(method, {})),
                   train=spec.train_params, augment=AugmentParams.model_validate(spec.augment),
                   resources=spec.resources, mirror=str(mirror) if mirror else None,
                   cache_dir=str(cache_dir), results_dir=str(results_dir), metric=spec.search.metric,
                   mode=spec.search.mode, allow_random_weights=spec.allow_random_weights)

    @property
    def torch_threads(self) -> int:
        return self.resources.torch_threads or max(1, int(self.resources.cpus_per_worker))

    def config_columns(self) -> dict[str, Any]:
        """The trials-table columns of this trial's configuration: config/<section>/<name> -> value."""
        sections = {"train": self.train.model_dump(), "method": self.method_params,
                    "benchmark": self.benchmark_params, "augment": self.augment.flat()}
        return {schema.config_column(section, name): value
                for section, values in sections.items() for name, value in values.items()}


def _one_line(exc: ValidationError, source: str, model: type[BaseModel]) -> SpecError:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        parent: Any = model
        parts = list(error["loc"][:-1])
        while parts and parent is not None:
            if get_origin(parent) in (dict, list):  # skip the mapping key / list index
                parent, parts = get_args(parent)[-1], parts[1:]
                continue
            field = parent.model_fields.get(str(parts.pop(0))) if isinstance(parent, type) else None
            parent = field.annotation if field is not None else None
        valid = ", ".join(parent.model_fields) if isinstance(parent, type) and issubclass(parent, BaseModel) else "?"
        return SpecError(f"{source}: unknown key '{location}' (valid keys: {valid})")
    return SpecError(f"{source}: {location}: {error['msg']}")


def _check_params(model: type[BaseModel], values: dict[str, Any], source: str, what: str) -> None:
    """Each field's type and range; a rule across fields (a model validator) is `_runnable_params`' to check,
    with the values the search may draw for the others."""
    try:
        model.model_validate(values)
    except ValidationError as exc:
        field_errors = [error for error in exc.errors() if error["loc"]]
        if not field_errors:
            return
        error = field_errors[0]
        key = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            raise SpecError(f"{source}: {what} has no parameter '{key}' "
                            f"(valid: {', '.join(model.model_fields)})") from None
        raise SpecError(f"{source}: {what} parameter '{key}': {error['msg']}") from None


def _check_search_metric(spec: SweepSpec, runs: list[tuple[BenchmarkEntry, str]], source: str) -> None:
    """search.metric must be a column that every (benchmark, method) run reports at each epoch, and search.mode
    its direction in the results schema. Of the train/ columns only train/loss is known before a run: the
    total every method's `losses` returns (its other terms are the method's own)."""
    from mmray.eval.suite import metric_names
    from mmray.methods import METHODS

    metric = spec.search.metric
    for entry, method in runs:
        modalities = _modalities_used(spec, entry, method, source)
        card = METHODS.get(method)
        names = metric_names([m.name for m in modalities], card.generated_texts(modalities),
                             card.translations(modalities))
        columns = [f"{split}/{name}" for split in schema.SPLITS for name in names] + ["train/loss"]
        if metric not in columns:
            if metric.startswith("train/"):
                hint = "of the train/ columns only train/loss is known before a run"
            elif close := difflib.get_close_matches(metric, columns, n=1):
                hint = f"did you mean {close[0]!r}?"
            else:
                splits = " or ".join(f"{split}/" for split in schema.SPLITS)
                hint = f"valid: {splits} followed by one of {', '.join(names)}; or train/loss"
            raise SpecError(f"{source}: search.metric {metric!r} is not a metric of {entry.name} x {method}; {hint}")
    expected = schema.search_mode(metric)
    if spec.search.mode != expected:
        better = "higher" if expected == "max" else "lower"
        raise SpecError(f"{source}: search.mode {spec.search.mode!r} contradicts search.metric {metric!r}, where "
                        f"{better} is better; set search.mode: {expected} or leave mode out")


def validate_spec(spec: SweepSpec, source: str = "<spec>") -> SweepSpec:
    """Cross-checks a parsed spec against the registries and the parameter models."""
    from mmray.data.benchmarks import BENCHMARKS
    from mmray.methods import METHODS

    for method in spec.methods:
        if method not in METHODS:
            raise SpecError(f"{source}: methods: unknown method {method!r} (valid: {', '.join(METHODS.names())})")
    for method in spec.method_params:
        if method not in spec.methods:
            raise SpecError(f"{source}: method_params.{method}: {method!r} is not in methods {spec.methods}")
    for entry in spec.benchmarks:
        if entry.name not in BENCHMARKS:
            raise SpecError(f"{source}: benchmarks: unknown benchmark {entry.name!r} "
                            f"(valid: {', '.join(BENCHMARKS.names())})")
    _check_params(TrainParams, spec.train, source, "train")
    _check_augment(spec.augment, source)
    for method in spec.methods:
        _check_params(METHODS.get(method).Params, spec.method_params.get(method, {}), source, f"method {method}")

    for key, dim in spec.search_space.items():
        try:
            resolved = SearchKey.parse(key, spec.methods)
        except SpecError as error:
            raise SpecError(f"{source}: {error}") from None
        if resolved.section == "augment":
            for value in dim.sample_values():
                _check_augment(nested(resolved.field, value), f"{source}: search_space.{key}")
            continue
        if resolved.section == "train":
            targets = [(TrainParams, "train")]
        elif resolved.section == "method":
            targets = [(METHODS.get(m).Params, f"method {m}") for m in spec.methods if resolved.applies_to(m)]
        else:
            targets = [(BENCHMARKS.get(b.name).Params, f"benchmark {b.name}") for b in spec.benchmarks]
        for model, what in targets:
            for value in dim.sample_values():
                _check_params(model, {resolved.field: value}, f"{source}: search_space.{key}", what)

    for method in spec.methods:
        _runnable_params(spec, method, source)
    runs, left_out = spec.runs()
    if left_out and spec.pairs == "all":
        benchmark, method, reason = left_out[0]
        raise SpecError(f"{source}: method {method!r} cannot run on benchmark {benchmark!r}: {reason} "
                        "(or set pairs: fitting to run each method only where it fits)")
    for method in spec.methods:
        if sum(m == method for _, m, _ in left_out) == len(spec.benchmarks):
            raise SpecError(f"{source}: method {method!r} fits none of the sweep's benchmarks: "
                            + "; ".join(f"{b}: {r}" for b, m, r in left_out if m == method))
    _check_search_metric(spec, runs, source)
    _check_search_algorithm(spec, runs, source)
    _check_augment_fits(spec, runs, source)
    if not spec.allow_random_weights:
        _check_weights(spec, runs, source)
    return _with_effective_values(spec)


def searched_paths(spec: SweepSpec, method: str) -> dict[str, tuple[tuple[str, ...], SearchDim]]:
    """The search_space keys that apply to `method`, each with the path of the TrialConfig field it sets (as
    Tune's param space nests it) and its dimension."""
    paths = {}
    for key, dim in spec.search_space.items():
        searched = SearchKey.parse(key, spec.methods)
        if searched.applies_to(method):
            paths[key] = ((searched.trial_field, *searched.field.split(".")), dim)
    return paths


def first_point(spec: SweepSpec, entry: BenchmarkEntry, method: str) -> dict[tuple[str, ...], Any]:
    """search.first_trial: defaults: each searched field's value before the search (the spec's, else the code's
    default), by its path in Tune's param space."""
    values = TrialConfig.for_run(spec, entry, method, 0, run="first", mirror=None, cache_dir="",
                                 results_dir="").model_dump()
    point = {}
    for path, _ in searched_paths(spec, method).values():
        value = values
        for part in path:
            value = value[part]
        point[path] = value
    return point


def _check_search_algorithm(spec: SweepSpec, runs: list[tuple[BenchmarkEntry, str]], source: str) -> None:
    if spec.search.algorithm == "grid":
        ranged = [key for key, dim in spec.search_space.items() if dim.kind != "choice"]
        if ranged or not spec.search_space:
            raise SpecError(f"{source}: search.algorithm grid runs every combination of choices; "
                            + (f"{ranged[0]} is a {spec.search_space[ranged[0]].kind} range: make it a choice"
                               if ranged else "search_space is empty"))
    if spec.search.first_trial == "defaults":
        for entry, method in runs:
            dims = {path: (key, dim) for key, (path, dim) in searched_paths(spec, method).items()}
            for path, value in first_point(spec, entry, method).items():
                key, dim = dims[path]
                if not dim.contains(value):
                    raise SpecError(f"{source}: search.first_trial defaults: {method}'s {key} is {value!r}, "
                                    f"outside search_space.{key} ({dim.kind} {getattr(dim, dim.kind)}); widen the "
                                    "range or set the value in the spec")


# Enough combinations of the searched method fields' sample values to find one that builds, with room to spare.
MAX_PARAM_COMBINATIONS = 4096


def _runnable_params(spec: SweepSpec, method: str, source: str):
    """The method's Params for its fixed method_params and the first combination of its searched fields' sample
    values (choices, range ends) that satisfies every rule across fields; a SpecError when none does, since then
    every trial would fail as it builds its model. A space where only some draws break a rule is the search's
    to explore: those trials fail alone."""
    from mmray.methods import METHODS

    params_class = METHODS.get(method).Params
    fixed = dict(spec.method_params.get(method, {}))
    searched = [(SearchKey.parse(key, spec.methods), dim) for key, dim in spec.search_space.items()]
    searched = [(key.field, dim.sample_values()) for key, dim in searched
                if key.section == "method" and key.applies_to(method) and key.field in params_class.model_fields]
    first_error = None
    for combination in itertools.islice(itertools.product(*(values for _, values in searched)),
                                        MAX_PARAM_COMBINATIONS):
        values = {**fixed, **{field: value for (field, _), value in zip(searched, combination)}}
        try:
            return params_class.model_validate(values)
        except ValidationError as exc:
            first_error = first_error or validation_problem(exc.errors()[0])
    where = f"method_params.{method} {fixed}" + (
        f" with search_space's {', '.join(field for field, _ in searched)}" if searched else "")
    raise SpecError(f"{source}: method {method}: {first_error}, for every configuration of {where}; change "
                    "one of them so that a trial can build its model")


def _modalities_used(spec: SweepSpec, entry: BenchmarkEntry, method: str, source: str) -> tuple:
    """The benchmark's modalities the method trains on with the spec's params (all, unless it takes a subset)."""
    from mmray.data.prepare import resolve_params
    from mmray.methods import METHODS

    benchmark, params = resolve_params(entry.name, entry.params)
    try:
        return METHODS.get(method).modalities_used(_runnable_params(spec, method, source), benchmark.modalities(params))
    except ValueError as error:
        raise SpecError(f"{source}: on {entry.name}, {error}") from None


def _check_weights(spec: SweepSpec, runs: list[tuple[BenchmarkEntry, str]], source: str) -> None:
    """Every pretrained part a method's params name is on this machine, before any data is prepared."""
    from mmray.errors import MissingWeightsError
    from mmray.methods import METHODS

    for entry, method in runs:
        params, modalities = _runnable_params(spec, method, source), _modalities_used(spec, entry, method, source)
        try:
            METHODS.get(method).check_weights(params, modalities)
        except MissingWeightsError as error:
            raise SpecError(f"{source}: on {entry.name}, {error}") from None


def nested(dotted: str, value: Any) -> dict[str, Any]:
    """{'a': {'b': value}} for 'a.b'."""
    *parents, leaf = dotted.split(".")
    out: dict[str, Any] = {leaf: value}
    for part in reversed(parents):
        out = {part: out}
    return out


def _check_augment(values: dict[str, Any], source: str) -> None:
    try:
        AugmentParams.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        if error["type"] != "extra_forbidden":
            raise SpecError(f"{source}: augment.{key}: {error['msg']}") from None
        kind = error["loc"][0]
        model = AugmentParams.model_fields[kind].annotation if kind in AUGMENT_KINDS else AugmentParams
        scope = f"augment.{kind}." if kind in AUGMENT_KINDS else "augment."
        close = difflib.get_close_matches(str(error["loc"][-1]), list(model.model_fields), n=1)
        hint = f"did you mean {scope}{close[0]}? " if close else ""
        raise SpecError(f"{source}: unknown augmentation 'augment.{key}'; {hint}valid: "
                        f"{', '.join(scope + name for name in model.model_fields)}") from None


def _check_augment_fits(spec: SweepSpec, runs: list[tuple[BenchmarkEntry, str]], source: str) -> None:
    """An augmented modality kind must occur in a benchmark of the sweep, and two views need methods that use
    them: either is a mistake worth stopping for, as the knob would silently do nothing."""
    from mmray.data.prepare import resolve_params
    from mmray.methods import METHODS

    searched = {SearchKey.parse(key, spec.methods).field.split(".")[0] for key in spec.search_space
                if key.startswith("augment.")}
    fixed = AugmentParams.model_validate(spec.augment)
    kinds: set[str] = set()
    for entry in spec.benchmarks:
        benchmark, params = resolve_params(entry.name, entry.params)
        kinds.update(m.kind for m in benchmark.modalities(params))
    for kind in AUGMENT_KINDS:
        if (fixed.active(kind) or kind in searched) and kind not in kinds:
            raise SpecError(f"{source}: augment.{kind}: no benchmark of this sweep has a {kind} modality (they "
                            f"have {', '.join(sorted(kinds))}); remove the augment.{kind} settings")
    if fixed.views == 2 or "views" in searched:
        without = sorted({method for _, method in runs if not METHODS.get(method).wants_two_views})
        if without:
            using = [name for name in METHODS.names() if METHODS.get(name).wants_two_views]
            raise SpecError(f"{source}: augment.views: 2, but {', '.join(without)} has no two-view term (methods "
                            f"with one: {', '.join(using)}); use views: 1 or run those methods in another sweep")


def _with_effective_values(spec: SweepSpec) -> SweepSpec:
    """The spec with every default written out (train, each method's and each benchmark's parameters)."""
    from mmray.data.prepare import resolve_params

    return spec.model_copy(update={
        "train": spec.train_params.model_dump(),
        "augment": AugmentParams.model_validate(spec.augment).model_dump(),
        "method_params": {m: _fixed_with_defaults(m, spec.method_params.get(m)) for m in spec.methods},
        "benchmarks": [entry.model_copy(update={"params": resolve_params(entry.name, entry.params)[1].model_dump()})
                       for entry in spec.benchmarks],
    })


def _fixed_with_defaults(method: str, params: dict | None) -> dict[str, Any]:
    """`method_defaults`, or where only the searched fields' values satisfy a rule across fields (checked by
    `_runnable_params`), the fixed values over the defaults as given."""
    from mmray.methods import METHODS

    try:
        return method_defaults(method, params)
    except ValidationError:
        return with_defaults(METHODS.get(method).Params, params)


def method_defaults(method: str, params: dict | None) -> dict[str, Any]:
    """A method's parameters, checked, with its defaults filled in."""
    from mmray.methods import METHODS

    return METHODS.get(method).Params.model_validate(dict(params or {})).model_dump()


def with_defaults(model: type[BaseModel], values: dict | None) -> dict[str, Any]:
    """`values` over the defaults of `model`'s fields, without validating them."""
    defaults = {name: field.get_default(call_default_factory=True) for name, field in model.model_fields.items()}
    return {**defaults, **(values or {})}


def load_spec(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """Read, override (dotted keys, e.g. {'search.num_samples': 2}) and validate a sweep file."""
    path = Path(path)
    if not path.exists():
        raise SpecError(f"sweep file {path} does not exist (sweep files live in sweeps/)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())  # PyYAML's message spans lines; SpecErrors are one line
        raise SpecError(f"{path}: not valid YAML ({detail})") from exc
    return parse_spec(raw, str(path), overrides)


def parse_spec(raw: Any, source: str = "<spec>", overrides: dict[str, Any] | None = None) -> SweepSpec:
    """Validate a spec given as plain data (what a sweep file holds), after applying dotted overrides."""
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: the top level must be a mapping of keys (name, benchmarks, methods, ...)")
    raw = copy.deepcopy(raw)
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise SpecError(f"{source}: override {dotted}: '{part}' is not a mapping")
        node[leaf] = value
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise _one_line(exc, source, SweepSpec) from None
    return validate_spec(spec, source)
