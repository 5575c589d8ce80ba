"""Writing the results tables atomically as trials finish, and loading them back as typed pandas DataFrames."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

from mmray import storage
from mmray.errors import NoResultsError
from mmray.results import schema
from mmray.storage import Location

ARTIFACTS_DIR = "artifacts"  # <results>/artifacts/<trial_id>/: per-trial files (embedding maps, matrices)

# Declared dtypes of the bookkeeping columns; metric and epoch-time columns are float64, text stays str.
INTEGER_COLUMNS = (schema.SEED, schema.EPOCH, schema.EPOCHS_RUN, schema.EPOCHS_PLANNED)
NULLABLE_INTEGER_COLUMNS = (schema.BEST_EPOCH,)  # failed trials have no best epoch
FLOAT_COLUMNS = (schema.WALL_SECONDS, schema.EPOCH_SECONDS, schema.ELAPSED_SECONDS)
# What the joined view copies from a trial onto each of its epochs (besides its config columns).
TRIAL_FIELDS = (schema.STATUS, schema.EPOCHS_RUN, schema.EPOCHS_PLANNED, schema.BEST_EPOCH, schema.WALL_SECONDS)


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Replace the table at `path` (a local path or a URI) whole: a reader never sees a half-written table,
    a crash keeps the last one."""
    storage.write_parquet(path, frame)


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the declared dtypes: counts int64 (best_epoch nullable Int64), seconds and every metric
    column (including final/ and best/) float64, finished_at a UTC timestamp. Other columns are left as read."""
    return pd.DataFrame({column: _typed_column(column, values) for column, values in frame.items()},
                        index=frame.index)


def _typed_column(column: str, values: pd.Series) -> pd.Series:
    metric = column.removeprefix(schema.FINAL_PREFIX).removeprefix(schema.BEST_PREFIX)
    if column in INTEGER_COLUMNS:
        return values.astype("int64")
    if column in NULLABLE_INTEGER_COLUMNS:
        return values.astype("Int64")
    if column in FLOAT_COLUMNS or schema.is_metric_column(metric):
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if column == schema.FINISHED_AT:
        return pd.to_datetime(values, utc=True)
    return values


@dataclass
class Results:
    """A sweep's results folder as DataFrames.

    trials: one row per finished trial (trials.parquet).  epochs: one row per (trial, epoch) (epochs.parquet;
    empty if absent).  joined: each epoch row with its trial's status, epoch counts, wall seconds and config
    columns beside it, for plotting a metric per epoch against any configured value.
    """

    trials: pd.DataFrame
    epochs: pd.DataFrame
    path: Location  # an absolute local folder or a URI
    spec: dict = field(default_factory=dict)  # sweep.yaml as written by the sweep ({} when absent)

    @property
    def metric_columns(self) -> list[str]:
        return [c for c in self.epochs.columns if schema.is_metric_column(c)]

    @property
    def config_columns(self) -> list[str]:
        return [c for c in self.trials.columns if c.startswith(schema.CONFIG_PREFIX)]

    @cached_property
    def joined(self) -> pd.DataFrame:
        if self.epochs.empty:
            return self.epochs
        trial_columns = [schema.TRIAL_ID, *(c for c in TRIAL_FIELDS if c in self.trials), *self.config_columns]
        return self.epochs.merge(self.trials[trial_columns], on=schema.TRIAL_ID, how="left", validate="m:1")

    def artifact_dir(self, trial_id: str) -> Location:
        """Where a trial's artifacts lie (the folder may not exist: not every metric writes artifacts)."""
        return storage.join(self.path, ARTIFACTS_DIR, str(trial_id))


def load(path: str | os.PathLike) -> Results:
    """Load a sweep's results folder (results/<sweep>, or a URI such as s3://bucket/prefix/<sweep>) as typed
    pandas DataFrames: `.trials`, `.epochs`, `.joined` (epochs with their trial's columns), `.spec`
    (sweep.yaml); column names: `mmray.results.schema`.

    Readable while a sweep runs (tables are replaced atomically); trials still running are not in them yet.
    """
    import yaml

    path = storage.location(path)
    trials_path = storage.join(path, schema.TRIALS_FILE)
    if not storage.exists(trials_path):
        if storage.exists(storage.join(path, schema.SPEC_FILE)):
            raise NoResultsError(f"{path} holds no finished trial yet: its sweep is running, or stopped before "
                                 "its first trial ended (`mmray sweep SPEC --resume` goes on from there)")
        raise NoResultsError(f"{path} is not a sweep's results folder (no {schema.TRIALS_FILE}): run "
                             "`mmray sweep` first or check the path")
    trials = typed(storage.read_parquet(trials_path))
    epochs_path = storage.join(path, schema.EPOCHS_FILE)
    epochs = typed(storage.read_parquet(epochs_path)) if storage.exists(epochs_path) else pd.DataFrame()
    spec_path = storage.join(path, schema.SPEC_FILE)
    spec = (yaml.safe_load(storage.read_text(spec_path)) or {}) if storage.exists(spec_path) else {}
    return Results(trials, epochs, path, spec)
