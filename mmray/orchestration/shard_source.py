"""A Ray Data datasource over one split of a prepared shard set, planned from its manifest.

`ray.data.read_parquet` samples the files' metadata in a remote task before it plans a read: in a sweep, a
worker process to start inside every trial's start-up (about 2.5 s on 2 cores, benchmarks/perf). The manifest
already records each file's rows and the modality specs give the schema, so this plans reads without opening
a file. Each read task reads its files one after another, one block per file, with the files in a new seeded
order every execution (epoch).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray.data
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from mmray import storage
from mmray.data.shards import PreparedData, column_type, rebuild_command
from mmray.errors import DataError

# Blocks of a streamed split: a few thousand rows each, so the first arrives soon and windows seldom span two.
READ_BLOCK_BYTES = 32 * 2**20


def read_dataset(prepared, split: str, seed: int, readers: int = 1):
    """A split's shards in a seeded random file order (a new one every epoch), read by `readers` tasks that
    each stream their files' blocks. Shuffling files at read time streams; randomising the block order
    afterwards is an all-to-all step that holds back the first batch until every file is read."""
    # Reading shards is I/O-bound: a quarter CPU per read task lets reads run beside Train workers that hold
    # fractional CPUs on every node (a whole-CPU read could then never be scheduled). Passed as ray_remote_args
    # despite its deprecation warning: the named `num_cpus` argument makes the second trial of a sweep wait
    # for read resources forever (Ray 2.60; found by tests/test_sweep_ray.py).
    # One read task per training worker (a trial asks one reader per worker), each reading its files one after
    # another: one task decodes shards far faster than a worker trains on them. A task per file cost the worker
    # a task submission per file each epoch, and ran an epoch at 0.8x the rows/s (benchmarks/perf, ingest);
    # more concurrent tasks are more worker processes that Ray starts (importing Ray Data, ~1.5 s of CPU) and,
    # once idle, stops again between epochs.
    source = ShardSource(prepared, split, seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        dataset = ray.data.read_datasource(source, ray_remote_args={"num_cpus": 0.25}, concurrency=readers,
                                           override_num_blocks=min(readers, len(source.files)))
    dataset.context.target_max_block_size = READ_BLOCK_BYTES
    return dataset


class ShardSource(Datasource):
    def __init__(self, prepared: PreparedData, split: str, seed: int):
        super().__init__()
        # local paths, or bucket paths with the filesystem that reads them (a remote shard cache)
        self.filesystem, self.files = storage.resolve_files(prepared.split_files(split))
        entries = prepared.manifest["splits"][split]["files"]
        self.rows = [entries[name]["rows"] for name in sorted(entries)]  # split_files' order
        modalities = prepared.modalities
        self.schema = pa.schema([("label", pa.int64()), *((m.name, column_type(m)) for m in modalities)])
        self.row_bytes = 8 + sum(m.nbytes for m in modalities)  # the int64 label and each modality
        self.seed = seed
        self._epochs_read = 0
        self.fix = f"rebuild the set: `{rebuild_command(prepared.manifest)}` (with your --mirror/--cache)"

    def estimate_inmemory_data_size(self) -> int:
        return sum(self.rows) * self.row_bytes

    def file_order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.files))

    def read_epoch(self) -> Iterator[pa.Table]:
        """The next epoch's blocks, read here, one per file in the epoch's order: what the read tasks of
        `read_dataset` stream, for a one-worker trial that reads its split itself. Ray Data would add a
        stats actor, a coordinator actor and a read worker to the trial (~300 MiB of a one-trial sweep's peak,
        benchmarks/RESULTS.md)."""
        order = self.file_order(self._epochs_read)
        self._epochs_read += 1
        yield from _read_files([self.files[i] for i in order], self.filesystem, self.schema, self.fix)

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context=None) -> list[ReadTask]:
        # Ray Data counts the executions of a dataset in its context: one per epoch
        order = self.file_order(getattr(data_context, "_execution_idx", 0) or 0)
        tasks = []
        for part in np.array_split(order, min(parallelism, len(order))):
            files = [self.files[i] for i in part]
            rows = sum(self.rows[i] for i in part)
            metadata = BlockMetadata(num_rows=rows, size_bytes=rows * self.row_bytes, input_files=files,
                                     exec_stats=None)
            read = functools.partial(_read_files, files, self.filesystem, self.schema, self.fix)
            tasks.append(ReadTask(read, metadata, schema=self.schema, per_task_row_limit=per_task_row_limit))
        return tasks

    def get_name(self) -> str:
        return "Shards"  # Ray Data names the operator "ReadShards"


def _read_files(files: list[str], filesystem, schema: pa.Schema, fix: str):
    for file in files:
        try:
            table = pq.read_table(file, columns=schema.names, filesystem=filesystem, use_threads=False)
        except (OSError, pa.ArrowException) as error:  # a shard deleted or damaged since it was prepared
            raise DataError(f"shard {file} cannot be read ({error}); {fix}") from error
        if table.schema.remove_metadata() != schema:
            raise DataError(f"shard {file} holds {table.schema.remove_metadata()}, not {schema}; {fix}")
        yield table.replace_schema_metadata(None)
    # Arrow's allocator keeps what the decoded tables held for reuse; the worker outlives the task, idle,
    # holding it (200 MiB after AV-MNIST's training split) unless it is handed back
    pa.default_memory_pool().release_unused()
