"""Linear probes on frozen embeddings: L2-normalise, standardise, multinomial logistic regression (scikit-learn).

Standardising after normalisation makes lbfgs converge in a few dozen iterations, so a probe costs well
under a second on thousands of examples and can run at every epoch of every trial.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def fit_probe(features: np.ndarray, labels: np.ndarray, c: float = 0.5) -> Pipeline:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=200, tol=1e-3))
        return probe.fit(l2_normalize(features), labels)


def probe_correct(probe: Pipeline, features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Whether the probe classifies each example right (bool per row)."""
    return probe.predict(l2_normalize(features)) == labels


def probe_accuracy(probe: Pipeline, features: np.ndarray, labels: np.ndarray) -> float:
    return float(probe_correct(probe, features, labels).mean())
