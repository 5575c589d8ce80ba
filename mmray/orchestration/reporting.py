"""Carries each epoch's report from a trial's Train controller to Tune: in order, every one, and never a hang.

Ray's TuneReportCallback (2.60) passes reports through a one-slot queue actor that the trial actor's main
thread drains only while Tune's driver is asking that trial for a result. If the driver is slow to ask (it is
writing the results tables, or the machine is busy) and `fit()` ends with a report still in that queue, the
trainable's end-of-function marker takes Tune's own one-slot result queue first and the trial actor deadlocks:
the trial never ends and the sweep hangs (seen here with the driver 3 s behind each result). The queue actor
is also one more process started on every trial's path to its first batch (benchmarks/perf).

Here the controller appends each report to the GCS key-value store under a channel of its own, and the
trainable runs `fit()` in a thread while it hands those entries to Tune with `tune.report`, the supported way
for a function trainable. It returns only after the last entry is handed over, so no report is left behind.
"""

from __future__ import annotations

import pickle
import threading
import uuid

from ray import tune
from ray.train.v2.api.callback import UserCallback

from mmray.orchestration.ray_adapter import kv_delete, kv_get, kv_put

KV_NAMESPACE = "mmray_train_reports"
POLL_SECONDS = 0.1  # a report reaches Tune at most this late; one GCS lookup per poll


def new_channel() -> str:
    return uuid.uuid4().hex


def _key(channel: str, index: int) -> str:
    return f"{channel}/{index:08d}"


class ReportForwarder(UserCallback):
    """Train callback (it runs in the controller): appends rank 0's metrics of each report to `channel`."""

    def __init__(self, channel: str):
        self.channel = channel
        self._sent = 0

    def after_report(self, run_context, metrics: list[dict], checkpoint) -> None:
        kv_put(_key(self.channel, self._sent), pickle.dumps(metrics[0]), KV_NAMESPACE)
        self._sent += 1


def fit_reporting_to_tune(trainer, channel: str, last_epoch: int | None = None) -> None:
    """Call inside a Tune function trainable: fit `trainer` (whose run config forwards to `channel`) and
    report each of its results to Tune in order. Raises what `fit()` raised, after the reports before it.

    The report of `last_epoch` reaches Tune only once `fit()` has returned: ASHA stops a trial when it reports
    its last epoch, and Tune then ends the trial's actor. Handed over at once, that report let Tune end the
    actor while its controller was still shutting the worker group down: the controller took its dying
    worker for a failure, started a new group, and that group's placement group, never recorded, held a CPU
    for the rest of the sweep (a sweep on 2 cores then hung with its reads unscheduled)."""
    failure: list[Exception] = []

    def fit() -> None:
        try:
            trainer.fit()
        except Exception as error:  # noqa: BLE001 - re-raised in the trainable's thread, which Tune watches
            failure.append(error)

    # daemon: when Tune stops the trial (ASHA), `tune.report` ends this thread and the actor exits without
    # waiting for the fit; its controller dies with the actor that owns it (mmray.orchestration.placement)
    fitting = threading.Thread(target=fit, name="mmray-fit", daemon=True)
    fitting.start()
    received = 0
    try:
        while True:
            ended = not fitting.is_alive()  # read before looking: every report of an ended fit is stored
            key = _key(channel, received)
            stored = kv_get(key, KV_NAMESPACE)
            report = pickle.loads(stored) if stored is not None else None
            if report is not None and (ended or last_epoch is None or report.get("epoch") != last_epoch):
                kv_delete(key, KV_NAMESPACE)
                tune.report(report)
                received += 1
            elif ended:
                break
            else:
                fitting.join(POLL_SECONDS)
    finally:
        # A trial Tune stops (ASHA) leaves through `tune.report` while its run goes on: drop what it stored.
        # Only a report stored in the moments before the controller dies with this actor can stay behind.
        kv_delete(f"{channel}/", KV_NAMESPACE, prefix=True)
    if failure:
        raise failure[0]
