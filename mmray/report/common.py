"""What every report section shares: the sweep's settings, one way to embed a figure, notes and tables."""

from __future__ import annotations

import html
import itertools
import re
from dataclasses import dataclass
from functools import cached_property

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.json import to_json_plotly
from plotly.offline import get_plotlyjs

from mmray import storage
from mmray.results import schema
from mmray.results.io import Results
from mmray.results.summary import CONFIDENCE, CONFIG, SEEDS, choose_unit, ci_column, format_ci, leaderboard_ci

TEMPLATE = "plotly_white"
_figure_ids = itertools.count()


@dataclass
class ReportContext:
    """The loaded results with the sweep's search metric and direction, shared by every section."""

    results: Results
    metric: str
    mode: str

    @classmethod
    def from_results(cls, results: Results) -> ReportContext:
        search = results.spec.get("search", {})
        return cls(results, search.get("metric", "val/fused_acc"), search.get("mode", "max"))

    @property
    def name(self) -> str:
        return self.results.spec.get("name", storage.name(self.results.path))

    @property
    def trials(self) -> pd.DataFrame:
        return self.results.trials

    @cached_property
    def unit(self) -> str:
        return choose_unit(self.trials)

    @cached_property
    def test_metrics(self) -> list[str]:
        """Every test-split metric the trials table holds a best-epoch value of, in table order."""
        return [c.removeprefix(schema.BEST_PREFIX) for c in self.trials.columns
                if c.startswith(schema.BEST_PREFIX + "test/")
                and schema.is_metric_column(c.removeprefix(schema.BEST_PREFIX))]

    def board(self, columns: tuple[str, ...] = ()) -> pd.DataFrame:
        """Each method's best configuration per benchmark, mean ± CI of `metric` and `columns`."""
        if schema.BEST_PREFIX + self.metric not in self.trials:
            return pd.DataFrame()
        return leaderboard_ci(self.trials, self.metric, self.mode, columns, unit=self.unit)


def note(text: str) -> str:
    """A short line standing in for a section (or part) that has nothing to show yet."""
    return f"<p class='note'>{html.escape(text)}</p>"


def figure_html(figure: go.Figure | dict, top_margin: int = 50) -> str:
    """A <div> drawing `figure` (a go.Figure, or a plain {'data': [trace dicts], 'layout': {...}} for figures
    with hundreds of traces, where plotly's per-property validation costs seconds) with the page's shared
    template; plotly.js and the template are in the page head once, not in every figure."""
    spec = figure.to_plotly_json() if isinstance(figure, go.Figure) else figure
    layout = {**spec.get("layout", {}), "margin": dict(l=60, r=30, t=top_margin, b=50)}
    layout.pop("template", None)
    div = f"fig-{next(_figure_ids)}"
    height = layout.get("height", 450)
    webgl = any(trace.get("type") in WEBGL_TRACES for trace in spec.get("data", []))
    return (f"<div id='{div}' class='figure' style='height:{height}px'></div><script>mmrayFigure('{div}', "
            f"{to_json_plotly(spec.get('data', []))}, {to_json_plotly(layout)}, {str(webgl).lower()});</script>")


# A browser keeps about 16 WebGL contexts per page and drops the oldest beyond that (a parallel-coordinates
# plot alone uses several), so figures are drawn when they come near the screen and WebGL ones are freed
# again when they leave it. Drawing lazily also keeps a page of a hundred figures quick to open.
LAZY_FIGURES = """
var mmrayFigures = {};
var mmrayObserver = new IntersectionObserver(function (entries) {
  entries.forEach(function (entry) {
    var figure = mmrayFigures[entry.target.id];
    if (entry.isIntersecting && !figure.drawn) {
      Plotly.newPlot(entry.target, figure.data, figure.layout, {displaylogo: false, responsive: true});
      figure.drawn = true;
    } else if (!entry.isIntersecting && figure.drawn && figure.webgl) {
      Plotly.purge(entry.target);
      figure.drawn = false;
    }
  });
}, {rootMargin: "200px 0px"});
function mmrayFigure(id, data, layout, webgl) {
  mmrayFigures[id] = {data: data, layout: Object.assign({template: mmrayTemplate}, layout), webgl: webgl,
                      drawn: false};
  mmrayObserver.observe(document.getElementById(id));
}
"""
WEBGL_TRACES = {"parcoords", "scattergl", "splom", "scatter3d", "surface", "mesh3d", "cone", "volume"}


def head_scripts() -> str:
    """plotly.js, the figures' shared template and the lazy drawing, once per page."""
    template = to_json_plotly(pio.templates[TEMPLATE].to_plotly_json())
    return (f"<script type='text/javascript'>{get_plotlyjs()}</script>"
            f"<script type='text/javascript'>var mmrayTemplate = {template};{LAZY_FIGURES}</script>")


def table_html(frame: pd.DataFrame, float_format=lambda v: f"{v:.4g}") -> str:
    table = frame.to_html(index=False, float_format=float_format, classes="board", border=0, na_rep="")
    return f"<div class='wide'>{table}</div>"  # many columns scroll instead of overflowing the page


def ci_tables(context: ReportContext, metrics: list[str], empty: str) -> str:
    """Per benchmark: methods (best configuration each) x `metrics`, as mean ± CI over seeds."""
    if not metrics:
        return note(empty)
    board = context.board(tuple(metrics))
    if board.empty:
        return note("No trial has finished with a score yet.")
    metrics = [m for m in metrics if m in board]
    keep = [schema.METHOD, SEEDS, *metrics, *(ci_column(m) for m in metrics), CONFIG]  # the long text last
    parts = []
    for benchmark, rows in board.groupby(schema.BENCHMARK, sort=True):
        shown = format_ci(rows[keep])
        parts.append(f"<h3>{html.escape(str(benchmark))}</h3>{table_html(shown)}")
    return "\n".join(parts)


def unit_sentence(context: ReportContext) -> str:
    level = round(CONFIDENCE * 100)
    if context.unit == "search":
        return (f"Each entry is the best trial of each seed's search, mean ± {level} % confidence interval "
                "(t-distribution) over seeds: every seed searched its own configurations.")
    return (f"Each entry is one method's best configuration, mean ± {level} % confidence interval "
            "(t-distribution) over the seeds it ran with; no interval where it ran with one seed.")


def metric_name(column: str) -> str:
    """'test/recall@1_image_to_audio' -> 'recall@1_image_to_audio'."""
    return column.rsplit("/", 1)[-1]


def matching(columns: list[str], pattern: str) -> list[str]:
    return [c for c in columns if re.search(pattern, metric_name(c))]


# Metric families by name (names and directions come from mmray.results.schema; these only group them).
RETRIEVAL = r"^(recall@\d+|map)_"  # a hit is any item with the query's label
PAIR_RETRIEVAL = r"^pair_(recall@\d+|map)_"  # a hit is the query's own partner, each distinct input once
TRANSFER = r"^transfer_"
MISSING_MODALITY = r"_drop\d+_|_without_"
