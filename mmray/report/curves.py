"""Curve sections: the search metric per epoch (where ASHA stopped a trial) and accuracy as modalities drop."""

from __future__ import annotations

import re

import plotly.graph_objects as go

from mmray.report.common import (
    MISSING_MODALITY,
    ReportContext,
    ci_tables,
    figure_html,
    matching,
    metric_name,
    note,
)
from mmray.results import schema
from mmray.results.summary import ci_column

STATUS_SYMBOL = {schema.STATUS_COMPLETED: "circle", schema.STATUS_STOPPED: "x", schema.STATUS_FAILED: "square"}


def learning_curves_section(context: ReportContext) -> str:
    epochs, metric = context.results.epochs, context.metric
    if epochs.empty or metric not in epochs:
        return note(f"No per-epoch values of {metric} yet.")
    status = context.trials.set_index(schema.TRIAL_ID)[schema.STATUS]
    parts = []
    ordered = epochs.sort_values([schema.BENCHMARK, schema.METHOD, schema.TRIAL_ID, schema.EPOCH])
    for (benchmark, method), group in ordered.groupby([schema.BENCHMARK, schema.METHOD], sort=False):
        traces = []
        for trial_id, trial in group.groupby(schema.TRIAL_ID, sort=False):
            state = status.get(trial_id, "running")
            last = len(trial) - 1
            traces.append(dict(  # plain dicts: hundreds of validated go.Scatter objects take seconds
                type="scatter", x=trial[schema.EPOCH].to_numpy(), y=trial[metric].to_numpy(),
                mode="lines+markers", name=f"{trial_id} ({state})",
                marker=dict(symbol=["circle"] * last + [STATUS_SYMBOL.get(state, "circle")],
                            size=[5] * last + [11])))
        layout = dict(title=dict(text=f"{benchmark} / {method}: {metric} per epoch (x = stopped early by ASHA)"),
                      xaxis=dict(title=dict(text="epoch")), yaxis=dict(title=dict(text=metric)), height=420,
                      showlegend=len(traces) <= 20)
        parts.append(figure_html(dict(data=traces, layout=layout)))
    return "\n".join(parts)


def drop_fraction(column: str) -> float | None:
    """The share of examples lacking a modality that a robustness-curve metric was measured at, from the
    schema's <percent> group ('test/fused_acc_drop25_audio' -> 0.25); None for any other metric."""
    info = schema.metric_info(column)
    found = re.fullmatch(info.pattern, metric_name(column)) if info else None
    percent = found.groupdict().get("percent") if found else None
    return None if percent is None else int(percent) / 100


def curve_name(column: str) -> str:
    """'test/fused_acc_drop25_audio' -> 'fused_acc_drop*_audio': the curve a point belongs to."""
    return re.sub(r"drop\d+", "drop*", metric_name(column), count=1)


def missing_modality_section(context: ReportContext) -> str:
    """Per benchmark, each method's best configuration: the metric against the fraction of a modality
    dropped at test time (mean ± CI over seeds), one line per method; metrics without a fraction as a table."""
    columns = matching(context.test_metrics, MISSING_MODALITY)
    if not columns:
        return note("No missing-modality metric in the trials table.")
    curves: dict[str, list[tuple[float, str]]] = {}
    for column in columns:
        fraction = drop_fraction(column)
        if fraction is not None:
            curves.setdefault(curve_name(column), []).append((fraction, column))
    single = [c for c in columns if drop_fraction(c) is None]
    board = context.board(tuple(columns))
    parts = []
    for benchmark, rows in board.groupby(schema.BENCHMARK, sort=True):
        for curve, points in sorted(curves.items()):
            points.sort()
            figure = go.Figure()
            for _, row in rows.iterrows():
                figure.add_trace(go.Scatter(
                    x=[f for f, _ in points], y=[row[c] for _, c in points], mode="lines+markers",
                    name=row[schema.METHOD],
                    error_y=dict(type="data", array=[row[ci_column(c)] for _, c in points], visible=True)))
            figure.update_layout(title=f"{benchmark}: test {curve} (* = percent of examples lacking the modality)",
                                 xaxis_title="share of examples without the modality", yaxis_title=curve,
                                 height=400)
            parts.append(figure_html(figure))
    if single:
        parts.append(ci_tables(context, single, ""))
    return "\n".join(parts) or note("No finished trial has a missing-modality metric yet.")
