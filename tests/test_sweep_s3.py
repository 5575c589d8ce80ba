"""A real sweep whose results, Tune/Train storage and shard cache all live in a bucket of a local S3 server
(moto), read back through the same URIs, then resumed without re-running anything."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pyarrow.parquet as pq
import pytest
from pyarrow import fs

from mmray import api, cli, storage
from mmray.config import parse_spec
from mmray.errors import MmrayError
from mmray.results import schema
from mmray.results.artifacts import load_artifacts

pytestmark = pytest.mark.ray

TINY = {"n_train": 200, "n_val": 50, "n_test": 50, "image_size": 8, "n_mels": 8, "frames": 8}
EPOCHS, TRIALS = 2, 2


@pytest.fixture(scope="module")
def s3_sweep(new_bucket, tmp_path_factory):
    import ray

    from mmray.orchestration.sweep import ensure_ray

    bucket = new_bucket()
    spec = parse_spec({
        "name": "remote",
        "benchmarks": [{"name": "synthetic-av", "params": TINY}],
        "methods": ["pavlov"],
        "train": {"epochs": EPOCHS, "batch_size": 50, "probe_examples": 100},
        "method_params": {"pavlov": {"encoder_width": 8, "hidden_dim": 16, "latent_dim": 8}},
        "search_space": {"train.lr": {"loguniform": [1.0e-3, 3.0e-3]}},
        "search": {"num_samples": TRIALS},
        "scheduler": {"type": "none"},  # every trial runs to its last epoch: the row counts are known
        "storage_path": f"{bucket}/mmray-results",
    })
    ensure_ray()  # after s3_endpoint set the environment: Ray's processes inherit AWS_ENDPOINT_URL
    try:
        first: list[str] = []
        out = api.run_sweep(spec, cache_dir=f"{bucket}/cache", log=first.append)
        before_resume = api.load_results(out).trials
        again: list[str] = []
        api.run_sweep(spec, cache_dir=f"{bucket}/cache", resume=True, report=False, log=again.append)
    finally:
        ray.shutdown()
    return SimpleNamespace(spec=spec, bucket=bucket, out=out, first=first, before_resume=before_resume,
                           again=again)


def _bucket_files(uri: str) -> dict[str, int]:
    """Every object under `uri` (path relative to it -> size), listed by pyarrow alone, not by mmray."""
    s3, root = fs.FileSystem.from_uri(uri)
    assert isinstance(s3, fs.S3FileSystem)
    infos = s3.get_file_info(fs.FileSelector(root, recursive=True))
    return {info.path[len(root) + 1:]: info.size for info in infos if info.type == fs.FileType.File}


def test_results_tables_land_in_the_bucket(s3_sweep):
    out = s3_sweep.out
    assert out == f"{s3_sweep.bucket}/mmray-results/remote"  # the spec's storage_path + its name
    files = _bucket_files(out)
    assert {schema.TRIALS_FILE, schema.EPOCHS_FILE, schema.SPEC_FILE, "report.html"} <= set(files)
    assert any(path.startswith("tune/") for path in files)  # Tune's experiment state, for --resume
    # each trial's checkpoint (a one-worker trial's are Tune's, beside its experiment state)
    assert any(path.startswith("tune/") and "/checkpoint_" in path for path in files)
    assert not any(path.startswith("running/") for path in files)  # every trial finished

    s3, root = fs.FileSystem.from_uri(out)
    trials = pq.read_table(f"{root}/{schema.TRIALS_FILE}", filesystem=s3).to_pandas()
    epochs = pq.read_table(f"{root}/{schema.EPOCHS_FILE}", filesystem=s3).to_pandas()
    assert len(trials) == TRIALS and (trials[schema.STATUS] == schema.STATUS_COMPLETED).all()
    assert len(epochs) == TRIALS * EPOCHS


def test_the_shard_cache_lies_in_the_bucket(s3_sweep):
    files = _bucket_files(f"{s3_sweep.bucket}/cache")
    assert sum(path.endswith("/manifest.json") for path in files) == 1
    assert sum(path.endswith(".parquet") for path in files) == 3  # one shard per split


def test_results_load_from_the_uri(s3_sweep):
    out = s3_sweep.out
    results = api.load_results(out)
    assert results.path == out and results.spec["name"] == "remote"
    assert len(results.trials) == TRIALS and len(results.epochs) == TRIALS * EPOCHS
    assert len(results.joined) == TRIALS * EPOCHS
    for trial_id in results.trials[schema.TRIAL_ID]:
        assert schema.ARTIFACT_EMBEDDINGS in load_artifacts(out, trial_id)
    # the best trial's t-SNE maps, drawn in the bucket once the sweep ended
    assert sum(schema.ARTIFACT_TSNE in load_artifacts(out, t) for t in results.trials[schema.TRIAL_ID]) == 1
    assert sum("[mmray] trial " in line for line in s3_sweep.first) == TRIALS
    assert f"[mmray] report: {out}/report.html" in s3_sweep.first


def test_resume_of_the_finished_sweep_reruns_nothing(s3_sweep):
    assert any(line.startswith("[mmray] resuming") for line in s3_sweep.again)
    assert not any("[mmray] trial " in line for line in s3_sweep.again)  # no trial ran again
    pd.testing.assert_frame_equal(api.load_results(s3_sweep.out).trials, s3_sweep.before_resume)


def test_report_command_reads_the_uri_and_writes_where_asked(s3_sweep, tmp_path, capsys):
    out = s3_sweep.out
    local = tmp_path / "report.html"
    assert cli.main(["report", out, "--out", str(local)]) == 0
    assert capsys.readouterr().out.strip() == str(local)
    assert "mmray sweep: remote" in local.read_text()
    assert cli.main(["report", out]) == 0  # by default beside the tables, in the bucket
    assert capsys.readouterr().out.strip() == f"{out}/report.html"
    assert "mmray sweep: remote" in storage.read_text(f"{out}/report.html")


def test_a_results_folder_in_the_bucket_is_not_overwritten_silently(s3_sweep):
    with pytest.raises(MmrayError, match="--resume"):
        api.run_sweep(s3_sweep.spec, cache_dir=f"{s3_sweep.bucket}/cache", log=lambda *_: None)
