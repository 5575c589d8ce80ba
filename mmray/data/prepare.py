"""prepare(): build a benchmark's shard set once per preprocessing parameters, then reuse it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from filelock import FileLock

from mmray import storage
from mmray.data.benchmarks import BENCHMARKS
from mmray.data.shards import FORMAT_VERSION, MANIFEST, PreparedData, load_prepared, write_split
from mmray.data.sources import RawData, cache_root
from mmray.data.spec import SPLITS, Benchmark, BenchmarkParams
from mmray.errors import DataError, SpecError
from mmray.storage import Location


def resolve_params(benchmark: str, params: dict | BenchmarkParams | None = None) -> tuple[Benchmark, BenchmarkParams]:
    bench: Benchmark = BENCHMARKS.get(benchmark)()
    if isinstance(params, BenchmarkParams):
        return bench, params
    from pydantic import ValidationError

    try:
        return bench, bench.Params.model_validate(params or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        valid = ", ".join(bench.Params.model_fields)
        raise SpecError(f"benchmark {benchmark!r} parameters: {problems} (valid parameters: {valid})") from exc


def cache_key(benchmark: str, params: BenchmarkParams) -> str:
    payload = json.dumps({"benchmark": benchmark, "format": FORMAT_VERSION, "params": params.key_values()},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def shard_dir(benchmark: str, params: BenchmarkParams, cache_dir=None) -> Location:
    return storage.join(cache_root(cache_dir), "shards", benchmark, cache_key(benchmark, params))


def _lock(out: Location) -> FileLock:
    """One builder of a shard set at a time on this machine. A remote set's lock lies in the local temp
    folder, so machines of a cluster may build one set at once: they upload the same files, the last wins."""
    if isinstance(out, Path):
        out.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(out) + ".lock")
    key = hashlib.sha256(out.encode()).hexdigest()[:16]
    return FileLock(str(Path(tempfile.gettempdir()) / f"mmray-shards-{key}.lock"))


def _publish(built: Path, out: Location, manifest: str) -> None:
    """Put a set built in a local folder in place so that no reader ever takes a partial set as complete."""
    if isinstance(out, Path):  # a rename is atomic: readers see the old set or the whole new one
        (built / MANIFEST).write_text(manifest)
        if out.exists():
            shutil.rmtree(out)
        os.replace(built, out)
        return
    # An object store has no rename: drop the old manifest first (readers stop trusting the old set), then
    # upload the shards and write the manifest last, which marks the set complete.
    storage.delete(storage.join(out, MANIFEST))
    storage.delete(out)
    storage.upload(out, built)
    storage.write_text(storage.join(out, MANIFEST), manifest)
    shutil.rmtree(built)


def prepare(
    benchmark: str,
    params: dict | BenchmarkParams | None = None,
    *,
    mirror: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    force: bool = False,
    skip_bad: bool = False,
    log=print,
) -> PreparedData:
    """Return the benchmark's shard set for these parameters, building it if it is not in the cache.

    Building happens in a hidden local temporary folder, under a file lock, which is then renamed into place
    (or, for a remote cache, uploaded with its manifest last), so concurrent trials never see or build a
    half-written set.
    """
    bench, resolved = resolve_params(benchmark, params)
    out = shard_dir(benchmark, resolved, cache_dir)
    with _lock(out):
        if storage.exists(out) and not force:
            try:
                return load_prepared(out)
            except DataError as exc:
                log(f"[mmray] cached shards unusable ({exc}); rebuilding")
        started = time.perf_counter()
        log(f"[mmray] preparing {benchmark} -> {out}")
        raw = RawData(mirror, cache_dir, skip_bad=skip_bad, log=log)
        splits, extra = bench.build(resolved, raw)
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            raise DataError(f"benchmark {benchmark} built no {missing} split(s)")
        if resolved.limit is not None:
            splits = {name: arrays.head(resolved.limit) for name, arrays in splits.items()}
        specs = bench.modalities(resolved)
        class_names = list(bench.class_names(resolved))
        for split, arrays in splits.items():
            outside = arrays.labels[(arrays.labels < 0) | (arrays.labels >= len(class_names))]
            if len(outside):
                raise DataError(f"benchmark {benchmark}, split {split}: label {int(outside[0])} is outside the "
                                f"class list {class_names}; check the raw labels or the class list")
        staging = out.parent if isinstance(out, Path) else Path(tempfile.gettempdir())
        tmp = staging / f".{storage.name(out)}.partial-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        entries, first = {}, 0
        for split in SPLITS:
            entries[split] = write_split(tmp, split, splits[split], specs, first_pair_id=first)
            first += len(splits[split])
        manifest = {
            "format_version": FORMAT_VERSION,
            "benchmark": benchmark,
            "params": resolved.model_dump(),
            "modalities": [s.to_json() for s in specs],
            "class_names": class_names,
            "splits": entries,
            "skipped_files": {"count": len(raw.skipped), "problems": raw.skipped[:100]},
            "prepare_seconds": round(time.perf_counter() - started, 2),
            **extra,
        }
        _publish(tmp, out, json.dumps(manifest, indent=2))
        counts = ", ".join(f"{s} {entries[s]['rows']}" for s in SPLITS)
        log(f"[mmray] prepared {benchmark}: {counts} rows in {manifest['prepare_seconds']} s")
        return load_prepared(out)
