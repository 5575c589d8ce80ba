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
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    if len(rows) > n:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), n, replace=False))
    frames = []
    for space, x in embeddings.items():
        if len(x) != len(labels):
            raise ValueError(f"{space}: {len(x)} embeddings but {len(labels)} labels")
        coords = _tsne(l2_normalize(np.asarray(x, dtype=np.float64)[rows]), seed)
        frames.append(_points(space, space, rows, labels[rows], coords))
    if len(shared) > 1:
        points = np.concatenate([l2_normalize(np.asarray(embeddings[m], dtype=np.float64)[rows]) for m in shared])
        coords = np.split(_tsne(points, seed), len(shared))
        frames += [_points(schema.SHARED_MAP, m, rows, labels[rows], xy) for m, xy in zip(shared, coords)]
    return pd.concat(frames, ignore_index=True)


def _tsne(points: np.ndarray, seed: int) -> np.ndarray:
    # perplexity must stay below the number of points; 30 is scikit-learn's default. One OpenMP thread: on a
    # busy machine t-SNE's spinning threads made 60 points take 96 s instead of 1 s, and 500 points are quick.
    tsne = TSNE(perplexity=min(30.0, (len(points) - 1) / 3), init="pca", random_state=seed)
    with threadpool_limits(limits=1, user_api="openmp"):
        return tsne.fit_transform(points)


def _points(map_name: str, space: str, rows: np.ndarray, labels: np.ndarray, coords: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({schema.MAP: map_name, schema.MODALITY: space, schema.EXAMPLE: rows, schema.LABEL: labels,
                         schema.X: coords[:, 0], schema.Y: coords[:, 1]})
