"""Ray's private API and process-wide settings, behind one door.

mmray uses Ray through its public API everywhere else. What it takes from Ray's internals (Ray 2.60, Train V2)
is here, each for a measured reason (benchmarks/perf), each with a contract test in tests/test_ray_adapter.py
that fails with a clear message on a Ray version where the name or its behaviour moved:
- TrialTorchTrainer: a TorchTrainer whose controller runs in the trial's actor, without the callback that starts
  a process per trial (PlacementGroupCleanerCallback);
- Train's controller and worker-group callback bases, and the worker group's placement group;
- the GCS key-value store (internal_kv) and actor table;
- Ray Data's cluster-wide stats actor and autoscaling coordinator, started ahead of the first trial;
- the cluster launcher's config validation (what `ray up` checks before any cloud call; for cluster.yaml's tests);
- environment variables Ray reads (set for a sweep and restored after it: the caller's process keeps its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import importlib
import os
from collections import Counter
from collections.abc import Iterator, Mapping

import ray

TESTED_RAY = "2.60.0"


def _private(module: str, name: str):
    """`module.name`, or an ImportError that says what moved and what to do."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        raise ImportError(f"mmray needs Ray's private {module}.{name} (as in Ray {TESTED_RAY}); Ray "
                          f"{ray.__version__} has moved it ({error}). Install ray=={TESTED_RAY}, or update "
                          "mmray/orchestration/ray_adapter.py and run tests/test_ray_adapter.py") from None


TrainController = _private("ray.train.v2._internal.execution.controller", "TrainController")
PlacementGroupCleanerCallback = _private("ray.train.v2._internal.callbacks.placement_group_callback",
                                         "PlacementGroupCleanerCallback")
ControllerCallback = _private("ray.train.v2._internal.execution.callback", "ControllerCallback")
WorkerGroupCallback = _private("ray.train.v2._internal.execution.callback", "WorkerGroupCallback")
HEALTH_CHECK_INTERVAL_ENV = _private("ray.train.v2._internal.constants", "HEALTH_CHECK_INTERVAL_S_ENV_VAR")
_kv_put = _private("ray.experimental.internal_kv", "_internal_kv_put")
_kv_get = _private("ray.experimental.internal_kv", "_internal_kv_get")
_kv_del = _private("ray.experimental.internal_kv", "_internal_kv_del")
_kv_list = _private("ray.experimental.internal_kv", "_internal_kv_list")
_actor_table = _private("ray._private.state", "actors")

# Train's controller polls its workers every 2 s by default, and only a poll tells it that the training function
# has returned: every trial ended 2 s after its last report (benchmarks/perf; 0.2 s now). A poll is one actor
# call per worker: five a second left the trial actor's CPU time within its run-to-run spread.
WORKER_POLL_SECONDS = 0.2


def __getattr__(name: str):
    # TrialTorchTrainer subclasses ray.train.torch.TorchTrainer, whose import loads torch (~125 MiB and ~1.4 s a
    # process): built on first use, in a trial's actor, so that a sweep's driver never loads torch.
    if name == "TrialTorchTrainer":
        globals()[name] = _trial_torch_trainer()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _trial_torch_trainer() -> type:
    from ray.train.torch import TorchTrainer

    class TrialTorchTrainer(TorchTrainer):
        """A TorchTrainer (the trials of several workers) that starts fewer processes per trial than Train's own
        (benchmarks/perf):
        - its controller runs in the trial's actor, not in an actor of its own;
        - PlacementGroupRecorder instead of PlacementGroupCleanerCallback, whose per-trial cleaner actor polls the
          dashboard's State API (mmray.orchestration.placement). The recorder goes first: Train runs the callbacks
          in order after a worker group starts, and a controller dying in a later one (the backend's process-group
          set-up) must leave its group recorded."""

        def _initialize_and_run_controller(self, **controller_init_kwargs):
            # Train starts its controller as an actor of its own: one more process, ~3 s of start-up on 2 cores on
            # every trial's path to its first batch. The trial's actor would only wait on it, so it runs the control
            # loop itself. The worker group is then the trial actor's and ends with it (ASHA stopping the trial).
            if ray.get_runtime_context().get_actor_id() is None:  # fitted from a driver script (benchmarks/perf)
                return super()._initialize_and_run_controller(**controller_init_kwargs)
            os.environ.setdefault(HEALTH_CHECK_INTERVAL_ENV, str(WORKER_POLL_SECONDS))  # this trial actor's only
            controller = TrainController(**controller_init_kwargs)
            asyncio.run(controller.run())
            return controller.get_result()

        def _create_default_callbacks(self):
            kept = [callback for callback in super()._create_default_callbacks()
                    if not isinstance(callback, PlacementGroupCleanerCallback)]
            return [PlacementGroupRecorder()] + kept

    return TrialTorchTrainer


# One entry per Train controller that started a worker group: controller actor id (hex) -> placement group id.
# The sweep's driver frees the groups of dead controllers (mmray.orchestration.placement).
PLACEMENT_KV_NAMESPACE = "mmray_train_placement_groups"


class PlacementGroupRecorder(ControllerCallback, WorkerGroupCallback):
    """Train callback (it runs in the controller): records the worker group's placement group under the id of
    the actor the controller runs in (a trial's), again whenever Train restarts the group after a worker
    failure."""

    def __init__(self):
        self._controller_id: str | None = None

    def after_controller_start(self, train_run_context) -> None:
        self._controller_id = ray.get_runtime_context().get_actor_id()

    def after_worker_group_start(self, worker_group) -> None:
        kv_put(self._controller_id, worker_group_placement_group(worker_group).id.hex().encode(),
               PLACEMENT_KV_NAMESPACE)


def worker_group_placement_group(worker_group):
    """The placement group a started Train worker group runs in."""
    return worker_group.get_worker_group_state().placement_group_handle.placement_group


# The GCS key-value store: small records that outlive the process that wrote them (reports, placement groups).
def kv_put(key: str, value: bytes, namespace: str) -> None:
    _kv_put(key, value, overwrite=True, namespace=namespace)


def kv_get(key: str | bytes, namespace: str) -> bytes | None:
    return _kv_get(key, namespace=namespace)


def kv_delete(key: str | bytes, namespace: str, prefix: bool = False) -> None:
    _kv_del(key, del_by_prefix=prefix, namespace=namespace)


def kv_keys(namespace: str, prefix: str = "") -> list[bytes]:
    return _kv_list(prefix, namespace=namespace)


def actor_state(actor_id: str) -> str | None:
    """'ALIVE', 'DEAD', ... from the GCS's own actor table (no dashboard needed, unlike the State API);
    None when the GCS has dropped an actor long dead."""
    entry = _actor_table(actor_id=actor_id)
    return entry["State"] if entry else None


def actor_classes() -> Counter[str]:
    """How many actors of each class the GCS knows (live or dead) in the connected instance, by the class's own
    name: the GCS records a qualified name for some classes and not others (`wrap_function.<locals>.ImplicitFunc`
    or `ImplicitFunc` for the same Tune trainable, depending on how it was exported)."""
    return Counter(entry["ActorClassName"].rsplit(".", 1)[-1] for entry in _actor_table().values())


def start_shared_actors() -> None:
    """Ray Data's stats actor and the autoscaling coordinator (which Train asks for a trial's workers) are
    cluster-wide actors that Ray creates on first use: inside the first trial, each a process to start on its
    path to the first batch (about 3 s each on 2 cores, benchmarks/perf). Asked for here (it returns at once;
    an existing actor is reused), they start while Tune does."""
    _private("ray.data._internal.stats", "get_or_create_stats_actor")()
    _private("ray.data._internal.cluster_autoscaler.default_autoscaling_coordinator",
             "get_or_create_autoscaling_coordinator")()


def validate_cluster_config(config: dict) -> dict:
    """What `ray up` does to a cluster config before any cloud call: defaults filled in, then the schema checked
    (raises on a bad config). Returns the filled-out config."""
    filled = _private("ray.autoscaler._private.util", "prepare_config")(copy.deepcopy(config))
    _private("ray.autoscaler._private.util", "validate_config")(filled)
    return filled


# Ray settings for instances whose nodes all run on this one machine: a local instance (where a variable the
# user has set wins) and mmray.orchestration.local_cluster.LocalCluster.
ONE_MACHINE_RAY_ENV = {
    # Train's preemption watcher (one actor per trial, polling for node drains) has nothing to watch on one
    # machine; not starting it saves every trial a process start-up.
    "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0",
    # Nothing scrapes these Prometheus metrics: Ray's metric export and Train's per-run metric callbacks only
    # cost CPU beside the trials (~4 s of CPU in a 60 s one-trial sweep on 2 cores, benchmarks/perf). Set
    # either variable to 1 to have them.
    "RAY_enable_metrics_collection": "0",
    "RAY_TRAIN_METRICS_ENABLED": "0",
    # The raylet starts a spare worker process when the first driver connects, for its first task; a sweep's
    # first task is its trial actor, which starts no sooner for it, and the idle process held ~48 MiB for the
    # whole sweep (benchmarks/perf, the overhead section's peak memory).
    "RAY_prestart_worker_first_driver": "0",
}


def sweep_env(verbose: bool) -> dict[str, str]:
    """What a sweep's driver sets, a value the user has set winning: Tune's state saved every second (default:
    every 10 s or more), so a trial that finished just before the driver was killed is known as finished on
    --resume and never re-run; no progress bars or boxed tables unless verbose (mmray prints a line per trial);
    no warning that Tune snapshots its state at each checkpoint; no logger Tune adds on its own."""
    env = {"TUNE_GLOBAL_CHECKPOINT_S": "1", "RAY_DATA_DISABLE_PROGRESS_BARS": "0" if verbose else "1",
           # Tune snapshots its state whenever a trial keeps its one checkpoint (so a resumed sweep never points
           # at a deleted one) and warns of it every few seconds when epochs are short: wanted, not a problem
           "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
           # the sweep names the loggers it wants (orchestration.sweep._run_tune): not Tune's TensorBoard one
           "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    if not verbose:
        env["RAY_AIR_NEW_OUTPUT"] = "0"
    return env


@contextlib.contextmanager
def process_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set the variables the caller has not set for the body, then restore the environment as it was: a
    notebook that runs a sweep keeps its own. Processes Ray starts meanwhile (the local instance's raylet and
    its workers) inherit them."""
    added = [name for name in values if name not in os.environ]
    for name in added:
        os.environ[name] = values[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
