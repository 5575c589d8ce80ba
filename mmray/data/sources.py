"""Where raw datasets come from: a local mirror folder when given, else a download into the cache."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from mmray import storage
from mmray.errors import DataError
from mmray.storage import Location

MIRROR_ENV = "MMRAY_DATA_MIRROR"
CACHE_ENV = "MMRAY_CACHE"
DEFAULT_CACHE = "~/.cache/mmray"
LFS_POINTER = b"version https://git-lfs.github.com/spec/"  # how a git-lfs stub file starts


def cache_root(cache_dir: str | os.PathLike | None = None) -> Location:
    """The shard cache: the argument, else MMRAY_CACHE, else ~/.cache/mmray; a local folder or a URI."""
    return storage.location(cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV, DEFAULT_CACHE))


def download_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where raw downloads are unpacked: they are read file by file while building, so they stay on this
    machine, in the default local cache when the shard cache is remote."""
    root = cache_root(cache_dir)
    return (root if isinstance(root, Path) else storage.location(DEFAULT_CACHE)) / "raw"


def mirror_root(mirror: str | os.PathLike | None = None) -> Path | None:
    """The mirror folder from the argument or MMRAY_DATA_MIRROR; None means: download."""
    value = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    if value is None:
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise DataError(
            f"data mirror {path} does not exist; point --mirror or {MIRROR_ENV} at a folder holding "
            "the datasets (e.g. ../shared/datasets), or unset it to download"
        )
    return path


def download(url: str, dest: Path) -> Path:
    """Fetch `url` to `dest` atomically; a clear error when offline."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(response, out)
        os.replace(tmp, dest)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise DataError(
            f"could not download {url} ({exc}); on a machine without internet pass --mirror DIR "
            f"or set {MIRROR_ENV} to a folder holding a copy of the dataset"
        ) from exc
    return dest


def require_file(path: Path, what: str) -> None:
    """A DataError naming `path` unless it is a non-empty file holding data (not a git-lfs stub)."""
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(f"{what} {path} is missing or empty; restore it from the dataset source")
    with open(path, "rb") as f:
        if f.read(len(LFS_POINTER)) == LFS_POINTER:
            raise DataError(f"{what} {path} is a git-lfs pointer, not the data; fetch the real file "
                            "(`git lfs pull` in the clone) or copy it from a complete copy of the dataset")


class RawData:
    """Resolves a raw dataset folder (e.g. 'mnist', 'fsdd') inside the mirror or the download cache, and
    keeps the list of bad raw files skipped while building (only when the user asked for `skip_bad`)."""

    def __init__(self, mirror: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                 skip_bad: bool = False, log: Callable[[str], None] = print):
        self._mirror = mirror  # resolved on first use: generated benchmarks never need (or check) a mirror
        self.download_root = download_root(cache_dir)
        self.skip_bad = skip_bad
        self.skipped: list[str] = []
        self._log = log

    def bad(self, problem: str) -> None:
        """A raw file is unusable (`problem` names it and why): stop, or with skip_bad note it and go on."""
        if not self.skip_bad:
            raise DataError(f"{problem} (or pass --skip-bad to leave such files out)")
        self.skipped.append(problem)
        self._log(f"[mmray] skipping: {problem}")

    def log(self, message: str) -> None:
        self._log(f"[mmray] {message}")

    @property
    def mirror(self) -> Path | None:
        return mirror_root(self._mirror)

    def folder(self, dataset: str, fetch: Callable[[Path], None], marker: str) -> Path:
        """Folder holding `dataset`; `marker` is a path inside it that proves it is complete.

        With a mirror the folder must be there already; otherwise `fetch(folder)` downloads it once.
        """
        if self.mirror is not None:
            folder = self.mirror / dataset
            if not (folder / marker).exists():
                raise DataError(
                    f"the data mirror {self.mirror} has no {dataset}/{marker}; copy the dataset there "
                    f"or unset --mirror/{MIRROR_ENV} to download it"
                )
            return folder
        folder = self.download_root / dataset
        if not (folder / marker).exists():
            folder.mkdir(parents=True, exist_ok=True)
            fetch(folder)
        return folder
