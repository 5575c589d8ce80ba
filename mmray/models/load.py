"""A trained model in hand: load an exported folder (or a sweep's trial), embed raw files or arrays through the
benchmark's own preprocessing, predict classes with the trial's probes. No Ray, no results folder, no shards."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mmray import storage
from mmray.data.spec import ModalitySpec
from mmray.engine.training import build_method
from mmray.errors import DataError, MmrayError
from mmray.eval.probes import predict_from_arrays
from mmray.eval.suite import FUSED
from mmray.models.format import read_model
from mmray.results import schema

EMBED_BATCH = 256


class TrainedModel:
    """An exported model, rebuilt exactly (architecture and weights) and ready to embed."""

    def __init__(self, folder, info: dict, state: dict[str, torch.Tensor], probes: dict):
        self.folder, self.info, self.probes = folder, info, probes
        data = info["data"]
        self.benchmark, self.class_names = data["benchmark"], tuple(data["class_names"])
        self.modalities = tuple(ModalitySpec.from_json(m) for m in data["modalities"])
        self.module = build_method(info["method"], self.modalities, info["num_classes"], info["method_params"],
                                   architecture=info.get("architecture"))
        try:
            self.module.load_state_dict(state)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise MmrayError(f"{folder}: the weights do not fit {info['method']}'s model as this mmray builds it "
                             f"({first}); export the model again with this mmray") from None
        self.module.eval()
        self.notes: dict[str, list[str]] = defaultdict(list)  # conversion -> the inputs it was applied to

    def __repr__(self) -> str:
        return (f"TrainedModel({self.info['method']} on {self.benchmark}, epoch {self.info['epoch']}, "
                f"modalities {[m.name for m in self.modalities]}, from {self.folder})")

    @property
    def metrics(self) -> dict[str, float]:
        """The metrics its epoch recorded when it was trained."""
        return dict(self.info["metrics"])

    def _modality(self, name: str) -> ModalitySpec:
        for modality in self.modalities:
            if modality.name == name:
                return modality
        raise MmrayError(f"the model has no modality {name!r}; its modalities: "
                         f"{', '.join(m.name for m in self.modalities)}")

    def preprocess(self, name: str, inputs: Sequence) -> torch.Tensor:
        """(N, *shape) model inputs of modality `name` from raw inputs: file paths (audio, images), strings
        (text), or arrays already preprocessed to the modality's shape."""
        from mmray.data.prepare import resolve_params

        modality = self._modality(name)
        benchmark, params = resolve_params(self.benchmark, self.info["data"]["params"])
        rows = []
        for item in inputs:
            if isinstance(item, np.ndarray | torch.Tensor):
                array = np.asarray(item)
                if array.shape != modality.shape:
                    raise DataError(f"an array given as {name} has shape {array.shape}; the model takes "
                                    f"{modality.shape} (or pass the raw file)")
                rows.append(array.astype(modality.dtype))
                continue
            if modality.kind != "text":
                item = Path(item)
            rows.append(benchmark.preprocess(params, modality, item, self.info["data"],
                                             lambda message, source=item: self.notes[message].append(str(source))))
        stacked = np.stack(rows) if rows else np.zeros((0, *modality.shape), modality.dtype)
        return torch.from_numpy(stacked).to(torch.long if modality.kind == "text" else torch.float32)

    @torch.no_grad()
    def embed_batch(self, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        return {key: value.float().cpu().numpy() for key, value in self.module.embed(batch).items()}

    def embed(self, **inputs: Sequence) -> dict[str, np.ndarray]:
        """Embeddings of raw inputs given per modality, e.g. embed(audio=['a.wav'], image=['seven.png']): one
        (N, D) array per modality given, plus 'fused' where the method fuses. Modalities given together must
        have as many inputs each: row i pairs their i-th inputs."""
        counts = {name: len(values) for name, values in inputs.items()}
        if not counts:
            raise MmrayError(f"give inputs of at least one modality: {', '.join(m.name for m in self.modalities)}")
        if len(set(counts.values())) > 1:
            raise MmrayError(f"inputs are paired row by row, so every modality needs as many: got {counts}")
        tensors = {name: self.preprocess(name, values) for name, values in inputs.items()}
        parts: dict[str, list[np.ndarray]] = defaultdict(list)
        for start in range(0, next(iter(counts.values())), EMBED_BATCH):
            batch = {name: tensor[start:start + EMBED_BATCH] for name, tensor in tensors.items()}
            for key, value in self.embed_batch(batch).items():
                parts[key].append(value)
        return {key: np.concatenate(values) for key, values in parts.items()}

    def predict(self, **inputs: Sequence) -> list[str]:
        """The class of each input row, by the trial's probe of the fused embedding when every modality is
        given, else of the one modality given."""
        embeddings = self.embed(**inputs)
        return self.predict_embeddings(embeddings, tuple(inputs))

    def predict_embeddings(self, embeddings: dict[str, np.ndarray], given: tuple[str, ...]) -> list[str]:
        space = self.probe_space(given)
        indices = predict_from_arrays(self.probes[space], embeddings[space])
        return [self.class_names[int(i)] for i in indices]

    def probe_space(self, given: tuple[str, ...]) -> str:
        names = {m.name for m in self.modalities}
        if FUSED in self.probes and set(given) == names:
            return FUSED
        if len(given) == 1 and given[0] in self.probes:
            return given[0]
        raise MmrayError(f"no probe predicts from {list(given)}: give every modality ({sorted(names)}) or one")


def load_model(path: str | os.PathLike, trial: str | None = None) -> TrainedModel:
    """An exported model folder (local or URI), or with `trial` ('best' or a trial id) a trial of a sweep's
    results folder."""
    folder = model_folder(path, trial) if trial is not None else storage.location(path)
    files = read_model(folder)
    return TrainedModel(folder, files.info, files.state, files.probes)


def model_folder(results_dir: str | os.PathLike, trial: str = "best"):
    """Where a sweep keeps the model of `trial` ('best': the best trial by the sweep's metric, among all
    its trials; a trial id)."""
    from mmray.results import load as load_results
    from mmray.results.best import best_trials

    results_dir = storage.location(results_dir)
    results = load_results(results_dir)
    trials = results.trials
    if schema.BEST_CHECKPOINT not in trials:
        raise MmrayError(f"{results_dir} was written before mmray kept each trial's best checkpoint (no "
                         f"{schema.BEST_CHECKPOINT} column in {schema.TRIALS_FILE}); run the sweep again to export "
                         "its models")
    if trial == "best":
        search = results.spec.get("search", {})
        metric, mode = search.get("metric"), search.get("mode")
        pairs = trials[[schema.BENCHMARK, schema.METHOD]].drop_duplicates()
        if len(pairs) > 1:
            listing = ", ".join(f"{b} x {m}" for b, m in pairs.itertuples(index=False))
            raise MmrayError(f"{results_dir} holds several benchmark x method pairs ({listing}): pass --trial "
                             "TRIAL_ID (`mmray best` lists the best trial of each)")
        best = best_trials(trials, metric, mode, k=1, by=())
        if best.empty:
            raise MmrayError(f"no trial in {results_dir} reported {metric}; nothing to export")
        row = best.iloc[0]
    else:
        found = trials[trials[schema.TRIAL_ID] == trial]
        if found.empty:
            raise MmrayError(f"no trial {trial!r} in {results_dir}; its trials: "
                             f"{', '.join(trials[schema.TRIAL_ID].head(20))}")
        row = found.iloc[0]
    relative = row[schema.BEST_CHECKPOINT]
    if not isinstance(relative, str) or not relative:
        raise MmrayError(f"trial {row[schema.TRIAL_ID]} of {results_dir} kept no model (it reported no "
                         f"{results.spec.get('search', {}).get('metric')} before it ended: {row[schema.STATUS]})")
    return storage.join(results_dir, *relative.split("/"))
