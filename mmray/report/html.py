"""results/<sweep>/report.html: one self-contained Plotly page (plotly.js inlined once, so it opens offline).

Each section is a function of the shared ReportContext returning HTML; a section whose columns or artifacts
a sweep did not produce shows one short note instead, so the report works for any results folder.
"""

from __future__ import annotations

import html
import os
import time

from mmray import storage
from mmray.report import artifacts, compute, curves, leaderboards, media, search
from mmray.report.common import ReportContext, head_scripts
from mmray.results.artifacts import draw_maps_of_best_trials
from mmray.results.io import load
from mmray.storage import Location

REPORT_FILE = "report.html"

SECTIONS = (  # (title, section): the page's order
    ("Leaderboard", leaderboards.leaderboard_section),
    ("Across benchmarks", leaderboards.ranks_section),
    ("Retrieval", leaderboards.retrieval_section),
    ("Cross-modal transfer", leaderboards.transfer_section),
    ("Missing modality", curves.missing_modality_section),
    ("More metrics", leaderboards.more_metrics_section),
    ("Learning curves", curves.learning_curves_section),
    ("Configuration vs metric", search.parallel_section),
    ("Hyperparameter importance", search.importance_section),
    ("Compute vs quality", compute.compute_section),
    ("t-SNE of the embeddings", artifacts.tsne_section),
    ("Reconstructions and translations", media.translations_section),
    ("Generated text", media.generations_section),
    ("Cluster relationships", media.clusters_section),
    ("Rotation matrices", artifacts.rotations_section),
    ("All trials", leaderboards.trials_section),
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } .meta { color: #666; margin-top: 0; } p.note { color: #777; font-style: italic; }
nav a { margin-right: 0.8em; white-space: nowrap; }
table.board { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
table.board th, table.board td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right;
                                  white-space: nowrap; }
table.board th { background: #f4f4f8; }
div.wide { overflow-x: auto; max-height: 40em; overflow-y: auto; }
"""


def render(context: ReportContext) -> str:
    """The whole page as one string."""
    anchors = [(f"s{i}", title) for i, (title, _) in enumerate(SECTIONS)]
    nav = " ".join(f"<a href='#{a}'>{html.escape(t)}</a>" for a, t in anchors)
    body = "\n".join(f"<h2 id='{a}'>{html.escape(title)}</h2>\n{section(context)}"
                     for (a, _), (title, section) in zip(anchors, SECTIONS))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>mmray: {html.escape(context.name)}</title>"
            f"<style>{STYLE}</style>{head_scripts()}</head><body>"
            f"<h1>mmray sweep: {html.escape(context.name)}</h1>"
            f"<p class='meta'>{len(context.trials)} trials · built {time.strftime('%Y-%m-%d %H:%M')} "
            f"from {html.escape(str(context.results.path))}</p><nav>{nav}</nav>{body}</body></html>")


def build_report(path: str | os.PathLike, out: str | os.PathLike | None = None) -> Location:
    """Write the sweep's report.html from its results tables and return where it lies: beside the tables
    (in the bucket for remote results) unless `out` names another file or URI. Draws the t-SNE maps it shows
    (the best trial of each benchmark and method) where they are not drawn yet."""
    results = load(path)
    context = ReportContext.from_results(results)
    draw_maps_of_best_trials(results.path, results.trials, context.metric, context.mode)  # unless drawn before
    out = storage.location(out) if out else storage.join(results.path, REPORT_FILE)
    storage.write_text(out, render(context))
    return out
