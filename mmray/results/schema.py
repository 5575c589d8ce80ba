"""Every column of the results tables, with its meaning and direction. Reports and notebooks read names here.

trials.parquet: one row per trial.   epochs.parquet: one row per (trial, epoch).
Metric columns are "<split>/<metric>" in epochs.parquet and "final/<split>/<metric>" (last epoch run) or
"best/<split>/<metric>" (best epoch by that metric) in trials.parquet. Config columns are "config/<scope>/<name>".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TRIALS_FILE = "trials.parquet"
EPOCHS_FILE = "epochs.parquet"
SPEC_FILE = "sweep.yaml"

# Identity and bookkeeping columns of trials.parquet.
SWEEP = "sweep"
TRIAL_ID = "trial_id"
RUN = "run"  # the Tune run a trial belongs to: <benchmark>__<method>__seed<seed>
BENCHMARK = "benchmark"
METHOD = "method"
SEED = "seed"
STATUS = "status"  # completed | stopped_early | failed
ERROR = "error"
EPOCHS_RUN = "epochs_run"
EPOCHS_PLANNED = "epochs_planned"
WALL_SECONDS = "wall_seconds"
FINISHED_AT = "finished_at"
EPOCH = "epoch"
EPOCH_SECONDS = "epoch_seconds"
EPOCH_TRAIN_SECONDS = "epoch_train_seconds"  # the training pass of an epoch, without evaluation
# seconds of the training pass spent waiting for the next batch (data not ready): ingest as training feels it
DATA_WAIT_SECONDS = "data_wait_seconds"
FIRST_BATCH_SECONDS = "first_batch_seconds"  # from the trial's start to its first training batch (start-up cost)
# epochs.parquet: the epoch the worker process that ran this epoch started after: 0 = from scratch, k = restored
# from the checkpoint of epoch k (a worker restarted after a crash, or a sweep resumed with --resume)
RESUMED_FROM_EPOCH = "resumed_from_epoch"
ELAPSED_SECONDS = "elapsed_seconds"  # epochs.parquet: seconds since the trial started, when this epoch reported
BEST_EPOCH = "best_epoch"  # the epoch whose metrics the best/ columns hold
# trials.parquet: the folder, relative to the results folder, holding that epoch's model as an exported model
# (mmray.models.format; `mmray export` copies it, `load_model(RESULTS, trial=...)` reads it)
BEST_CHECKPOINT = "best_checkpoint"
NODES = "nodes"  # Ray node ids the trial's Train workers ran on, comma-separated
WEIGHTS = "weights"  # where a method's pretrained parts came from (JSON {part: source}), e.g. "random-init ..."
TRIAL_FACTS = (NODES, WEIGHTS)  # text a trial reports with each epoch, kept once in its trials.parquet row

STATUS_COMPLETED, STATUS_STOPPED, STATUS_FAILED = "completed", "stopped_early", "failed"
CONFIG_PREFIX = "config/"
FINAL_PREFIX, BEST_PREFIX = "final/", "best/"
SPLITS = ("val", "test")

# Per-trial artifacts: pictures stored as data, one Parquet table each under <results>/artifacts/<trial_id>/
# (mmray.results.artifacts.load_artifacts). The worker writes them at the trial's final epoch from the test
# split, so a trial that ASHA stopped early has none.
# 2-D t-SNE of a seeded subset of 500 test examples: one map per embedding space, and one "shared" map of every
# modality's embeddings together where they have one size (does an image lie near its class's audio?)
ARTIFACT_TSNE = "tsne"
# what the maps are made from: every trial that ends keeps that subset's embeddings (cheap); the maps (seconds of
# t-SNE each) are drawn for the trials the report shows: mmray.results.artifacts.draw_maps_of_best_trials
ARTIFACT_EMBEDDINGS = "embeddings"
ARTIFACT_ROTATIONS = "rotations"  # a method's per-modality rotation matrices (pavlov), long format
# a few test examples per class of each translation (source, target): the target modality's input beside what the
# method decoded from the source alone (source == target: same-modal reconstruction); audio also as WAV files
ARTIFACT_RECONSTRUCTIONS = "reconstructions"
ARTIFACT_GENERATIONS = "generations"  # a few generated texts beside their references
# k-means of each modality's test embeddings (k = the method's cluster count: the classes, or aecluster's
# n_clusters) and, for each pair (a, b) of modalities: the relationship table (a's clusters x b's, counts), how
# each cluster relates to the other modality's (one-to-one, one-to-many, many-to-one, none; both directions) and
# the convergence/divergence zones (Hungarian matching of a's clusters to b's: does each example's pair agree?)
ARTIFACT_CLUSTER_RELATIONSHIPS = "cluster_relationships"
ARTIFACT_CLUSTER_RELATIONS = "cluster_relations"
ARTIFACT_CLUSTER_ZONES = "cluster_zones"
MODALITY = "modality"  # tsne: the embedding space (a modality or "fused"); others: the modality
MAP = "map"  # tsne: the map a point lies in: its space (= MODALITY), or SHARED_MAP for every modality in one
SHARED_MAP = "shared"
EXAMPLE = "example"  # row of the test split
LABEL = "label"  # class index
IN_SHARED_MAP = "in_shared_map"  # embeddings: this space also goes into the shared map
VECTOR = "vector"  # embeddings: the example's embedding in that space (float32 list)
X, Y = "x", "y"  # t-SNE coordinates (each space is its own map: compare shapes, not positions, across maps)
ROW, COL, VALUE = "row", "col", "value"  # matrix entry
SOURCE, TARGET = "source", "target"  # a translation: modality `target` decoded from modality `source` alone
KIND = "kind"  # the target modality's kind: image | audio (a log-mel)
SHAPE = "shape"  # an image's (C, H, W), a log-mel's (1, n_mels, frames)
ORIGINAL, RECONSTRUCTION = "original", "reconstruction"  # flattened float arrays; reshape with SHAPE
# audio targets: ORIGINAL and RECONSTRUCTION as mono 16-bit WAV files (bytes; the log-mel inverted by
# mmray.data.audio.waveform_from_log_mel at the benchmark's sample rate), null for images and beyond the first
# example of each class
ORIGINAL_WAV, RECONSTRUCTION_WAV = "original_wav", "reconstruction_wav"
SOURCE_TEXT = "source_text"  # a text source's decoded input (e.g. the caption an image was drawn from)
GENERATED, REFERENCE = "generated", "reference"  # decoded texts
MODALITY_A, MODALITY_B = "modality_a", "modality_b"  # a pair of modalities: a's clusters seen in b
CLUSTER_A, CLUSTER_B = "cluster_a", "cluster_b"  # k-means cluster indices in a and in b
LABEL_A, LABEL_B = "label_a", "label_b"  # the commonest class of each cluster (-1: an empty cluster)
COUNT, FRACTION = "count", "fraction"  # examples in cluster_a and cluster_b; their share of cluster_a
SIZE = "size"  # examples in cluster_a
PARTNERS, SHARES = "partners", "shares"  # b's clusters holding >= 30 % of cluster_a, most first; their shares
RELATION = "relation"  # one-to-one | one-to-many | many-to-one | none (mmray.eval.clustering.Relationship)
MATCHED = "matched"  # the b cluster that Hungarian matching pairs with cluster_a (-1: none)
CONVERGENT = "convergent"  # the example's b cluster is the one matched with its a cluster
ARTIFACT_COLUMNS = {
    ARTIFACT_TSNE: (MAP, MODALITY, EXAMPLE, LABEL, X, Y),
    ARTIFACT_EMBEDDINGS: (MODALITY, EXAMPLE, LABEL, IN_SHARED_MAP, VECTOR),
    ARTIFACT_ROTATIONS: (MODALITY, ROW, COL, VALUE),
    ARTIFACT_RECONSTRUCTIONS: (SOURCE, TARGET, KIND, EXAMPLE, LABEL, SOURCE_TEXT, SHAPE, ORIGINAL, RECONSTRUCTION,
                               ORIGINAL_WAV, RECONSTRUCTION_WAV),
    ARTIFACT_GENERATIONS: (MODALITY, EXAMPLE, LABEL, GENERATED, REFERENCE),
    ARTIFACT_CLUSTER_RELATIONSHIPS: (MODALITY_A, MODALITY_B, CLUSTER_A, LABEL_A, CLUSTER_B, LABEL_B, COUNT,
                                     FRACTION),
    ARTIFACT_CLUSTER_RELATIONS: (MODALITY_A, MODALITY_B, CLUSTER_A, LABEL_A, SIZE, PARTNERS, SHARES, RELATION),
    ARTIFACT_CLUSTER_ZONES: (MODALITY_A, MODALITY_B, EXAMPLE, LABEL, CLUSTER_A, CLUSTER_B, MATCHED, CONVERGENT),
}


@dataclass(frozen=True)
class MetricInfo:
    pattern: str  # regular expression over the metric name (without the split)
    higher_is_better: bool
    description: str


# Names below are without the split; <m> is a modality, <space> a modality or "fused", a -> b a direction.
# Caps that keep the per-epoch cost down (every trial evaluates every epoch; constants in mmray.eval.suite):
# retrieval ranks a seeded subsample of at most 2,000 queries against the whole gallery; robustness and
# generation metrics use the first 1,000 / 256 rows of the split; silhouette and uniformity a seeded subsample of
# at most 2,000 rows.
METRICS = (
    MetricInfo(r"fused_acc", True, "linear-probe accuracy on the fused embedding"),
    MetricInfo(r"fused_acc_without_(?P<m>\w+)", True,
               "accuracy of the fused probe (fit on complete pairs) when modality m is absent from every example "
               "(the first 1,000 rows of the split)"),
    MetricInfo(r"fused_acc_drop(?P<percent>\d+)_(?P<m>\w+)", True,
               "robustness curve: fused-probe accuracy when a seeded <percent>% of the examples lack modality m "
               "(0, 25, 50, 75, 100; 0 = complete pairs, 100 = fused_acc_without_m; first 1,000 rows)"),
    MetricInfo(r"token_acc(?P<subset>_yesno|_open)?_(?P<m>\w+)", True,
               "generated text m vs the reference, word by word over the longer text (normalised words); "
               "_yesno: reference answer is yes/no, _open: the others (first 256 rows)"),
    MetricInfo(r"(?P<m>\w+)_acc", True, "linear-probe accuracy on one modality's embedding"),
    MetricInfo(r"transfer_(?P<a>\w+)_to_(?P<b>\w+)", True,
               "probe fit on modality a's training embeddings, tested on modality b's embeddings"),
    # Pair identity on a deduplicated gallery: each distinct input is one query / one gallery item, so where an
    # input is shared (AV-MNIST pairs each test recording with ~33 images) its copies do not outrank each other.
    MetricInfo(r"pair_recall@(?P<k>\d+)_(?P<a>\w+)_to_(?P<b>\w+)", True,
               "share of a-queries with their own pair's b-input among their K nearest b-items (cosine), on a "
               "deduplicated gallery: each distinct input counts once, any b-input paired with the query is a hit"),
    MetricInfo(r"pair_map_(?P<a>\w+)_to_(?P<b>\w+)", True,
               "mean average precision of a->b retrieval of the own pair, on a deduplicated gallery as for "
               "pair_recall (= mean reciprocal rank where each input has one partner)"),
    MetricInfo(r"recall@(?P<k>\d+)_(?P<a>\w+)_to_(?P<b>\w+)", True,
               "share of a-queries with a same-label b-item among their K nearest (cosine)"),
    MetricInfo(r"map_(?P<a>\w+)_to_(?P<b>\w+)", True, "mean average precision of a->b retrieval by label"),
    MetricInfo(r"alignment_(?P<a>\w+)_(?P<b>\w+)", False,
               "alignment (Wang & Isola): mean squared distance between the L2-normalised a and b embeddings "
               "of the same pair (0..4; 0 = pairs coincide)"),
    MetricInfo(r"uniformity_(?P<space>\w+)", False,
               "uniformity (Wang & Isola): log mean exp(-2 d^2) over pairs of L2-normalised embeddings "
               "(-4 ~ spread over the sphere, 0 = collapsed)"),
    MetricInfo(r"silhouette_(?P<space>\w+)", True,
               "silhouette (-1..1) of k-means clusters (k = number of classes) in the embedding space"),
    MetricInfo(r"nmi_(?P<space>\w+)", True, "normalised mutual information of k-means clusters and labels (0..1)"),
    MetricInfo(r"ari_(?P<space>\w+)", True, "adjusted Rand index of k-means clusters and labels (~0 chance, 1)"),
    MetricInfo(r"bleu_(?P<m>\w+)", True,
               "corpus BLEU (sacrebleu, 0..100) of generated text m against the reference (first 256 rows)"),
    MetricInfo(r"exact_match(?P<subset>_yesno|_open)?_(?P<m>\w+)", True,
               "share of generated texts m equal to the reference after normalisation (lower case, no "
               "punctuation); _yesno / _open as for token_acc (first 256 rows)"),
    MetricInfo(r"ssim_(?P<a>\w+)_to_(?P<b>\w+)", True,
               "structural similarity (scikit-image, <=1) of modality b (an image or a log-mel spectrogram) as the "
               "method decodes it from modality a alone to b's own input: a = b same-modal reconstruction, a != b "
               "cross-modal (b not read; AV-MNIST pairs share only a label, so cross-modal is far below "
               "same-modal) (first 256 rows)"),
    MetricInfo(r"ssim_(?P<m>\w+)", True,
               "results written before ssim_<a>_to_<b>: SSIM of image modality m reconstructed from every "
               "modality of the example (first 256 rows)"),
)
# Every "train/<name>" column is a term the method's `losses` returned, averaged over the epoch's batches.
TRAIN_TERM = MetricInfo(r".+", False, "training loss term reported by the method (epoch mean)")


def metric_info(column: str) -> MetricInfo | None:
    """The MetricInfo of a metric column such as 'val/fused_acc', 'final/test/map_image_to_audio'."""
    *scope, name = column.split("/")
    if scope and scope[-1] == "train" and name:
        return TRAIN_TERM
    return next((info for info in METRICS if re.fullmatch(info.pattern, name)), None)


def higher_is_better(column: str) -> bool:
    info = metric_info(column)
    if info is None:
        raise KeyError(f"{column!r} is not a known metric column")
    return info.higher_is_better


def search_mode(column: str) -> str:
    """'max' or 'min': the `search.mode` (and leaderboard order) that the column's direction calls for."""
    return "max" if higher_is_better(column) else "min"


def is_metric_column(column: str) -> bool:
    return column.split("/", 1)[0] in (*SPLITS, "train") and metric_info(column) is not None


def config_column(scope: str, name: str) -> str:
    return f"{CONFIG_PREFIX}{scope}/{name}"


def model_dir(trial_id: str) -> str:
    """The BEST_CHECKPOINT folder of a trial, relative to the results folder."""
    return f"models/{trial_id}"
