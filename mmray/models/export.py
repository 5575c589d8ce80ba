"""`mmray best` and `mmray export`: the best trial of each benchmark x method of a sweep, and a copy of a trial's
kept model to a folder or URI of its own."""

from __future__ import annotations

import os

import pandas as pd

from mmray import storage
from mmray.errors import MmrayError
from mmray.models.format import CARD, INFO, PROBES, WEIGHTS, read_model
from mmray.models.load import model_folder
from mmray.results import load as load_results
from mmray.results import schema
from mmray.results.best import best_trials
from mmray.results.summary import config_labels
from mmray.storage import Location


def best_models(results_dir: str | os.PathLike) -> tuple[pd.DataFrame, str, str]:
    """The best trial of each benchmark x method by the sweep's metric (its best epoch): the metric's value,
    the epoch, the configuration that varied, and where its model is. Returns (table, metric, mode)."""
    results_dir = storage.location(results_dir)
    results = load_results(results_dir)
    search = results.spec.get("search", {})
    metric, mode = search["metric"], search["mode"]
    trials = results.trials
    if schema.BEST_CHECKPOINT not in trials:
        raise MmrayError(f"{results_dir} was written before mmray kept each trial's best checkpoint; run the "
                         "sweep again to have models to export")
    trials = trials.assign(config=config_labels(trials))
    best = best_trials(trials, metric, mode)
    table = pd.DataFrame({
        schema.BENCHMARK: best[schema.BENCHMARK], schema.METHOD: best[schema.METHOD],
        schema.TRIAL_ID: best[schema.TRIAL_ID], metric: best[schema.BEST_PREFIX + metric],
        schema.BEST_EPOCH: best[schema.BEST_EPOCH].astype("Int64"),
        schema.EPOCHS_RUN: best[schema.EPOCHS_RUN], "config": best["config"],
        "model": [str(storage.join(results_dir, *c.split("/"))) if isinstance(c, str) else "(none kept)"
                  for c in best[schema.BEST_CHECKPOINT]],
    })
    return table.reset_index(drop=True), metric, mode


def export_model(results_dir: str | os.PathLike, trial: str, out: str | os.PathLike) -> Location:
    """Copy the model `trial` ('best' or a trial id) of a sweep kept to `out` (a folder or URI), checked on
    the way (a corrupted copy in the results is refused). model.json goes last, as when it was written."""
    source = model_folder(results_dir, trial)
    read_model(source)  # checksums
    out = storage.location(out)
    if storage.exists(storage.join(out, INFO)):
        raise MmrayError(f"{out} already holds an exported model; choose another --out or delete it first")
    storage.makedirs(out)
    for name in (WEIGHTS, PROBES, CARD, INFO):
        storage.write_bytes(storage.join(out, name), storage.read_bytes(storage.join(source, name)))
    return out
