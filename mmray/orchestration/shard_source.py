"""A Ray Data datasource over one split of a prepared shard set, planned from its manifest.

`ray.data.read_parquet` samples the files' metadata in a remote task before it plans a read: in a sweep, a
worker process to start inside every trial's start-up (about 2.5 s on 2 cores, benchmarks/perf). The manifest
already records each file's rows and the modality specs give the schema, so this plans reads without opening
a file. Each read task reads its files one after another, one block per file, with the files in a new seeded
order every execution (epoch).
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from mmray import storage
from mmray.data.shards import PreparedData, column_type, rebuild_command
from mmray.errors import DataError


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
        self.fix = f"rebuild the set: `{rebuild_command(prepared.manifest)}` (with your --mirror/--cache)"

    def estimate_inmemory_data_size(self) -> int:
        return sum(self.rows) * self.row_bytes

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context=None) -> list[ReadTask]:
        # Ray Data counts the executions of a dataset in its context: one per epoch
        execution = getattr(data_context, "_execution_idx", 0) or 0
        order = np.random.default_rng([self.seed, execution]).permutation(len(self.files))
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
