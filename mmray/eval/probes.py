"""Linear probes on frozen, L2-normalised embeddings (scikit-learn logistic regression)."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression


def l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def fit_probe(features: np.ndarray, labels: np.ndarray, c: float = 10.0) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(C=c, max_iter=500).fit(l2_normalize(features), labels)


def probe_accuracy(probe: LogisticRegression, features: np.ndarray, labels: np.ndarray) -> float:
    return float((probe.predict(l2_normalize(features)) == labels).mean())
