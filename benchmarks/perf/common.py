"""Shared pieces of the performance harness: the machine it ran on, child processes, memory sampling."""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
RESULT_PREFIX = "RESULT "


def machine() -> dict:
    import optuna
    import ray
    import torch

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ray": ray.__version__,
        "optuna": optuna.__version__,
        "platform": platform.platform(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@dataclass
class MemorySampler:
    """Peak proportional set size (PSS: shared pages split among their users) of a process and all its
    descendants. Ray's raylet, GCS and workers all descend from the process that called `ray.init`, so a
    sweep's whole footprint is counted.

    PSS is costly to read: the kernel walks every page table of every process. Read 4 times a second across a
    sweep's ~15 processes it took ~30 CPU-seconds of a 100 s trial and slowed the trial's training passes 1.5x
    (so the overhead figure measured the sampler). So a background thread reads the cheap resident set sizes
    every `interval` seconds and reads PSS only when their sum has risen `step` above the sum at the last PSS
    reading: PSS never exceeds RSS, and it rises with it. `peak_by_process`: each process's PSS at the peak
    (MiB, by `process_label`), to say where the memory is."""

    pid: int
    interval: float = 0.25
    step: float = 0.05
    peak_bytes: int = 0
    peak_by_process: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    @staticmethod
    def _read(processes: list[psutil.Process], read) -> dict[psutil.Process, int]:
        sizes = {}
        for process in processes:
            try:
                sizes[process] = read(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return sizes

    def _run(self) -> None:
        rss_at_last_pss = 0
        while not self._stop.is_set():
            processes = self._processes()
            rss = sum(self._read(processes, lambda p: p.memory_info().rss).values())
            if rss > rss_at_last_pss * (1 + self.step):
                rss_at_last_pss = rss
                pss = self._read(processes, _pss)
                if sum(pss.values()) > self.peak_bytes:  # labelled only at a new peak
                    self.peak_bytes = sum(pss.values())
                    self.peak_by_process = {process_label(p): size / 2**20 for p, size in pss.items()}
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def process_label(process: psutil.Process) -> str:
    """What a process of a sweep is, with its pid: a Ray worker's title (ray::ImplicitFunc), a Python script's
    file name (dashboard.py), a binary's name (raylet)."""
    try:
        command = process.cmdline() or [process.name()]
    except (psutil.NoSuchProcess, psutil.AccessDenied):  # ended since its memory was read
        return f"ended ({process.pid})"
    if command[0].startswith("ray::"):
        name = command[0].split()[0]
    else:
        script = next((part for part in command[1:] if part.endswith(".py")), None)
        name = Path(script).name if script and "python" in Path(command[0]).name else Path(command[0]).name
    return f"{name} ({process.pid})"


def _pss(process: psutil.Process) -> int:
    info = process.memory_full_info()
    return getattr(info, "pss", info.rss)  # PSS is Linux-only: elsewhere RSS, which counts shared pages in full


def run_child(mode: str, args: dict, env: dict | None = None, timeout: float = 1800, core: int | None = None,
              pythonpath: str | None = None) -> dict:
    """Run `child.py MODE ARGS` in a fresh interpreter (so Ray, threads and memory start clean) and return
    its result dict, with the child's wall seconds and peak PSS added. `core`: run the child on that core only;
    `pythonpath`: a folder searched first for modules (another checkout's mmray)."""
    command = [sys.executable, str(HERE / "child.py"), mode, json.dumps(args)]
    started = time.perf_counter()
    # Ray workers unpickle functions defined here by module name: they need this folder on their path too.
    path = os.pathsep.join(p for p in (pythonpath, str(HERE), os.environ.get("PYTHONPATH")) if p)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {}), "PYTHONPATH": path},
                               preexec_fn=None if core is None else functools.partial(os.sched_setaffinity, 0, {core}))
    with MemorySampler(process.pid) as memory:
        out, err = process.communicate(timeout=timeout)
    wall = time.perf_counter() - started
    lines = [line for line in out.splitlines() if line.startswith(RESULT_PREFIX)]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child {mode!r} exited {process.returncode}:\n{out[-3000:]}\n{err[-3000:]}")
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    return {**result, "process_seconds": wall, "peak_pss_bytes": memory.peak_bytes,
            "peak_pss_mib_by_process": memory.peak_by_process}
