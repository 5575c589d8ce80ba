"""Evaluation: pure metric functions over embeddings and labels, never over a model class."""

from mmray.eval.suite import evaluate, evaluate_splits

__all__ = ["evaluate", "evaluate_splits"]
