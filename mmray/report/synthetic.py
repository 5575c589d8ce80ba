"""Synthetic results folders of any size, shaped like a real sweep's, for measuring and testing the report.

Method quality, a learning curve per trial, ASHA-like early stops, seeds repeating each configuration, and
optionally the artifacts some methods write (t-SNE points, rotation matrices, translations with audio,
generated texts, cluster relations). Nothing here is a result.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mmray.data.audio import wav_bytes
from mmray.eval.clustering import ClusterAnalysis, cluster_relationship, cluster_tables, zones
from mmray.results import schema
from mmray.results.artifacts import generation_table, reconstruction_table
from mmray.results.io import ARTIFACTS_DIR, write_table

MODALITIES = ("image", "audio")
DROP_PERCENTS = (0, 25, 50, 75, 100)
SEARCH_SPACE = {
    "method.latent_dim": {"choice": [16, 32, 64]},
    "method.temperature": {"loguniform": [0.05, 0.5]},
    "method.w_cross": {"uniform": [0.0, 2.0]},
    "train.lr": {"loguniform": [3.0e-4, 3.0e-3]},
}


def _metrics(quality: float, rng: np.random.Generator) -> dict[str, float]:
    """One epoch's metrics around a quality in 0..1 (noisy, clipped)."""
    def value(scale: float = 1.0) -> float:
        return float(np.clip(quality * scale + rng.normal(0, 0.02), 0, 1))

    out = {"train/loss": float(2.5 * (1 - quality) + rng.normal(0, 0.05))}
    for split in schema.SPLITS:
        out[f"{split}/fused_acc"] = value()
        for m in MODALITIES:
            out[f"{split}/{m}_acc"] = value(0.9)
        for a, b in ((MODALITIES[0], MODALITIES[1]), (MODALITIES[1], MODALITIES[0])):
            out[f"{split}/transfer_{a}_to_{b}"] = value(0.7)
            for k, scale in ((1, 0.4), (5, 0.7), (10, 0.85)):
                out[f"{split}/recall@{k}_{a}_to_{b}"] = value(scale)
            out[f"{split}/map_{a}_to_{b}"] = value(0.5)
            for k, scale in ((1, 0.1), (10, 0.4)):
                out[f"{split}/pair_recall@{k}_{a}_to_{b}"] = value(scale)
            out[f"{split}/pair_map_{a}_to_{b}"] = value(0.2)
        for m in MODALITIES:  # accuracy as more examples lack modality m at test time
            for percent in DROP_PERCENTS:
                out[f"{split}/fused_acc_drop{percent}_{m}"] = value(1 - 0.4 * percent / 100)
            out[f"{split}/fused_acc_without_{m}"] = value(0.6)
        for space in (*MODALITIES, "fused"):
            out[f"{split}/silhouette_{space}"] = value(0.3)
            out[f"{split}/nmi_{space}"] = value(0.8)
        out[f"{split}/alignment_{MODALITIES[0]}_{MODALITIES[1]}"] = float(2 * (1 - quality))
    return out


def synthetic_results(out: str | os.PathLike, n_trials: int = 500, epochs: int = 10, benchmarks: int = 3,
                      methods: int = 5, seeds: int = 3, artifacts: bool = True, seed: int = 0) -> Path:
    """Write trials.parquet, epochs.parquet and sweep.yaml (and artifacts/) of a made-up sweep to `out`."""
    rng = np.random.default_rng(seed)
    out = Path(out)
    groups = [(f"bench{b}", f"method{m}") for b in range(benchmarks) for m in range(methods)]
    trial_rows, epoch_rows = [], []
    for g, (benchmark, method) in enumerate(groups):
        n = n_trials // len(groups) + (g < n_trials % len(groups))
        skill = 0.55 + 0.08 * (g % methods) / max(methods - 1, 1) + 0.1 * rng.random()
        configs = [{"method/latent_dim": int(rng.choice([16, 32, 64])),
                    "method/temperature": float(np.exp(rng.uniform(np.log(0.05), np.log(0.5)))),
                    "method/w_cross": float(rng.uniform(0, 2)),
                    "train/lr": float(np.exp(rng.uniform(np.log(3e-4), np.log(3e-3))))}
                   for _ in range(-(-n // seeds))]
        for i in range(n):
            config, trial_seed = configs[i // seeds], i % seeds
            trial_id = f"{g:02d}{i:04d}{rng.integers(16**3):03x}"
            ceiling = skill - 0.15 * abs(np.log10(config["train/lr"] / 1e-3)) + 0.02 * rng.normal()
            ran = int(rng.choice([1, 2, 4, epochs], p=[0.1, 0.1, 0.1, 0.7]))  # 30 % stopped by "ASHA"
            identity = {schema.SWEEP: "synthetic", schema.RUN: f"{benchmark}__{method}__seed{trial_seed}",
                        schema.TRIAL_ID: trial_id, schema.BENCHMARK: benchmark, schema.METHOD: method,
                        schema.SEED: trial_seed}
            rows, elapsed = [], 0.0
            for epoch in range(1, ran + 1):
                seconds = float(rng.uniform(5, 15))
                elapsed += seconds
                quality = ceiling * (1 - np.exp(-epoch / 3))
                rows.append({**identity, schema.EPOCH: epoch, schema.EPOCH_SECONDS: seconds,
                             schema.ELAPSED_SECONDS: elapsed, **_metrics(quality, rng)})
            best = max(rows, key=lambda r: r["val/fused_acc"])
            trial_rows.append({
                **identity, schema.STATUS: schema.STATUS_COMPLETED if ran == epochs else schema.STATUS_STOPPED,
                schema.ERROR: None, schema.EPOCHS_RUN: ran, schema.EPOCHS_PLANNED: epochs,
                schema.WALL_SECONDS: elapsed + 3.0, schema.FINISHED_AT: pd.Timestamp.now(tz="UTC"),
                **{schema.CONFIG_PREFIX + k: v for k, v in config.items()},
                schema.config_column("train", "epochs"): epochs,
                **{schema.FINAL_PREFIX + k: v for k, v in rows[-1].items() if schema.is_metric_column(k)},
                **{schema.BEST_PREFIX + k: v for k, v in best.items() if schema.is_metric_column(k)},
                schema.BEST_EPOCH: best[schema.EPOCH]})
            epoch_rows += rows
            if artifacts and i < seeds and ran == epochs:  # only finished trials write artifacts
                _write_artifacts(out / ARTIFACTS_DIR / trial_id, rng)
    write_table(pd.DataFrame(trial_rows), out / schema.TRIALS_FILE)
    write_table(pd.DataFrame(epoch_rows), out / schema.EPOCHS_FILE)
    spec = {"name": "synthetic", "search_space": SEARCH_SPACE,
            "search": {"algorithm": "optuna", "metric": "val/fused_acc", "mode": "max", "num_samples": n_trials}}
    (out / schema.SPEC_FILE).write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


def _write_artifacts(folder: Path, rng: np.random.Generator, points: int = 200, classes: int = 10) -> None:
    """The artifacts a pavlov-like trial writes, in the schema's tables: t-SNE maps (one per embedding space
    and the shared one), rotation matrices, translations with audio, generated texts and cluster relations."""
    labels = rng.integers(classes, size=points)
    maps = []
    # the shared map and the tables after the rotations draw from a generator of their own: the rest of the
    # folder is what versions without them wrote, so report timings compare across versions
    more = np.random.default_rng(zlib.crc32(folder.name.encode()))
    for name, space in (*((m, m) for m in (*MODALITIES, "fused")), *((schema.SHARED_MAP, m) for m in MODALITIES)):
        source = rng if name == space else more
        centres = source.normal(0, 10, size=(classes, 2))
        maps.append(pd.DataFrame({schema.MAP: name, schema.MODALITY: space, schema.EXAMPLE: np.arange(points),
                                  schema.LABEL: labels, schema.X: centres[labels, 0] + source.normal(0, 2, points),
                                  schema.Y: centres[labels, 1] + source.normal(0, 2, points)}))
    entries = []
    for m in MODALITIES:
        q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
        q[:, 0] *= np.sign(np.linalg.det(q))  # det +1: a rotation
        rows, cols = np.indices(q.shape)
        entries.append(pd.DataFrame({"modality": m, "row": rows.ravel(), "col": cols.ravel(), "value": q.ravel()}))
    write_table(pd.concat(maps, ignore_index=True), folder / f"{schema.ARTIFACT_TSNE}.parquet")
    write_table(pd.concat(entries, ignore_index=True), folder / f"{schema.ARTIFACT_ROTATIONS}.parquet")
    tables = {schema.ARTIFACT_RECONSTRUCTIONS: _translations(labels[:40], more),
              schema.ARTIFACT_GENERATIONS: generation_table(
                  {"caption": ([f"a {d}" for d in labels[:8]], [f"a digit {d}" for d in labels[:8]])}, labels)}
    # clusters that mostly follow the label, the audio's merging two classes and missing some examples
    image = np.where(more.random(points) < 0.9, labels, more.integers(classes, size=points))
    audio = np.where(more.random(points) < 0.7, np.minimum(labels, classes - 2), more.integers(classes, size=points))
    pair = (MODALITIES[0], MODALITIES[1])
    tables.update(cluster_tables(ClusterAnalysis(
        classes, {pair[0]: image, pair[1]: audio}, {},
        {pair: cluster_relationship(image, audio, classes, classes)},
        {pair: zones(image, audio, classes, classes)}), labels))
    for name, table in tables.items():
        write_table(table, folder / f"{name}.parquet")


def _translations(labels: np.ndarray, rng: np.random.Generator, size: int = 12) -> pd.DataFrame:
    """Every image/audio translation of a few examples: blurred or noisy copies of made-up inputs, the audio
    ones with a quarter-second tone as WAV (what the report's players play)."""
    inputs = {m: rng.normal(size=(len(labels), 1, size, size)).cumsum(axis=-1) for m in MODALITIES}
    outputs = {(a, b): inputs[b] + rng.normal(0, 1.0 if a == b else 3.0, size=inputs[b].shape)
               for a in MODALITIES for b in MODALITIES}
    tone = wav_bytes(0.3 * np.sin(2 * np.pi * 440 * np.arange(2000) / 8000), 8000)
    return reconstruction_table({pair: (inputs[pair[1]], out) for pair, out in outputs.items()}, labels,
                                {"image": "image", "audio": "audio"}, {"audio": lambda _: tone})
