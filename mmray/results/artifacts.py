"""Per-trial artifacts: pictures stored as data (t-SNE maps, rotation matrices, sample reconstructions and
generations), one Parquet table each under <results>/artifacts/<trial_id>/; names and columns in the schema.

    from mmray.results.artifacts import load_artifacts
    tables = load_artifacts("results/demo", trial_id)      # {"tsne": DataFrame, "rotations": DataFrame, ...}
    tables["rotations"].pivot_table(index=["modality", "row"], columns="col", values="value")
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from mmray import storage
from mmray.results import schema
from mmray.results.io import ARTIFACTS_DIR, write_table
from mmray.storage import Location

SAMPLES = 8  # reconstructions and generations kept per modality


def artifact_path(results_dir: str | os.PathLike, trial_id: str, name: str) -> Location:
    return storage.join(results_dir, ARTIFACTS_DIR, str(trial_id), f"{name}.parquet")


def write_artifacts(results_dir: str | os.PathLike, trial_id: str, tables: dict[str, pd.DataFrame]) -> None:
    """Write each named table (a key of schema.ARTIFACT_COLUMNS, with exactly those columns) atomically."""
    for name, frame in tables.items():
        expected = schema.ARTIFACT_COLUMNS.get(name)
        if expected is None or tuple(frame.columns) != expected:
            raise ValueError(f"artifact {name!r} must be one of {sorted(schema.ARTIFACT_COLUMNS)} with columns "
                             f"{expected}, got {tuple(frame.columns)}")
        write_table(frame, artifact_path(results_dir, trial_id, name))


def load_artifacts(results_dir: str | os.PathLike, trial_id: str) -> dict[str, pd.DataFrame]:
    """The artifact tables a trial wrote, by name; only those it has (e.g. no rotations for most methods)."""
    folder = storage.join(results_dir, ARTIFACTS_DIR, str(trial_id))
    if not storage.is_dir(folder):
        raise FileNotFoundError(f"{folder} does not exist: trial {trial_id} wrote no artifacts (they are written "
                                f"at a trial's final epoch; trials stopped early have none)")
    return {name: storage.read_parquet(path) for name in schema.ARTIFACT_COLUMNS
            if storage.exists(path := artifact_path(results_dir, trial_id, name))}


def rotation_table(matrices: dict[str, np.ndarray]) -> pd.DataFrame:
    """Square matrices by modality, one row per entry."""
    frames = []
    for modality, matrix in matrices.items():
        matrix = np.asarray(matrix, dtype=np.float64)
        rows, cols = np.indices(matrix.shape)
        frames.append(pd.DataFrame({schema.MODALITY: modality, schema.ROW: rows.ravel(), schema.COL: cols.ravel(),
                                    schema.VALUE: matrix.ravel()}))
    return pd.concat(frames, ignore_index=True)


def reconstruction_table(images: dict[str, tuple[np.ndarray, np.ndarray]], labels: np.ndarray,
                         n: int = SAMPLES) -> pd.DataFrame:
    """The first `n` (original, reconstruction) images of each modality, flattened, with their shape."""
    frames = []
    for modality, (originals, reconstructions) in images.items():
        rows = np.arange(min(n, len(originals)))
        frames.append(pd.DataFrame({
            schema.MODALITY: modality, schema.EXAMPLE: rows, schema.LABEL: np.asarray(labels)[rows],
            schema.SHAPE: [list(originals.shape[1:])] * len(rows),
            schema.ORIGINAL: [np.asarray(originals[i], np.float32).ravel() for i in rows],
            schema.RECONSTRUCTION: [np.asarray(reconstructions[i], np.float32).ravel() for i in rows],
        }))
    return pd.concat(frames, ignore_index=True)


def generation_table(texts: dict[str, tuple[list[str], list[str]]], labels: np.ndarray,
                     n: int = SAMPLES) -> pd.DataFrame:
    """The first `n` generated texts of each modality beside their references."""
    frames = []
    for modality, (generated, references) in texts.items():
        rows = np.arange(min(n, len(generated)))
        frames.append(pd.DataFrame({
            schema.MODALITY: modality, schema.EXAMPLE: rows, schema.LABEL: np.asarray(labels)[rows],
            schema.GENERATED: [generated[i] for i in rows], schema.REFERENCE: [references[i] for i in rows],
        }))
    return pd.concat(frames, ignore_index=True)
