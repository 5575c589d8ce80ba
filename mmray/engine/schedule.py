"""Learning-rate schedules, as a factor on each parameter group's own learning rate per optimizer step."""

from __future__ import annotations

import math

import torch


def lr_factor(step: int, total_steps: int, schedule: str, warmup_steps: int) -> float:
    """The factor for 0-based `step` of `total_steps`: a linear rise over the first `warmup_steps` (from
    1/warmup_steps to 1), then 1 ("constant") or a half cosine down to 0 at the last step ("cosine"). Steps past
    the total (a worker's share of a streamed epoch can run a batch over the estimate) keep the last factor."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps - 1))
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown lr_schedule {schedule!r}; valid: constant, cosine")


def lr_scheduler(optimizer: torch.optim.Optimizer, schedule: str, warmup_fraction: float, total_steps: int
                 ) -> torch.optim.lr_scheduler.LambdaLR:
    """A scheduler stepped once per optimizer step over a run of `total_steps` steps."""
    warmup = round(warmup_fraction * total_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, schedule, warmup))
