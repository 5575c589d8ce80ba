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
from mmray.config import SweepSpec, TrialConfig
from mmray.results import schema
from mmray.storage import Location

# Trial-config fields that are machine-local paths or bookkeeping, not what a trial was run with.
NOT_CONFIG = [name for name in TrialConfig.model_fields if name not in TrialConfig.DESCRIBES_THE_RUN]
SUMMARY_FILES = (schema.TRIALS_FILE, schema.EPOCHS_FILE, schema.SPEC_FILE, "report.html")


def offline_env(log=print) -> dict[str, str]:
    """{"WANDB_MODE": "offline"} when no W&B credentials or mode are available (go offline rather than fail or
    prompt), for the sweep's environment; else {}."""
    if "WANDB_MODE" in os.environ or "WANDB_API_KEY" in os.environ or (Path.home() / ".netrc").exists():
        return {}
    log("[mmray] W&B: no WANDB_API_KEY or login found, logging offline (sync later with `wandb sync`)")
    return {"WANDB_MODE": "offline"}


def _run_files_dir(results_dir: Location) -> str:
    """W&B keeps its run files in wandb/ of a local folder: the results folder, or for remote results the
    working directory."""
    return str(results_dir if isinstance(results_dir, Path) else Path.cwd())


def trial_callback(spec: SweepSpec, results_dir: Location):
    """A Tune callback that mirrors every trial into its own W&B run, grouped by the sweep's name. Made inside the
    sweep's environment: its W&B mode goes to the logging actors explicitly, since a Ray instance started before
    the sweep did not inherit it."""
    from ray.air.integrations.wandb import WandbLoggerCallback

    return WandbLoggerCallback(project=spec.wandb.project, entity=spec.wandb.entity, group=spec.name,
                               excludes=NOT_CONFIG + [schema.NODES], job_type="trial",
                               dir=_run_files_dir(results_dir), mode=os.environ.get("WANDB_MODE"))


def publish_summary(spec: SweepSpec, results_dir: Location) -> None:
    """One run per sweep with the trials table as a W&B Table and the result files as an artifact."""
    import wandb

    mode = offline_env(log=lambda *_: None).get("WANDB_MODE")  # the sweep's environment is restored by now
    run = wandb.init(project=spec.wandb.project, entity=spec.wandb.entity, group=spec.name,
                     name=f"{spec.name}-summary", job_type="summary", dir=_run_files_dir(results_dir),
                     reinit="create_new", mode=mode)
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
