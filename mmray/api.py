"""The Python API the CLI is a thin layer over: run a sweep, prepare data, load results, build a report.

Ray is imported only inside `run_sweep`, so that listing, preparing and reporting stay quick to start.
"""

from __future__ import annotations

import os
from typing import Any

from mmray import storage
from mmray.config import SweepSpec, load_spec
from mmray.data import PreparedData, load_prepared, prepare, verify_prepared
from mmray.data.prepare import resolve_params, shard_dir
from mmray.errors import DataError, MmrayError
from mmray.report import build_report
from mmray.results import load as load_results
from mmray.results import schema
from mmray.results.summary import CONFIDENCE, score_column, terminal_leaderboard
from mmray.storage import Location


def run_sweep(
    spec: SweepSpec | str | os.PathLike,
    *,
    overrides: dict[str, Any] | None = None,
    mirror: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    address: str | None = None,
    verbose: bool = False,
    report: bool = True,
    log=print,
) -> Location:
    """Run a whole sweep (a spec object or a YAML path), then print its leaderboard and write its report.

    Returns the results folder (a local Path, or the URI when the results are remote) holding
    trials.parquet, epochs.parquet, sweep.yaml and report.html.
    """
    from mmray.orchestration.sweep import run_sweep as run_on_ray

    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec, overrides)
    out = run_on_ray(spec, mirror=mirror, cache_dir=cache_dir, results_dir=results_dir, resume=resume,
                     overwrite=overwrite, address=address, verbose=verbose, log=log)
    results = load_results(out)
    _require_a_scored_trial(results.trials, spec.search.metric, out)
    direction = "higher" if spec.search.mode == "max" else "lower"
    log(f"\n[mmray] leaderboard ({spec.search.metric}, {direction} is better; mean ± {CONFIDENCE:.0%} confidence "
        "interval over seeds, as in the report)\n"
        + terminal_leaderboard(results.trials, spec.search.metric, spec.search.mode))
    if report:
        log(f"[mmray] report: {build_report(out)}")
    if spec.wandb.enabled:
        from mmray.orchestration.tracking import publish_summary

        publish_summary(spec, out)
        log(f"[mmray] W&B: trial runs grouped as {spec.name!r} in project {spec.wandb.project!r}, "
            "results attached to the summary run")
    log(f"[mmray] results: {out}")
    return out


def _require_a_scored_trial(trials, metric: str, out: Location) -> None:
    """No leaderboard without a single scored epoch: say which trials failed and why, in one message."""
    score = score_column(metric)
    if score in trials.columns and trials[score].notna().any():
        return
    failed = trials[trials[schema.STATUS] == schema.STATUS_FAILED]
    first = failed[schema.ERROR].dropna().iloc[0].strip().splitlines()[-1] if len(failed) else "no error recorded"
    raise MmrayError(f"no trial reported {metric} ({len(failed)} of {len(trials)} failed; first error: {first}); "
                     f"the tables in {out} hold every trial's error, fix the cause and rerun with --overwrite")


def data_info(benchmark: str, params: dict | None = None, cache_dir=None) -> PreparedData:
    """The prepared shard set for these parameters, or a DataError saying how to prepare it."""
    _, resolved = resolve_params(benchmark, params)
    path = shard_dir(benchmark, resolved, cache_dir)
    if not storage.exists(path):
        raise DataError(f"{benchmark} is not prepared with these parameters (would be at {path}); "
                        f"run `mmray data prepare {benchmark}`")
    return load_prepared(path)


def data_verify(benchmark: str, params: dict | None = None, cache_dir=None) -> PreparedData:
    return verify_prepared(data_info(benchmark, params, cache_dir).path)


__all__ = ["build_report", "data_info", "data_verify", "load_results", "load_spec", "prepare", "run_sweep"]
