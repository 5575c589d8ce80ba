"""The results tables: one schema module names every column; io writes and loads the tables; summary turns
them into leaderboards (mean ± confidence interval over seeds), ranks, Pareto fronts and importances."""

from mmray.results.io import Results, load

__all__ = ["Results", "load"]
