"""Seconds (wall and CPU) of the per-epoch metric suite, and of cross-modal retrieval at 10k pairs.

    .venv/bin/python benchmarks/eval_suite_cost.py          # OMP_NUM_THREADS=1 for figures comparable across runs

The suite runs at every epoch of every trial (rank 0), so its cost is paid sweeps x trials x epochs times.
Inputs: 10 classes, 64-d embeddings of two modalities and their fusion, probes fit on 5,000 training pairs,
val and test of 5,000 pairs each, with the missing-modality embeddings a worker passes (first 1,000 rows).
"""

from __future__ import annotations

import time

import numpy as np

from mmray.eval import ProbeSet, SplitExtras, evaluate_splits
from mmray.eval.probes import l2_normalize
from mmray.eval.retrieval import pair_retrieval_scores, retrieval_scores
from mmray.eval.suite import ROBUSTNESS_EXAMPLES

N, DIM, CLASSES = 5000, 64, 10


def paired_split(rng: np.random.Generator, centres: np.ndarray, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    labels = rng.integers(0, len(centres), n)
    image = centres[labels] + 1.5 * rng.standard_normal((n, centres.shape[1]))
    audio = centres[labels] + 1.5 * rng.standard_normal((n, centres.shape[1]))
    return {"image": image, "audio": audio, "fused": 0.5 * (l2_normalize(image) + l2_normalize(audio))}, labels


def timed(label: str, call) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    out = call()
    print(f"{label:<62} {time.perf_counter() - wall:7.2f} s wall {time.process_time() - cpu:7.2f} s CPU"
          f"  ({len(out)} values)")


def main() -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((CLASSES, DIM))
    train, val, test = (paired_split(rng, centres, N) for _ in range(3))
    extras = {split: SplitExtras(without={
        m: {"fused": l2_normalize(embeddings[other][:ROBUSTNESS_EXAMPLES])}
        for m, other in (("image", "audio"), ("audio", "image"))}) for split, (embeddings, _) in
        (("val", val), ("test", test))}
    timed("suite: probe 5k + val 5k + test 5k, 64-d, 2 modalities",
          lambda: evaluate_splits(ProbeSet(*train), {"val": val, "test": test}, ("image", "audio"), extras))

    big, labels = paired_split(rng, centres, 10_000)
    timed("retrieval by label, 10k x 10k, one direction, all queries",
          lambda: retrieval_scores(big["image"], big["audio"], labels, labels))
    timed("retrieval by label, 10k x 10k, one direction, 2,000 queries",
          lambda: retrieval_scores(big["image"], big["audio"], labels, labels, max_queries=2000))
    timed("retrieval by pair, 10k x 10k, one direction, all queries",
          lambda: pair_retrieval_scores(big["image"], big["audio"]))


if __name__ == "__main__":
    main()
