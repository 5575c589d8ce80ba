"""Frees the CPUs of a trial whose Train controller died before it could free them itself.

Ray scopes a placement group that an actor creates to the job, not to the actor. When ASHA stops a trial,
Tune ends the trial's driver actor and the Train controller that runs in it (mmray.orchestration.trial) dies
with it: its worker group's placement group would keep its CPUs reserved until the sweep ends, and the next
trials' Ray Data reads would wait forever.

Train's own answer (PlacementGroupCleanerCallback, Ray 2.60) starts one detached actor per trial that asks the
dashboard's State API every second whether the controller still lives: a process start on every trial's path
to its first batch, polling beside the training, and a dashboard on every local instance (benchmarks/perf).
Here each controller records its placement group in the GCS key-value store
(mmray.orchestration.ray_adapter.PlacementGroupRecorder), and the sweep's driver, which
outlives every trial, asks the GCS every few seconds and frees the groups whose controllers are dead.
"""

from __future__ import annotations

import logging
import time

import ray
from ray import tune
from ray.util.placement_group import PlacementGroup, placement_group_table, remove_placement_group

from mmray.orchestration.ray_adapter import PLACEMENT_KV_NAMESPACE, actor_state, kv_delete, kv_get, kv_keys

logger = logging.getLogger(__name__)


def free_orphaned_placement_groups() -> int:
    """Remove the recorded placement groups whose controllers are dead and forget them. Returns how many it
    removed: a controller that shut down normally has removed its own group, which is only forgotten."""
    freed = 0
    for key in kv_keys(PLACEMENT_KV_NAMESPACE):
        if actor_state(key.decode()) not in ("DEAD", None):  # None: the GCS has dropped an actor long dead
            continue
        recorded = kv_get(key, PLACEMENT_KV_NAMESPACE)
        if recorded is not None:
            group = PlacementGroup(ray.PlacementGroupID.from_hex(recorded.decode()))
            if placement_group_table(group).get("state", "REMOVED") != "REMOVED":
                remove_placement_group(group)
                freed += 1
        kv_delete(key, PLACEMENT_KV_NAMESPACE)
    return freed


class PlacementGroupReaper(tune.Callback):
    """Tune callback for the sweep's driver: frees orphaned placement groups every `every_seconds`."""

    def __init__(self, every_seconds: float = 2.0):
        self.every_seconds = every_seconds
        self._last = 0.0

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        now = time.monotonic()
        if now - self._last >= self.every_seconds:
            self._last = now
            try:
                free_orphaned_placement_groups()
            except Exception as error:  # Tune would end the sweep on a callback error; next pass retries
                logger.warning("mmray could not free orphaned placement groups (retrying in %.0f s): %s",
                               self.every_seconds, error)
