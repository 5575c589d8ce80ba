"""Where mmray reads and writes files: a local folder or a remote URI such as s3://bucket/prefix, through
pyarrow.fs, so that results, Tune/Train storage and the shard cache can live on storage every node reaches.

A location is an absolute `Path` for a local file or folder (what mmray has always used) or a `str` URI;
`location()` makes one from what a user gives, `join()` extends one. Writing a local file stays atomic (a
temporary file renamed into place); a remote object is written by one upload, which readers see whole or
not at all. Object stores have no real folders: a "folder" exists while some object lies under its prefix.

Credentials and endpoints come from the usual environment of the store (for S3: AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, ~/.aws, an IAM instance profile; AWS_ENDPOINT_URL for an S3-compatible server), which
pyarrow reads, and so do Ray's Tune/Train storage and Ray Data on every node.
"""

from __future__ import annotations

import functools
import io
import os
import posixpath
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pyarrow.fs as pafs

from mmray.errors import StorageError

Location = Path | str  # an absolute local Path, or a URI string
LOCAL = pafs.LocalFileSystem()
ENDPOINT_ENV = "AWS_ENDPOINT_URL"  # an S3-compatible server instead of AWS (pyarrow reads it)
CREDENTIALS_HINT = ("check that the bucket exists and that this machine may use it (for S3: "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws or an IAM instance profile with S3 "
                    f"access on every cluster node; {ENDPOINT_ENV} for an S3-compatible server)")


def is_uri(value: str | os.PathLike) -> bool:
    return "://" in str(value)


def location(value: str | os.PathLike) -> Location:
    """A user's path or URI as a location: local paths absolute (Ray needs absolute storage paths)."""
    if not is_uri(value):
        return Path(value).expanduser().resolve()
    uri = str(value).rstrip("/")
    if urlsplit(uri).query or urlsplit(uri).fragment:
        # joined paths would land inside the query string; pyarrow and Ray read these settings from the
        # environment instead
        raise StorageError(f"{uri}: give the store's options (endpoint, region, ...) through its environment "
                           "variables, e.g. AWS_ENDPOINT_URL, not as URI parameters")
    return uri


def join(base: str | os.PathLike, *parts: str) -> Location:
    base = location(base)
    if isinstance(base, Path):
        return base.joinpath(*parts)
    return "/".join([base, *parts])


def name(where: Location) -> str:
    """The last component of a location (a file's or folder's own name)."""
    return posixpath.basename(str(where))


@functools.cache
def _root_filesystem(root: str, endpoint: str | None) -> tuple[pafs.FileSystem, str]:
    # One filesystem per bucket (and endpoint, read from the environment when it is made), made once: pyarrow
    # may ask S3 for the bucket's region when it makes one.
    return pafs.FileSystem.from_uri(root)


def resolve(where: str | os.PathLike) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem holding a location and the location's path inside it."""
    where = location(where)
    if isinstance(where, Path):
        return LOCAL, str(where)
    parts = urlsplit(where)
    root = f"{parts.scheme}://{parts.netloc}"
    try:
        filesystem, root_path = _root_filesystem(root, os.environ.get(ENDPOINT_ENV))
    except (OSError, ValueError) as exc:
        raise _unreachable(where, exc) from exc
    return filesystem, posixpath.join(root_path, parts.path.lstrip("/"))


def resolve_files(locations: list[Location]) -> tuple[pafs.FileSystem, list[str]]:
    """One filesystem and the paths inside it of files that lie in one store (e.g. a split's shards)."""
    resolved = [resolve(where) for where in locations]
    return (resolved[0][0] if resolved else LOCAL), [path for _, path in resolved]


def _unreachable(where: str, exc: Exception) -> StorageError:
    reason = " ".join(str(exc).split())
    return StorageError(f"cannot use {where} ({reason}); {CREDENTIALS_HINT}")


def _explained(function):
    """Turn a remote store's errors (no such bucket, no credentials, no connection) into one StorageError
    naming the URI and the fix; local errors and missing files keep their usual types."""

    @functools.wraps(function)
    def wrapper(where, *args, **kwargs):
        where = location(where)
        try:
            return function(where, *args, **kwargs)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if isinstance(where, Path):
                raise
            raise _unreachable(where, exc) from exc

    return wrapper


def _info(where: Location) -> pafs.FileInfo:
    filesystem, path = resolve(where)
    return filesystem.get_file_info(path)


@_explained
def exists(where: Location) -> bool:
    return _info(where).type != pafs.FileType.NotFound


@_explained
def is_dir(where: Location) -> bool:
    return _info(where).type == pafs.FileType.Directory


@_explained
def size(where: Location) -> int | None:
    """A file's size in bytes; None when there is no such file."""
    info = _info(where)
    return info.size if info.type == pafs.FileType.File else None


@_explained
def listdir(where: Location) -> list[str]:
    """Names of what lies directly in a folder, sorted; [] for a missing folder."""
    filesystem, path = resolve(where)
    selector = pafs.FileSelector(path, allow_not_found=True)
    return sorted(info.base_name for info in filesystem.get_file_info(selector))


@_explained
def makedirs(where: Location) -> None:
    filesystem, path = resolve(where)
    filesystem.create_dir(path, recursive=True)


@_explained
def delete(where: Location) -> None:
    """Delete a file, or a folder with everything in it; nothing to do when it is not there."""
    filesystem, path = resolve(where)
    kind = filesystem.get_file_info(path).type
    if kind == pafs.FileType.Directory:
        filesystem.delete_dir(path)
    elif kind == pafs.FileType.File:
        filesystem.delete_file(path)


@_explained
def open_input_file(where: Location):
    """A random-access pyarrow file (for pyarrow.parquet.ParquetFile, hashing): use it with `with`."""
    filesystem, path = resolve(where)
    return filesystem.open_input_file(path)


@_explained
def read_bytes(where: Location) -> bytes:
    filesystem, path = resolve(where)
    with filesystem.open_input_stream(path) as stream:
        return stream.read()


@_explained
def write_bytes(where: Location, data: bytes) -> None:
    """Replace a file whole: readers see the old content or the new, never a part (a crash keeps the old)."""
    if isinstance(where, Path):
        where.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=where.parent, prefix=f".{where.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, where)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return
    filesystem, path = resolve(where)
    with filesystem.open_output_stream(path) as stream:  # one object, visible once the upload completes
        stream.write(data)


def read_text(where: Location) -> str:
    return read_bytes(where).decode("utf-8")


def write_text(where: Location, text: str) -> None:
    write_bytes(where, text.encode("utf-8"))


def read_parquet(where: Location, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet table read from one open of the file: reading by path opens it more than once (its size,
    then its pages), and a writer replacing it in between made the pages a different file's."""
    return pd.read_parquet(io.BytesIO(read_bytes(where)), columns=columns)


def write_parquet(where: Location, frame: pd.DataFrame) -> None:
    """Replace a Parquet table whole (as `write_bytes`), without the pandas index."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    write_bytes(where, buffer.getvalue())


@_explained
def upload(where: Location, folder: Path) -> None:
    """Copy a local folder's files (recursively) into a location."""
    filesystem, path = resolve(where)
    pafs.copy_files(str(folder), path, source_filesystem=LOCAL, destination_filesystem=filesystem)
