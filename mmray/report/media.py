"""Sections that show what the best trial of each (benchmark, method) learned, from its per-trial artifacts:
translations (an input beside what the method decoded from it or from another modality: images as pictures,
log-mels as spectrograms and as audio players), generated texts beside their references, and how each
modality's clusters relate to another's (relationship heatmap, relations, convergence/divergence zones).

Pictures are small PNG files and audio WAV files, both inlined as data URIs: the page still opens offline.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import pandas as pd
import plotly.colors
from PIL import Image

from mmray.eval.clustering import RELATION_SHARE
from mmray.report.artifacts import best_with, read_artifact
from mmray.report.common import ReportContext, figure_html, note, table_html
from mmray.results import schema

PIXELS = 84  # the width an image or spectrogram is drawn at (nearest-neighbour: its own pixels stay visible)
REPORT_CLASSES = 10  # translations shown per trial: the first example of each of at most this many classes
REPORT_AUDIO_CLASSES = 5  # ... of which the first this many have audio players (~21 kB each for 1 s at 8 kHz)
TEXT_EXAMPLES = 8  # generated texts shown per modality
_VIRIDIS = np.array([plotly.colors.hex_to_rgb(c) for c in plotly.colors.sequential.Viridis], dtype=np.float64)

MEDIA_STYLE = """
table.media { border-collapse: collapse; margin: 0.5em 0 1.2em; font-size: 0.9em; }
table.media td, table.media th { padding: 3px 4px; vertical-align: top; text-align: center; }
table.media tr th:first-child { text-align: right; white-space: nowrap; background: #f4f4f8; }
table.media img { width: %dpx; image-rendering: pixelated; display: block; margin: 0 auto; }
table.media audio { width: %dpx; height: 24px; display: block; margin: 2px auto 0; }
table.media .said { font-size: 0.8em; color: #555; max-width: 12em; margin: 2px auto 0; }
""" % (PIXELS, PIXELS + 16)


def data_uri(payload: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def picture(array: np.ndarray, low: float, high: float, spectrogram: bool) -> str:
    """An <img> of one image (C, H, W) or log-mel (1, n_mels, frames), scaled from low..high to the full grey
    (or colour) range; a log-mel in viridis with its lowest band at the bottom, as spectrograms are drawn."""
    scaled = np.clip((np.asarray(array, np.float64) - low) / max(high - low, 1e-12), 0.0, 1.0)
    if spectrogram:
        steps = np.linspace(0.0, 1.0, len(_VIRIDIS))
        level = scaled[0][::-1]
        pixels = np.stack([np.interp(level, steps, _VIRIDIS[:, c]) for c in range(3)], axis=-1)
    elif scaled.shape[0] == 3:
        pixels = 255.0 * np.moveaxis(scaled, 0, -1)
    else:
        pixels = 255.0 * scaled.mean(axis=0)
    buffer = io.BytesIO()
    Image.fromarray(np.round(pixels).astype(np.uint8)).save(buffer, format="PNG")
    return f"<img alt='' src='{data_uri(buffer.getvalue(), 'image/png')}'>"


def player(wav: bytes | None) -> str:
    return "" if wav is None else f"<audio controls preload='metadata' src='{data_uri(wav, 'audio/wav')}'></audio>"


def _cell(row: dict, column: str, wav_column: str, low: float, high: float, spectrogram: bool,
          said: str | None = None, audible: bool = True) -> str:
    array = np.asarray(row[column], np.float32).reshape(row[schema.SHAPE])
    wav = row[wav_column] if audible and isinstance(row[wav_column], bytes) else None
    text = f"<div class='said'>{html.escape(said)}</div>" if said else ""
    return f"<td>{picture(array, low, high, spectrogram)}{player(wav)}{text}</td>"


def translation_tables(samples: pd.DataFrame) -> str:
    """One table per target modality, a column per class (its first example): the target's input, then what
    the method decoded from each source (the target itself first: same-modal), each on the input's scale."""
    parts = []
    for target, rows in samples.groupby(schema.TARGET, sort=False):
        sources = sorted(rows[schema.SOURCE].unique(), key=lambda s: (s != target, s))
        first = rows.sort_values(schema.EXAMPLE).drop_duplicates([schema.SOURCE, schema.LABEL])
        by_key = {(r[schema.SOURCE], r[schema.LABEL]): r for r in first.to_dict("records")}
        labels = sorted(first[schema.LABEL].unique())[:REPORT_CLASSES]
        spectrogram = rows[schema.KIND].iloc[0] == "audio"
        lines: dict[str, list[str]] = {"input": [], **{source: [] for source in sources}}
        for i, label in enumerate(labels):
            audible = i < REPORT_AUDIO_CLASSES
            chosen = {source: by_key[source, label] for source in sources if (source, label) in by_key}
            any_row = next(iter(chosen.values()))
            original = np.asarray(any_row[schema.ORIGINAL], np.float32)
            low, high = float(original.min()), float(original.max())
            lines["input"].append(_cell(any_row, schema.ORIGINAL, schema.ORIGINAL_WAV, low, high, spectrogram,
                                        audible=audible))
            for source in sources:
                row = chosen.get(source)
                if row is None:
                    lines[source].append("<td></td>")
                    continue
                said = row[schema.SOURCE_TEXT] if isinstance(row[schema.SOURCE_TEXT], str) else None
                lines[source].append(_cell(row, schema.RECONSTRUCTION, schema.RECONSTRUCTION_WAV, low, high,
                                           spectrogram, said, audible))
        names = {"input": f"{target} (input)",
                 **{s: f"from {s}{' (same-modal)' if s == target else ''}" for s in sources}}
        header = "".join(f"<th>label {label}</th>" for label in labels)
        body = "".join(f"<tr><th>{html.escape(str(names[key]))}</th>{''.join(cells)}</tr>"
                       for key, cells in lines.items())
        parts.append(f"<div style='overflow-x:auto'><table class='media'><tr><th>{html.escape(str(target))}</th>"
                     f"{header}</tr>{body}</table></div>")
    return "\n".join(parts)


def translations_section(context: ReportContext) -> str:
    # tables written before the translations (one image modality, no source) are left out
    found = [f for f in best_with(context, schema.ARTIFACT_RECONSTRUCTIONS) if schema.SOURCE in f[3]]
    if not found:
        return note(f"No trial wrote translations (artifacts/<trial_id>/{schema.ARTIFACT_RECONSTRUCTIONS}"
                    ".parquet): the methods with a `translate` hook (pavlov, fusion, aecluster) write them.")
    parts = [f"<style>{MEDIA_STYLE}</style><p>The best trial of each benchmark and method: the first test example "
             "of each class, its input and what the method decoded from each modality alone (same-modal: its "
             "own input; cross-modal: another modality's, the target unseen). Each column is drawn on its input's "
             "scale. Audio (the first classes; every class's in the trial's artifacts) is the log-mel turned back "
             "into sound (Griffin-Lim, at the benchmark's sample rate), the input's through the same inversion, "
             "so that they compare.</p>"]
    for benchmark, method, trial_id, samples in found:
        scores = _ssim_line(context, trial_id)
        parts.append(f"<h3>{html.escape(f'{benchmark} / {method}')}: trial {html.escape(trial_id)}</h3>{scores}"
                     f"{translation_tables(samples)}")
    return "\n".join(parts)


def _ssim_line(context: ReportContext, trial_id: str) -> str:
    """The trial's test SSIM of each translation, at its best epoch."""
    row = context.trials[context.trials[schema.TRIAL_ID] == trial_id]
    prefix = f"{schema.BEST_PREFIX}test/ssim_"
    values = [(c.removeprefix(prefix), row[c].iloc[0]) for c in row.columns
              if c.startswith(prefix) and "_to_" in c and pd.notna(row[c].iloc[0])]
    if not values:
        return ""
    listed = ", ".join(f"{html.escape(name.replace('_to_', ' → '))} {value:.3f}" for name, value in values)
    return f"<p>SSIM on the test split (best epoch): {listed}.</p>"


def generations_section(context: ReportContext) -> str:
    found = best_with(context, schema.ARTIFACT_GENERATIONS)
    if not found:
        return note(f"No trial wrote generated texts (artifacts/<trial_id>/{schema.ARTIFACT_GENERATIONS}.parquet): "
                    "jepa's answers and fusion's captions are written where a benchmark has text.")
    parts = ["<p>What the method wrote for the first test examples without reading that text (an answer from "
             "the image and the question, a caption from the image), beside the reference.</p>"]
    for benchmark, method, trial_id, texts in found:
        for modality, rows in texts.groupby(schema.MODALITY, sort=True):
            shown = rows.sort_values(schema.EXAMPLE).head(TEXT_EXAMPLES)[
                [schema.EXAMPLE, schema.LABEL, schema.GENERATED, schema.REFERENCE]]
            parts.append(f"<h3>{html.escape(f'{benchmark} / {method}')}: {html.escape(str(modality))}, trial "
                         f"{html.escape(trial_id)}</h3>{table_html(shown)}")
    return "\n".join(parts)


def _cluster_names(rows: pd.DataFrame, cluster: str, label: str) -> dict[int, str]:
    pairs = rows[[cluster, label]].drop_duplicates().sort_values(cluster)
    return {int(c): f"c{int(c)} ({int(lab)})" if lab >= 0 else f"c{int(c)} (empty)"
            for c, lab in zip(pairs[cluster], pairs[label])}


def relationship_figure(rows: pd.DataFrame, title: str) -> str:
    """Heatmap of one pair's relationship table: a's clusters (rows) x b's, the share of each a cluster."""
    a, b = rows[schema.MODALITY_A].iloc[0], rows[schema.MODALITY_B].iloc[0]
    names_a = _cluster_names(rows, schema.CLUSTER_A, schema.LABEL_A)
    names_b = _cluster_names(rows, schema.CLUSTER_B, schema.LABEL_B)
    fractions = rows.pivot(index=schema.CLUSTER_A, columns=schema.CLUSTER_B, values=schema.FRACTION)
    counts = rows.pivot(index=schema.CLUSTER_A, columns=schema.CLUSTER_B, values=schema.COUNT)
    # a plain figure dict: plotly's validation of a go.Heatmap costs more than the rest of the section
    figure = {"data": [{
        "type": "heatmap", "z": fractions.to_numpy(), "x": [names_b[c] for c in fractions.columns],
        "y": [names_a[c] for c in fractions.index], "zmin": 0, "zmax": 1, "colorscale": "Blues",
        "customdata": counts.to_numpy(), "text": fractions.round(2).to_numpy(), "texttemplate": "%{text}",
        "colorbar": {"title": {"text": "share"}},
        "hovertemplate": f"{a} %{{y}} → {b} %{{x}}<br>%{{customdata}} examples (%{{z:.0%}} of the row)"
                         "<extra></extra>"}],
        "layout": {"title": {"text": title}, "height": 140 + 32 * len(fractions),
                   "yaxis": {"autorange": "reversed", "title": {"text": f"{a} cluster (commonest label)"}},
                   "xaxis": {"title": {"text": f"{b} cluster (commonest label)"}}}}
    return f"<div class='relationship'>{figure_html(figure, top_margin=70)}</div>"


def _relations_table(relations: pd.DataFrame, zones: pd.DataFrame | None, a: str, b: str) -> str:
    """a's clusters: size, relation to b's clusters and partners; with zones, the matched b cluster and the
    share of the cluster in the convergence zone."""
    rows = relations[(relations[schema.MODALITY_A] == a) & (relations[schema.MODALITY_B] == b)]
    shown = pd.DataFrame({
        f"{a} cluster": [f"c{c}" for c in rows[schema.CLUSTER_A]],
        "commonest label": rows[schema.LABEL_A].to_numpy(), "size": rows[schema.SIZE].to_numpy(),
        f"relation to {b}": rows[schema.RELATION].to_numpy(),
        f"partners in {b} (share)": [", ".join(f"c{p} ({s:.0%})" for p, s in zip(ps, ss))
                                     for ps, ss in zip(rows[schema.PARTNERS], rows[schema.SHARES])]})
    if zones is not None:
        agree = zones.groupby(schema.CLUSTER_A)[schema.CONVERGENT].mean()
        matched = zones.groupby(schema.CLUSTER_A)[schema.MATCHED].first()
        clusters = rows[schema.CLUSTER_A]
        shown[f"matched {b} cluster"] = [f"c{matched[c]}" if c in matched and matched[c] >= 0 else "-"
                                         for c in clusters]
        shown["convergent"] = [f"{agree[c]:.0%}" if c in agree else "" for c in clusters]
    return table_html(shown)


def clusters_section(context: ReportContext) -> str:
    found = best_with(context, schema.ARTIFACT_CLUSTER_RELATIONSHIPS)
    if not found:
        return note(f"No trial wrote cluster relationships (artifacts/<trial_id>/"
                    f"{schema.ARTIFACT_CLUSTER_RELATIONSHIPS}.parquet).")
    parts = [f"<p>k-means of each modality's test embeddings (k = the classes, or aecluster's n_clusters), each "
             f"cluster named by its commonest label. The heatmap: where each of a's clusters goes among b's (share "
             f"of its examples). A relation is one-to-one (one partner holding &ge; "
             f"{RELATION_SHARE:.0%} of the cluster, partner of no other cluster), one-to-many (the cluster splits), "
             "many-to-one (another cluster shares its partner) or none. Zones: after matching a's clusters to b's "
             "one to one (Hungarian), an example is in the convergence zone where its two clusters match, in the "
             "divergence zone where they do not.</p>"]
    for benchmark, method, trial_id, table in found:
        relations = read_artifact(context, trial_id, schema.ARTIFACT_CLUSTER_RELATIONS)
        zones = read_artifact(context, trial_id, schema.ARTIFACT_CLUSTER_ZONES)
        for (a, b), rows in table.groupby([schema.MODALITY_A, schema.MODALITY_B], sort=False):
            pair_zones = None if zones is None else zones[(zones[schema.MODALITY_A] == a)
                                                          & (zones[schema.MODALITY_B] == b)]
            heading = f"{benchmark} / {method}: {a} × {b}, trial {trial_id}"
            parts.append(f"<h3>{html.escape(heading)}</h3>")
            if pair_zones is not None and len(pair_zones):
                share = float(pair_zones[schema.CONVERGENT].mean())
                parts.append(f"<p>Convergence zone: {share:.1%} of {len(pair_zones)} test pairs; divergence "
                             f"zone: {1 - share:.1%}.</p>")
            parts.append(relationship_figure(rows, f"{benchmark} / {method}: {a} clusters × {b} clusters"))
            if relations is not None:
                parts.append(f"<div style='display:flex; gap:2em; flex-wrap:wrap'>"
                             f"<div>{_relations_table(relations, pair_zones, a, b)}</div>"
                             f"<div>{_relations_table(relations, None, b, a)}</div></div>")
    return "\n".join(parts)


