"""A Tune callback in the driver that turns trial results into the results tables as trials finish."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd
from ray.tune import Callback

from mmray.results import schema
from mmray.results.io import write_table

CONFIG_SCOPES = {"benchmark_params": "benchmark", "method_params": "method", "train": "train"}


def _metrics(result: dict) -> dict:
    return {k: v for k, v in result.items()
            if schema.is_metric_column(k) and isinstance(v, (int, float)) and not isinstance(v, bool)}


class ResultsRecorder(Callback):
    def __init__(self, results_dir: Path, sweep: str, metric: str, mode: str, log=print):
        self.results_dir = results_dir
        self.sweep, self.metric, self.mode, self.log = sweep, metric, mode, log
        self.trials, self.epochs = self._existing()
        self._started: dict[str, float] = {}
        self._epoch_rows: dict[str, list[dict]] = {}

    def _existing(self) -> tuple[dict[str, dict], list[dict]]:
        """Rows already written by an earlier (interrupted) driver, so resuming never duplicates or drops."""
        trials_path = self.results_dir / schema.TRIALS_FILE
        epochs_path = self.results_dir / schema.EPOCHS_FILE
        trials = {}
        if trials_path.exists():
            trials = {row[schema.TRIAL_ID]: row for row in pd.read_parquet(trials_path).to_dict("records")}
        epochs = pd.read_parquet(epochs_path).to_dict("records") if epochs_path.exists() else []
        return trials, [row for row in epochs if row[schema.TRIAL_ID] in trials]

    def _identity(self, trial) -> dict:
        config = trial.config
        return {schema.SWEEP: self.sweep, schema.RUN: config["run"], schema.TRIAL_ID: trial.trial_id,
                schema.BENCHMARK: config["benchmark"], schema.METHOD: config["method"],
                schema.SEED: config["seed"]}

    def on_trial_start(self, iteration, trials, trial, **info):
        self._started.setdefault(trial.trial_id, time.time())
        self._epoch_rows[trial.trial_id] = []  # a restarted trial reports its epochs again

    def on_trial_result(self, iteration, trials, trial, result, **info):
        row = {**self._identity(trial), schema.EPOCH: int(result["epoch"]),
               schema.EPOCH_SECONDS: float(result.get("epoch_seconds", math.nan)), **_metrics(result)}
        rows = self._epoch_rows.setdefault(trial.trial_id, [])
        rows[:] = [r for r in rows if r[schema.EPOCH] != row[schema.EPOCH]] + [row]

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial, error=None)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, error=_error_text(trial))

    def _finish(self, trial, error: str | None) -> None:
        rows = sorted(self._epoch_rows.pop(trial.trial_id, []), key=lambda r: r[schema.EPOCH])
        planned = int(trial.config["train"].get("epochs", 0))
        status = (schema.STATUS_FAILED if error else
                  schema.STATUS_COMPLETED if rows and rows[-1][schema.EPOCH] >= planned else schema.STATUS_STOPPED)
        row = {**self._identity(trial), schema.STATUS: status, schema.ERROR: error,
               schema.EPOCHS_RUN: len(rows), schema.EPOCHS_PLANNED: planned,
               schema.WALL_SECONDS: time.time() - self._started.get(trial.trial_id, time.time()),
               schema.FINISHED_AT: pd.Timestamp.now(tz="UTC")}
        for key, scope in CONFIG_SCOPES.items():
            for name, value in trial.config.get(key, {}).items():
                row[schema.config_column(scope, name)] = value
        if rows:
            row.update({schema.FINAL_PREFIX + k: v for k, v in _metrics(rows[-1]).items()})
            scored = [r for r in rows if self.metric in r]
            if scored:
                pick = max if self.mode == "max" else min
                best = pick(scored, key=lambda r: r[self.metric])
                row.update({schema.BEST_PREFIX + k: v for k, v in _metrics(best).items()})
                row["best_epoch"] = best[schema.EPOCH]
        self.trials[trial.trial_id] = row
        self.epochs = [r for r in self.epochs if r[schema.TRIAL_ID] != trial.trial_id] + rows
        self.flush()
        self.log(_progress_line(row, self.metric))

    def flush(self) -> None:
        if self.trials:
            write_table(pd.DataFrame(list(self.trials.values())), self.results_dir / schema.TRIALS_FILE)
        if self.epochs:
            write_table(pd.DataFrame(self.epochs), self.results_dir / schema.EPOCHS_FILE)


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None)
    if path and Path(path).exists():
        lines = [line for line in Path(path).read_text().strip().splitlines() if line.strip()]
        return lines[-1][:500] if lines else "unknown error"
    return str(getattr(trial, "error_msg", None) or "unknown error")


def _progress_line(row: dict, metric: str) -> str:
    value = row.get(schema.FINAL_PREFIX + metric)
    shown = f"{metric}={value:.4f}" if isinstance(value, float) else "no metric"
    return (f"[mmray] trial {row[schema.TRIAL_ID]} {row[schema.BENCHMARK]}/{row[schema.METHOD]} "
            f"seed {row[schema.SEED]}: {row[schema.STATUS]} after {row[schema.EPOCHS_RUN]}/"
            f"{row[schema.EPOCHS_PLANNED]} epochs, {shown}, {row[schema.WALL_SECONDS]:.0f} s"
            + (f" - {row[schema.ERROR]}" if row[schema.ERROR] else ""))
