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


def probe_arrays(probe: Pipeline) -> dict[str, np.ndarray]:
    """A fitted probe as plain arrays (what an exported model keeps): the scaler's mean and scale, the logistic
    regression's coefficients, intercepts and classes."""
    scaler, regression = probe.steps[0][1], probe.steps[-1][1]
    return {"mean": scaler.mean_, "scale": scaler.scale_, "coef": regression.coef_,
            "intercept": regression.intercept_, "classes": regression.classes_}


def predict_from_arrays(arrays: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray:
    """The class `probe_arrays`' probe predicts for each row of `features`, without scikit-learn."""
    scores = ((l2_normalize(features) - arrays["mean"]) / arrays["scale"]) @ arrays["coef"].T + arrays["intercept"]
    if scores.shape[1] == 1:  # two classes: one score, positive for the second class
        return arrays["classes"][(scores[:, 0] > 0).astype(int)]
    return arrays["classes"][scores.argmax(axis=1)]
