"""Sections over per-trial artifacts, Parquet tables under <results>/artifacts/<trial_id>/ (names and columns
in mmray.results.schema): t-SNE maps of the embedding spaces and per-modality rotation matrices, shown for
the best trial of each (benchmark, method) that wrote them (trials stopped early write none)."""

from __future__ import annotations

import pandas as pd
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mmray import storage
from mmray.report.common import ReportContext, figure_html, note
from mmray.results import schema
from mmray.results.artifacts import artifact_path
from mmray.results.best import ranked
from mmray.results.io import ARTIFACTS_DIR

TSNE, ROTATIONS = schema.ARTIFACT_TSNE, schema.ARTIFACT_ROTATIONS
MODALITY, LABEL, X, Y = schema.MODALITY, schema.LABEL, schema.X, schema.Y
ROW, COL, VALUE = schema.ROW, schema.COL, schema.VALUE
PALETTE = plotly.colors.qualitative.Dark24  # one colour per label, the same in every map


def _best_with(context: ReportContext, name: str) -> list[tuple[str, str, str, pd.DataFrame]]:
    """(benchmark, method, trial id, table) for the best trial of each (benchmark, method) with artifact `name`."""
    score = schema.BEST_PREFIX + context.metric
    if score not in context.trials or not storage.is_dir(storage.join(context.results.path, ARTIFACTS_DIR)):
        return []
    found = []
    best_first = ranked(context.trials, score, context.mode)
    for (benchmark, method), group in best_first.groupby([schema.BENCHMARK, schema.METHOD], sort=True):
        for trial_id in group[schema.TRIAL_ID]:
            path = artifact_path(context.results.path, trial_id, name)
            if storage.exists(path):
                found.append((benchmark, method, trial_id, storage.read_parquet(path)))
                break
    return found


def tsne_section(context: ReportContext) -> str:
    found = _best_with(context, TSNE)
    if not found:
        return note(f"No trial wrote t-SNE maps (artifacts/<trial_id>/{TSNE}.parquet).")
    parts = ["<p>One map per embedding space, coloured by label; each map is its own t-SNE, so compare the "
             "shapes of the clusters, not positions across maps.</p>"]
    for benchmark, method, trial_id, points in found:
        spaces = sorted(points[MODALITY].unique(), key=lambda m: (m == "fused", m))  # fused last
        labels = sorted(points[LABEL].unique())
        colours = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
        figure = make_subplots(rows=1, cols=len(spaces), subplot_titles=spaces, horizontal_spacing=0.04)
        for space, rows in points.groupby(MODALITY, sort=False):
            col = spaces.index(space) + 1
            for label, subset in rows.groupby(LABEL, sort=True):
                figure.add_trace(go.Scatter(
                    x=subset[X], y=subset[Y], mode="markers", name=str(label), legendgroup=str(label),
                    showlegend=col == 1, hovertext=f"label {label}", hoverinfo="text",
                    marker=dict(size=4, color=colours[label], opacity=0.75)), row=1, col=col)
        figure.update_xaxes(showticklabels=False)
        figure.update_yaxes(showticklabels=False)
        figure.update_layout(title=f"{benchmark} / {method}: t-SNE of trial {trial_id}", height=430,
                             legend=dict(title=dict(text=LABEL)))
        parts.append(figure_html(figure, top_margin=80))
    return "\n".join(parts)


def rotations_section(context: ReportContext) -> str:
    found = _best_with(context, ROTATIONS)
    if not found:
        return note(f"No trial wrote rotation matrices (artifacts/<trial_id>/{ROTATIONS}.parquet).")
    parts = []
    for benchmark, method, trial_id, entries in found:
        names = sorted(entries[MODALITY].unique())
        figure = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.06)
        for i, name in enumerate(names, start=1):
            matrix = entries[entries[MODALITY] == name].pivot(index=ROW, columns=COL, values=VALUE)
            figure.add_trace(go.Heatmap(z=matrix.to_numpy(), zmin=-1, zmax=1, zmid=0, colorscale="RdBu",
                                        showscale=i == len(names)), row=1, col=i)
            figure.update_yaxes(autorange="reversed", row=1, col=i)  # row 0 on top, as a matrix is written
        figure.update_layout(title=f"{benchmark} / {method}: rotation matrices of trial {trial_id}", height=380)
        parts.append(figure_html(figure, top_margin=80))
    return "\n".join(parts)
