"""The optimisation knobs of one trial. Kept free of torch so the sweep spec can be read and checked quickly."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainParams(BaseModel):
    """Optimisation knobs of one trial; a sweep may search any of them as `train.<field>`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(1e-3, gt=0)
    lr_schedule: Literal["constant", "cosine"] = Field("constant", description="per optimizer step, on each "
                                                       "parameter group's lr: constant, or a half cosine to 0")
    warmup_fraction: float = Field(0.0, ge=0, lt=1, description="share of the run's steps over which the lr "
                                   "first rises linearly (the MM-JEPA seed: 0.06 with cosine)")
    weight_decay: float = Field(1e-4, ge=0)
    grad_clip: float | None = 5.0
    shuffle_buffer: int = Field(4096, ge=0, description="rows shuffled together while a worker streams its shard "
                                "(first epoch; every epoch if not kept); blocks come in random order; 0 = no more")
    worker_cache_mib: int = Field(2048, ge=0, description="a worker keeps its shard of the training split in memory "
                                  "when it is at most this big, so later epochs need no reading; 0 = stream always")
    probe_examples: int = Field(10000, ge=100, description="training pairs embedded to fit the linear probes")
    eval_examples: int | None = Field(None, description="cap on val/test pairs evaluated; None = all")
    batch_norm_stats: Literal["auto", "training", "clean"] = Field(
        "auto", description="what batch norm normalises with at evaluation: 'training', the running averages of "
        "the training batches; 'clean', re-estimated before each evaluation from un-augmented training pairs "
        "(the probe pairs); 'auto', clean when the trial augments its training batches, training otherwise")
