"""t-SNE maps of embedding spaces, as a table (scikit-learn): pictures stored as data, drawn by the report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from mmray.eval.probes import l2_normalize
from mmray.results import schema

TSNE_EXAMPLES = 500


def tsne_table(embeddings: dict[str, np.ndarray], labels: np.ndarray, n: int = TSNE_EXAMPLES,
               seed: int = 0, shared: Sequence[str] = ()) -> pd.DataFrame:
    """2-D t-SNE of the same seeded subset of at most `n` rows in every space (key of `embeddings`), on
    L2-normalised embeddings (cosine geometry, as the probes and retrieval see it); with two or more `shared`
    spaces (modalities whose embeddings have one size), also one map of all their points together
    (schema.SHARED_MAP), where an image's nearness to its class's audio shows. One row per (map, space,
    example): schema.ARTIFACT_COLUMNS["tsne"]."""
    return tsne_maps(embedding_sample(embeddings, labels, n, seed, shared), seed)


def embedding_sample(embeddings: dict[str, np.ndarray], labels: np.ndarray, n: int = TSNE_EXAMPLES,
                     seed: int = 0, shared: Sequence[str] = ()) -> pd.DataFrame:
    """The seeded subset of at most `n` rows that the maps show, with its embedding in every space:
    schema.ARTIFACT_COLUMNS["embeddings"], what `tsne_maps` draws from."""
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    if len(rows) > n:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), n, replace=False))
    frames = []
    for space, x in embeddings.items():
        if len(x) != len(labels):
            raise ValueError(f"{space}: {len(x)} embeddings but {len(labels)} labels")
        vectors = np.asarray(x, dtype=np.float32)[rows].reshape(len(rows), -1)
        frames.append(pd.DataFrame({schema.MODALITY: space, schema.EXAMPLE: rows, schema.LABEL: labels[rows],
                                    schema.IN_SHARED_MAP: len(shared) > 1 and space in shared,
                                    schema.VECTOR: list(vectors)}))
    return pd.concat(frames, ignore_index=True)


def tsne_maps(sample: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The t-SNE maps of an `embedding_sample`: one per space, and the shared map of the spaces marked for it."""
    frames, shared = [], []
    for space, rows in sample.groupby(schema.MODALITY, sort=False):
        points = l2_normalize(np.stack(rows[schema.VECTOR].to_numpy()).astype(np.float64))
        frames.append(_points(space, space, rows, _tsne(points, seed)))
        if rows[schema.IN_SHARED_MAP].all():
            shared.append((space, rows, points))
    if len(shared) > 1:
        coords = np.split(_tsne(np.concatenate([points for _, _, points in shared]), seed), len(shared))
        frames += [_points(schema.SHARED_MAP, space, rows, xy) for (space, rows, _), xy in zip(shared, coords)]
    return pd.concat(frames, ignore_index=True)


def _tsne(points: np.ndarray, seed: int) -> np.ndarray:
    # perplexity must stay below the number of points; 30 is scikit-learn's default. One OpenMP thread: on a
    # busy machine t-SNE's spinning threads made 60 points take 96 s instead of 1 s, and 500 points are quick.
    tsne = TSNE(perplexity=min(30.0, (len(points) - 1) / 3), init="pca", random_state=seed)
    with threadpool_limits(limits=1, user_api="openmp"):
        return tsne.fit_transform(points)


def _points(map_name: str, space: str, rows: pd.DataFrame, coords: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({schema.MAP: map_name, schema.MODALITY: space, schema.EXAMPLE: rows[schema.EXAMPLE].to_numpy(),
                         schema.LABEL: rows[schema.LABEL].to_numpy(), schema.X: coords[:, 0], schema.Y: coords[:, 1]})
