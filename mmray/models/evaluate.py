"""`mmray eval`: the full evaluation suite of an exported model (the code trials run) on any benchmark whose
modalities and classes it fits, any split, any preprocessing variant."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import torch

from mmray.data import prepare
from mmray.data.shards import PreparedData
from mmray.data.text import load_tokenizer
from mmray.engine.evaluation import Evaluation, input_contents, load_eval_sets
from mmray.engine.params import TrainParams
from mmray.errors import MmrayError
from mmray.models.load import TrainedModel

SPLITS = ("val", "test")


@contextlib.contextmanager
def same_threads(threads: dict | None):
    """Run with the thread counts the model's epoch was evaluated with ({'torch': N, 'blas': M} as
    mmray.models.save.thread_counts recorded them): floating-point sums (embeddings, the probes' solver,
    distances) depend on them, and the recorded metrics are then reproduced exactly, not within 1e-3."""
    if not threads:
        yield
        return
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(threads["torch"])
    try:
        with threadpool_limits(threads["torch"], user_api="openmp"), \
                threadpool_limits(threads.get("blas") or threads["torch"], user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def misfit(model: TrainedModel, prepared: PreparedData) -> str | None:
    """Why the model cannot be evaluated on this shard set (one line), or None when it fits."""
    benchmark = prepared.manifest["benchmark"]
    ours = {m.name: m for m in model.modalities}
    theirs = {m.name: m for m in prepared.modalities}
    if set(ours) != set(theirs):
        return (f"{benchmark} has modalities {sorted(theirs)}, the model was trained on {sorted(ours)}")
    for name, mine in ours.items():
        other = theirs[name]
        for field in ("kind", "shape", "vocab_size", "tokenizer"):
            if getattr(mine, field) != getattr(other, field):
                return (f"{benchmark}'s {name} has {field} {getattr(other, field)}, the model's "
                        f"{getattr(mine, field)}")
    if prepared.num_classes != len(model.class_names):
        return f"{benchmark} has {prepared.num_classes} classes, the model {len(model.class_names)}"
    return None


@dataclass(frozen=True)
class ModelEvaluation:
    benchmark: str
    params: dict
    metrics: dict[str, float]  # '<split>/<metric>' of the split asked for
    recorded: dict[str, float]  # the model's recorded metrics of that split, where the data is its own

    def largest_difference(self) -> tuple[str, float] | None:
        """The recorded metric the evaluation reproduced least closely, and by how much."""
        shared = [k for k in self.recorded if k in self.metrics]
        if not shared:
            return None
        worst = max(shared, key=lambda k: abs(self.metrics[k] - self.recorded[k]))
        return worst, abs(self.metrics[worst] - self.recorded[worst])


def evaluate_model(model: TrainedModel, benchmark: str | None = None, overrides: dict | None = None,
                   split: str = "test", *, mirror=None, cache_dir=None, log=print) -> ModelEvaluation:
    """Evaluate `model` on `benchmark` (default: the one it was trained on) with its preprocessing parameters
    updated by `overrides`, preparing the shards if needed; the probes are fit on the benchmark's training
    rows as a trial fits them."""
    if split not in SPLITS:
        raise MmrayError(f"--split {split!r}: evaluation runs on {' or '.join(SPLITS)}")
    own = benchmark in (None, model.benchmark)
    params = {**(model.info["data"]["params"] if own else {}), **(overrides or {})}
    name = benchmark or model.benchmark
    prepared = prepare(name, params, mirror=mirror, cache_dir=cache_dir, log=log)
    problem = misfit(model, prepared)
    if problem:
        raise MmrayError(f"the model does not fit {name}: {problem}")
    trial = model.info.get("trial") or {}
    train = TrainParams.model_validate(trial.get("train") or {})
    eval_sets = load_eval_sets(prepared, train)
    names = tuple(m.name for m in model.modalities)
    tokenizer = functools.cache(lambda modality: load_tokenizer(prepared, modality))
    with same_threads(model.info.get("threads")):
        evaluation = Evaluation(model.module, eval_sets, names, tokenizer, input_contents(eval_sets, names))
    metrics = {k: v for k, v in evaluation.metrics.items() if k.startswith(f"{split}/")}
    same_data = own and prepared.manifest["params"] == model.info["data"]["params"]
    recorded = {k: v for k, v in model.metrics.items() if k.startswith(f"{split}/")} if same_data else {}
    return ModelEvaluation(name, prepared.manifest["params"], metrics, recorded)
