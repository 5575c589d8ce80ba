"""TrainFeed: the first epoch streams the shard (through Ray Data, or read in the trial's own process), later
epochs come from the worker's memory."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import ray
import torch

from mmray.data import prepare
from mmray.data.shards import ROWS_PER_SHARD, read_split
from mmray.orchestration.feed import Prefetched, TrainFeed, ray_data_blocks
from mmray.orchestration.shard_source import ShardSource, read_dataset

ROWS, BATCH = 3000, 64  # 3,000 rows: one shard file, so file order alone would not shuffle anything


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    assert ROWS < ROWS_PER_SHARD
    prepared = prepare("synthetic-av", {"n_train": ROWS, "n_val": 50, "n_test": 50},
                       cache_dir=tmp_path_factory.mktemp("cache"), log=lambda *_: None)
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False)
    try:
        yield prepared
    finally:
        ray.shutdown()


def ray_data_stream(prepared, seed=0):
    return ray_data_blocks(read_dataset(prepared, "train", seed=seed))


def in_process_blocks(prepared, seed=0):
    return ShardSource(prepared, "train", seed).read_epoch


@pytest.fixture(params=[ray_data_stream, in_process_blocks], ids=["ray-data", "in-process"])
def streams(request, dataset):
    return dataset, request.param(dataset)


def rows_seen(batches) -> np.ndarray:
    """Each row of the epoch as the bytes of its image: rows of synthetic-av are all distinct."""
    return np.array([row.numpy().tobytes() for batch in batches for row in batch["image"]])


def file_order(prepared) -> np.ndarray:
    arrays = read_split(prepared, "train")
    return np.array([row.astype(np.float32).tobytes() for row in arrays.modalities["image"]])


def test_first_epoch_streams_every_full_batch_once_shuffled_then_serves_from_memory(streams):
    prepared, shard = streams
    feed = TrainFeed(shard, prepared.modalities, BATCH, window=1024, cache_bytes=2**30, seed=0)
    first = rows_seen(feed.epoch())
    assert feed.kept is not None and len(feed.kept["label"]) == ROWS
    second = rows_seen(feed.epoch())
    expected = file_order(prepared)
    full = ROWS // BATCH * BATCH  # the last window's rows over a whole batch are dropped (drop_last)
    assert len(first) == len(second) == full
    assert len(set(first)) == len(set(second)) == full and set(first) <= set(expected)
    # shuffled within windows while streaming, so rows stay near their file position; fully shuffled later
    assert not np.array_equal(first, expected[:full])
    position = {row: i for i, row in enumerate(expected)}
    assert max(abs(position[row] - i) for i, row in enumerate(first)) < 1024
    assert max(abs(position[row] - i) for i, row in enumerate(second)) > 1024
    labels = torch.cat([batch["label"] for batch in feed.epoch()])
    assert labels.dtype == torch.int64 and len(labels) == full


def test_a_shard_over_the_cache_limit_streams_every_epoch(streams):
    prepared, shard = streams
    feed = TrainFeed(shard, prepared.modalities, BATCH, window=1024, cache_bytes=1024, seed=0)
    first = rows_seen(feed.epoch())
    assert feed.kept is None
    second = rows_seen(feed.epoch())  # streamed again, each window shuffled anew
    assert len(second) == len(set(second)) == len(first) and set(second) <= set(file_order(prepared))
    assert not np.array_equal(first, second)


def test_rows_over_whole_batches_at_a_block_end_join_the_next_block(dataset):
    """Blocks of about 190 rows and batches of 64: no block holds whole batches, yet the epoch is every row once
    in full batches (without carrying the rows over, 46 of 64 rows a block would be lost)."""
    prepared = dataset
    shard = read_dataset(prepared, "train", seed=0)
    shard.context.target_max_block_size = 190 * ShardSource(prepared, "train", seed=0).row_bytes
    feed = TrainFeed(ray_data_blocks(shard), prepared.modalities, BATCH, window=1024, cache_bytes=0, seed=0)
    seen = rows_seen(feed.epoch())
    assert len(seen) == len(set(seen)) == ROWS // BATCH * BATCH


def test_window_zero_streams_in_file_order(streams):
    prepared, shard = streams
    feed = TrainFeed(shard, prepared.modalities, BATCH, window=0, cache_bytes=0, seed=0)
    full = ROWS // BATCH * BATCH
    assert np.array_equal(rows_seen(feed.epoch()), file_order(prepared)[:full])


def test_prefetched_yields_in_order_and_raises_the_stream_error_in_the_consumer():
    def stream():
        yield from range(5)
        raise OSError("shard file vanished")

    seen = []
    with pytest.raises(OSError, match="shard file vanished"):
        for item in Prefetched(stream(), depth=2):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_a_shard_damaged_after_preparing_names_the_file_and_the_rebuild(dataset, tmp_path):
    """Same size, so opening the set passes; the read task says which file and how to rebuild it."""
    prepared = prepare("synthetic-av", {"n_train": 300, "n_val": 50, "n_test": 50}, cache_dir=tmp_path,
                       log=lambda *_: None)
    shard = prepared.split_files("train")[0]
    size = Path(shard).stat().st_size
    with open(shard, "r+b") as f:
        f.seek(size - 8)
        footer = int.from_bytes(f.read(4), "little")
        f.seek(4)
        f.write(b"\xff" * (size - footer - 12))  # every page, between the leading magic bytes and the footer
    for blocks in (ray_data_stream(prepared), in_process_blocks(prepared)):
        feed = TrainFeed(blocks, prepared.modalities, BATCH, window=1024, cache_bytes=0, seed=0)
        with pytest.raises(Exception, match=rf"(?s)shard {shard} cannot be read .*mmray data prepare synthetic-av"):
            list(feed.epoch())


def test_both_streams_read_every_file_once_an_epoch_in_the_same_new_order(dataset, tmp_path):
    """Three shard files: each epoch reads each once, in a seeded order that changes between epochs, and a
    trial reading its shards itself sees the rows in the order its Ray Data stream would."""
    prepared = prepare("synthetic-av", {"n_train": 2 * ROWS_PER_SHARD + 100, "n_val": 50, "n_test": 50,
                                        "image_size": 8, "n_mels": 8, "frames": 8},
                       cache_dir=tmp_path, log=lambda *_: None)
    files = [pq.read_table(f, columns=["image"]).column("image").to_pylist() for f in prepared.split_files("train")]
    assert len(files) == 3
    file_of_first_row = {repr(rows[0]): i for i, rows in enumerate(files)}

    def epochs(blocks) -> list[list]:
        return [[row for table in blocks() for row in table.column("image").to_pylist()] for _ in range(3)]

    in_process = epochs(in_process_blocks(prepared, seed=5))
    orders = []
    for rows in in_process:
        order, at = [], 0  # each file found by its first row, then all of its rows checked in place
        while at < len(rows):
            order.append(file_of_first_row[repr(rows[at])])
            assert rows[at:at + len(files[order[-1]])] == files[order[-1]]
            at += len(files[order[-1]])
        assert sorted(order) == [0, 1, 2] and at == sum(map(len, files))
        orders.append(order)
    assert len({tuple(order) for order in orders}) > 1
    assert epochs(ray_data_stream(prepared, seed=5)) == in_process
