"""`mmray embed`: raw files in, one Parquet row per input out (embeddings per modality, fused, predicted class)."""

from __future__ import annotations

import os
import time

import pandas as pd

from mmray import storage
from mmray.errors import MmrayError
from mmray.models.load import TrainedModel, load_model
from mmray.results.io import write_table
from mmray.storage import Location


def modality_names(model: TrainedModel, by_kind: dict[str, list]) -> dict[str, list]:
    """Inputs given per kind (audio, image, text) as inputs per modality of the model."""
    out = {}
    for kind, values in by_kind.items():
        if not values:
            continue
        names = [m.name for m in model.modalities if m.kind == kind]
        if not names:
            raise MmrayError(f"--{kind}: the model has no {kind} modality (its modalities: "
                             f"{', '.join(f'{m.name} ({m.kind})' for m in model.modalities)})")
        if len(names) > 1:
            raise MmrayError(f"--{kind}: the model has {len(names)} {kind} modalities ({', '.join(names)}); "
                             "embed them with the Python API: load_model(...).embed(NAME=[...])")
        out[names[0]] = list(values)
    if not out:
        raise MmrayError("give inputs to embed: --audio FILE ..., --image FILE ... or --text TEXT ...")
    return out


def embed_files(model_path: str | os.PathLike, by_kind: dict[str, list], out: str | os.PathLike,
                log=print) -> Location:
    model = load_model(model_path)
    inputs = modality_names(model, by_kind)
    started = time.perf_counter()
    embeddings = model.embed(**inputs)
    for message, sources in model.notes.items():  # each conversion said once, with how many inputs it touched
        more = f" (and {len(sources) - 1} more)" if len(sources) > 1 else ""
        log(f"[mmray] {sources[0]}{more}: {message}")
    rows = len(next(iter(inputs.values())))
    table = pd.DataFrame({f"input_{name}": [str(v) for v in values] for name, values in inputs.items()})
    for space, array in embeddings.items():
        table[f"embedding_{space}"] = list(array)
    table["predicted_class"] = model.predict_embeddings(embeddings, tuple(inputs))
    out = storage.location(out)
    write_table(table, out)
    log(f"[mmray] embedded {rows} input row(s) in {time.perf_counter() - started:.1f} s")
    return out
