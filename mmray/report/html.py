"""results/<sweep>/report.html: one self-contained Plotly page (plotly.js inlined, so it opens offline).

Sections: leaderboard per benchmark, the search metric against epoch for every trial (early-stopped trials
marked where ASHA stopped them), and parallel coordinates of the searched configuration against the metric.
"""

from __future__ import annotations

import html
import os
import time
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import yaml
from plotly.offline import get_plotlyjs

from mmray.results import schema
from mmray.results.io import Results, load
from mmray.results.summary import HEADLINE_METRICS, leaderboard

REPORT_FILE = "report.html"
STATUS_SYMBOL = {schema.STATUS_COMPLETED: "circle", schema.STATUS_STOPPED: "x", schema.STATUS_FAILED: "square"}


def _sweep_settings(results: Results) -> tuple[str, str, str]:
    """(sweep name, search metric, mode) from the spec snapshot the sweep wrote beside its tables."""
    spec_path = results.path / schema.SPEC_FILE
    spec = yaml.safe_load(spec_path.read_text()) if spec_path.exists() else {}
    search = spec.get("search", {})
    return spec.get("name", results.path.name), search.get("metric", "val/fused_acc"), search.get("mode", "max")


def _figure_html(figure: go.Figure, top_margin: int = 50) -> str:
    figure.update_layout(template="plotly_white", margin=dict(l=60, r=30, t=top_margin, b=50))
    return figure.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})


def _leaderboard_section(results: Results, metric: str, mode: str) -> str:
    headline = [c for c in ("val/fused_acc", *HEADLINE_METRICS) if c != metric]
    board = leaderboard(results.trials, metric, mode, columns=tuple(headline))
    if board.empty:
        return "<p>No trial has finished with a score yet.</p>"
    parts = []
    for benchmark, rows in board.groupby(schema.BENCHMARK, sort=True):
        table = rows.drop(columns=[schema.BENCHMARK]).to_html(
            index=False, float_format=lambda v: f"{v:.4f}", classes="board", border=0)
        parts.append(f"<h3>{html.escape(str(benchmark))}</h3>{table}")
    return "\n".join(parts)


def _curves_section(results: Results, metric: str) -> str:
    epochs = results.epochs
    if epochs.empty or metric not in epochs:
        return f"<p>No per-epoch values of {html.escape(metric)} yet.</p>"
    status = results.trials.set_index(schema.TRIAL_ID)[schema.STATUS]
    parts = []
    for (benchmark, method), group in epochs.groupby([schema.BENCHMARK, schema.METHOD], sort=True):
        figure = go.Figure()
        for trial_id, trial in group.sort_values(schema.EPOCH).groupby(schema.TRIAL_ID, sort=False):
            state = status.get(trial_id, "running")
            symbols = ["circle"] * (len(trial) - 1) + [STATUS_SYMBOL.get(state, "circle")]
            figure.add_trace(go.Scatter(
                x=trial[schema.EPOCH], y=trial[metric], mode="lines+markers", name=f"{trial_id} ({state})",
                marker=dict(symbol=symbols, size=[6] * (len(trial) - 1) + [11])))
        figure.update_layout(title=f"{benchmark} / {method}: {metric} per epoch (x = stopped early by ASHA)",
                             xaxis_title="epoch", yaxis_title=metric, height=420)
        parts.append(_figure_html(figure))
    return "\n".join(parts)


def _parallel_section(results: Results, metric: str) -> str:
    score = schema.BEST_PREFIX + metric
    trials = results.trials.dropna(subset=[score]) if score in results.trials else pd.DataFrame()
    if trials.empty:
        return "<p>No finished trial to compare yet.</p>"
    parts = []
    for (benchmark, method), group in trials.groupby([schema.BENCHMARK, schema.METHOD], sort=True):
        dimensions = []
        for column in results.config_columns:
            values = group[column]
            if values.isna().all() or values.astype(str).nunique() < 2:
                continue  # only what the search varied
            label = column.removeprefix(schema.CONFIG_PREFIX)
            if pd.api.types.is_numeric_dtype(values):
                dimensions.append(dict(label=label, values=values.astype(float)))
            else:
                codes, names = pd.factorize(values.astype(str), sort=True)
                dimensions.append(dict(label=label, values=codes, tickvals=list(range(len(names))),
                                       ticktext=list(names)))
        dimensions.append(dict(label=metric, values=group[score]))
        figure = go.Figure(go.Parcoords(line=dict(color=group[score], colorscale="Viridis", showscale=True),
                                        dimensions=dimensions))
        figure.update_layout(title=f"{benchmark} / {method}: searched configuration vs best {metric}",
                             height=500)
        parts.append(_figure_html(figure, top_margin=110))  # room for the title above the axis labels
    return "\n".join(parts)


def _trials_section(results: Results, metric: str) -> str:
    shown = [c for c in (schema.TRIAL_ID, schema.BENCHMARK, schema.METHOD, schema.SEED, schema.STATUS,
                         schema.EPOCHS_RUN, schema.WALL_SECONDS, schema.BEST_PREFIX + metric)
             if c in results.trials]
    frame = results.trials[shown + results.config_columns]
    table = frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", classes="board", border=0)
    return f"<div class='wide'>{table}</div>"  # one column per searched value: scroll, don't overflow


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } .meta { color: #666; margin-top: 0; }
table.board { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
table.board th, table.board td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }
table.board th { background: #f4f4f8; }
div.wide { overflow-x: auto; }
"""


def build_report(path: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the sweep's report.html from its results tables and return its path."""
    results = load(path)
    name, metric, mode = _sweep_settings(results)
    out = Path(out) if out else results.path / REPORT_FILE
    direction = "higher" if mode == "max" else "lower"
    sections = [
        ("Leaderboard", f"<p>Best trial of each method per benchmark, ranked by {html.escape(metric)} "
                        f"({direction} is better).</p>" + _leaderboard_section(results, metric, mode)),
        ("Learning curves", _curves_section(results, metric)),
        ("Configuration vs metric", _parallel_section(results, metric)),
        ("All trials", _trials_section(results, metric)),
    ]
    body = "\n".join(f"<h2>{title}</h2>\n{content}" for title, content in sections)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>mmray: {html.escape(name)}</title>"
            f"<style>{STYLE}</style><script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
            f"<h1>mmray sweep: {html.escape(name)}</h1>"
            f"<p class='meta'>{len(results.trials)} trials · built {time.strftime('%Y-%m-%d %H:%M')} "
            f"from {html.escape(str(results.path))}</p>{body}</body></html>")
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)
    return out
