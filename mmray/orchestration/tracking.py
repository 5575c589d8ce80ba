"""W&B dashboards, optional: one run per trial (config + per-epoch metrics), grouped by sweep, and a summary
run holding the results tables and the report as an artifact.

No API key is ever passed or written by mmray: W&B reads WANDB_API_KEY or its own login. Without either,
runs are written offline (WANDB_MODE=offline) under results/<sweep>/wandb/ and can be synced later with
`wandb sync`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mmray import storage
from mmray.config import SweepSpec
from mmray.results import schema
from mmray.storage import Location

# Trial-config keys that are machine-local paths or bookkeeping, not hyperparameters.
NOT_CONFIG = ["mirror", "cache_dir", "results_dir", "resources", "max_worker_failures", "sweep", "run"]
SUMMARY_FILES = (schema.TRIALS_FILE, schema.EPOCHS_FILE, schema.SPEC_FILE, "report.html")


def ensure_mode(log=print) -> None:
    """Go offline rather than fail or prompt when no W&B credentials are available."""
    if "WANDB_MODE" in os.environ or "WANDB_API_KEY" in os.environ:
        return
    if not (Path.home() / ".netrc").exists():
        os.environ["WANDB_MODE"] = "offline"
        log("[mmray] W&B: no WANDB_API_KEY or login found, logging offline (sync later with `wandb sync`)")


def _run_files_dir(results_dir: Location) -> str:
    """W&B keeps its run files in wandb/ of a local folder: the results folder, or for remote results the
    working directory."""
    return str(results_dir if isinstance(results_dir, Path) else Path.cwd())


def trial_callback(spec: SweepSpec, results_dir: Location):
    """A Tune callback that mirrors every trial into its own W&B run, grouped by the sweep's name."""
    from ray.air.integrations.wandb import WandbLoggerCallback

    return WandbLoggerCallback(project=spec.wandb.project, entity=spec.wandb.entity, group=spec.name,
                               excludes=NOT_CONFIG + ["nodes"], job_type="trial",
                               dir=_run_files_dir(results_dir))


def publish_summary(spec: SweepSpec, results_dir: Location) -> None:
    """One run per sweep with the trials table as a W&B Table and the result files as an artifact."""
    import wandb

    run = wandb.init(project=spec.wandb.project, entity=spec.wandb.entity, group=spec.name,
                     name=f"{spec.name}-summary", job_type="summary", dir=_run_files_dir(results_dir),
                     reinit="create_new")
    try:
        trials = storage.read_parquet(storage.join(results_dir, schema.TRIALS_FILE))
        run.log({"trials": wandb.Table(dataframe=trials.astype({c: str for c in trials.columns
                                                                 if trials[c].dtype == object}))})
        artifact = wandb.Artifact(f"{spec.name}-results", type="results")
        # add_file takes local files (and copies them at once): results that may be remote are fetched first
        with tempfile.TemporaryDirectory(prefix="mmray-wandb-") as staging:
            for name in SUMMARY_FILES:
                source = storage.join(results_dir, name)
                if storage.exists(source):
                    (Path(staging) / name).write_bytes(storage.read_bytes(source))
                    artifact.add_file(str(Path(staging) / name))
            run.log_artifact(artifact)
    finally:
        run.finish()
