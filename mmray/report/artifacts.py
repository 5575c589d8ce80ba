"""Sections over per-trial artifacts (<results>/artifacts/<trial_id>/): t-SNE maps of the embeddings and the
per-modality rotation matrices, shown for the best trial of each (benchmark, method) that wrote them.

Readers accept .parquet/.csv tables (coordinates in the first two numeric columns or x/y, optional `label`
and `modality` columns) and .npz/.npy arrays, found by 'tsne' / 'rotation' in the file name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mmray.report.common import ReportContext, figure_html, note
from mmray.results import schema
from mmray.results.io import ARTIFACTS_DIR

SYMBOLS = ("circle", "x", "diamond", "triangle-up", "square", "star")
PALETTE = plotly.colors.qualitative.Dark24  # one colour per label, the same in every modality


def _files(folder: Path, word: str) -> list[Path]:
    return sorted(p for p in folder.glob(f"*{word}*") if p.suffix in (".parquet", ".csv", ".npz", ".npy"))


def read_tsne(folder: Path) -> pd.DataFrame | None:
    """The t-SNE points of one trial: columns x, y and, when recorded, label and modality."""
    files = _files(folder, "tsne")
    if not files:
        return None
    path = files[0]
    if path.suffix in (".npz", ".npy"):
        arrays = np.load(path, allow_pickle=False)
        arrays = {"coords": arrays} if isinstance(arrays, np.ndarray) else dict(arrays)
        coords = next(v for v in arrays.values() if v.ndim == 2 and v.shape[1] == 2)
        frame = pd.DataFrame(coords, columns=["x", "y"])
        for key in ("label", "modality"):
            found = next((v for k, v in arrays.items() if k.startswith(key) and len(v) == len(frame)), None)
            if found is not None:
                frame[key] = found
        return frame
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    if not {"x", "y"} <= set(frame.columns):
        numeric = [c for c in frame.columns if c not in ("label", "modality")
                   and pd.api.types.is_float_dtype(frame[c])][:2]
        frame = frame.rename(columns=dict(zip(numeric, ("x", "y"))))
    return frame


def read_rotations(folder: Path) -> dict[str, np.ndarray]:
    """Square matrices of one trial by name (the .npz key or the .npy file's stem)."""
    out = {}
    for path in _files(folder, "rotation"):
        if path.suffix == ".npz":
            out.update(dict(np.load(path, allow_pickle=False)))
        elif path.suffix == ".npy":
            out[path.stem] = np.load(path, allow_pickle=False)
    return {name: m for name, m in out.items() if m.ndim == 2 and m.shape[0] == m.shape[1]}


def _best_with(context: ReportContext, reader) -> list[tuple[str, str, str, object]]:
    """(benchmark, method, trial id, artifact) for the best trial of each (benchmark, method) having one."""
    score = schema.BEST_PREFIX + context.metric
    root = context.results.path / ARTIFACTS_DIR
    if score not in context.trials or not root.is_dir():
        return []
    ranked = context.trials.dropna(subset=[score]).sort_values(score, ascending=context.mode == "min")
    found = []
    for (benchmark, method), group in ranked.groupby([schema.BENCHMARK, schema.METHOD], sort=True):
        for trial_id in group[schema.TRIAL_ID]:
            folder = context.results.artifact_dir(trial_id)
            artifact = reader(folder) if folder.is_dir() else None
            if artifact is not None and len(artifact):
                found.append((benchmark, method, trial_id, artifact))
                break
    return found


def tsne_section(context: ReportContext) -> str:
    found = _best_with(context, read_tsne)
    if not found:
        return note("No trial wrote t-SNE coordinates (artifacts/<trial_id>/*tsne*).")
    parts = []
    for benchmark, method, trial_id, points in found:
        points = points.assign(label=points["label"] if "label" in points else "all",
                               modality=points["modality"].astype(str) if "modality" in points else "")
        labels = sorted(points["label"].unique())  # numeric labels sort as numbers
        colours = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
        modalities = sorted(points["modality"].unique())
        symbols = {m: SYMBOLS[i % len(SYMBOLS)] for i, m in enumerate(modalities)}
        traces = [dict(type="scatter", x=rows["x"].to_numpy(), y=rows["y"].to_numpy(), mode="markers",
                       name=str(label), legendgroup=str(label), showlegend=modality == modalities[0],
                       hovertext=f"label {label}, {modality}", hoverinfo="text",
                       marker=dict(size=6, symbol=symbols[modality], color=colours[label], opacity=0.75))
                  for (modality, label), rows in points.groupby(["modality", "label"], sort=True)]
        shapes = ", ".join(f"{symbols[m]} = {m}" for m in modalities if m)
        layout = dict(title=dict(text=f"{benchmark} / {method}: t-SNE of trial {trial_id} (colour = label"
                                      + (f"; {shapes})" if shapes else ")")),
                      legend=dict(title=dict(text="label")), height=520,
                      xaxis=dict(title=dict(text="t-SNE 1")), yaxis=dict(title=dict(text="t-SNE 2")))
        parts.append(figure_html(dict(data=traces, layout=layout)))
    return "\n".join(parts)


def rotations_section(context: ReportContext) -> str:
    found = _best_with(context, read_rotations)
    if not found:
        return note("No trial wrote rotation matrices (artifacts/<trial_id>/*rotation*).")
    parts = []
    for benchmark, method, trial_id, matrices in found:
        names = sorted(matrices)
        figure = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.06)
        for i, name in enumerate(names, start=1):
            figure.add_trace(go.Heatmap(z=matrices[name], zmin=-1, zmax=1, zmid=0, colorscale="RdBu",
                                        showscale=i == len(names)), row=1, col=i)
            figure.update_yaxes(autorange="reversed", row=1, col=i)  # row 0 on top, as a matrix is written
        figure.update_layout(title=f"{benchmark} / {method}: rotation matrices of trial {trial_id}",
                             height=380, width=None)
        parts.append(figure_html(figure, top_margin=80))
    return "\n".join(parts)
