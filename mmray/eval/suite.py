"""The metric suite run on every trial at every epoch. Adding a metric = one function in METRICS.

Each metric function takes the probe-training embeddings and the evaluated split's embeddings (plus, where the
worker collected them, the split's `SplitExtras`: embeddings with a modality missing, generated texts,
translations of one modality into another) and returns named values; their names and directions are listed
in `mmray.results.schema`. A metric whose inputs are absent returns nothing.

The caps below keep the cost of an epoch's evaluation small; the worker applies the row caps when it runs
the model, the suite the others.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from mmray.eval.clustering import clustering_scores
from mmray.eval.generation import answer_scores, bleu, ssim
from mmray.eval.geometry import alignment, uniformity
from mmray.eval.probes import fit_probe, probe_accuracy, probe_correct
from mmray.eval.retrieval import pair_retrieval_scores, retrieval_scores
from mmray.eval.robustness import DROP_FRACTIONS, missing_curve

FUSED = "fused"
RETRIEVAL_KS = (1, 5, 10)
RETRIEVAL_QUERIES = 2000  # queries ranked per direction: a seeded subsample; the gallery stays whole
ROBUSTNESS_EXAMPLES = 1000  # first rows of a split embedded once per missing modality
GENERATION_EXAMPLES = 256  # first rows of a split whose text a method generates / whose modalities it translates


class ProbeSet:
    """Linear probes fit on the training embeddings, one per key, fit on first use and shared by every split."""

    def __init__(self, train: dict[str, np.ndarray], train_labels: np.ndarray):
        self.train, self.train_labels = train, train_labels
        self.num_classes = len(np.unique(train_labels))
        self._fitted = {}

    def __getitem__(self, key: str):
        if key not in self._fitted:
            self._fitted[key] = fit_probe(self.train[key], self.train_labels)
        return self._fitted[key]

    def fitted(self) -> dict[str, object]:
        """Every probe fit so far (the metrics fit one per embedding space), by space."""
        return dict(self._fitted)


@dataclass
class SplitExtras:
    """What the worker collects on a split besides its embeddings; each part may be empty."""

    # modality m -> embeddings (each key embed() returns) of the split's first rows with m absent from the batch
    without: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    # text modality -> (generated texts, reference texts) of the split's first rows
    texts: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    # (source, target) -> (the target modality's inputs, what the method decoded from the source alone), both
    # (N, *target shape), of the split's first rows; source == target: same-modal reconstruction
    translations: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # text modality that a translation starts from -> its decoded inputs (the same first rows), to show beside
    source_texts: dict[str, list[str]] = field(default_factory=dict)
    # modality -> `content_ids` of its inputs, every row of the split: pair retrieval counts a repeated input
    # once (a modality left out is taken to have no repeats)
    contents: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class EvalInputs:
    probes: ProbeSet
    test: dict[str, np.ndarray]  # embeddings of the evaluated split
    test_labels: np.ndarray
    modalities: tuple[str, ...]
    extras: SplitExtras = field(default_factory=SplitExtras)

    def probe(self, key: str):
        return self.probes[key]

    def comparable(self) -> list[tuple[str, str]]:
        """Every direction (a, b) of two modalities whose embeddings share their size: the metrics that compare
        a's and b's coordinates (transfer, retrieval, alignment) need one space; aecluster's separate latents
        of different sizes have none."""
        return [(a, b) for a, b in itertools.permutations(self.modalities, 2)
                if self.test[a].shape[1:] == self.test[b].shape[1:]]

    @property
    def spaces(self) -> list[str]:
        """Every embedding space of the split: each modality, then the fused one where the method has it."""
        return [*self.modalities, FUSED] if FUSED in self.test else list(self.modalities)


def probe_accuracies(x: EvalInputs) -> dict[str, float]:
    return {f"{k}_acc": probe_accuracy(x.probe(k), x.test[k], x.test_labels) for k in x.spaces}


def cross_modal_transfer(x: EvalInputs) -> dict[str, float]:
    """A probe fit on modality a's embeddings, tested on modality b's: does the shared space transfer?"""
    return {f"transfer_{a}_to_{b}": probe_accuracy(x.probe(a), x.test[b], x.test_labels)
            for a, b in x.comparable()}


def cross_modal_retrieval(x: EvalInputs) -> dict[str, float]:
    """a -> b retrieval where a hit is the same label, and where it is the query's own partner (each distinct
    input counted once, see `pair_retrieval_scores`)."""
    out = {}
    contents = x.extras.contents
    for a, b in x.comparable():
        by_label = retrieval_scores(x.test[a], x.test[b], x.test_labels, x.test_labels, ks=RETRIEVAL_KS,
                                    max_queries=RETRIEVAL_QUERIES)
        by_pair = pair_retrieval_scores(x.test[a], x.test[b], contents.get(a), contents.get(b), ks=RETRIEVAL_KS,
                                        max_queries=RETRIEVAL_QUERIES)
        out.update({f"{name}_{a}_to_{b}": value for name, value in by_label.items()})
        out.update({f"pair_{name}_{a}_to_{b}": value for name, value in by_pair.items()})
    return out


def geometry(x: EvalInputs) -> dict[str, float]:
    """Alignment of each pair of modalities (same-row pairs) and uniformity of each space (Wang & Isola)."""
    comparable = x.comparable()
    out = {f"alignment_{a}_{b}": alignment(x.test[a], x.test[b])
           for a, b in itertools.combinations(x.modalities, 2) if (a, b) in comparable}
    out.update({f"uniformity_{space}": uniformity(x.test[space]) for space in x.spaces})
    return out


def clustering(x: EvalInputs) -> dict[str, float]:
    """k-means with k = the number of classes on each space: silhouette, NMI and ARI against the labels."""
    k = x.probes.num_classes
    if not 2 <= k < len(x.test_labels):
        return {}
    return {f"{name}_{space}": value for space in x.spaces
            for name, value in clustering_scores(x.test[space], x.test_labels, k).items()}


def missing_modality(x: EvalInputs) -> dict[str, float]:
    """The fused probe (fit on complete pairs) with each modality absent from all, then from a share, of the
    examples: see `mmray.eval.robustness`."""
    if FUSED not in x.test:
        return {}
    out = {}
    for modality, embeddings in x.extras.without.items():
        n = len(embeddings[FUSED])
        labels = x.test_labels[:n]
        correct_full = probe_correct(x.probe(FUSED), x.test[FUSED][:n], labels)
        correct_missing = probe_correct(x.probe(FUSED), embeddings[FUSED], labels)
        out[f"fused_acc_without_{modality}"] = float(correct_missing.mean())
        curve = missing_curve(correct_full, correct_missing, DROP_FRACTIONS)
        out.update({f"fused_acc_drop{round(100 * f)}_{modality}": acc for f, acc in curve.items()})
    return out


def generation(x: EvalInputs) -> dict[str, float]:
    """BLEU, exact match and token accuracy of generated texts; SSIM of each translation (an image or a log-mel
    decoded from one modality) against the target modality's own input."""
    out = {}
    for modality, (generated, references) in x.extras.texts.items():
        out[f"bleu_{modality}"] = bleu(generated, references)
        out.update({f"{name}_{modality}": v for name, v in answer_scores(generated, references).items()})
    for (source, target), (originals, decoded) in x.extras.translations.items():
        out[ssim_name(source, target)] = ssim(originals, decoded)
    return out


def ssim_name(source: str, target: str) -> str:
    return f"ssim_{source}_to_{target}"


METRICS: list[Callable[[EvalInputs], dict[str, float]]] = [
    probe_accuracies,
    cross_modal_transfer,
    cross_modal_retrieval,
    geometry,
    clustering,
    missing_modality,
    generation,
]


def metric_names(modalities: Sequence[str], generated_texts: Sequence[str] = (),
                 translations: Sequence[tuple[str, str]] = ()) -> list[str]:
    """Every name METRICS can report, without running a model, for a method that embeds `modalities` and their
    fusion, generates the texts of `generated_texts` and fills the (source, target) pairs of `translations`
    (with more than one modality the worker also embeds each one missing). A run may still lack a name whose
    data it lacks: clustering needs 2 <= classes < rows, the _yesno/_open subsets such references, transfer,
    retrieval and alignment embeddings of one size (aecluster's per-modality latent sizes may differ).
    tests/test_metrics.py keeps this list equal to what METRICS emits."""
    spaces = [*modalities, FUSED]
    directions = list(itertools.permutations(modalities, 2))
    retrieval = [*(f"recall@{k}" for k in RETRIEVAL_KS), "map"]
    names = [f"{space}_acc" for space in spaces]
    names += [f"transfer_{a}_to_{b}" for a, b in directions]
    names += [f"{kind}{score}_{a}_to_{b}" for a, b in directions for kind in ("", "pair_") for score in retrieval]
    names += [f"alignment_{a}_{b}" for a, b in itertools.combinations(modalities, 2)]
    names += [f"uniformity_{space}" for space in spaces]
    names += [f"{score}_{space}" for space in spaces for score in ("silhouette", "nmi", "ari")]
    if len(modalities) > 1:
        names += [f"fused_acc_without_{m}" for m in modalities]
        names += [f"fused_acc_drop{round(100 * f)}_{m}" for m in modalities for f in DROP_FRACTIONS]
    for m in generated_texts:
        names += [f"bleu_{m}", *(f"{score}{subset}_{m}" for score in ("exact_match", "token_acc")
                                 for subset in ("", "_yesno", "_open"))]
    names += [ssim_name(source, target) for source, target in translations]
    return names


def evaluate(train: dict[str, np.ndarray], train_labels: np.ndarray, test: dict[str, np.ndarray],
             test_labels: np.ndarray, modalities: tuple[str, ...], extras: SplitExtras | None = None
             ) -> dict[str, float]:
    """Every metric of one evaluated split, with probes fit on `train`."""
    return evaluate_splits(ProbeSet(train, train_labels), {"": (test, test_labels)}, modalities,
                           {"": extras} if extras is not None else None)


def evaluate_splits(probes: ProbeSet, splits: Mapping[str, tuple[dict[str, np.ndarray], np.ndarray]],
                    modalities: tuple[str, ...], extras: Mapping[str, SplitExtras] | None = None
                    ) -> dict[str, float]:
    """Every metric of several splits ({'val': (embeddings, labels), ...}) as '<split>/<metric>', the probes
    (fit on training embeddings) fit once and shared by all splits; `extras` optionally holds each split's
    SplitExtras."""
    results: dict[str, float] = {}
    for split, (embeddings, labels) in splits.items():
        split_extras = (extras or {}).get(split) or SplitExtras()
        inputs = EvalInputs(probes, embeddings, labels, tuple(modalities), split_extras)
        prefix = f"{split}/" if split else ""
        for metric in METRICS:
            results.update({prefix + k: v for k, v in metric(inputs).items()})
    return results
