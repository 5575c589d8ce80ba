"""`ray job submit` of the demo sweep to a real local two-node cluster with token authentication.

The head and the worker node are separate `ray start` processes with 1 CPU and bounded memory each; each trial
spreads its two Train workers over both nodes. Everything is torn down afterwards, also on failure.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from mmray.orchestration.local_cluster import RAY, LocalCluster
from mmray.orchestration.ray_adapter import ONE_MACHINE_RAY_ENV
from mmray.results import schema

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], env: dict, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with LocalCluster(nodes=2, cpus_per_node=1) as running:
        yield {"env": running.env, "base_env": running.env_without_token, "jobs": running.jobs_url,
               "address": running.address,
               "tmp": tmp_path_factory.mktemp("cluster")}


def _submit(cluster, env, results: Path, cache: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    # The head's job agent registers a few seconds after `ray start` returns; until then a submission is
    # refused with "No available agent" (nothing ran): try again, as a user would.
    for _ in range(12):
        done = _submit_once(cluster, env, results, cache, timeout)
        if "No available agent" not in done.stdout + done.stderr:
            return done
        time.sleep(5)
    return done


def _submit_once(cluster, env, results: Path, cache: Path, timeout: float) -> subprocess.CompletedProcess:
    return _run([
        RAY, "job", "submit", "--address", cluster["jobs"], "--working-dir", str(REPO),
        "--runtime-env-json", '{"excludes": [".venv", "results", "build", ".git"]}', "--",
        "python", "-m", "mmray.cli", "sweep", "sweeps/demo.yaml", "--overwrite", "--no-report",
        "--results", str(results), "--cache", str(cache),
        "--set", "search.num_samples=2", "--set", "train.epochs=2", "--set", "scheduler.type=none",
        "--set", "benchmarks=[{name: synthetic-av, params: {n_train: 600, n_val: 100, n_test: 200}}]",
        "--set", "resources={workers_per_trial: 2, cpus_per_worker: 0.5, placement_strategy: SPREAD}",
    ], env, timeout=timeout, check=False)


def test_nodes_run_with_the_one_machine_settings(cluster):
    # e.g. no preemption-watcher actor per trial: every node is on this machine, nothing can be drained
    port = cluster["address"].rsplit(":", 1)[1]
    raylets = [p for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [""])[0].endswith("/raylet")
               and any(a.startswith("--gcs-address=") and a.endswith(f":{port}") for a in p.info["cmdline"])]
    assert len(raylets) == 2
    for raylet in raylets:
        assert ONE_MACHINE_RAY_ENV.items() <= raylet.environ().items()


def test_job_without_the_token_is_refused(cluster):
    for env in (cluster["base_env"], {**cluster["base_env"], "RAY_AUTH_MODE": "token",
                                       "RAY_AUTH_TOKEN": secrets.token_hex(32)}):
        done = _run([RAY, "job", "list", "--address", cluster["jobs"]], env, check=False)
        assert done.returncode != 0
        assert "auth" in (done.stdout + done.stderr).lower() or "401" in done.stdout + done.stderr


def test_demo_sweep_as_a_job_runs_trials_on_both_nodes(cluster):
    results, cache = cluster["tmp"] / "results", cluster["tmp"] / "cache"
    started = time.perf_counter()
    done = _submit(cluster, cluster["env"], results, cache)
    wall = time.perf_counter() - started
    assert done.returncode == 0 and "succeeded" in done.stdout, done.stdout[-4000:] + done.stderr[-2000:]
    print(f"two-node job submission: {wall:.0f} s")
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    epochs = pd.read_parquet(results / schema.EPOCHS_FILE)
    assert len(trials) == 2 and (trials[schema.STATUS] == schema.STATUS_COMPLETED).all()
    assert len(epochs) == 4 and not epochs.duplicated([schema.TRIAL_ID, schema.EPOCH]).any()
    nodes = [set(value.split(",")) for value in trials[schema.NODES]]
    assert all(len(n) == 2 for n in nodes), nodes  # each trial's two workers ran on different nodes
    shutil.rmtree(results)


def test_stopping_a_cluster_leaves_none_of_its_processes():
    """Ray's dashboard and runtime-env agents retitle themselves (no mark of the cluster left on their command
    line): they must go with their cluster, not linger beside later sweeps and benchmarks, each taking CPU."""
    cluster = LocalCluster(nodes=2, cpus_per_node=1).start()
    try:
        agents = []
        for process in psutil.process_iter(["cmdline"]):
            try:
                if any(f.path.startswith(cluster._temp.name) for f in process.open_files()):
                    agents.append(process)
            except psutil.Error:
                continue
        assert len(agents) >= 4, [a.info["cmdline"] for a in agents]  # raylets, GCS, agents of both nodes
    finally:
        cluster.stop()
    assert [a.pid for a in agents if a.is_running() and a.status() != psutil.STATUS_ZOMBIE] == []
