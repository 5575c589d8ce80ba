"""A trial's training batches: streamed from its shard once, then served from memory.

Streaming every epoch cost a trial ~8 s an epoch against a plain loop (benchmarks/perf: the shards are
re-read and re-converted, and Ray Data's local shuffle buffer copies every row twice). Instead, the first epoch
streams the shard with its files in random order and rows shuffled within windows of `window` rows (an index
permutation, no copy), and keeps the converted rows when the shard fits in `cache_bytes`; every later epoch is
a full permutation of those rows. Shards too big to keep are streamed every epoch, the same way.

Each streamed epoch is iterated in a background thread, a few windows ahead of training. The first epoch's
stream starts when the feed is made, so that the worker builds its model and reads its evaluation sets while
the first blocks arrive (through Ray Data, a stats actor and read tasks start first: about 4 s on 2 cores).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa
import torch
import torch.distributed as dist

from mmray.data.spec import ModalitySpec
from mmray.engine.batching import arrow_columns, index_batches
from mmray.engine.training import to_batch
from mmray.methods.base import Batch


class TrainFeed:
    """`epoch()` yields one epoch of full training batches of this worker's shard. `blocks()` returns the next
    epoch's blocks of the shard (Arrow tables): from Ray Data, or read in the trial's own process."""

    def __init__(self, blocks: Callable[[], Iterable[pa.Table]], modalities: tuple[ModalitySpec, ...],
                 batch_size: int, *, window: int, cache_bytes: int, seed: int):
        self.blocks = blocks
        self.modalities = modalities
        self.batch_size = batch_size
        # whole batches per window, so only the last window of an epoch leaves rows over (dropped, as drop_last)
        self.window = max(1, round(window / batch_size)) * batch_size
        self.shuffle_window = window > 0
        self.cache_bytes = cache_bytes
        self.generator = torch.Generator().manual_seed(seed)
        self.kept: dict[str, torch.Tensor] | None = None
        self._first_epoch: Iterable | None = Prefetched(self._windows(), depth=2)

    def _windows(self) -> Iterator[dict[str, torch.Tensor]]:
        # Whole blocks, cut here into windows: slicing a block is free, where Ray Data's batcher copied every
        # window that spans two blocks into one (benchmarks/perf, ingest).
        for table in self.blocks():
            for start in range(0, len(table), self.window):
                yield arrow_columns(table.slice(start, self.window), self.modalities)

    def epoch(self) -> Iterator[Batch]:
        if self.kept is not None:
            order = torch.randperm(len(self.kept["label"]), generator=self.generator)
            yield from index_batches(self.kept, order, self.batch_size, self.modalities, drop_last=True)
            return
        windows, size = [], 0
        keep = self.cache_bytes > 0
        # streamed in a background thread, so that reading the next windows overlaps training on this one
        windows_of_epoch, self._first_epoch = self._first_epoch or Prefetched(self._windows(), depth=2), None
        carried: dict[str, torch.Tensor] | None = None  # rows short of a batch at a window's end (gathered)
        for columns in windows_of_epoch:
            rows = len(columns["label"])
            order = torch.randperm(rows, generator=self.generator) if self.shuffle_window else torch.arange(rows)
            if carried is not None:  # the last window's rows over whole batches start this window's first batch
                needed = self.batch_size - len(carried["label"])
                take, order = order[:needed], order[needed:]
                carried = {name: torch.cat([carried[name], column.index_select(0, take)])
                           for name, column in columns.items()}
                if len(carried["label"]) == self.batch_size:
                    yield to_batch(carried, self.modalities)
                    carried = None
            yield from index_batches(columns, order, self.batch_size, self.modalities, drop_last=True)
            if over := len(order) % self.batch_size:  # a block's last window seldom holds whole batches
                carried = {name: column.index_select(0, order[-over:]) for name, column in columns.items()}
            if keep:
                windows.append(columns)
                size += sum(column.nbytes for column in columns.values())
                keep = size <= self.cache_bytes
                if not keep:
                    windows = []
        # (rows still carried at the epoch's end are dropped, as drop_last does)
        # Every worker must decide alike: a worker that stopped iterating its shard would stall the others'
        # next epoch, which Ray Data starts only when all of them ask for it.
        if _all_workers_agree(keep and bool(windows)):
            self.kept = {name: torch.cat([w[name] for w in windows]) for name in windows[0]}


def ray_data_blocks(shard) -> Callable[[], Iterable[pa.Table]]:
    """A Ray Data dataset's or shard's blocks as they come, one epoch per call: what TrainFeed cuts windows from."""
    return lambda: shard.iter_batches(batch_size=None, batch_format="pyarrow")


class Prefetched:
    """Iterates `items` in a background thread, at most `depth` items ahead of the consumer; an error raised
    while iterating is raised again in the consumer."""

    _END = object()

    def __init__(self, items: Iterable, depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        # a daemon: a worker that stops consuming (a failed epoch) must still be able to exit
        threading.Thread(target=self._fill, args=(items,), daemon=True, name="mmray-prefetch").start()

    def _fill(self, items: Iterable) -> None:
        try:
            for item in items:
                self._queue.put(item)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, who raises it
            self._queue.put(_Failure(error))
            return
        self._queue.put(self._END)

    def __iter__(self) -> Iterator:
        while (item := self._queue.get()) is not self._END:
            if isinstance(item, _Failure):
                raise item.error
            yield item


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def _all_workers_agree(flag: bool) -> bool:
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    value = torch.tensor([int(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())
