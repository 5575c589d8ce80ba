"""Figures of issue 23 (the demo): seconds from launching `mmray demo MODEL` to its page answering, and the
latency of one "random test example" round trip, for pavlov on AV-MNIST from the mirror (goal: <= 300 ms on 2
CPUs). The round trip is what the page does on a click: the button's event skips Gradio's queue (queue=False), so
the browser POSTs it to run/predict and gets the answer as JSON, then fetches the answer's files (pictures, WAV),
six at a time. After it, the same through gradio_client, which always joins the queue and reads an event stream
(the figure before 2026-12-07); for each, the server process's CPU time per round trip (a figure that other work
on a shared machine disturbs less than latency). Then the in-process time of `Showcase.random_example` alone.

    python benchmarks/demo_latency.py --mirror ../shared/datasets            # trains a model first (a sweep)
    python benchmarks/demo_latency.py --mirror ../shared/datasets --model models/pavlov-avmnist

Without --model, a shortened sweeps/avmnist-pavlov.yaml (one trial, capped training pairs, the whole test split)
runs on Ray and its best model is exported to OUT. Every round is printed, then median and spread.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
SWEEP = REPO / "sweeps" / "avmnist-pavlov.yaml"
GOAL_MS = 300
BROWSER_CONNECTIONS = 6  # what a browser opens to one HTTP/1.1 host, fetching an answer's files in parallel


def train_model(args, out: Path) -> Path:
    from mmray import api
    from mmray.models.export import export_model

    spec = yaml.safe_load(SWEEP.read_text())
    spec.update(name="demo-latency-avmnist-pavlov", benchmarks=[{"name": "avmnist",
                                                                 "params": {"max_train": args.max_train}}],
                search={**spec["search"], "num_samples": 1}, scheduler={"type": "none"})
    spec["train"] = {**spec["train"], "epochs": args.epochs, "probe_examples": min(args.max_train, 10000)}
    (out / "spec.yaml").write_text(yaml.safe_dump(spec))
    results = api.run_sweep(api.load_spec(out / "spec.yaml"), mirror=args.mirror, results_dir=out / "results",
                            overwrite=True, report=False)
    return Path(export_model(results, "best", out / "model"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_demo(model: Path, mirror: str | None, port: int, logs: Path) -> tuple[subprocess.Popen, float]:
    """`mmray demo` in its own process; the seconds until its page answers."""
    command = [sys.executable, "-m", "mmray", "demo", str(model), "--port", str(port)]
    command += ["--mirror", mirror] if mirror else []
    log = logs / f"demo-{port}.log"  # a file, not a pipe, which could fill up and stall the server
    started = time.perf_counter()
    with open(log, "w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                  env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).close()
            return server, time.perf_counter() - started
        except OSError:
            if server.poll() is not None:
                sys.exit(f"`mmray demo` exited with {server.returncode}: {log.read_text()[-2000:]}")
            time.sleep(0.05)


def stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


def file_urls(value) -> list[str]:
    """The URLs of the files (pictures, WAV) an answer refers to, which a browser then fetches."""
    if isinstance(value, dict):
        return [value["url"]] if isinstance(value.get("url"), str) else \
            [u for v in value.values() for u in file_urls(v)]
    if isinstance(value, (list, tuple)):
        return [u for v in value for u in file_urls(v)]
    return []


def summary(name: str, seconds: list[float], unit: float = 1000.0) -> float:
    values = np.asarray(seconds) * unit
    label = "ms" if unit == 1000.0 else "s"
    print(f"{name}: median {np.median(values):.1f} {label}, p10 {np.percentile(values, 10):.1f}, "
          f"p90 {np.percentile(values, 90):.1f}, min {values.min():.1f}, max {values.max():.1f} "
          f"({len(values)} rounds)")
    return float(np.median(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mirror", default=os.environ.get("MMRAY_DATA_MIRROR"))
    parser.add_argument("--model", type=Path, help="an exported pavlov model on avmnist (default: train one)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "demo-latency")
    parser.add_argument("--max-train", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--starts", type=int, default=3, help="times `mmray demo` is started")
    parser.add_argument("--rounds", type=int, default=40, help="random examples per tab")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}, CPUs: {os.cpu_count()}")
    model = args.model
    if model is None:
        args.out.mkdir(parents=True, exist_ok=True)
        model = train_model(args, args.out)
    print(f"model: {model}")

    startups, logs = [], Path(tempfile.mkdtemp(prefix="demo-latency-logs-"))
    for start in range(args.starts):
        server, seconds = start_demo(model, args.mirror, free_port(), logs)
        print(f"start {start + 1}: page answered {seconds:.2f} s after launching `mmray demo`")
        startups.append(seconds)
        if start < args.starts - 1:
            stop(server)
    summary("start-up (launch -> page answers)", startups, unit=1.0)

    import httpx
    import psutil
    from gradio_client import Client

    url = f"http://127.0.0.1:{server.args[server.args.index('--port') + 1]}/"
    medians = {}
    try:
        with httpx.Client(base_url=url, timeout=120) as http, ThreadPoolExecutor(BROWSER_CONNECTIONS) as pool:
            events = {event["api_name"]: event["id"] for event in http.get("config").json()["dependencies"]}
            session, client = uuid.uuid4().hex[:11], Client(url, verbose=False, analytics_enabled=False,
                                                            download_files=False)

            def as_the_page(source: str):
                """What the page's button sends: an event with queue=False is one POST to run/predict (the
                browser's Gradio client skips the queue for it) and its JSON answer."""
                body = {"data": [], "fn_index": events[f"random_{source}"], "session_hash": session}
                response = http.post("gradio_api/run/predict", json=body)
                response.raise_for_status()
                return response.json()["data"]

            def through_the_client(source: str):
                """gradio_client's way, the figure before 2026-12-07: it joins the queue for every event and
                reads the answer from the queue's event stream, queue=False or not."""
                return client.predict(api_name=f"/random_{source}")

            ways = {"as the page asks (POST run/predict)": as_the_page,
                    "through gradio_client (queue + event stream)": through_the_client}
            cpu = psutil.Process(server.pid)
            for source in ("image", "audio"):
                # one way after the other, not alternated: gradio_client's event stream stays open between its
                # calls, and the server's work on it would land in the other way's CPU time
                for name, ask in ways.items():
                    ask(source)  # first call: connections, lazy imports
                    rounds, cpu_before = [], sum(cpu.cpu_times()[:2])
                    for _ in range(args.rounds):
                        started = time.perf_counter()
                        for response in pool.map(http.get, [urljoin(url, u) for u in file_urls(ask(source))]):
                            response.raise_for_status()
                        rounds.append(time.perf_counter() - started)
                    server_cpu = (sum(cpu.cpu_times()[:2]) - cpu_before) / len(rounds)
                    print(f"{source} tab, {name}, HTTP round trips (ms): "
                          + " ".join(f"{1000 * s:.0f}" for s in rounds))
                    median = summary(f"random {source} example, {name} + files", rounds)
                    print(f"  the server's CPU time per round trip: {1000 * server_cpu:.0f} ms")
                    medians.setdefault(source, median)  # the first way: the page's
    finally:
        stop(server)
        shutil.rmtree(logs)

    import torch

    from mmray.demo.showcase import Showcase
    from mmray.models import load_model

    torch.set_num_threads(1)  # as `mmray demo` runs
    showcase = Showcase.open(load_model(model), mirror=args.mirror, log=lambda *_: None)
    in_process = {}
    for source in ("image", "audio"):
        showcase.random_example(source)
        rounds = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            showcase.random_example(source)
            rounds.append(time.perf_counter() - started)
        print(f"{source}, in process (ms): " + " ".join(f"{1000 * s:.0f}" for s in rounds))
        in_process[source] = summary(f"random {source} example, Showcase.random_example in process", rounds)
    from mmray.data.audio import waveform_from_log_mel

    log_mel, rounds = showcase.test.modalities["audio"][0, 0], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        waveform_from_log_mel(log_mel, showcase.params, showcase.audio_stats)
        rounds.append(time.perf_counter() - started)
    summary("of which inverting one log-mel to a waveform (Griffin-Lim; 1 per image answer, 2 per audio)", rounds)
    load = os.getloadavg()
    print(f"load average at end: {load}")
    slower = max(medians, key=medians.get)
    verdict = "met" if medians[slower] <= GOAL_MS else (
        f"missed: the answer itself takes {in_process[slower]:.0f} ms in process, the rest is HTTP and files; "
        f"the {os.cpu_count()} CPUs ran other work too (1-minute load average {load[0]:.1f})")
    print(f"goal: random example round trip <= {GOAL_MS} ms (median of the slower tab, {slower}: "
          f"{medians[slower]:.0f} ms): {verdict}")


if __name__ == "__main__":
    main()
