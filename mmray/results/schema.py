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
FIRST_BATCH_SECONDS = "first_batch_seconds"  # from the trial's start to its first training batch (start-up cost)
ELAPSED_SECONDS = "elapsed_seconds"  # epochs.parquet: seconds since the trial started, when this epoch reported
BEST_EPOCH = "best_epoch"  # the epoch whose metrics the best/ columns hold
NODES = "nodes"  # Ray node ids the trial's Train workers ran on, comma-separated

STATUS_COMPLETED, STATUS_STOPPED, STATUS_FAILED = "completed", "stopped_early", "failed"
CONFIG_PREFIX = "config/"
FINAL_PREFIX, BEST_PREFIX = "final/", "best/"
SPLITS = ("val", "test")


@dataclass(frozen=True)
class MetricInfo:
    pattern: str  # regular expression over the metric name (without the split)
    higher_is_better: bool
    description: str


METRICS = (
    MetricInfo(r"fused_acc", True, "linear-probe accuracy on the fused embedding"),
    MetricInfo(r"(?P<m>\w+)_acc", True, "linear-probe accuracy on one modality's embedding"),
    MetricInfo(r"transfer_(?P<a>\w+)_to_(?P<b>\w+)", True,
               "probe fit on modality a's training embeddings, tested on modality b's embeddings"),
    MetricInfo(r"recall@(?P<k>\d+)_(?P<a>\w+)_to_(?P<b>\w+)", True,
               "share of a-queries with a same-label b-item among their K nearest (cosine)"),
    MetricInfo(r"map_(?P<a>\w+)_to_(?P<b>\w+)", True, "mean average precision of a->b retrieval by label"),
    MetricInfo(r"loss|same|cross|contrastive|orthogonality|\w+_loss", False, "training loss term (epoch mean)"),
)


def metric_info(column: str) -> MetricInfo | None:
    """The MetricInfo of a metric column such as 'val/fused_acc', 'final/test/map_image_to_audio'."""
    name = column.rsplit("/", 1)[-1]
    return next((info for info in METRICS if re.fullmatch(info.pattern, name)), None)


def higher_is_better(column: str) -> bool:
    info = metric_info(column)
    if info is None:
        raise KeyError(f"{column!r} is not a known metric column")
    return info.higher_is_better


def is_metric_column(column: str) -> bool:
    return column.split("/", 1)[0] in (*SPLITS, "train") and metric_info(column) is not None


def config_column(scope: str, name: str) -> str:
    return f"{CONFIG_PREFIX}{scope}/{name}"
