"""Per-trial artifacts: pictures stored as data (t-SNE maps, rotation matrices, sample translations with their
audio, generations, cluster relations), one Parquet table each under <results>/artifacts/<trial_id>/; names and
columns in the schema.

    from mmray.results.artifacts import load_artifacts
    tables = load_artifacts("results/demo", trial_id)      # {"tsne": DataFrame, "rotations": DataFrame, ...}
    tables["rotations"].pivot_table(index=["modality", "row"], columns="col", values="value")
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pandas as pd

from mmray import storage
from mmray.results import schema
from mmray.results.io import ARTIFACTS_DIR, write_table
from mmray.storage import Location

SAMPLES = 8  # generations kept per text modality
SAMPLES_PER_CLASS = 2  # examples of each class kept per translation
WAV_PER_CLASS = 1  # ... of which heard: audio targets as WAV files (~16 kB a second at 8 kHz)


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


def draw_maps(results_dir: str | os.PathLike, trial_id: str) -> bool:
    """Write a trial's t-SNE maps from the embedding sample it kept, unless it has them; False if it kept none.
    A trial keeps only the sample: maps cost seconds of t-SNE, and the report shows those of a few trials."""
    if storage.exists(artifact_path(results_dir, trial_id, schema.ARTIFACT_TSNE)):
        return True
    sample = artifact_path(results_dir, trial_id, schema.ARTIFACT_EMBEDDINGS)
    if not storage.exists(sample):
        return False
    from mmray.eval.tsne import tsne_maps  # scikit-learn's t-SNE: only where maps are drawn

    write_artifacts(results_dir, trial_id, {schema.ARTIFACT_TSNE: tsne_maps(storage.read_parquet(sample))})
    return True


def draw_maps_of_best_trials(results_dir: str | os.PathLike, trials: pd.DataFrame, metric: str, mode: str
                             ) -> list[str]:
    """The t-SNE maps of the best trial of each (benchmark, method) that kept an embedding sample: the trials
    whose maps the report shows. Returns their trial ids."""
    from mmray.results.best import ranked

    drawn = []
    best_first = ranked(trials, schema.BEST_PREFIX + metric, mode)
    for _, group in best_first.groupby([schema.BENCHMARK, schema.METHOD], sort=True):
        for trial_id in group[schema.TRIAL_ID]:
            if draw_maps(results_dir, trial_id):
                drawn.append(trial_id)
                break
    return drawn


def rotation_table(matrices: dict[str, np.ndarray]) -> pd.DataFrame:
    """Square matrices by modality, one row per entry."""
    frames = []
    for modality, matrix in matrices.items():
        matrix = np.asarray(matrix, dtype=np.float64)
        rows, cols = np.indices(matrix.shape)
        frames.append(pd.DataFrame({schema.MODALITY: modality, schema.ROW: rows.ravel(), schema.COL: cols.ravel(),
                                    schema.VALUE: matrix.ravel()}))
    return pd.concat(frames, ignore_index=True)


def per_class_rows(labels: np.ndarray, per_class: int) -> np.ndarray:
    """The first `per_class` rows of each class, in row order."""
    labels = pd.Series(np.asarray(labels))
    return np.flatnonzero(labels.groupby(labels).cumcount().to_numpy() < per_class).astype(np.int64)


def reconstruction_table(translations: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]], labels: np.ndarray,
                         kinds: dict[str, str], wav: dict[str, Callable[[np.ndarray], bytes]] | None = None,
                         source_texts: dict[str, list[str]] | None = None, per_class: int = SAMPLES_PER_CLASS,
                         wav_per_class: int = WAV_PER_CLASS) -> pd.DataFrame:
    """The first `per_class` examples of each class of every translation (source, target): the target's kind
    (`kinds`: modality -> image | audio), its input and the method's output, flattened, with their shape, and a
    text source's input as `source_texts` holds it.
    `wav` maps an audio target modality to a function making one of its arrays a WAV file; the first
    `wav_per_class` examples of each class get one (an input heard through the same inversion as the output,
    so that the two compare)."""
    frames = []
    wav, source_texts = wav or {}, source_texts or {}
    heard: dict[tuple[str, int], bytes] = {}  # (target, row) -> the input's WAV, shared by every source
    for (source, target), (originals, outputs) in translations.items():
        rows = per_class_rows(np.asarray(labels)[:len(originals)], per_class)
        audible = set(per_class_rows(np.asarray(labels)[:len(originals)], wav_per_class).tolist())
        to_wav = wav.get(target)
        original_wav, output_wav = [], []
        for row in rows.tolist():
            if to_wav is None or row not in audible:
                original_wav.append(None)
                output_wav.append(None)
                continue
            if (target, row) not in heard:
                heard[target, row] = to_wav(originals[row])
            original_wav.append(heard[target, row])
            output_wav.append(to_wav(outputs[row]))
        frames.append(pd.DataFrame({
            schema.SOURCE: source, schema.TARGET: target, schema.KIND: kinds[target], schema.EXAMPLE: rows,
            schema.LABEL: np.asarray(labels)[rows],
            schema.SOURCE_TEXT: pd.Series([source_texts[source][i] if source in source_texts else None
                                           for i in rows], dtype=object),
            schema.SHAPE: [list(originals.shape[1:])] * len(rows),
            schema.ORIGINAL: [np.asarray(originals[i], np.float32).ravel() for i in rows],
            schema.RECONSTRUCTION: [np.asarray(outputs[i], np.float32).ravel() for i in rows],
            schema.ORIGINAL_WAV: pd.Series(original_wav, dtype=object),
            schema.RECONSTRUCTION_WAV: pd.Series(output_wav, dtype=object),
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
