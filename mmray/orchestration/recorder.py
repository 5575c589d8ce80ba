"""A Tune callback in the driver that turns trial results into the results tables.

Nothing is lost when the driver dies: each running trial's epochs are kept in `running/<trial_id>.parquet`
as they arrive, and a finished trial's rows are merged into trials.parquet and epochs.parquet (read, replace
that trial's rows, write atomically). Merging against the files, not against memory, matters because
`Tuner.restore` brings back a pickled copy of this callback whose memory is stale.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pandas as pd
from ray.tune import Callback

from mmray import storage
from mmray.config import TrialConfig
from mmray.results import schema
from mmray.results.best import best_epoch
from mmray.results.io import write_table
from mmray.storage import Location

RUNNING_DIR = "running"
# What a worker reports with each epoch beside its metrics.
WORKER_COLUMNS = (schema.EPOCH_SECONDS, schema.EPOCH_TRAIN_SECONDS, schema.DATA_WAIT_SECONDS,
                  schema.FIRST_BATCH_SECONDS, schema.RESUMED_FROM_EPOCH)


def _metrics(result: dict) -> dict:
    return {k: v for k, v in result.items()
            if schema.is_metric_column(k) and isinstance(v, (int, float)) and not isinstance(v, bool)}


class ResultsRecorder(Callback):
    def __init__(self, results_dir: Location, sweep: str, metric: str, mode: str, log=print,
                 max_epochs: int | None = None):
        self.results_dir = storage.location(results_dir)
        self.sweep, self.metric, self.mode, self.log = sweep, metric, mode, log
        # search.max_epochs: once spent, Tune stops the trials still running without telling the callbacks
        # that they ended (on_experiment_end is all they hear)
        self.max_epochs = max_epochs
        self._segment_start: dict[str, tuple[float, float]] = {}  # trial -> (time.time(), elapsed before it)
        self._epoch_rows: dict[str, list[dict]] = {}
        self._facts: dict[str, dict[str, str]] = {}  # trial -> schema.TRIAL_FACTS it reported
        self._configs: dict[str, TrialConfig] = {}

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks into the experiment state; a log function need not survive that (and
        # `print` cannot be pickled once Ray has wrapped it)
        return {**self.__dict__, "log": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.log = self.log or print

    def _running_file(self, trial_id: str) -> Location:
        return storage.join(self.results_dir, RUNNING_DIR, f"{trial_id}.parquet")

    def _rows(self, trial_id: str) -> list[dict]:
        """This trial's epoch rows so far, including those an interrupted driver kept on disk."""
        if trial_id not in self._epoch_rows:
            path = self._running_file(trial_id)
            rows = storage.read_parquet(path).to_dict("records") if storage.exists(path) else []
            self._epoch_rows[trial_id] = rows
        return self._epoch_rows[trial_id]

    def _config(self, trial) -> TrialConfig:
        if trial.trial_id not in self._configs:
            self._configs[trial.trial_id] = TrialConfig.model_validate(trial.config)
        return self._configs[trial.trial_id]

    def _identity(self, trial) -> dict:
        config = self._config(trial)
        return {schema.SWEEP: self.sweep, schema.RUN: config.run, schema.TRIAL_ID: trial.trial_id,
                schema.BENCHMARK: config.benchmark, schema.METHOD: config.method, schema.SEED: config.seed}

    def on_trial_start(self, iteration, trials, trial, **info):
        rows = self._rows(trial.trial_id)
        before = float(rows[-1][schema.ELAPSED_SECONDS]) if rows else 0.0
        self._segment_start[trial.trial_id] = (time.time(), before)

    def _elapsed(self, trial_id: str) -> float:
        started, before = self._segment_start.get(trial_id, (time.time(), 0.0))
        return before + time.time() - started

    def on_trial_result(self, iteration, trials, trial, result, **info):
        row = {**self._identity(trial), schema.EPOCH: int(result["epoch"]),
               **{column: float(result.get(column, math.nan)) for column in WORKER_COLUMNS},
               schema.ELAPSED_SECONDS: self._elapsed(trial.trial_id), **_metrics(result)}
        self._facts.setdefault(trial.trial_id, {}).update(
            {key: result[key] for key in schema.TRIAL_FACTS if key in result})
        rows = self._rows(trial.trial_id)
        if any(r[schema.EPOCH] == row[schema.EPOCH] for r in rows):
            return  # a worker restored from a checkpoint reports its epochs again: the first report stands
        rows.append(row)
        write_table(pd.DataFrame(rows), self._running_file(trial.trial_id))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial, error=None)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, error=_error_text(trial))

    def on_experiment_end(self, trials, **info):
        """The search's epoch budget spent (each trial's last reported epoch, summed, as EpochBudget counts):
        the trials it stopped are stopped trials, with the epochs they ran. A driver interrupted before that
        leaves them running, for --resume to go on with."""
        spent = sum(int(trial.last_result.get(schema.EPOCH, 0)) for trial in trials)
        if self.max_epochs is None or spent < self.max_epochs:
            return
        for trial in trials:
            if trial.status == trial.TERMINATED and self._rows(trial.trial_id):
                self._finish(trial, error=None)

    def _finish(self, trial, error: str | None) -> None:
        trial_id = trial.trial_id
        rows = sorted(self._rows(trial_id), key=lambda r: r[schema.EPOCH])
        config = self._config(trial)
        planned = config.train.epochs
        status = (schema.STATUS_FAILED if error else
                  schema.STATUS_COMPLETED if rows and rows[-1][schema.EPOCH] >= planned else schema.STATUS_STOPPED)
        row = {**self._identity(trial), schema.STATUS: status, schema.ERROR: error,
               schema.EPOCHS_RUN: len(rows), schema.EPOCHS_PLANNED: planned,
               schema.WALL_SECONDS: self._elapsed(trial_id),
               **{key: self._facts.get(trial_id, {}).get(key) for key in schema.TRIAL_FACTS},
               schema.FINISHED_AT: pd.Timestamp.now(tz="UTC")}
        row.update(config.config_columns())
        if rows:
            row.update({schema.FINAL_PREFIX + k: v for k, v in _metrics(rows[-1]).items()})
            best = best_epoch(pd.DataFrame(rows), self.metric, self.mode)
            if best is not None:
                best = best.dropna().to_dict()  # a metric missing from that epoch stays missing
                row.update({schema.BEST_PREFIX + k: v for k, v in _metrics(best).items()})
                row[schema.BEST_EPOCH] = best[schema.EPOCH]
                kept = schema.model_dir(trial_id)
                if storage.exists(storage.join(self.results_dir, *kept.split("/"))):
                    row[schema.BEST_CHECKPOINT] = kept
        self._merge(schema.TRIALS_FILE, trial_id, [row])
        self._merge(schema.EPOCHS_FILE, trial_id, rows)
        storage.delete(self._running_file(trial_id))
        running_dir = storage.join(self.results_dir, RUNNING_DIR)
        if not storage.listdir(running_dir):
            storage.delete(running_dir)  # nothing left running: leave no empty folder behind
        self._epoch_rows.pop(trial_id, None)
        self._configs.pop(trial_id, None)
        self.log(_progress_line(row, self.metric))

    def _merge(self, file: str, trial_id: str, rows: list[dict]) -> None:
        path = storage.join(self.results_dir, file)
        frames = [pd.DataFrame(rows)] if rows else []
        if storage.exists(path):
            existing = storage.read_parquet(path)
            frames.insert(0, existing[existing[schema.TRIAL_ID] != trial_id])
        if frames:
            write_table(pd.concat(frames, ignore_index=True), path)


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
