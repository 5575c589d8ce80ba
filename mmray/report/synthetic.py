"""Synthetic results folders of any size, shaped like a real sweep's, for measuring and testing the report.

Method quality, a learning curve per trial, ASHA-like early stops, seeds repeating each configuration, and
optionally the artifacts some methods write (t-SNE points, rotation matrices). Nothing here is a result.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mmray.results import schema
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
    """t-SNE maps (one per embedding space) and rotation matrices, in the schema's long tables."""
    labels = rng.integers(classes, size=points)
    maps = []
    for space in (*MODALITIES, "fused"):
        centres = rng.normal(0, 10, size=(classes, 2))
        maps.append(pd.DataFrame({"modality": space, "example": np.arange(points), "label": labels,
                                  "x": centres[labels, 0] + rng.normal(0, 2, points),
                                  "y": centres[labels, 1] + rng.normal(0, 2, points)}))
    entries = []
    for m in MODALITIES:
        q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
        q[:, 0] *= np.sign(np.linalg.det(q))  # det +1: a rotation
        rows, cols = np.indices(q.shape)
        entries.append(pd.DataFrame({"modality": m, "row": rows.ravel(), "col": cols.ravel(), "value": q.ravel()}))
    write_table(pd.concat(maps, ignore_index=True), folder / "tsne.parquet")
    write_table(pd.concat(entries, ignore_index=True), folder / "rotations.parquet")
