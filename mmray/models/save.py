"""Saving a trained method as an exported model (mmray.models.format): what a trial's worker writes at each new
best epoch, and what tests and notebooks write from a model trained in-process."""

from __future__ import annotations

import platform

import numpy as np
import torch

import mmray
from mmray.eval.probes import probe_arrays
from mmray.methods.base import Method
from mmray.models.format import NOT_PREPROCESSING, probes_bytes, weights_bytes, write_model
from mmray.storage import Location


def save_model(out: Location, module: Method, probes: dict, manifest: dict, *, epoch: int, metrics: dict,
               trial: dict | None = None) -> None:
    """Write `module` with its fitted probes ({space: scikit-learn probe}, e.g. `Evaluation.probes.fitted()`)
    and the shard manifest it was trained on. `metrics` are its epoch's metrics; `trial` says where it came
    from (sweep, trial id, seed, training parameters, the search metric and mode), None for a model trained
    outside a sweep."""
    preprocessing = {key: value for key, value in manifest.items() if key not in NOT_PREPROCESSING}
    scalars = {key: float(value) for key, value in metrics.items()
               if isinstance(value, (int, float, np.number)) and not isinstance(value, bool)}
    info = {
        "method": module.name, "method_params": module.params.model_dump(), "architecture": module.architecture(),
        "weights": dict(module.provenance), "num_classes": module.num_classes, "data": preprocessing,
        "trial": trial, "epoch": epoch, "metrics": scalars, "threads": thread_counts(),
        "versions": {"mmray": mmray.__version__, "torch": torch.__version__, "python": platform.python_version()},
    }
    write_model(out, info, weights_bytes(module), probes_bytes({s: probe_arrays(p) for s, p in probes.items()}),
                model_card(info))


def thread_counts() -> dict[str, int | None]:
    """The threads this process computes with now: torch's (the embeddings) and the BLAS libraries' (the
    probes' solver, distances), which `mmray eval` sets again to reproduce the metrics exactly. They differ in
    a Ray worker: torch runs the trial's torch_threads, BLAS the OMP_NUM_THREADS Ray sets to the worker's
    CPUs (1 by default)."""
    from threadpoolctl import threadpool_info

    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return {"torch": torch.get_num_threads(), "blas": max(blas) if blas else None}


def model_card(info: dict) -> str:
    data, trial = info["data"], info["trial"] or {}
    params = ", ".join(f"{k}={v}" for k, v in sorted(data["params"].items()) if v is not None)
    modalities = ", ".join(f"{m['name']} ({m['kind']} {'x'.join(map(str, m['shape']))})" for m in data["modalities"])
    weights = "; ".join(f"{part}: {source}" for part, source in info["weights"].items()) or \
        "all trained from random initialisation in this trial (no pretrained parts)"
    tests = sorted((k, v) for k, v in info["metrics"].items() if k.startswith("test/"))
    lines = [
        f"# {info['method']} on {data['benchmark']}",
        "",
        f"- **Method**: `{info['method']}` ({', '.join(f'{k}={v}' for k, v in info['method_params'].items())})",
        f"- **Trained on**: `{data['benchmark']}` ({params}); modalities {modalities}; "
        f"{len(data['class_names'])} classes",
        f"- **Pretrained weights**: {weights}",
        f"- **From**: sweep `{trial.get('sweep', '-')}`, trial `{trial.get('trial_id', '-')}`, seed "
        f"{trial.get('seed', '-')}, epoch {info['epoch']}"
        + (f" (its best by {trial['metric']}, {trial['mode']})" if trial.get("metric") else ""),
        f"- **Training**: {', '.join(f'{k}={v}' for k, v in (trial.get('train') or {}).items())}",
        f"- **Versions**: mmray {info['versions']['mmray']}, torch {info['versions']['torch']}",
        "",
        "## Test metrics at that epoch",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {value:.4f} |" for name, value in tests),
        "",
        "## Use",
        "",
        "```python",
        "from mmray import load_model",
        "model = load_model('THIS_FOLDER')",
        "out = model.embed(audio=['a.wav'], image=['seven.png'])   # raw files, preprocessed as in training",
        "```",
    ]
    return "\n".join(lines) + "\n"
