"""The offline HTML report over a sweep's results tables."""

from mmray.report.html import build_report

__all__ = ["build_report"]
