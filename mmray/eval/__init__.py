"""Evaluation: pure metric functions over embeddings and labels, never over a model class."""

from mmray.eval.suite import SplitExtras, evaluate, evaluate_splits

__all__ = ["SplitExtras", "evaluate", "evaluate_splits"]
