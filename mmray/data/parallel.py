"""Decode many raw files in parallel with a progress bar, reporting (or, when asked, skipping) bad ones."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from tqdm import tqdm

from mmray.errors import DataError

T = TypeVar("T")
R = TypeVar("R")


def _guarded(fn: Callable[[T], R], item: T) -> tuple[R | None, str | None]:
    try:
        return fn(item), None
    except DataError as exc:  # a bad file: travel back as text so the parent decides to raise or skip
        return None, str(exc)


def _run_chunk(fn: Callable[[T], R], items: Sequence[T]) -> list[tuple[R | None, str | None]]:
    return [_guarded(fn, item) for item in items]


def map_files(fn: Callable[[T], R], items: Sequence[T], raw, *, desc: str,
              workers: int | None = None, chunk: int = 64) -> list[R | None]:
    """`fn(item)` for every item, in order, on a process pool (`fn` must be a module-level function).

    `fn` raises DataError naming the file for bad input; that stops the build unless `raw.skip_bad`, in which
    case the item's result is None and `raw` records the file and why.
    """
    workers = workers or os.cpu_count() or 1
    chunks = [items[i:i + chunk] for i in range(0, len(items), chunk)]
    results: list[R | None] = []
    with tqdm(total=len(items), desc=desc, unit="file", disable=None) as bar:
        if workers == 1 or len(chunks) == 1:
            done = (_run_chunk(fn, c) for c in chunks)
        else:
            # forkserver, not fork: the caller may hold threads (torch's, Ray's, a test runner's) whose locks a
            # forked child would inherit held and wait on forever.
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))
            done = pool.map(_run_chunk, [fn] * len(chunks), chunks)
        try:
            for outcomes in done:
                for value, error in outcomes:
                    if error is not None:
                        raw.bad(error)
                    results.append(value)
                bar.update(len(outcomes))
        finally:
            if not (workers == 1 or len(chunks) == 1):
                pool.shutdown(cancel_futures=True)
    return results
