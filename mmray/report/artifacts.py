"""Sections over per-trial artifacts, Parquet tables under <results>/artifacts/<trial_id>/ (names and columns
in mmray.results.schema): t-SNE maps of the embedding spaces (and of every modality in one map) and
per-modality rotation matrices, shown for the best trial of each (benchmark, method) that wrote them (trials
stopped early write none); mmray.report.media shows the translations, texts and cluster relations."""

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
MAP, SHARED, MODALITY = schema.MAP, schema.SHARED_MAP, schema.MODALITY
LABEL, X, Y = schema.LABEL, schema.X, schema.Y
ROW, COL, VALUE = schema.ROW, schema.COL, schema.VALUE
PALETTE = plotly.colors.qualitative.Dark24  # one colour per label, the same in every map


def read_artifact(context: ReportContext, trial_id: str, name: str) -> pd.DataFrame | None:
    """A trial's artifact table `name`, or None where it wrote none."""
    path = artifact_path(context.results.path, trial_id, name)
    return storage.read_parquet(path) if storage.exists(path) else None


def best_with(context: ReportContext, name: str) -> list[tuple[str, str, str, pd.DataFrame]]:
    """(benchmark, method, trial id, table) for the best trial of each (benchmark, method) with artifact `name`."""
    score = schema.BEST_PREFIX + context.metric
    if score not in context.trials or not storage.is_dir(storage.join(context.results.path, ARTIFACTS_DIR)):
        return []
    found = []
    best_first = ranked(context.trials, score, context.mode)
    for (benchmark, method), group in best_first.groupby([schema.BENCHMARK, schema.METHOD], sort=True):
        for trial_id in group[schema.TRIAL_ID]:
            table = read_artifact(context, trial_id, name)
            if table is not None:
                found.append((benchmark, method, trial_id, table))
                break
    return found


SYMBOLS = ("circle", "diamond", "square", "triangle-up", "x", "star")  # one per modality in the shared map


def tsne_section(context: ReportContext) -> str:
    found = best_with(context, TSNE)
    if not found:
        return note(f"No trial wrote t-SNE maps (artifacts/<trial_id>/{TSNE}.parquet).")
    parts = ["<p>One map per embedding space, coloured by label; each map is its own t-SNE, so compare the "
             "shapes of the clusters, not positions across maps. Where the modalities' embeddings have one size, "
             "the last map holds them all (marker = modality): in a shared space a class's images and audio "
             "lie together.</p>"]
    for benchmark, method, trial_id, points in found:
        if MAP not in points:  # written before the shared map: each point lies in its own space's map
            points = points.assign(**{MAP: points[MODALITY]})
        maps = sorted(points[MAP].unique(), key=lambda m: (m == SHARED, m == "fused", m))  # fused, shared last
        labels = sorted(points[LABEL].unique())
        colours = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
        shared = sorted(points.loc[points[MAP] == SHARED, MODALITY].unique())
        symbols = {m: SYMBOLS[i % len(SYMBOLS)] for i, m in enumerate(shared)}
        titles = [f"{SHARED}: {' + '.join(shared)}" if m == SHARED else m for m in maps]
        figure = make_subplots(rows=1, cols=len(maps), subplot_titles=titles, horizontal_spacing=0.04)
        figure.update_xaxes(showticklabels=False)
        figure.update_yaxes(showticklabels=False)
        figure.update_layout(title=f"{benchmark} / {method}: t-SNE of trial {trial_id}", height=430,
                             legend=dict(title=dict(text=LABEL)))
        # plain trace dicts: plotly's per-property validation of ~50 traces a figure costs more than the rest
        traces = []
        for (name, space), rows in points.groupby([MAP, MODALITY], sort=False):
            col = maps.index(name) + 1
            axes = {"xaxis": f"x{col if col > 1 else ''}", "yaxis": f"y{col if col > 1 else ''}"}
            symbol = symbols.get(space, "circle") if name == SHARED else "circle"
            for label, subset in rows.groupby(LABEL, sort=True):
                traces.append({
                    "type": "scatter", "x": subset[X].to_numpy(), "y": subset[Y].to_numpy(), "mode": "markers",
                    "name": str(label), "legendgroup": str(label), "showlegend": col == 1, **axes,
                    "hovertext": f"{space}, label {label}", "hoverinfo": "text",
                    "marker": {"size": 4 if name != SHARED else 5, "color": colours[label], "opacity": 0.75,
                               "symbol": symbol}})
        for modality, symbol in symbols.items():  # the shared map's marker key
            traces.append({"type": "scatter", "x": [None], "y": [None], "mode": "markers", "name": modality,
                           "marker": {"symbol": symbol, "color": "#555", "size": 7}})
        figure = {"data": traces, "layout": figure.layout.to_plotly_json()}
        parts.append(figure_html(figure, top_margin=80))
    return "\n".join(parts)


def rotations_section(context: ReportContext) -> str:
    found = best_with(context, ROTATIONS)
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
