"""A multi-node Ray cluster on this one machine: a head and worker nodes as separate `ray start` processes,
with token authentication and bounded object stores. For trying multi-node behaviour (placement over nodes,
`ray job submit`) without a cloud, and for the tests and benchmarks that measure it.

    with LocalCluster(nodes=2, cpus_per_node=1) as cluster:
        run_sweep(spec, address=cluster.address)   # or: ray job submit --address cluster.jobs_url ...
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from mmray.errors import MmrayError
from mmray.orchestration.ray_adapter import ONE_MACHINE_RAY_ENV
from mmray.orchestration.sweep import TRIAL_DRIVER

RAY = str(Path(sys.executable).with_name("ray"))
# `ray start` 2.60 has no --memory flag: the object store is what a node bounds here.
OBJECT_STORE_BYTES = 300 * 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """Start on enter, `ray stop --force` on exit (also when the body fails)."""

    def __init__(self, nodes: int = 2, cpus_per_node: float = 1, object_store_bytes: int = OBJECT_STORE_BYTES,
                 pin_cores: bool = False):
        """`pin_cores`: node i's processes run on core i only (modulo the cores there are), as on separate
        machines; otherwise every node's processes share all cores, so a node's Ray daemons and idle
        workers use cores its `cpus_per_node` does not count (which flatters a one-node baseline)."""
        self.nodes, self.cpus_per_node, self.object_store_bytes = nodes, cpus_per_node, object_store_bytes
        self.pin_cores = pin_cores
        self.token = secrets.token_hex(32)
        # Without inherited RAY_* settings but with the one-machine ones, and with this interpreter's bin first on
        # PATH: jobs run `python` with mmray's dependencies, as for a user with the project's virtualenv active.
        base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | ONE_MACHINE_RAY_ENV
        base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
        base["RAY_DATA_DISABLE_PROGRESS_BARS"] = "1"
        # `ray start --disable-usage-stats` (below) turns usage stats off on the head only (Ray 2.60): on a worker
        # node, the first trial's Ray Data run started a usage-collection actor (~3.7 CPU-s on a 1-core node).
        base["RAY_USAGE_STATS_ENABLED"] = "0"
        self.env_without_token = base
        self.env = {**base, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}
        self.port, self.dashboard_port = _free_port(), _free_port()
        self._temp = tempfile.TemporaryDirectory(prefix="mmray-cluster-")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def jobs_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _ray(self, *args: str, node: int | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        pin = None
        if self.pin_cores and node is not None:
            core = sorted(os.sched_getaffinity(0))[node % len(os.sched_getaffinity(0))]
            pin = functools.partial(os.sched_setaffinity, 0, {core})  # inherited by every process the node starts
        done = subprocess.run([RAY, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=pin)
        if done.returncode != 0:
            raise MmrayError(f"`ray {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        return done

    @property
    def _driver_slots(self) -> list[str]:
        # Every node drives trials (mmray.orchestration.sweep.TRIAL_DRIVER), as on a local instance.
        return [f'--resources={{"{TRIAL_DRIVER}": {self.cpus_per_node}}}']

    def start(self) -> LocalCluster:
        memory = ["--object-store-memory", str(self.object_store_bytes), "--disable-usage-stats"]
        head = Path(self._temp.name) / "node-0"
        head.mkdir()
        self._ray("start", "--head", f"--port={self.port}", f"--num-cpus={self.cpus_per_node}", f"--temp-dir={head}",
                  *self._driver_slots, "--include-dashboard=true",
                  "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}", *memory, node=0)
        for index in range(1, self.nodes):
            # Each extra node needs its own temp dir: nodes sharing one unpack a job's working dir into the same
            # folder, and a second unpacking pulls it from under the running job driver.
            temp = Path(self._temp.name) / f"node-{index}"
            temp.mkdir()
            self._ray("start", f"--address={self.address}", f"--num-cpus={self.cpus_per_node}",
                      f"--temp-dir={temp}", *self._driver_slots, *memory, node=index)
        return self

    def stop(self) -> None:
        """Kill this cluster's processes only: `ray stop` would kill every Ray instance on the machine (another
        sweep's, a test's). Each node was started with a temp dir under ours, which its processes' command
        lines name, and the workers they spawn carry the head's GCS address. Ray's dashboard and runtime-env
        agents retitle themselves (no mark left in their command line) but keep their logs under our temp
        dir open; matched by command line alone, they outlived every cluster, each using a few % of a core."""
        marks = (self._temp.name, f"127.0.0.1:{self.port}")
        for _ in range(3):  # processes may still be spawning workers on the first pass
            ours = [process for process in psutil.process_iter(["cmdline"])
                    if process.pid != os.getpid() and self._started_by_us(process, marks)]
            if not ours:
                break
            for process in ours:
                with contextlib.suppress(psutil.Error):
                    process.kill()
            psutil.wait_procs(ours, timeout=10)
        self._temp.cleanup()

    def _started_by_us(self, process: psutil.Process, marks: tuple[str, ...]) -> bool:
        if any(mark in " ".join(process.info["cmdline"] or ()) for mark in marks):
            return True
        with contextlib.suppress(psutil.Error):
            return any(file.path.startswith(self._temp.name) for file in process.open_files())
        return False

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
