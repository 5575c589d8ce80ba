"""Cross-modal retrieval by cosine similarity: Recall@K and mean average precision.

Two notions of a hit: the same label (`retrieval_scores`), or the query's own partner, row i of the gallery
for query row i (`pair_retrieval_scores`, where AP is the reciprocal rank of the partner).

A relevant item's rank is one plus the number of irrelevant gallery items at least as similar as it, so a tie
with an irrelevant item counts against the query (collapsed embeddings, where every similarity is equal, score
near zero, not one), while ties among relevant items (one recording paired with several images) do not.
Ranks come from sorting similarity values (float32) and one binary search per chunk, not from an argsort and
a gather over the gallery: half the CPU time on 10k x 10k, and `max_queries` caps it further
(`benchmarks/eval_suite_cost.py`).
"""

from __future__ import annotations

import numpy as np

from mmray.eval.probes import l2_normalize


def _query_rows(n: int, max_queries: int | None, seed: int) -> np.ndarray:
    """All query rows, or a seeded subsample of `max_queries` of them (the gallery is always kept whole)."""
    if max_queries is None or n <= max_queries:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_queries, replace=False))


def _normalised(queries: np.ndarray, gallery: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows in float32: half the memory traffic of float64, and plenty for ranking cosines."""
    return (l2_normalize(np.asarray(queries, dtype=np.float64)[rows]).astype(np.float32),
            l2_normalize(np.asarray(gallery, dtype=np.float64)).astype(np.float32))


def _relevant_at_least(sorted_sims: np.ndarray) -> np.ndarray:
    """For rows sorted ascending: how many entries of the row are >= each entry (ties counted in full)."""
    columns = np.arange(sorted_sims.shape[1])
    starts = np.ones(sorted_sims.shape, dtype=bool)
    starts[:, 1:] = sorted_sims[:, 1:] != sorted_sims[:, :-1]
    first_of_value = np.maximum.accumulate(np.where(starts, columns, 0), axis=1)
    return sorted_sims.shape[1] - first_of_value


def _scores(best_rank: np.ndarray, average_precision: np.ndarray, ks) -> dict[str, float]:
    """Recall@K from the rank of each query's best hit (inf: no hit at all) and mAP."""
    scores = {f"recall@{k}": float((best_rank <= k).mean()) for k in ks}
    scores["map"] = float(average_precision.mean())
    return scores


def retrieval_scores(queries: np.ndarray, gallery: np.ndarray, query_labels: np.ndarray,
                     gallery_labels: np.ndarray, ks=(1, 5, 10), chunk: int = 1024,
                     max_queries: int | None = None, seed: int = 0) -> dict[str, float]:
    """Recall@K (share of queries with a same-label item among their K nearest) and mAP over the whole
    gallery, a hit being the same label; `max_queries` evaluates a seeded subsample of the queries."""
    rows = _query_rows(len(queries), max_queries, seed)
    q, g = _normalised(queries, gallery, rows)
    q_labels, g_labels = np.asarray(query_labels)[rows], np.asarray(gallery_labels)
    best_rank, average_precision = np.full(len(q), np.inf), np.zeros(len(q))
    for start in range(0, len(q), chunk):
        similarity = q[start:start + chunk] @ g.T
        labels = q_labels[start:start + chunk]
        groups = [(members, relevant) for members, relevant in
                  ((np.flatnonzero(labels == label), np.flatnonzero(g_labels == label)) for label in np.unique(labels))
                  if len(relevant)]
        # queries of one label share their relevant items: their similarities, sorted, one matrix per label
        relevant_sims = [np.sort(similarity[np.ix_(members, relevant)], axis=1) for members, relevant in groups]
        similarity.sort(axis=1)
        # One searchsorted for the whole chunk: shifting row i by 4i (cosines lie in [-1, 1]) lays the sorted rows
        # end to end in order; float64 holds a float32 plus a small integer exactly. Ascending keys let numpy's
        # binary search start from the previous answer.
        shift = 4.0 * np.arange(len(similarity))[:, None]
        flat = (similarity + shift).ravel()
        for (members, _), sims in zip(groups, relevant_sims):
            # gallery items at least as similar as each relevant one, of which the irrelevant ones are what
            # push it down: relevant ties (the same recording paired with several images) must not
            at_least = (members[:, None] + 1) * len(g) - np.searchsorted(flat, sims + shift[members], side="left")
            irrelevant = at_least - _relevant_at_least(sims)
            best_rank[start + members] = irrelevant[:, -1] + 1
            found = np.arange(sims.shape[1], 0, -1)  # relevant items ranked at or above this one
            average_precision[start + members] = (found / (found + irrelevant)).mean(axis=1)
    return _scores(best_rank, average_precision, ks)


def pair_retrieval_scores(queries: np.ndarray, gallery: np.ndarray, ks=(1, 5, 10), chunk: int = 1024,
                          max_queries: int | None = None, seed: int = 0) -> dict[str, float]:
    """Recall@K and mAP when query row i's only hit is gallery row i (its own pair); AP = 1 / rank."""
    if len(queries) != len(gallery):
        raise ValueError(f"pair retrieval needs as many queries as gallery rows, got {len(queries)} and "
                         f"{len(gallery)}")
    rows = _query_rows(len(queries), max_queries, seed)
    q, g = _normalised(queries, gallery, rows)
    ranks = np.empty(len(q))
    for start in range(0, len(q), chunk):
        similarity = q[start:start + chunk] @ g.T
        own = similarity[np.arange(len(similarity)), rows[start:start + chunk]]
        ranks[start:start + chunk] = (similarity >= own[:, None]).sum(axis=1)
    return _scores(ranks, 1.0 / ranks, ks)
