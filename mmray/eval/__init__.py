"""Evaluation: pure metric functions over embeddings and labels, never over a model class."""

from mmray.eval.suite import ProbeSet, SplitExtras, evaluate, evaluate_splits

__all__ = ["ProbeSet", "SplitExtras", "evaluate", "evaluate_splits"]
