"""Cross-modal retrieval by cosine similarity: Recall@K and mean average precision.

Two notions of a hit: the same label (`retrieval_scores`), or the query's own partner, the input it is paired
with (`pair_retrieval_scores`). Pair identity counts each distinct input once: where one input is paired with
several others (AV-MNIST reuses each test recording for ~33 images) the gallery holds it once and any of its
partners is a hit (row by row, a recording's 33 identical copies would tie and rank the own one 33rd).
Identical inputs are found by hashing their rows (`content_ids`), never from embeddings, which coincide for
distinct inputs when a model collapses.

A relevant item's rank is one plus the number of irrelevant gallery items at least as similar as it, so a tie
with an irrelevant item counts against the query (collapsed embeddings, where every similarity is equal, score
near zero, not one), while ties among relevant items (one recording paired with several images) do not.
Ranks come from sorting similarity values (float32) and one binary search per chunk, not from an argsort and
a gather over the gallery: half the CPU time on 10k x 10k, and `max_queries` caps it further
(`benchmarks/eval_suite_cost.py`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

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


def content_ids(blocks: Iterable[np.ndarray]) -> np.ndarray:
    """One int per row of `blocks` (a modality's input arrays, e.g. batch by batch, in row order), equal exactly
    where two rows hold identical values. Rows are hashed, not kept: a split's inputs can be gigabytes."""
    seen: dict[bytes, int] = {}
    ids = []
    for block in blocks:
        block = np.ascontiguousarray(block)
        for row in block.reshape(len(block), -1):
            ids.append(seen.setdefault(hashlib.blake2b(row.tobytes(), digest_size=16).digest(), len(seen)))
    return np.asarray(ids, dtype=np.int64)


def pair_retrieval_scores(queries: np.ndarray, gallery: np.ndarray, query_contents: np.ndarray | None = None,
                          gallery_contents: np.ndarray | None = None, ks=(1, 5, 10), chunk: int = 1024,
                          max_queries: int | None = None, seed: int = 0) -> dict[str, float]:
    """Recall@K and mAP where row i of `queries` and row i of `gallery` are a pair and a hit is a query's own
    partner, counting each distinct input once.

    `query_contents` / `gallery_contents` are `content_ids` of the inputs behind the rows (None: every row is a
    distinct input). Rows with one gallery content are one gallery item, rows with one query content one query,
    and a query's partners are the gallery items it is paired with in any row. With unique pairs this is plain
    pair retrieval: the hit is row i of the gallery and AP = 1 / its rank.
    """
    if len(queries) != len(gallery):
        raise ValueError(f"pair retrieval needs as many queries as gallery rows, got {len(queries)} and "
                         f"{len(gallery)}")
    n = len(queries)
    query_rows, query_of = np.unique(np.arange(n) if query_contents is None else query_contents,
                                     return_index=True, return_inverse=True)[1:]
    gallery_rows, gallery_of = np.unique(np.arange(n) if gallery_contents is None else gallery_contents,
                                         return_index=True, return_inverse=True)[1:]
    picked = _query_rows(len(query_rows), max_queries, seed)  # distinct queries, sorted
    # (query, gallery item) partner links of the picked queries, sorted by query; `at` = position in `picked`
    links = np.unique(np.stack([query_of.ravel(), gallery_of.ravel()], axis=1), axis=0)
    links = links[np.isin(links[:, 0], picked)]
    at, partner = np.searchsorted(picked, links[:, 0]), links[:, 1]
    q, g = _normalised(queries, np.asarray(gallery)[gallery_rows], query_rows[picked])
    best_rank, average_precision = np.empty(len(q)), np.empty(len(q))
    for start in range(0, len(q), chunk):
        similarity = q[start:start + chunk] @ g.T
        lo, hi = np.searchsorted(at, [start, start + chunk])
        row, own = at[lo:hi] - start, similarity[at[lo:hi] - start, partner[lo:hi]]
        # gallery items at least as similar as each partner (itself included), a block of links at a time
        at_least = np.concatenate([(similarity[row[i:i + chunk]] >= own[i:i + chunk, None]).sum(axis=1)
                                   for i in range(0, len(row), chunk)])
        # per query, partners by ascending similarity: ties with another partner do not push a partner down
        order = np.lexsort((own, row))
        row, own, at_least = row[order], own[order], at_least[order]
        position = np.arange(len(row))
        ends = np.searchsorted(row, row, side="right")
        starts = np.ones(len(row), dtype=bool)
        starts[1:] = (row[1:] != row[:-1]) | (own[1:] != own[:-1])
        partners_at_least = ends - np.maximum.accumulate(np.where(starts, position, 0))
        irrelevant = at_least - partners_at_least
        found = ends - position  # partners ranked at or above this one
        first = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
        best_rank[start + row[first]] = np.minimum.reduceat(irrelevant, first) + 1
        average_precision[start + row[first]] = (np.add.reduceat(found / (found + irrelevant), first)
                                                 / np.diff(np.r_[first, len(row)]))
    return _scores(best_rank, average_precision, ks)
