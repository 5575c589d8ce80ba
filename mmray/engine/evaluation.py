"""Score a model on fixed evaluation batches with the eval suite, and make its per-trial pictures.

Run by the epoch loop (mmray.engine.loop) that Ray workers and `fit_local` share, so a trial and a plain loop do
exactly the same evaluation work. Plain PyTorch + numpy; no Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from mmray.data.audio import playable_stats, wav_bytes, waveform_from_log_mel
from mmray.data.shards import PreparedData, read_split
from mmray.engine.batching import tensor_batches
from mmray.engine.params import TrainParams
from mmray.engine.training import embed_all, embed_missing
from mmray.eval import ProbeSet, SplitExtras, evaluate_splits
from mmray.eval.clustering import cluster_analysis, cluster_tables
from mmray.eval.retrieval import content_ids
from mmray.eval.suite import GENERATION_EXAMPLES, ROBUSTNESS_EXAMPLES
from mmray.eval.tsne import embedding_sample
from mmray.methods.base import Batch, Method
from mmray.results import schema
from mmray.results.artifacts import generation_table, reconstruction_table, rotation_table

EVAL_SPLITS = ("val", "test")
EVAL_BATCH = 512
Tokenizers = Callable[[str], object]  # text modality name -> its tokenizer (decode ids to text)
WavWriters = dict[str, Callable[[np.ndarray], bytes]]  # audio modality -> (standardised log-mel -> WAV file)


def load_eval_sets(prepared: PreparedData, params: TrainParams) -> dict[str, list[Batch]]:
    """The fixed batches every epoch is scored on: the probe-fitting rows (the first `probe_examples` of the
    training split) and the val and test splits (capped at `eval_examples`). Small, read once per trial."""
    limits = {"probe": ("train", params.probe_examples), "val": ("val", params.eval_examples),
              "test": ("test", params.eval_examples)}
    return {name: list(tensor_batches(read_split(prepared, split, limit), EVAL_BATCH, prepared.modalities))
            for name, (split, limit) in limits.items()}


def wav_writers(prepared: PreparedData) -> WavWriters:
    """How each audio modality of the shard set becomes a WAV file: its log-mel inverted with the benchmark's
    sample rate, FFT and hop and the manifest's log-mel statistics (`waveform_from_log_mel`). Empty where the
    audio was never sound (synthetic-av draws its spectrograms)."""
    params = prepared.manifest.get("params", {})
    stats = playable_stats(params, prepared.manifest)
    if stats is None:
        return {}

    def to_wav(log_mel: np.ndarray) -> bytes:
        return wav_bytes(waveform_from_log_mel(log_mel, params, stats), params["sample_rate"])

    return {m.name: to_wav for m in prepared.modalities if m.kind == "audio"}


def first_rows(batches: Sequence[Batch], n: int) -> list[Batch]:
    """The leading batches holding the first `n` rows, the last one cut to fit."""
    out, seen = [], 0
    for batch in batches:
        if seen >= n:
            break
        out.append({k: v[:n - seen] for k, v in batch.items()})
        seen += len(out[-1]["label"])
    return out


@torch.no_grad()
def generations(module: Method, batches: Sequence[Batch], tokenizer: Tokenizers) -> tuple[dict, dict]:
    """What the method's optional hooks produce for `batches`: {text modality: (generated, reference texts)},
    both decoded by `tokenizer(modality)`, {(source, target): (the target's inputs, its translations)} of
    each pair the method declares (`MethodCard.translations`) and fills, and {text modality translated from: its
    decoded inputs}. A cross-modal translation is asked of a batch without its target, so it cannot read it."""
    module.eval()
    texts: dict[str, tuple[list[str], list[str]]] = {}
    translated: dict[tuple[str, str], tuple[list, list]] = {}
    source_texts: dict[str, list[str]] = {}
    pairs = module.translations(module.modalities)
    text_sources = {m.name for m in module.modalities if m.kind == "text"} & {source for source, _ in pairs}
    for batch in batches:
        for name, ids in (module.generate_text(batch) or {}).items():
            generated, references = texts.setdefault(name, ([], []))
            generated.extend(tokenizer(name).decode(ids.cpu().numpy()))
            references.extend(tokenizer(name).decode(batch[name].cpu().numpy()))
        for source, target in pairs:
            if source not in batch or target not in batch:
                continue
            given = batch if source == target else {k: v for k, v in batch.items() if k != target}
            output = module.translate(given, source, target)
            if output is None:
                continue
            originals, outputs = translated.setdefault((source, target), ([], []))
            originals.append(batch[target].cpu().numpy())
            outputs.append(output.float().cpu().numpy())
        for name in text_sources & set(batch):
            source_texts.setdefault(name, []).extend(tokenizer(name).decode(batch[name].cpu().numpy()))
    return (texts, {pair: (np.concatenate(o), np.concatenate(r)) for pair, (o, r) in translated.items()},
            source_texts)


def input_contents(eval_sets: dict[str, Sequence[Batch]], names: tuple[str, ...]) -> dict[str, dict]:
    """{split: {modality: content ids of its rows}} of the val and test sets, for pair retrieval to count a
    repeated input once (AV-MNIST pairs each recording with ~33 images). Fixed per trial: computed once."""
    if len(names) < 2:
        return {}
    return {split: {m: content_ids(batch[m].cpu().numpy() for batch in eval_sets[split]) for m in names}
            for split in EVAL_SPLITS}


def split_extras(module: Method, batches: Sequence[Batch], names: tuple[str, ...], tokenizer: Tokenizers,
                 contents: dict | None = None) -> SplitExtras:
    """Embeddings with each modality missing and the optional hooks' outputs, on the split's first rows."""
    without = (embed_missing(module, first_rows(batches, ROBUSTNESS_EXAMPLES), names, ROBUSTNESS_EXAMPLES)
               if len(names) > 1 else {})
    return SplitExtras(without, *generations(module, first_rows(batches, GENERATION_EXAMPLES), tokenizer),
                       contents=contents or {})


class Evaluation:
    """One epoch's evaluation: every metric as '<split>/<name>', and what the pictures are made from."""

    def __init__(self, module: Method, eval_sets: dict[str, Sequence[Batch]], names: tuple[str, ...],
                 tokenizer: Tokenizers, contents: dict[str, dict] | None = None, wav: WavWriters | None = None):
        """`eval_sets` holds the batches of 'probe' (probe-fitting rows of train), 'val' and 'test';
        `contents` what `input_contents` gives for them (None: every input counted as distinct); `wav` what
        `wav_writers` gives for the shard set (the artifacts' audio; None: none)."""
        self.module, self.wav = module, wav or {}
        self.embedded = {split: embed_all(module, eval_sets[split]) for split in EVAL_SPLITS}
        self.extras = {split: split_extras(module, eval_sets[split], names, tokenizer, (contents or {}).get(split))
                       for split in EVAL_SPLITS}
        self.probes = ProbeSet(*embed_all(module, eval_sets["probe"]))  # kept: an exported model predicts with them
        self.metrics = evaluate_splits(self.probes, self.embedded, names, self.extras)

    def artifact_tables(self) -> dict[str, pd.DataFrame]:
        """The trial's pictures as data, from the test split (written by the caller, see mmray.results.artifacts)."""
        embeddings, labels = self.embedded["test"]
        extras = self.extras["test"]
        modalities = [m for m in self.module.modalities if m.name in embeddings]
        sizes = {embeddings[m.name].shape[1:] for m in modalities}
        shared = [m.name for m in modalities] if len(sizes) == 1 else []  # one space to put them all in
        tables = {schema.ARTIFACT_EMBEDDINGS: embedding_sample(embeddings, labels, shared=shared)}
        k = self.module.n_clusters
        if len(modalities) > 1 and 2 <= k <= len(labels):
            analysis = cluster_analysis({m.name: embeddings[m.name] for m in modalities}, labels, k)
            tables.update(cluster_tables(analysis, labels))
        rotations = self.module.rotations()
        if rotations:
            tables[schema.ARTIFACT_ROTATIONS] = rotation_table({k: v.cpu().numpy() for k, v in rotations.items()})
        if extras.translations:
            kinds = {m.name: m.kind for m in self.module.modalities}
            tables[schema.ARTIFACT_RECONSTRUCTIONS] = reconstruction_table(extras.translations, labels, kinds,
                                                                           self.wav, extras.source_texts)
        if extras.texts:
            tables[schema.ARTIFACT_GENERATIONS] = generation_table(extras.texts, labels)
        return tables
