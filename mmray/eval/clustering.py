"""Clustering of embeddings, and how two modalities' clusterings relate: pure functions over numpy arrays.

- `clustering_scores`: k-means on one embedding, scored against the labels (NMI, ARI) and on its own
  geometry (silhouette).
- `cluster_relationship`: the cross-modal relationship table, modality a's clusters (rows) against modality
  b's (columns), as counts, row fractions and each row's best match; its relations: each of a's clusters is
  one-to-one, one-to-many or many-to-one with b's clusters (or has no clear partner).
- `zones`: after matching a's clusters to b's (Hungarian, one-to-one; or each row's best match), the
  convergence zone is the examples whose two assignments agree, the divergence zone those that disagree.
- `joint_embedding`: the modalities' L2-normalised latents side by side, for one joint k-means.
- `cluster_analysis`: all of the above for a dict of per-modality embeddings; `cluster_tables` makes it the
  per-trial artifact tables (mmray.results.schema).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

from mmray.results import schema

RELATION_SHARE = 0.3  # a cluster's partner in the other modality holds at least this share of it
RELATIONS = ("one-to-one", "one-to-many", "many-to-one", "none")
SILHOUETTE_MAX_POINTS = 2000  # silhouette is O(n^2): scored on a seeded subsample of at most this many rows
KMEANS_INITS = 4  # k-means++ restarts; the best inertia wins


def kmeans_assignments(embeddings: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Cluster index (0..k-1) of every row of `embeddings` (N, D) by k-means."""
    x = np.asarray(embeddings, dtype=np.float64)
    if not 2 <= k <= len(x):
        raise ValueError(f"k-means needs 2 <= k <= {len(x)} rows, got k={k}")
    return KMeans(n_clusters=k, n_init=KMEANS_INITS, random_state=seed).fit_predict(x).astype(np.int64)


def silhouette(embeddings: np.ndarray, assignments: np.ndarray, seed: int = 0,
               max_points: int = SILHOUETTE_MAX_POINTS) -> float:
    """Mean silhouette (-1..1, higher = tighter, better separated clusters) on at most `max_points` rows;
    NaN when the rows scored fall in fewer than two clusters (silhouette is undefined there)."""
    x, assignments = np.asarray(embeddings, dtype=np.float64), np.asarray(assignments)
    if len(x) > max_points:
        keep = np.random.default_rng(seed).choice(len(x), max_points, replace=False)
        x, assignments = x[keep], assignments[keep]
    if not 2 <= len(np.unique(assignments)) < len(x):
        return float("nan")
    return float(silhouette_score(x, assignments))


def _scores(x: np.ndarray, assignments: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, float]:
    return {
        "silhouette": silhouette(x, assignments, seed),
        "nmi": float(normalized_mutual_info_score(labels, assignments)),
        "ari": float(adjusted_rand_score(labels, assignments)),
    }


def clustering_scores(embeddings: np.ndarray, labels: np.ndarray, k: int, seed: int = 0) -> dict[str, float]:
    """k-means with `k` clusters on `embeddings` (N, D), scored against `labels` (N,).

    Returns {"silhouette", "nmi", "ari"}: silhouette of the k-means clusters in the embedding space (on a
    seeded subsample of at most SILHOUETTE_MAX_POINTS rows; NaN if degenerate), normalised mutual information
    (0 = independent of the labels, 1 = the same partition) and adjusted Rand index (~0 for chance, 1 = same
    partition) between clusters and labels. Deterministic for a given seed.
    """
    labels = np.asarray(labels)
    if len(labels) != len(embeddings):
        raise ValueError(f"{len(embeddings)} embeddings but {len(labels)} labels")
    return _scores(embeddings, kmeans_assignments(embeddings, k, seed), labels, seed)


def _check_assignments(assignments: np.ndarray, k: int, name: str) -> np.ndarray:
    assignments = np.asarray(assignments, dtype=np.int64)
    if assignments.ndim != 1 or (len(assignments) and not 0 <= assignments.min() <= assignments.max() < k):
        raise ValueError(f"{name} must be a 1-D array of cluster indices in 0..{k - 1}")
    return assignments


@dataclass(frozen=True)
class Relationship:
    """Cross-modal relationship table: `counts[i, j]` = examples in a's cluster i and b's cluster j."""

    counts: np.ndarray  # (k_a, k_b) int

    @property
    def fractions(self) -> np.ndarray:
        """Row-normalised counts: where a's cluster i goes in b (rows of empty clusters are all zero)."""
        sizes = self.counts.sum(1, keepdims=True)
        return np.divide(self.counts, sizes, out=np.zeros(self.counts.shape), where=sizes > 0)

    @property
    def best_match(self) -> np.ndarray:
        """b's cluster holding most of each a cluster (-1 for an empty a cluster)."""
        return np.where(self.counts.sum(1) > 0, self.counts.argmax(1), -1)

    def transpose(self) -> Relationship:
        """The same table seen from b: b's clusters (rows) against a's."""
        return Relationship(self.counts.T.copy())

    def partners(self, share: float = RELATION_SHARE) -> list[np.ndarray]:
        """For each a cluster, the b clusters holding at least `share` of its examples (most first)."""
        fractions = self.fractions
        return [np.array([j for j in np.argsort(-row, kind="stable") if row[j] >= share], np.int64)
                for row in fractions]

    def relations(self, share: float = RELATION_SHARE) -> list[str]:
        """How each a cluster relates to b's clusters (a partner holds at least `share` of a cluster):
        "one-to-one" (one partner, partner of no other a cluster), "one-to-many" (the cluster splits over
        several b clusters), "many-to-one" (one partner, which is also another a cluster's partner: b merges
        them) or "none" (no b cluster holds `share` of it, or it is empty)."""
        partners = self.partners(share)
        taken = np.bincount(np.concatenate([*partners, np.zeros(0, np.int64)]), minlength=self.counts.shape[1])
        return ["none" if len(p) == 0 else "one-to-many" if len(p) > 1 else
                "one-to-one" if taken[p[0]] == 1 else "many-to-one" for p in partners]

    def to_frame(self, row_names=None, column_names=None) -> pd.DataFrame:
        """Row fractions with each row's size, best match and the fraction of the row that match holds."""
        frame = pd.DataFrame(self.fractions, index=row_names, columns=column_names)
        frame["size"] = self.counts.sum(1)
        frame["best"] = [frame.columns[j] if j >= 0 else None for j in self.best_match]
        frame["best_fraction"] = self.fractions.max(1)
        return frame


def cluster_relationship(assign_a: np.ndarray, assign_b: np.ndarray, k_a: int, k_b: int) -> Relationship:
    """How modality a's k_a clusters map onto modality b's k_b clusters, over the same paired examples."""
    a, b = _check_assignments(assign_a, k_a, "assign_a"), _check_assignments(assign_b, k_b, "assign_b")
    if len(a) != len(b):
        raise ValueError(f"assignments a ({len(a)}) and b ({len(b)}) must cover the same paired examples")
    counts = np.zeros((k_a, k_b), np.int64)
    np.add.at(counts, (a, b), 1)
    return Relationship(counts)


@dataclass(frozen=True)
class Zones:
    """Convergence (the modalities' clusters agree after matching) and divergence (they do not) zones."""

    mapping: np.ndarray  # (k_a,) the b cluster matched to each a cluster, -1 where none is
    agree: np.ndarray  # (N,) bool: the example lies in the convergence zone
    cluster_agreement: np.ndarray  # (k_a,) fraction of each a cluster in the convergence zone (NaN if empty)

    @property
    def convergence(self) -> float:
        return float(self.agree.mean()) if len(self.agree) else float("nan")

    @property
    def divergence(self) -> float:
        return float(1.0 - self.agree.mean()) if len(self.agree) else float("nan")


def zones(assign_a: np.ndarray, assign_b: np.ndarray, k_a: int, k_b: int,
          matching: Literal["hungarian", "best"] = "hungarian") -> Zones:
    """Match a's clusters to b's and split the examples into agreeing and disagreeing ones.

    "hungarian" matches clusters one to one, maximising the examples that agree (with k_a > k_b some a
    clusters stay unmatched and all their examples diverge); "best" sends each a cluster to the b cluster
    holding most of it, so several a clusters may share one b cluster.
    """
    table = cluster_relationship(assign_a, assign_b, k_a, k_b)
    if matching == "hungarian":
        rows, columns = linear_sum_assignment(table.counts, maximize=True)
        mapping = np.full(k_a, -1, np.int64)
        mapping[rows] = columns
    elif matching == "best":
        mapping = table.best_match
    else:
        raise ValueError(f"matching must be 'hungarian' or 'best', got {matching!r}")
    a, b = np.asarray(assign_a, np.int64), np.asarray(assign_b, np.int64)
    agree = mapping[a] == b
    sizes = table.counts.sum(1)
    agreeing = np.bincount(a[agree], minlength=k_a)
    per_cluster = np.divide(agreeing, sizes, out=np.full(k_a, np.nan), where=sizes > 0)
    return Zones(mapping, agree, per_cluster)


def joint_embedding(embeddings: list[np.ndarray]) -> np.ndarray:
    """Each modality's latents L2-normalised row-wise, then concatenated: every modality weighs the same in a
    joint k-means whatever its latent scale or size."""
    parts = [np.asarray(x, dtype=np.float64) for x in embeddings]
    return np.concatenate([x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for x in parts],
                          axis=1)


def cluster_majority(assignments: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """The most frequent label in each cluster (-1 for an empty cluster), to name clusters in tables."""
    assignments = _check_assignments(assignments, k, "assignments")
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.zeros((k, labels.max() + 1), np.int64)
    np.add.at(counts, (assignments, labels), 1)
    return np.where(counts.sum(1) > 0, counts.argmax(1), -1)


JOINT = "joint"


@dataclass(frozen=True)
class ClusterAnalysis:
    """Per-modality and joint k-means, and the relationship and zones of every pair of modalities."""

    k: int
    assignments: dict[str, np.ndarray]  # modality name (and "joint") -> (N,) cluster indices
    scores: dict[str, dict[str, float]]  # modality name (and "joint") -> {"silhouette", "nmi", "ari"}
    relationships: dict[tuple[str, str], Relationship]  # (a, b) -> a's clusters x b's clusters
    zones: dict[tuple[str, str], Zones]  # (a, b) -> Hungarian-matched convergence/divergence zones


def cluster_analysis(embeddings_by_modality: dict[str, np.ndarray], labels: np.ndarray, k: int,
                     seed: int = 0) -> ClusterAnalysis:
    """k-means on each modality's embeddings and on their joint embedding, then the relationship table and
    zones of each pair (a, b) in the dict's order. Every key is taken as a modality: leave 'fused' out."""
    labels = np.asarray(labels)
    names = list(embeddings_by_modality)
    spaces = {**embeddings_by_modality}
    if len(names) > 1:
        spaces[JOINT] = joint_embedding([embeddings_by_modality[m] for m in names])
    assignments, scores = {}, {}
    for name, x in spaces.items():
        if len(x) != len(labels):
            raise ValueError(f"{name}: {len(x)} embeddings but {len(labels)} labels")
        assignments[name] = kmeans_assignments(x, k, seed)
        scores[name] = _scores(x, assignments[name], labels, seed)
    pairs = list(itertools.combinations(names, 2))
    return ClusterAnalysis(
        k, assignments, scores,
        {(a, b): cluster_relationship(assignments[a], assignments[b], k, k) for a, b in pairs},
        {(a, b): zones(assignments[a], assignments[b], k, k) for a, b in pairs},
    )


def cluster_tables(analysis: ClusterAnalysis, labels: np.ndarray, share: float = RELATION_SHARE
                   ) -> dict[str, pd.DataFrame]:
    """The analysis of every pair (a, b) as the schema's three artifact tables: the relationship table (a's
    clusters x b's, long format), each cluster's relation to the other modality's clusters (from a and from
    b) and every example's zone. Clusters carry their commonest label, to be named by it."""
    labels = np.asarray(labels, dtype=np.int64)
    k = analysis.k
    named = {m: cluster_majority(assignments, labels, k) for m, assignments in analysis.assignments.items()}
    relationships, relations, zone_rows = [], [], []
    for (a, b), table in analysis.relationships.items():
        rows, columns = np.indices(table.counts.shape)
        relationships.append(pd.DataFrame({
            schema.MODALITY_A: a, schema.MODALITY_B: b, schema.CLUSTER_A: rows.ravel(),
            schema.LABEL_A: named[a][rows.ravel()], schema.CLUSTER_B: columns.ravel(),
            schema.LABEL_B: named[b][columns.ravel()], schema.COUNT: table.counts.ravel(),
            schema.FRACTION: table.fractions.ravel()}))
        for first, second, seen in ((a, b, table), (b, a, table.transpose())):
            partners = seen.partners(share)
            relations.append(pd.DataFrame({
                schema.MODALITY_A: first, schema.MODALITY_B: second, schema.CLUSTER_A: np.arange(k),
                schema.LABEL_A: named[first], schema.SIZE: seen.counts.sum(1),
                schema.PARTNERS: [p.tolist() for p in partners],
                schema.SHARES: [seen.fractions[i, p].tolist() for i, p in enumerate(partners)],
                schema.RELATION: seen.relations(share)}))
        zone = analysis.zones[a, b]
        assign_a, assign_b = analysis.assignments[a], analysis.assignments[b]
        zone_rows.append(pd.DataFrame({
            schema.MODALITY_A: a, schema.MODALITY_B: b, schema.EXAMPLE: np.arange(len(labels)),
            schema.LABEL: labels, schema.CLUSTER_A: assign_a, schema.CLUSTER_B: assign_b,
            schema.MATCHED: zone.mapping[assign_a], schema.CONVERGENT: zone.agree}))
    if not relationships:
        return {}
    return {schema.ARTIFACT_CLUSTER_RELATIONSHIPS: pd.concat(relationships, ignore_index=True),
            schema.ARTIFACT_CLUSTER_RELATIONS: pd.concat(relations, ignore_index=True),
            schema.ARTIFACT_CLUSTER_ZONES: pd.concat(zone_rows, ignore_index=True)}
