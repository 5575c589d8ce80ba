"""mmray.storage on a local folder and on a real S3 endpoint (moto's server); the shard cache in a bucket."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import REPO_ROOT

from mmray import cli, storage
from mmray.data import load_prepared, prepare, verify_prepared
from mmray.data.shards import MANIFEST, read_split
from mmray.data.sources import download_root
from mmray.errors import DataError, StorageError

TINY = {"n_train": 60, "n_val": 20, "n_test": 30, "image_size": 8, "n_mels": 8, "frames": 8}


def quiet(*_args, **_kwargs):
    pass


@pytest.fixture(params=["local", "s3"])
def base(request, tmp_path):
    """A folder that does not exist yet: under tmp_path, or under a fresh bucket of the test S3 server."""
    if request.param == "local":
        return tmp_path / "store"
    return request.getfixturevalue("new_bucket")() + "/store"


def test_round_trips_bytes_text_and_tables(base):
    storage.write_bytes(storage.join(base, "a", "b.bin"), b"\x00\x01")
    storage.write_text(storage.join(base, "a", "c.txt"), "grüße")
    frame = pd.DataFrame({"trial_id": ["x", "y"], "epoch": [1, 2], "val/acc": [0.5, 0.75]})
    storage.write_parquet(storage.join(base, "t.parquet"), frame)

    assert storage.read_bytes(storage.join(base, "a", "b.bin")) == b"\x00\x01"
    assert storage.read_text(storage.join(base, "a", "c.txt")) == "grüße"
    pd.testing.assert_frame_equal(storage.read_parquet(storage.join(base, "t.parquet")), frame)
    only_epoch = storage.read_parquet(storage.join(base, "t.parquet"), columns=["epoch"])
    assert only_epoch.columns.tolist() == ["epoch"]
    assert storage.listdir(base) == ["a", "t.parquet"]  # no temporary files left beside them
    assert storage.listdir(storage.join(base, "a")) == ["b.bin", "c.txt"]
    assert storage.is_dir(storage.join(base, "a")) and not storage.is_dir(storage.join(base, "t.parquet"))
    assert storage.size(storage.join(base, "a", "b.bin")) == 2
    assert storage.size(storage.join(base, "a")) is None and storage.size(storage.join(base, "nope")) is None


def test_a_write_replaces_the_whole_file(base):
    target = storage.join(base, "f.txt")
    storage.write_text(target, "a long first version")
    storage.write_text(target, "short")
    assert storage.read_text(target) == "short"


def test_a_table_read_while_it_is_replaced_is_one_whole_version(tmp_path):
    target = tmp_path / "trials.parquet"
    versions = [pd.DataFrame({"trial_id": [f"t{i}" for i in range(n)], "x": range(n)}) for n in (3, 3000)]
    storage.write_parquet(target, versions[0])
    stop = threading.Event()

    def replace_again_and_again():
        while not stop.is_set():
            for frame in versions:
                storage.write_parquet(target, frame)

    writer = threading.Thread(target=replace_again_and_again)
    writer.start()
    try:
        lengths = {len(storage.read_parquet(target)) for _ in range(300)}
    finally:
        stop.set()
        writer.join()
    assert lengths <= {3, 3000}


def test_missing_things(base):
    assert not storage.exists(base) and storage.listdir(base) == []
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(storage.join(base, "nope.bin"))
    storage.delete(storage.join(base, "nope"))  # nothing to delete is fine


def test_makedirs_delete_and_upload(base, tmp_path):
    storage.makedirs(storage.join(base, "x", "y"))
    assert storage.is_dir(storage.join(base, "x", "y"))
    local = tmp_path / "tree"
    (local / "sub").mkdir(parents=True)
    (local / "one.txt").write_text("1")
    (local / "sub" / "two.txt").write_text("2")
    storage.upload(storage.join(base, "up"), local)
    assert storage.read_text(storage.join(base, "up", "sub", "two.txt")) == "2"
    assert storage.listdir(storage.join(base, "up")) == ["one.txt", "sub"]

    storage.delete(storage.join(base, "up", "one.txt"))
    assert storage.listdir(storage.join(base, "up")) == ["sub"]
    storage.delete(base)
    assert not storage.exists(base)


def test_resolved_files_are_read_by_pyarrow(base):
    files = [storage.join(base, f"part-{i}.parquet") for i in range(2)]
    for i, file in enumerate(files):
        storage.write_parquet(file, pd.DataFrame({"v": [i, i]}))
    filesystem, paths = storage.resolve_files(files)
    assert pq.read_table(paths, filesystem=filesystem).column("v").to_pylist() == [0, 0, 1, 1]


def test_local_locations_are_absolute_paths_and_uris_stay_strings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage.location("results") == tmp_path.resolve() / "results"
    assert storage.location("~/x") == Path.home().resolve() / "x"
    assert storage.join("results", "demo", "tune") == tmp_path.resolve() / "results" / "demo" / "tune"
    assert storage.location("s3://bucket/prefix/") == "s3://bucket/prefix"
    assert storage.join("s3://bucket/prefix", "demo", "t.parquet") == "s3://bucket/prefix/demo/t.parquet"
    assert storage.name("s3://bucket/prefix/demo") == "demo"
    with pytest.raises(StorageError, match="AWS_ENDPOINT_URL"):
        storage.location("s3://bucket/prefix?endpoint_override=localhost:9000")


def test_a_missing_bucket_is_one_clear_error(s3_endpoint):
    with pytest.raises(StorageError) as caught:
        storage.makedirs("s3://no-such-bucket/results/demo")
    message = str(caught.value)
    assert "s3://no-such-bucket/results/demo" in message and "AWS_ACCESS_KEY_ID" in message
    assert "\n" not in message


def test_an_unreachable_endpoint_is_one_clear_error(s3_endpoint, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    with pytest.raises(StorageError, match=r"cannot use s3://unreachable/x .*AWS_ENDPOINT_URL"):
        storage.exists("s3://unreachable/x")


def test_shard_cache_in_a_bucket(new_bucket, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = new_bucket() + "/cache"
    prepared = prepare("synthetic-av", TINY, cache_dir=cache, log=quiet)
    assert isinstance(prepared.path, str) and prepared.path.startswith(cache + "/shards/synthetic-av/")
    assert storage.exists(storage.join(prepared.path, MANIFEST))
    verify_prepared(prepared.path)  # every checksum, shape and row count, read from the bucket
    assert len(read_split(prepared, "test").labels) == TINY["n_test"]
    assert not list(tmp_path.iterdir())  # built in the temp folder, nothing left in the working directory

    lines: list[str] = []
    assert prepare("synthetic-av", TINY, cache_dir=cache, log=lines.append).manifest == prepared.manifest
    assert lines == []  # found in the bucket, not rebuilt

    # an upload cut short leaves shards without a manifest: such a set is absent, and prepare builds it again
    storage.delete(storage.join(prepared.path, MANIFEST))
    with pytest.raises(DataError, match="no manifest.json"):
        load_prepared(prepared.path)
    rebuilt = prepare("synthetic-av", TINY, cache_dir=cache, log=lines.append)
    assert any("rebuilding" in line for line in lines)
    manifest = json.loads(storage.read_text(storage.join(rebuilt.path, MANIFEST)))
    assert manifest["splits"] == prepared.manifest["splits"]


def test_raw_downloads_stay_local_when_the_shard_cache_is_remote(tmp_path):
    assert download_root(tmp_path) == tmp_path.resolve() / "raw"
    remote = download_root("s3://bucket/cache")
    assert isinstance(remote, Path) and remote == Path("~/.cache/mmray/raw").expanduser().resolve()


def test_a_sweep_into_a_missing_bucket_stops_at_once_with_one_line(s3_endpoint, capsys):
    code = cli.main(["sweep", str(REPO_ROOT / "sweeps" / "demo.yaml"),
                     "--set", "storage_path=s3://no-such-bucket/mmray-results", "--no-report"])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1
    assert error.startswith("mmray: error: cannot use s3://no-such-bucket/mmray-results/demo")
