"""The results tables: one schema module names every column; io writes and loads the tables."""

from mmray.results.io import load

__all__ = ["load"]
