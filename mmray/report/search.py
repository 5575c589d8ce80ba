"""Search sections: the searched configuration against the metric, and which searched values mattered."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from mmray.report.common import ReportContext, figure_html, note
from mmray.results import schema
from mmray.results.summary import param_importances

MIN_TRIALS_FOR_IMPORTANCE = 4  # fANOVA over fewer scored trials is noise


def _scored(context: ReportContext) -> pd.DataFrame:
    score = schema.BEST_PREFIX + context.metric
    return context.trials.dropna(subset=[score]) if score in context.trials else context.trials.iloc[:0]


def parallel_section(context: ReportContext) -> str:
    trials, score = _scored(context), schema.BEST_PREFIX + context.metric
    if trials.empty:
        return note("No finished trial to compare yet.")
    parts = []
    for (benchmark, method), group in trials.groupby([schema.BENCHMARK, schema.METHOD], sort=True):
        dimensions = []
        for column in context.results.config_columns:
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
        dimensions.append(dict(label=context.metric, values=group[score]))
        figure = go.Figure(go.Parcoords(line=dict(color=group[score], colorscale="Viridis", showscale=True),
                                        dimensions=dimensions))
        figure.update_layout(title=f"{benchmark} / {method}: searched configuration vs best {context.metric}",
                             height=500)
        parts.append(figure_html(figure, top_margin=110))  # room for the title above the axis labels
    return "\n".join(parts)


def importance_section(context: ReportContext) -> str:
    """Per benchmark, a methods x searched-values heatmap of Optuna's fANOVA importance (each row sums to 1)."""
    trials = _scored(context)
    space = context.results.spec.get("search_space") or {}
    rows, skipped = [], []
    for (benchmark, method), group in trials.groupby([schema.BENCHMARK, schema.METHOD], sort=True):
        if len(group) < MIN_TRIALS_FOR_IMPORTANCE:
            skipped.append(f"{benchmark}/{method} ({len(group)} scored trials)")
            continue
        importances = param_importances(group, context.metric, context.mode, space)
        if importances.empty:
            skipped.append(f"{benchmark}/{method} (nothing varied)")
            continue
        rows.append(importances.rename((benchmark, method)))
    parts = []
    if rows:
        table = pd.DataFrame(rows)
        table.index = pd.MultiIndex.from_tuples(table.index, names=[schema.BENCHMARK, schema.METHOD])
        for benchmark, block in table.groupby(level=0, sort=True):
            block = block.droplevel(0).dropna(axis=1, how="all")
            figure = go.Figure(go.Heatmap(
                z=block.to_numpy(), x=list(block.columns), y=list(block.index), zmin=0, zmax=1,
                colorscale="Blues", text=block.round(2).to_numpy(), texttemplate="%{text}",
                colorbar=dict(title="importance")))
            figure.update_layout(title=f"{benchmark}: importance of each searched value for {context.metric}",
                                 height=160 + 40 * len(block), xaxis_title="searched value")
            parts.append(figure_html(figure))
    else:
        parts.append(note(f"Needs at least {MIN_TRIALS_FOR_IMPORTANCE} scored trials of a method with a "
                          "searched value that varies."))
    if skipped:
        parts.append(note("Not enough to rank: " + ", ".join(skipped) + "."))
    return ("<p>fANOVA (Optuna's importance evaluator, seeded) over each method's finished trials rebuilt as an "
            "Optuna study: the share of the metric's variance each searched value explains.</p>"
            + "\n".join(parts))
