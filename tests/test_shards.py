"""prepare() -> Parquet shards + manifest, cache reuse, and the integrity checks (generated benchmark)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mmray.data import load_prepared, prepare, verify_prepared
from mmray.data.prepare import resolve_params, shard_dir
from mmray.data.shards import MANIFEST, read_split
from mmray.data.sources import MIRROR_ENV, RawData, mirror_root
from mmray.errors import DataError, SpecError

PARAMS = {"n_train": 200, "n_val": 50, "n_test": 50}
ROWS = {"train": 200, "val": 50, "test": 50}


def quiet(*_args, **_kwargs):
    pass


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def prepared(cache):
    mp = pytest.MonkeyPatch()
    mp.setenv("MMRAY_CACHE", str(cache))
    mp.delenv(MIRROR_ENV, raising=False)
    try:
        yield prepare("synthetic-av", PARAMS, cache_dir=cache, log=quiet)
    finally:
        mp.undo()


@pytest.fixture
def copy(prepared, tmp_path) -> Path:
    """A private copy of the shard set that a test may damage."""
    return Path(shutil.copytree(prepared.path, tmp_path / "shards"))


def test_prepare_writes_shards_and_manifest(prepared, cache):
    _, params = resolve_params("synthetic-av", PARAMS)
    assert prepared.path == shard_dir("synthetic-av", params, cache)
    assert prepared.path.is_relative_to(cache)
    manifest = json.loads((prepared.path / MANIFEST).read_text())
    assert manifest == prepared.manifest
    assert manifest["benchmark"] == "synthetic-av"
    assert manifest["params"]["n_train"] == 200
    assert prepared.num_classes == 10
    assert [m.name for m in prepared.modalities] == ["image", "audio"]
    for split, rows in ROWS.items():
        entry = manifest["splits"][split]
        assert entry["rows"] == rows == prepared.rows(split)
        assert sum(entry["label_counts"].values()) == rows
        assert set(entry["label_counts"]) <= {str(c) for c in range(10)}
        assert sum(f["rows"] for f in entry["files"].values()) == rows
        for name, info in entry["files"].items():
            file = prepared.path / split / name
            assert file.stat().st_size == info["bytes"]
            assert pq.ParquetFile(file).metadata.num_rows == info["rows"]
    assert not list(prepared.path.parent.glob(".*partial*"))  # the temporary build folder is gone


def test_label_counts_match_shard_contents(prepared):
    for split in ROWS:
        labels = read_split(prepared, split).labels
        values, counts = np.unique(labels, return_counts=True)
        assert prepared.manifest["splits"][split]["label_counts"] == {
            str(v): int(c) for v, c in zip(values, counts)
        }


def test_pair_ids_are_unique_across_splits(prepared):
    ids = np.concatenate([pq.read_table(prepared.split_files(s), columns=["pair_id"])["pair_id"].to_numpy()
                          for s in ("train", "val", "test")])
    assert (ids == np.arange(300)).all()


def test_read_split_returns_declared_shapes(prepared):
    for split, rows in ROWS.items():
        arrays = read_split(prepared, split)
        assert len(arrays) == rows
        assert arrays.labels.dtype == np.int64
        assert arrays.modalities["image"].shape == (rows, 1, 28, 28)
        assert arrays.modalities["audio"].shape == (rows, 1, 32, 32)
        for values in arrays.modalities.values():
            assert values.dtype == np.float32 and np.isfinite(values).all()
    assert len(read_split(prepared, "train", limit=7)) == 7
    with pytest.raises(DataError, match="no split 'dev'"):
        prepared.split_dir("dev")


def test_second_prepare_reuses_the_cache(prepared, cache):
    manifest = prepared.path / MANIFEST
    mtime = manifest.stat().st_mtime_ns
    messages = []
    started = time.perf_counter()
    again = prepare("synthetic-av", dict(PARAMS), cache_dir=cache, log=messages.append)
    elapsed = time.perf_counter() - started
    assert again.path == prepared.path
    assert manifest.stat().st_mtime_ns == mtime
    assert messages == []  # nothing was built
    assert elapsed < 1.0


def test_different_params_give_a_different_folder(prepared, cache):
    other = prepare("synthetic-av", {**PARAMS, "n_test": 40}, cache_dir=cache, log=quiet)
    assert other.path != prepared.path
    assert other.path.parent == prepared.path.parent
    assert other.rows("test") == 40
    assert prepared.rows("test") == 50  # untouched
    seeded = prepare("synthetic-av", {**PARAMS, "seed": 1}, cache_dir=cache, log=quiet)
    assert seeded.path not in (prepared.path, other.path)


def test_prepare_is_deterministic(prepared, tmp_path):
    fresh = prepare("synthetic-av", PARAMS, cache_dir=tmp_path, log=quiet)
    assert fresh.path.name == prepared.path.name
    for split in ROWS:
        a, b = read_split(prepared, split), read_split(fresh, split)
        assert (a.labels == b.labels).all()
        assert np.array_equal(a.modalities["audio"], b.modalities["audio"])


def test_verify_prepared_passes_on_intact_set(prepared):
    assert verify_prepared(prepared.path).manifest == prepared.manifest


def test_corrupted_shard_fails_verification(copy):
    shard = copy / "train" / "part-00000.parquet"
    data = bytearray(shard.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert shard.stat().st_size == len(data)
    load_prepared(copy)  # sizes still match: the cheap check cannot see it
    with pytest.raises(DataError) as info:
        verify_prepared(copy)
    message = str(info.value)
    assert str(shard) in message and "checksum" in message
    # the command rebuilds this very set: its non-default parameters decide the cache key
    rebuild = "`mmray data prepare synthetic-av --set n_train=200 --set n_val=50 --set n_test=50 --force`"
    assert rebuild in message


def test_truncated_shard_fails_loading(copy):
    shard = copy / "val" / "part-00000.parquet"
    with open(shard, "r+b") as f:
        f.truncate(shard.stat().st_size - 10)
    with pytest.raises(DataError) as info:
        load_prepared(copy)
    message = str(info.value)
    assert str(shard) in message and "truncated" in message and "--force" in message


def test_missing_shard_fails_loading(copy):
    shard = copy / "test" / "part-00000.parquet"
    shard.unlink()
    with pytest.raises(DataError, match="missing or truncated"):
        load_prepared(copy)


def test_missing_manifest_is_not_a_complete_set(copy):
    (copy / MANIFEST).unlink()
    with pytest.raises(DataError, match="not a complete shard set"):
        load_prepared(copy)


def test_unreadable_manifest(copy):
    (copy / MANIFEST).write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_prepared(copy)


def test_other_format_version(copy):
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["format_version"] = 999
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="shard format 999"):
        load_prepared(copy)


def test_prepare_rebuilds_a_damaged_cache_entry(tmp_path):
    first = prepare("synthetic-av", PARAMS, cache_dir=tmp_path, log=quiet)
    shard = first.path / "train" / "part-00000.parquet"
    with open(shard, "r+b") as f:
        f.truncate(100)
    messages = []
    rebuilt = prepare("synthetic-av", PARAMS, cache_dir=tmp_path, log=messages.append)
    assert rebuilt.path == first.path
    assert any("unusable" in m for m in messages)
    verify_prepared(rebuilt.path)


def test_force_rebuilds(tmp_path):
    first = prepare("synthetic-av", PARAMS, cache_dir=tmp_path, log=quiet)
    messages = []
    again = prepare("synthetic-av", PARAMS, cache_dir=tmp_path, force=True, log=messages.append)
    assert again.path == first.path
    assert any("preparing" in m for m in messages)
    verify_prepared(again.path)


def test_unknown_benchmark_param_lists_valid_params(tmp_path):
    with pytest.raises(SpecError) as info:
        prepare("synthetic-av", {"n_trian": 10}, cache_dir=tmp_path, log=quiet)
    message = str(info.value)
    assert "n_trian" in message
    for valid in ("n_train", "n_val", "n_test", "seed", "n_mels"):
        assert valid in message
    assert not (tmp_path / "shards").exists()


def test_mirror_root_missing_folder(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-mirror"
    with pytest.raises(DataError) as info:
        mirror_root(missing)
    assert str(missing) in str(info.value) and MIRROR_ENV in str(info.value)
    monkeypatch.setenv(MIRROR_ENV, str(missing))
    with pytest.raises(DataError, match=MIRROR_ENV):
        mirror_root()
    monkeypatch.delenv(MIRROR_ENV)
    assert mirror_root() is None
    assert mirror_root(tmp_path) == tmp_path.resolve()


def test_mirror_without_dataset(tmp_path):
    raw = RawData(mirror=tmp_path, cache_dir=tmp_path / "cache")
    with pytest.raises(DataError, match=r"no mnist/test\.npz"):
        raw.folder("mnist", lambda folder: None, "test.npz")
