"""The metric suite run on every trial at every epoch. Adding a metric = one function in METRICS.

Each metric function takes the probe-training embeddings and the evaluated split's embeddings and
returns named values; their names and directions are listed in `mmray.results.schema`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mmray.eval.probes import fit_probe, probe_accuracy
from mmray.eval.retrieval import retrieval_scores


class ProbeSet:
    """Linear probes fit on the training embeddings, one per key, fit on first use and shared by every split."""

    def __init__(self, train: dict[str, np.ndarray], train_labels: np.ndarray):
        self.train, self.train_labels = train, train_labels
        self._fitted = {}

    def __getitem__(self, key: str):
        if key not in self._fitted:
            self._fitted[key] = fit_probe(self.train[key], self.train_labels)
        return self._fitted[key]


@dataclass
class EvalInputs:
    probes: ProbeSet
    test: dict[str, np.ndarray]  # embeddings of the evaluated split
    test_labels: np.ndarray
    modalities: tuple[str, ...]

    def probe(self, key: str):
        return self.probes[key]


def probe_accuracies(x: EvalInputs) -> dict[str, float]:
    keys = [*x.modalities, "fused"] if "fused" in x.test else list(x.modalities)
    return {f"{k}_acc": probe_accuracy(x.probe(k), x.test[k], x.test_labels) for k in keys}


def cross_modal_transfer(x: EvalInputs) -> dict[str, float]:
    """A probe fit on modality a's embeddings, tested on modality b's: does the shared space transfer?"""
    return {f"transfer_{a}_to_{b}": probe_accuracy(x.probe(a), x.test[b], x.test_labels)
            for a, b in itertools.permutations(x.modalities, 2)}


def cross_modal_retrieval(x: EvalInputs) -> dict[str, float]:
    out = {}
    for a, b in itertools.permutations(x.modalities, 2):
        scores = retrieval_scores(x.test[a], x.test[b], x.test_labels, x.test_labels, ks=(1, 5))
        out.update({f"{name}_{a}_to_{b}": value for name, value in scores.items()})
    return out


METRICS: list[Callable[[EvalInputs], dict[str, float]]] = [
    probe_accuracies,
    cross_modal_transfer,
    cross_modal_retrieval,
]


def evaluate(train: dict[str, np.ndarray], train_labels: np.ndarray, test: dict[str, np.ndarray],
             test_labels: np.ndarray, modalities: tuple[str, ...]) -> dict[str, float]:
    """Every metric of one evaluated split, with probes fit on `train`."""
    return evaluate_splits(train, train_labels, {"": (test, test_labels)}, modalities)


def evaluate_splits(train: dict[str, np.ndarray], train_labels: np.ndarray,
                    splits: dict[str, tuple[dict[str, np.ndarray], np.ndarray]],
                    modalities: tuple[str, ...]) -> dict[str, float]:
    """Every metric of several splits ({'val': (embeddings, labels), ...}) as '<split>/<metric>', the probes
    fit once and shared by all splits."""
    probes = ProbeSet(train, train_labels)
    results: dict[str, float] = {}
    for split, (embeddings, labels) in splits.items():
        inputs = EvalInputs(probes, embeddings, labels, tuple(modalities))
        prefix = f"{split}/" if split else ""
        for metric in METRICS:
            results.update({prefix + k: v for k, v in metric(inputs).items()})
    return results
