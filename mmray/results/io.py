"""Writing the results tables atomically as trials finish, and loading them back with pandas."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmray.results import schema


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Replace `path` atomically: a reader never sees a half-written table, a crash keeps the last one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@dataclass
class Results:
    trials: pd.DataFrame
    epochs: pd.DataFrame
    path: Path

    @property
    def metric_columns(self) -> list[str]:
        return [c for c in self.epochs.columns if schema.is_metric_column(c)]

    @property
    def config_columns(self) -> list[str]:
        return [c for c in self.trials.columns if c.startswith(schema.CONFIG_PREFIX)]


def load(path: str | os.PathLike) -> Results:
    """Load a sweep's results folder (results/<sweep>) into pandas DataFrames."""
    path = Path(path)
    trials_path = path / schema.TRIALS_FILE
    if not trials_path.exists():
        raise FileNotFoundError(f"{trials_path} does not exist; run `mmray sweep` first or check the path")
    trials = pd.read_parquet(trials_path)
    epochs_path = path / schema.EPOCHS_FILE
    epochs = pd.read_parquet(epochs_path) if epochs_path.exists() else pd.DataFrame()
    return Results(trials, epochs, path)
