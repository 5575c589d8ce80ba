"""The typed sweep specification (YAML under sweeps/), its validation, and the typed config of one trial.

Everything is checked before Ray starts: an unknown key, a bad range, an unknown method or benchmark, or a
method that cannot run on a benchmark is one `SpecError` line naming the file, the key and the valid choices.
A validated spec holds the effective values, defaults included, which is what sweep.yaml records.
"""

from __future__ import annotations

import builtins
import copy
import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mmray import storage
from mmray.engine.params import TrainParams
from mmray.errors import SpecError
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

    def sample_values(self) -> list[Any]:
        """Values that stand for the whole dimension when type-checking it against a parameter model."""
        return list(self.choice) if self.kind == "choice" else list(getattr(self, self.kind))

    def to_tune(self):
        from ray import tune

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

    section: Literal["train", "method", "benchmark"]
    field: str
    method: str | None = None

    @classmethod
    def parse(cls, key: str, methods: list[str] | None = None) -> SearchKey:
        """`methods`: the sweep's methods; None takes any other scope for a method's name (a spec checked
        already, as sweep.yaml holds it)."""
        scope, _, field = key.partition(".")
        if not field:
            raise SpecError(f"search_space key '{key}' must look like train.lr, method.latent_dim, "
                            "<method>.latent_dim or benchmark.n_mels")
        if scope in ("train", "method", "benchmark"):
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
        return {"train": "train", "method": "method_params", "benchmark": "benchmark_params"}[self.section]

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
    algorithm: Literal["optuna", "random"] = "optuna"
    metric: str = "val/fused_acc"
    mode: Literal["max", "min"] | None = Field(None, description="left out: the metric's direction in the "
                                               "results schema (validate_spec refuses a mode against it)")
    num_samples: int = Field(8, ge=1)
    seed: int = 0
    repeat_top: int = Field(1, ge=1, description="with several seeds: how many of the best configurations the "
                            "search found (on the first seed) are re-run on every other seed")

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
    reduction_factor: float = Field(2.0, gt=1)


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
    method_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    search_space: dict[str, SearchDim] = Field(default_factory=dict)
    search: SearchConfig = SearchConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    resources: ResourcesConfig = ResourcesConfig()
    wandb: WandbConfig = WandbConfig()
    # Every trial's metrics per epoch as TensorBoard scalars, in <results>/tensorboard/<run>/<trial id>/
    # (mmray.orchestration.sweep.TensorBoardScalars): `tensorboard --logdir results/<name>/tensorboard`.
    tensorboard: bool = False
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
                                                     "method_params", "train")
    sweep: str
    run: str  # the Tune run: <benchmark>__<method>__seed<seed>, or a re-run of a chosen configuration
    benchmark: str
    method: str
    seed: int
    benchmark_params: dict[str, Any]
    method_params: dict[str, Any]
    train: TrainParams
    resources: ResourcesConfig
    mirror: str | None
    cache_dir: str
    results_dir: str
    max_worker_failures: int = Field(1, ge=0, description="worker-group restarts from the last checkpoint")
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
                   train=spec.train_params, resources=spec.resources, mirror=str(mirror) if mirror else None,
                   cache_dir=str(cache_dir), results_dir=str(results_dir), metric=spec.search.metric,
                   mode=spec.search.mode)

    @property
    def torch_threads(self) -> int:
        return self.resources.torch_threads or max(1, int(self.resources.cpus_per_worker))

    def config_columns(self) -> dict[str, Any]:
        """The trials-table columns of this trial's configuration: config/<section>/<name> -> value."""
        sections = {"train": self.train.model_dump(), "method": self.method_params,
                    "benchmark": self.benchmark_params}
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
    try:
        model.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            raise SpecError(f"{source}: {what} has no parameter '{key}' "
                            f"(valid: {', '.join(model.model_fields)})") from None
        raise SpecError(f"{source}: {what} parameter '{key}': {error['msg']}") from None


def _check_search_metric(spec: SweepSpec, runs: list[tuple[BenchmarkEntry, str]], source: str) -> None:
    """search.metric must be a column that every (benchmark, method) run reports at each epoch, and search.mode
    its direction in the results schema. Of the train/ columns only train/loss is known before a run: the
    total every method's `losses` returns (its other terms are the method's own)."""
    from mmray.data.prepare import resolve_params
    from mmray.eval.suite import metric_names
    from mmray.methods import METHODS

    metric = spec.search.metric
    for entry, method in runs:
        benchmark, params = resolve_params(entry.name, entry.params)
        modalities = benchmark.modalities(params)
        method_class = METHODS.get(method)
        names = metric_names([m.name for m in modalities], method_class.generated_texts(modalities),
                             method_class.translations(modalities))
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
    for method in spec.methods:
        _check_params(METHODS.get(method).Params, spec.method_params.get(method, {}), source, f"method {method}")

    for key, dim in spec.search_space.items():
        try:
            resolved = SearchKey.parse(key, spec.methods)
        except SpecError as error:
            raise SpecError(f"{source}: {error}") from None
        if resolved.section == "train":
            targets = [(TrainParams, "train")]
        elif resolved.section == "method":
            targets = [(METHODS.get(m).Params, f"method {m}") for m in spec.methods if resolved.applies_to(m)]
        else:
            targets = [(BENCHMARKS.get(b.name).Params, f"benchmark {b.name}") for b in spec.benchmarks]
        for model, what in targets:
            for value in dim.sample_values():
                _check_params(model, {resolved.field: value}, f"{source}: search_space.{key}", what)

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
    return _with_effective_values(spec)


def _with_effective_values(spec: SweepSpec) -> SweepSpec:
    """The spec with every default written out (train, each method's and each benchmark's parameters)."""
    from mmray.data.prepare import resolve_params

    return spec.model_copy(update={
        "train": spec.train_params.model_dump(),
        "method_params": {m: method_defaults(m, spec.method_params.get(m)) for m in spec.methods},
        "benchmarks": [entry.model_copy(update={"params": resolve_params(entry.name, entry.params)[1].model_dump()})
                       for entry in spec.benchmarks],
    })


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
