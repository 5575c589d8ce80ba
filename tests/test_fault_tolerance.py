"""Nothing is lost: a SIGKILLed driver resumes, a crashed worker retries from its checkpoint, a trial that fails
for good is recorded with its error while the sweep goes on, and W&B works offline without leaking keys.

Each sweep runs in its own `mmray` process (its own local Ray), as a user would run it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mmray import storage
from mmray.results import schema

pytestmark = pytest.mark.ray

TINY = {"n_train": 400, "n_val": 100, "n_test": 100, "image_size": 16, "n_mels": 16, "frames": 16,
        "noise": 0.3, "distractor": 0.2}


def _write_spec(path: Path, **changes) -> Path:
    spec = {
        "name": "faults",
        "benchmarks": [{"name": "synthetic-av", "params": TINY}],
        "methods": ["pavlov"],
        "train": {"epochs": 3, "batch_size": 64, "probe_examples": 200},
        "method_params": {"pavlov": {"encoder_width": 8, "hidden_dim": 32, "latent_dim": 16}},
        "search_space": {"train.lr": {"loguniform": [1.0e-3, 3.0e-3]}},
        "search": {"num_samples": 3},
        "scheduler": {"type": "none"},
    }
    spec.update(changes)
    path.write_text(yaml.safe_dump(spec))
    return path


def _mmray(args: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mmray.cli", *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kwargs)


def _finish(process: subprocess.Popen, timeout: float = 600) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        _kill_group(process)  # never leave a hung sweep or its Ray processes behind
    assert process.returncode == 0, output[-3000:]
    return output


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL what the driver left behind (Ray's agents outlive a SIGKILLed driver)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _epochs_kept(running_file: Path) -> int:
    try:
        return len(storage.read_parquet(running_file))  # one open: the sweep replaces the file as it goes
    except FileNotFoundError:  # its trial finished since the folder was listed
        return 0


def test_resume_after_sigkill_reruns_nothing_and_loses_nothing(tmp_path):
    # One trial at a time, each of 24 epochs (0.3-2 s apart, quiet machine to busy one): the next trial is still
    # in its first half 2 s after one finishes, when the driver is killed.
    epochs_per_trial = 24
    spec = _write_spec(tmp_path / "spec.yaml",
                       train={"epochs": epochs_per_trial, "batch_size": 64, "probe_examples": 200},
                       resources={"max_concurrent_trials": 1})
    results, cache = tmp_path / "results", tmp_path / "cache"
    args = ["sweep", str(spec), "--results", str(results), "--cache", str(cache), "--no-report"]
    driver = _mmray(args)
    running = results / "running"
    deadline, first_finished_at, first_reported_at = time.time() + 400, None, {}
    try:
        # Kill once one trial has finished and a later one reported its first epoch, both at least 2 s before:
        # Tune saves its experiment state (each trial's latest checkpoint) every second, let it record them. At
        # most half the later trial's epochs recorded, checked just before the kill: training runs ahead of the
        # driver, which can take several epochs' reports in a second.
        while time.time() < deadline:
            if (results / schema.TRIALS_FILE).exists():
                first_finished_at = first_finished_at or time.time()
                finished = set(storage.read_parquet(results / schema.TRIALS_FILE)[schema.TRIAL_ID])
                # a finished trial's running file lasts a moment after its row is written: not that one
                part_way = {f.stem for f in running.glob("*.parquet")
                            if f.stem not in finished and 1 <= _epochs_kept(f) <= epochs_per_trial // 2}
                for trial_id in part_way:
                    first_reported_at.setdefault(trial_id, time.time())
                if time.time() - first_finished_at >= 2 and any(
                        time.time() - first_reported_at[trial_id] >= 2 for trial_id in part_way):
                    break
            assert driver.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("no trial finished within 400 s")
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        _kill_group(driver)
    before = pd.read_parquet(results / schema.TRIALS_FILE)
    interrupted = {f.stem: pd.read_parquet(f) for f in running.glob("*.parquet")}
    assert len(before) >= 1 and interrupted, "the kill should land while a trial is part-way through"

    _finish(_mmray([*args, "--resume"]))
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    epochs = pd.read_parquet(results / schema.EPOCHS_FILE)
    assert len(trials) == 3 and trials[schema.TRIAL_ID].is_unique
    assert (trials[schema.STATUS] == schema.STATUS_COMPLETED).all()
    assert not epochs.duplicated([schema.TRIAL_ID, schema.EPOCH]).any()
    assert len(epochs) == trials[schema.EPOCHS_RUN].sum() == 3 * epochs_per_trial
    # trials finished before the kill were not re-run: their rows are untouched
    kept = trials.set_index(schema.TRIAL_ID).loc[before[schema.TRIAL_ID], schema.FINISHED_AT]
    assert kept.tolist() == before.set_index(schema.TRIAL_ID)[schema.FINISHED_AT].tolist()
    # the interrupted trial continued from a checkpoint: the epochs it had reported are kept as they were, and the
    # worker that ran its last epoch started from a checkpoint; one restarted from scratch would say 0. It can be
    # older than the last epoch recorded: Tune's callbacks see an epoch's result before Tune has fetched its
    # checkpoint from the trial (a second round trip) and saved its experiment state (every second). Those
    # epochs run again; their first report stands.
    for trial_id, rows in interrupted.items():
        resumed = epochs[epochs[schema.TRIAL_ID] == trial_id].set_index(schema.EPOCH)
        for _, row in rows.iterrows():
            assert resumed.loc[row[schema.EPOCH], schema.ELAPSED_SECONDS] == row[schema.ELAPSED_SECONDS]
            assert resumed.loc[row[schema.EPOCH], schema.RESUMED_FROM_EPOCH] == 0
        assert resumed.loc[epochs_per_trial, schema.RESUMED_FROM_EPOCH] >= 1
    assert not list(running.glob("*.parquet"))


def test_worker_crash_retries_from_checkpoint_and_failed_trials_are_recorded(tmp_path):
    # hidden_dim 8 < latent_dim 16: such a trial fails for good when its model is built; 32 trains. Four
    # configurations: random search never runs one twice.
    spec = _write_spec(tmp_path / "spec.yaml", search_space={"pavlov.hidden_dim": {"choice": [32, 8]},
                                                             "train.lr": {"choice": [1e-3, 2e-3]}},
                       search={"algorithm": "random", "num_samples": 4, "seed": 1})
    results = tmp_path / "results"
    output = _finish(_mmray(["sweep", str(spec), "--results", str(results), "--cache", str(tmp_path / "cache")],
                            env={"MMRAY_CRASH_AT_EPOCH": "2"}))
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    epochs = pd.read_parquet(results / schema.EPOCHS_FILE)
    assert len(trials) == 4
    good = trials[trials["config/method/hidden_dim"] == 32]
    bad = trials[trials["config/method/hidden_dim"] == 8]
    assert len(good) and len(bad), "the seeded random search should draw both hidden sizes"
    # each good trial's worker exited at epoch 2, was restarted from the epoch-1 checkpoint, and finished
    assert (good[schema.STATUS] == schema.STATUS_COMPLETED).all() and (good[schema.EPOCHS_RUN] == 3).all()
    for trial_id in good[schema.TRIAL_ID]:
        assert (results / "train" / trial_id / "crashed-at-2").exists()
        started_after = epochs[epochs[schema.TRIAL_ID] == trial_id].set_index(schema.EPOCH)[
            schema.RESUMED_FROM_EPOCH]
        assert started_after.to_dict() == {1: 0, 2: 1, 3: 1}  # from scratch, then from epoch 1's checkpoint
    assert (bad[schema.STATUS] == schema.STATUS_FAILED).all()
    assert bad[schema.ERROR].str.contains("must not exceed hidden_dim").all()
    assert "failed after 0/3 epochs" in output and "leaderboard" in output


def test_wandb_offline_runs_and_no_key_in_any_file(tmp_path):
    secret = "wandb-key-that-must-never-be-written-0123456789"
    spec = _write_spec(tmp_path / "spec.yaml", train={"epochs": 2, "batch_size": 64, "probe_examples": 200},
                       search={"num_samples": 1}, wandb={"enabled": True, "project": "mmray-test"})
    results = tmp_path / "results"
    _finish(_mmray(["sweep", str(spec), "--results", str(results), "--cache", str(tmp_path / "cache")],
                   env={"WANDB_MODE": "offline", "WANDB_API_KEY": secret}))
    runs = sorted((results / "wandb").glob("offline-run-*"))
    assert len(runs) == 2, runs  # one per trial + the sweep's summary run
    # offline runs keep everything in their binary .wandb log, whose protobuf records hold keys verbatim
    logs = [next(run.glob("run-*.wandb")).read_bytes() for run in runs]
    trial_log = next(log for log in logs if b"val/fused_acc" in log)
    for key in (b"epoch", b"train/loss", b"test/recall@1_image_to_audio", b"faults"):  # faults: the group
        assert key in trial_log, key
    summary_log = next(log for log in logs if log is not trial_log)
    assert b"faults-summary" in summary_log and b"faults-results" in summary_log  # run name, artifact
    for file in results.rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), f"API key written to {file}"
