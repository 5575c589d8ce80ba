"""Evaluation: pure metric functions over embeddings and labels, never over a model class."""

from mmray.eval.suite import evaluate

__all__ = ["evaluate"]
