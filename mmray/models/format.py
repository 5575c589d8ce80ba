"""The exported-model format: one folder (local or a URI such as s3://bucket/prefix), readable with no results
folder, no shard cache, no Ray and no network.

    model.safetensors   the method's weights (safetensors: no pickle; shared tensors stored once each)
    probes.npz          the linear probes the trial's evaluation fit, one per embedding space, as plain arrays
    model.json          what rebuilds and feeds the model: method, every method parameter and the architecture,
                        benchmark, every preprocessing parameter, modalities, class names, normalisation
                        statistics and tokenizers (the shard manifest's), the trial and its training
                        parameters, the epoch and its metrics, versions, and the checksums of the two files
                        above (written last: a folder whose model.json is missing is incomplete)
    MODEL_CARD.md       a short card for people: what it was trained on, its metrics, where its weights came from
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import numpy as np
import torch

from mmray import storage
from mmray.errors import MmrayError
from mmray.storage import Location

FORMAT_VERSION = 1
WEIGHTS, PROBES, INFO, CARD = "model.safetensors", "probes.npz", "model.json", "MODEL_CARD.md"
# Manifest entries that describe one built shard set's files, not how an input is preprocessed.
NOT_PREPROCESSING = ("splits", "skipped_files", "prepare_seconds")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def weights_bytes(module: torch.nn.Module) -> bytes:
    from safetensors.torch import save

    # Tied weights (jepa's output head and token embedding) share storage, which safetensors refuses: each is
    # stored as its own copy, and loading ties them again by loading into the module.
    return save({name: tensor.detach().cpu().contiguous().clone() for name, tensor in module.state_dict().items()})


def probes_bytes(probes: dict[str, dict[str, np.ndarray]]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{space}/{key}": value for space, arrays in probes.items() for key, value in arrays.items()})
    return buffer.getvalue()


def write_model(out: Location, info: dict, weights: bytes, probes: bytes, card: str) -> None:
    """Write a model folder; model.json goes last, holding the checksums of what was written before it."""
    storage.makedirs(out)
    storage.write_bytes(storage.join(out, WEIGHTS), weights)
    storage.write_bytes(storage.join(out, PROBES), probes)
    storage.write_text(storage.join(out, CARD), card)
    info = {**info, "format_version": FORMAT_VERSION,
            "checksums": {WEIGHTS: _sha256(weights), PROBES: _sha256(probes)}}
    storage.write_text(storage.join(out, INFO), json.dumps(info, indent=2, default=_plain))


def _plain(value):
    """JSON for numpy scalars and arrays that metrics and parameters may hold."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass(frozen=True)
class ModelFiles:
    info: dict
    state: dict[str, torch.Tensor]
    probes: dict[str, dict[str, np.ndarray]]


def read_model(folder: Location) -> ModelFiles:
    """Read and check a model folder. A missing or incomplete folder, a file whose checksum differs (corrupted
    or truncated) or an unknown format is one MmrayError naming it."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    folder = storage.location(folder)
    info_path = storage.join(folder, INFO)
    if not storage.exists(info_path):
        what = "is not an exported model" if storage.exists(folder) else "does not exist"
        raise MmrayError(f"{folder} {what} (no {INFO}); export one with `mmray export RESULTS --trial best "
                         "--out FOLDER`")
    try:
        info = json.loads(storage.read_text(info_path))
    except json.JSONDecodeError as error:
        raise MmrayError(f"{info_path} is not valid JSON ({error}); export the model again") from None
    if info.get("format_version") != FORMAT_VERSION:
        raise MmrayError(f"{folder} has model format {info.get('format_version')}, this mmray reads "
                         f"{FORMAT_VERSION}; export it again with this mmray")
    files = {}
    for name in (WEIGHTS, PROBES):
        path = storage.join(folder, name)
        if not storage.exists(path):
            raise MmrayError(f"{path} is missing; export the model again")
        files[name] = storage.read_bytes(path)
        if _sha256(files[name]) != info.get("checksums", {}).get(name):
            raise MmrayError(f"{path} is corrupted or truncated (its checksum differs from the one in {INFO}); "
                             "export the model again")
    try:
        state = load(files[WEIGHTS])
    except SafetensorError as error:
        raise MmrayError(f"{storage.join(folder, WEIGHTS)} cannot be read ({error}); export the model again") from None
    probes: dict[str, dict[str, np.ndarray]] = {}
    with np.load(io.BytesIO(files[PROBES])) as arrays:
        for key in arrays.files:
            space, _, name = key.partition("/")
            probes.setdefault(space, {})[name] = arrays[key]
    return ModelFiles(info, state, probes)
