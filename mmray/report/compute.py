"""Compute against quality: each trial's wall seconds against its best metric, the Pareto front marked."""

from __future__ import annotations

import plotly.graph_objects as go

from mmray.report.common import ReportContext, figure_html, note
from mmray.results import schema
from mmray.results.summary import pareto_front


def compute_section(context: ReportContext) -> str:
    score = schema.BEST_PREFIX + context.metric
    trials = context.trials
    if score not in trials or schema.WALL_SECONDS not in trials:
        return note("No trial with both wall seconds and a score yet.")
    trials = trials.dropna(subset=[score, schema.WALL_SECONDS])
    if trials.empty:
        return note("No trial with both wall seconds and a score yet.")
    parts = [f"<p>Wall seconds of each trial (early-stopped trials cost less) against its best "
             f"{context.metric}; the line joins the Pareto front: trials no other trial beats on both.</p>"]
    for benchmark, group in trials.groupby(schema.BENCHMARK, sort=True):
        front = pareto_front(group[schema.WALL_SECONDS], group[score], higher_is_better=context.mode == "max")
        figure = go.Figure()
        for method, rows in group.groupby(schema.METHOD, sort=True):
            figure.add_trace(go.Scatter(
                x=rows[schema.WALL_SECONDS], y=rows[score], mode="markers", name=method,
                text=rows[schema.TRIAL_ID] + " (" + rows[schema.STATUS].astype(str) + ")",
                hovertemplate="%{text}<br>%{x:.0f} s<br>%{y:.4f}<extra></extra>", marker=dict(size=8)))
        best = group[front].sort_values(schema.WALL_SECONDS)
        figure.add_trace(go.Scatter(
            x=best[schema.WALL_SECONDS], y=best[score], mode="lines+markers", name="Pareto front",
            line=dict(color="black", shape="hv", width=1.5),
            marker=dict(symbol="circle-open", size=14, color="black", line=dict(width=2)), hoverinfo="skip"))
        figure.update_layout(title=f"{benchmark}: compute vs {context.metric}", xaxis_title="trial wall seconds",
                             yaxis_title=context.metric, height=450)
        parts.append(figure_html(figure))
    return "\n".join(parts)
