"""The performance harness's smoke run: every section runs for real (tiny sizes) and writes its tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "perf" / "run.py"


def test_quick_bench_writes_every_figure(tmp_path):
    done = subprocess.run([sys.executable, str(HARNESS), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "RESULTS.json").read_text())
    sections = results["sections"]
    assert set(sections) == {"short", "cores", "overhead", "ingest", "search", "scaling", "augment"}
    assert all(section["ratio"] > 0 for section in sections.values())
    assert sections["overhead"]["first_batch_seconds"] > 0
    assert sections["short"]["completed_each"] == [sections["short"]["trials"]]  # every short trial ran
    cores = sections["cores"]
    assert cores["completed_each"] == [cores["trials"]] * 2
    assert cores["default_most_at_once"] == min(4, os.cpu_count())  # the default sweep fills every CPU
    assert 0 <= sections["overhead"]["first_epoch_wait_share"] < 1
    assert sections["overhead"]["memory"]["sweep_peak_pss_mib"] > sections["overhead"]["memory"]["plain_peak_pss_mib"] > 0
    assert [run["nodes_used"] for run in sections["scaling"]["runs"]] == [1, 2, 1]  # the second node ran trials
    assert all(s["random_epochs"] for t in sections["search"]["tables"].values() for s in t["per_seed"])
    assert all(r["clean_statistics"] > 0 for r in sections["augment"]["rounds"])  # the re-estimate ran
    table = (tmp_path / "RESULTS.md").read_text()
    for figure in ("one-epoch trials", "long trial", "waiting for data", "peak memory", "ingest",
                   "epochs to the best of random,", "epochs to the best of random, no repeats", "trials per hour",
                   "augmentation + clean batch-norm statistics, seconds per pavlov epoch"):
        assert figure in table
