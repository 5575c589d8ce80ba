"""Leaderboards derived from trials.parquet: the terminal table at the end of a sweep and the report read these."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from mmray.results import schema
from mmray.results.best import best_rows, best_trials

# The test-split figures shown beside the search metric in the terminal leaderboard and the report.
HEADLINE_METRICS = ("test/fused_acc", "test/transfer_image_to_audio", "test/recall@1_image_to_audio")


def score_column(metric: str, which: str = schema.BEST_PREFIX) -> str:
    """The trials-table column holding a trial's `which` ('best/' or 'final/') value of `metric`."""
    return which + metric


def format_table(frame: pd.DataFrame) -> str:
    """A plain fixed-width table for the terminal (floats with 4 decimals)."""
    if frame.empty:
        return "(no finished trial has a score yet)"
    return frame.to_string(index=False, float_format=lambda v: f"{v:.4f}")


# --- repeated seeds: mean and confidence interval per configuration ------------------------------------------

CONFIDENCE = 0.95  # two-sided t-distribution interval of the mean over seeds
ALPHA = 0.05  # Welch's t-test level below which two leaderboard entries count as distinguishable
CONFIG = "config"  # leaderboard column: the configuration an entry aggregates (only what the search varied)
SEEDS = "seeds"  # leaderboard column: how many values (seeds) the mean and interval rest on
UNIT_CONFIG, UNIT_SEARCH = "config", "search"
NOT_VARIED = "(fixed)"
BEST_OF_SEARCH = "(best of each seed's search)"


def ci_column(metric: str) -> str:
    """The leaderboard column holding the half-width of `metric`'s confidence interval."""
    return f"{metric} ±"


def half_width(std, count, confidence: float = CONFIDENCE):
    """Half-width of the t-distribution confidence interval of a mean from the sample standard deviation
    (ddof=1) and size; NaN below two values. Works elementwise on arrays."""
    count = np.asarray(count, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = stats.t.ppf(0.5 + confidence / 2, df=np.where(count >= 2, count - 1, np.nan))
        return t * np.asarray(std, dtype=float) / np.sqrt(count)


def mean_ci(values, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(mean, half-width of its two-sided t-distribution confidence interval) of the finite `values`.

    The half-width is NaN below two values: one seed says nothing about seed-to-seed spread.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    if x.size < 2:
        return float(x.mean()), math.nan
    return float(x.mean()), float(half_width(x.std(ddof=1), x.size, confidence))


def welch_p(a, b) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) that `a` and `b` have the same mean.

    NaN when either side has fewer than two finite values. Two constant samples are identical (p = 1) when
    their values are equal and certainly different (p = 0) otherwise, where the t statistic is undefined.
    """
    a, b = (np.asarray(v, dtype=float) for v in (a, b))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        return math.nan
    if a.var(ddof=1) == 0 and b.var(ddof=1) == 0:
        return 1.0 if a.mean() == b.mean() else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def config_labels(trials: pd.DataFrame) -> pd.Series:
    """One label per trial naming its configuration by the config values that vary within its
    (benchmark, method), e.g. 'latent_dim=32, lr=0.0012'; '(fixed)' when nothing varies. The seed is not part
    of a configuration, so the same configuration run under several seeds gets one label."""
    config_columns = [c for c in trials.columns if c.startswith(schema.CONFIG_PREFIX)]
    labels = pd.Series(NOT_VARIED, index=trials.index, dtype=object)
    for _, group in trials.groupby([schema.BENCHMARK, schema.METHOD], sort=False):
        varied = [c for c in config_columns if group[c].astype(str).nunique() > 1]
        if not varied:
            continue
        text = {c: group[c].map(_format_value) for c in varied}
        labels.loc[group.index] = [
            ", ".join(f"{c.rsplit('/', 1)[-1]}={text[c].loc[i]}" for c in varied) for i in group.index]
    return labels


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _units(trials: pd.DataFrame, metric: str, mode: str, unit: str) -> pd.DataFrame:
    """The trials that count as repeated measurements, with a CONFIG column naming what they aggregate.

    unit='config': every scored trial, grouped by its configuration across seeds.
    unit='search': the best trial (by `metric`) of each seed's search (Tune run), grouped by method: the spread
    of what a whole search finds, which is what a sweep measures when each seed searches its own configs.
    """
    score = score_column(metric)
    if score not in trials.columns:
        raise KeyError(f"the trials table has no column {score!r}; metrics it holds: "
                       f"{sorted(c for c in trials.columns if c.startswith(schema.BEST_PREFIX))}")
    if unit == UNIT_CONFIG:
        scored = trials.dropna(subset=[score])
        return scored.assign(**{CONFIG: config_labels(scored)})
    if unit == UNIT_SEARCH:
        best = best_trials(trials, metric, mode, by=(schema.BENCHMARK, schema.METHOD, schema.SEED))
        return best.assign(**{CONFIG: BEST_OF_SEARCH})
    raise ValueError(f"unit must be {UNIT_CONFIG!r} or {UNIT_SEARCH!r}, not {unit!r}")


def leaderboard_ci(trials: pd.DataFrame, metric: str, mode: str = "max", columns: tuple[str, ...] = (),
                   unit: str = UNIT_CONFIG, confidence: float = CONFIDENCE, alpha: float = ALPHA) -> pd.DataFrame:
    """Mean ± confidence interval over seeds of each (benchmark, method, configuration), best configuration of
    each method only (by mean `metric`, among its configurations run with the most seeds), ranked within
    each benchmark by the mean of its best-epoch `metric`.

    Columns: benchmark, method, rank, config, seeds, then for `metric` and each of `columns` the mean (column
    named by the metric) and the interval's half-width (`ci_column(name)`), then `p_vs_top` (Welch's t-test
    of this entry's `metric` against the benchmark's top entry) and `distinguishable`: 'top' for the top entry,
    'yes' when p <= alpha, 'no' when p > alpha, 'n/a' when either side has fewer than two seeds.

    Why Welch and not overlapping intervals: two 95 % intervals can overlap while the means still differ at
    the 5 % level, so overlap is too conservative; Welch's test needs no equal-variance assumption. With a
    handful of seeds it has little power, so 'no' reads "not shown different", never "equal". The best
    configuration is picked by the same values it is reported with, so its mean is optimistic (winner's curse).
    """
    units = _units(trials, metric, mode, unit)
    keys = [schema.BENCHMARK, schema.METHOD]
    shown = [metric, *(c for c in columns if c != metric and score_column(c) in units)]
    out_columns = [*keys, "rank", CONFIG, SEEDS, *(x for c in shown for x in (c, ci_column(c))),
                   "p_vs_top", "distinguishable"]
    if units.empty:
        return pd.DataFrame(columns=out_columns)
    grouped = units.groupby([*keys, CONFIG], sort=False)
    table = grouped.size().rename(SEEDS).to_frame()
    for name in shown:
        values = grouped[score_column(name)]
        table[name] = values.mean()
        table[ci_column(name)] = half_width(values.std(ddof=1), values.count(), confidence)
    table = table.reset_index()
    # each method's best configuration among those run with the most seeds: a configuration with one lucky
    # seed (a sweep's last, unrepeated sample) must not beat one measured over all of them
    table = table[table[SEEDS] == table.groupby(keys)[SEEDS].transform("max")]
    table = best_rows(table, metric, mode, by=keys).sort_values(schema.BENCHMARK, kind="stable")
    table.insert(2, "rank", table.groupby(schema.BENCHMARK).cumcount() + 1)
    samples = grouped[score_column(metric)].apply(lambda v: v.to_numpy(dtype=float))
    values = [samples[key] for key in zip(table[schema.BENCHMARK], table[schema.METHOD], table[CONFIG])]
    tops = {b: v for b, v, r in zip(table[schema.BENCHMARK], values, table["rank"]) if r == 1}
    table["p_vs_top"] = [math.nan if r == 1 else welch_p(v, tops[b])
                         for r, v, b in zip(table["rank"], values, table[schema.BENCHMARK])]
    table["distinguishable"] = [
        "top" if r == 1 else "n/a" if math.isnan(p) else "yes" if p <= alpha else "no"
        for r, p in zip(table["rank"], table["p_vs_top"])]
    return table[out_columns].reset_index(drop=True)


def format_ci(board: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The leaderboard with each metric and its half-width merged into one 'mean ± half' text column."""
    out = board.copy()
    for column in [c for c in board.columns if ci_column(c) in board.columns]:
        half = out.pop(ci_column(column))
        out[column] = [_mean_pm(m, h, digits) for m, h in zip(out[column], half)]
    if "p_vs_top" in out:
        out["p_vs_top"] = [("" if math.isnan(p) else f"{p:.3f}") for p in out["p_vs_top"]]
    return out


def _mean_pm(mean: float, half: float, digits: int) -> str:
    if math.isnan(mean):
        return ""
    return f"{mean:.{digits}f}" if math.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"


def choose_unit(trials: pd.DataFrame) -> str:
    """'config' when some configuration was run under more than one seed, else 'search' when the sweep ran
    more than one seed (each seed searched its own configurations), else 'config' (one seed: no intervals)."""
    if trials.empty:
        return UNIT_CONFIG
    labels = config_labels(trials)
    repeated = trials.assign(_c=labels).groupby([schema.BENCHMARK, schema.METHOD, "_c"])[schema.SEED].nunique()
    if (repeated > 1).any():
        return UNIT_CONFIG
    return UNIT_SEARCH if trials[schema.SEED].nunique() > 1 else UNIT_CONFIG


# --- the leaderboard a sweep shows: the report's first section and the terminal at the end of `mmray sweep` ---

def headline_columns(trials: pd.DataFrame, metric: str) -> tuple[str, ...]:
    """The metrics shown beside the search metric: val/fused_acc and HEADLINE_METRICS, those the trials hold."""
    wanted = ("val/fused_acc", *HEADLINE_METRICS)
    return tuple(c for c in wanted if c != metric and score_column(c) in trials)


def leaderboard_tables(trials: pd.DataFrame, metric: str, mode: str) -> dict[str, pd.DataFrame]:
    """The sweep's leaderboard as text tables, one per benchmark (sorted by name): each method's best
    configuration with `metric` and the headline metrics as 'mean ± half-width' over seeds (the unit from
    `choose_unit`), rank, Welch's test against the top entry, and the configuration last (the long text)."""
    board = leaderboard_ci(trials, metric, mode, headline_columns(trials, metric), unit=choose_unit(trials))
    tables = {}
    for benchmark, rows in board.groupby(schema.BENCHMARK, sort=True):
        shown = format_ci(rows.drop(columns=[schema.BENCHMARK]))
        tables[benchmark] = shown[[c for c in shown if c != CONFIG] + [CONFIG]]
    return tables


def terminal_leaderboard(trials: pd.DataFrame, metric: str, mode: str) -> str:
    """`leaderboard_tables` as plain text: each benchmark's name, then its table."""
    tables = leaderboard_tables(trials, metric, mode)
    if not tables:
        return format_table(pd.DataFrame())
    return "\n\n".join(f"{benchmark}\n{format_table(table)}" for benchmark, table in tables.items())


def benchmark_ranks(board: pd.DataFrame) -> pd.DataFrame:
    """Methods x benchmarks: each method's rank on each benchmark (from a leaderboard), plus its mean rank
    over the benchmarks it ran on; sorted by mean rank, then by name."""
    if board.empty:
        return pd.DataFrame(columns=["mean rank"])
    ranks = board.pivot_table(index=schema.METHOD, columns=schema.BENCHMARK, values="rank", aggfunc="min")
    ranks["mean rank"] = ranks.mean(axis=1)
    ranks.columns.name = None
    return ranks.sort_index().sort_values("mean rank", kind="stable")


def pareto_front(cost, quality, higher_is_better: bool = True) -> np.ndarray:
    """Boolean mask of the points no other point beats: none costs less or the same and is at least as good,
    being strictly better in one of the two. NaN points are never on the front."""
    cost = np.asarray(cost, dtype=float)
    quality = np.asarray(quality, dtype=float)
    if not higher_is_better:
        quality = -quality
    on_front = np.zeros(cost.size, dtype=bool)
    valid = np.flatnonzero(np.isfinite(cost) & np.isfinite(quality))
    # cheapest first and, at equal cost, best first: a point is on the front iff it beats every cheaper one
    order = valid[np.lexsort((-quality[valid], cost[valid]))]
    best_so_far, best_cost = -math.inf, math.nan
    for i in order:
        if quality[i] > best_so_far or (quality[i] == best_so_far and cost[i] == best_cost):  # ties both stay
            on_front[i] = True
            best_so_far, best_cost = quality[i], cost[i]
    return on_front


# --- which searched values mattered --------------------------------------------------------------------------

FANOVA_TREES, FANOVA_DEPTH = 16, 8


def search_space_columns(space: dict) -> dict[str, dict]:
    """A spec's search_space ({'method.latent_dim': {'choice': [...]}, ...}, as in sweep.yaml) keyed by the
    trials-table config column each key fills (method.<p> and <method>.<p> both land in config/method/<p>)."""
    from mmray.config import SearchKey

    return {SearchKey.parse(key).column: {k: v for k, v in dim.items() if v is not None} for key, dim in space.items()}


def _distribution(values: pd.Series, dim: dict | None):
    """The Optuna distribution of one config column: from the spec's dimension when known, else inferred
    (numbers with many distinct values are a range, anything else a set of choices)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dim = dim or {}
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and ("uniform" in dim or "loguniform" in dim or "int" in dim or values.nunique() > 6):
        low, high = float(values.min()), float(values.max())
        kind, bounds = next(((k, dim[k]) for k in ("uniform", "loguniform", "int") if k in dim), (None, None))
        if bounds:
            low, high = min(low, bounds[0]), max(high, bounds[1])
        if kind == "int" or (kind is None and pd.api.types.is_integer_dtype(values)):
            return IntDistribution(int(low), int(high))
        return FloatDistribution(low, high, log=kind == "loguniform")
    return CategoricalDistribution(sorted({_choice(v) for v in values}, key=str))


def _choice(value):
    """A value Optuna accepts as a categorical choice: a plain Python scalar, anything else as its text."""
    value = value.item() if isinstance(value, np.generic) else value
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def optuna_study(trials: pd.DataFrame, metric: str, mode: str = "max", space: dict | None = None):
    """The scored trials of one (benchmark, method) rebuilt as an Optuna study: one finished trial each, its
    params the config columns that vary, its value the best-epoch `metric`. `space` is the spec's
    search_space (gives ranges and log scales); without it distributions are inferred from the values."""
    import optuna

    score = score_column(metric)
    scored = trials.dropna(subset=[score]) if score in trials else trials.iloc[:0]
    dims = search_space_columns(space or {})
    columns = [c for c in scored.columns if c.startswith(schema.CONFIG_PREFIX)
               and scored[c].notna().all() and scored[c].astype(str).nunique() > 1]
    distributions = {c.removeprefix(schema.CONFIG_PREFIX): _distribution(scored[c], dims.get(c)) for c in columns}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line per rebuilt study
    try:
        study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    for _, row in scored.iterrows():
        params = {}
        for column in columns:
            name = column.removeprefix(schema.CONFIG_PREFIX)
            value = _choice(row[column])
            if isinstance(distributions[name], optuna.distributions.IntDistribution):
                value = int(value)
            params[name] = value
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                  value=float(row[score])))
    return study


def param_importances(trials: pd.DataFrame, metric: str, mode: str = "max", space: dict | None = None,
                      evaluator=None) -> pd.Series:
    """Importance of each searched value for the best-epoch `metric` within one (benchmark, method), by an
    Optuna importance evaluator (default: fANOVA, seeded, with a smaller forest than Optuna's default of 64
    trees of depth 64: similar importances for a few dozen trials at a fraction of the time) over
    `optuna_study(...)`; sums to 1.
    Empty when fewer than two scored trials or no value varied."""
    import optuna

    study = optuna_study(trials, metric, mode, space)
    if len(study.trials) < 2 or not study.trials[0].params:
        return pd.Series(dtype=float, name="importance")
    evaluator = evaluator or optuna.importance.FanovaImportanceEvaluator(
        n_trees=FANOVA_TREES, max_depth=FANOVA_DEPTH, seed=0)
    importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    return pd.Series(importances, dtype=float, name="importance")
