"""Hugging Face datasets as raw sources: by hub id, or from a local folder holding the same files.

Where the data comes from, first match wins:
1. the benchmark parameter `data_dir`;
2. `<mirror>/<folder>` when a data mirror is set (--mirror / MMRAY_DATA_MIRROR);
3. the hub id, through the `datasets` library (and its cache, ~/.cache/huggingface).

A local folder holds either the dataset's Parquet files as they are on the hub
(`data/train-00000-of-00001.parquet`, `data/validation-….parquet`, …: `hf download ID --repo-type dataset
--local-dir DIR` makes one) or a dataset saved with `DatasetDict.save_to_disk` (`dataset_dict.json`). Either
way every split becomes one Arrow table; image columns are HF `Image` structs (`bytes`, `path`), and
`ClassLabel` names come from the files' `huggingface` metadata.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageOps
from pydantic import Field

from mmray.data.parallel import map_files
from mmray.data.spec import SPLITS
from mmray.data.text import TextParams
from mmray.errors import DataError

HF_SPLITS = {"train": "train", "validation": "val", "valid": "val", "val": "val", "dev": "val",
             "test": "test"}
_SPLIT_IN_NAME = re.compile(r"^(train|validation|valid|val|dev|test)(?=$|[-_.])")
SOURCE_SPLIT, SOURCE_ROW = "__source_split", "__source_row"  # where a row came from, for error messages


class HFImageTextParams(TextParams):
    """Parameters every Hugging Face image + text benchmark shares (part of the cache key)."""

    data_dir: str | None = Field(None, description="local copy of the dataset (hub Parquet files or "
                                                   "save_to_disk); default <mirror>/<folder>, else the hub")
    image_size: int = Field(64, ge=8, description="images are centre-cropped to a square and resized to this")
    image_column: str | None = Field(None, description="image column (default: detected)")
    val_fraction: float = Field(0.1, gt=0, lt=0.5, description="train share held out as val if none")
    test_fraction: float = Field(0.1, gt=0, lt=0.5, description="train share held out as test if none")
    unreadable_images: Literal["stop", "zero_fill"] = Field(
        "stop", description="an image that does not decode stops the build (or, with --skip-bad, drops its rows); "
                            "zero_fill: it becomes a black image, counted in the manifest (the MM-JEPA seed's way)")


@dataclass
class HFData:
    """A dataset's splits (keyed train/val/test, only those it has) and what its features say."""

    splits: dict[str, pa.Table]
    label_names: dict[str, list[str]]  # ClassLabel column -> its class names
    source: str  # hub id or folder, for messages and the manifest
    base_dir: Path | None = None  # image paths in a local copy are relative to it

    @property
    def columns(self) -> list[str]:
        return [c for c in self.splits["train"].column_names if c not in (SOURCE_SPLIT, SOURCE_ROW)]

    def pick_column(self, role: str, candidates: Sequence[str], override: str | None, param: str) -> str:
        """The column playing `role`: the parameter's choice, else the first candidate present."""
        if override is not None:
            if override in self.columns:
                return override
            raise DataError(f"{self.source}: {param}={override!r} is not a column; columns found: "
                            f"{self.columns}")
        for name in candidates:
            if name in self.columns:
                return name
        raise DataError(f"{self.source}: no {role} column (looked for {', '.join(candidates)}); columns "
                        f"found: {self.columns}; set the benchmark parameter {param} to one of them")


def _class_label_names(features: dict) -> dict[str, list[str]]:
    return {name: list(f["names"]) for name, f in features.items()
            if isinstance(f, dict) and f.get("_type") == "ClassLabel"}


def _tag_rows(split: str, table: pa.Table) -> pa.Table:
    return (table.append_column(SOURCE_SPLIT, pa.array([split] * len(table), pa.string()))
            .append_column(SOURCE_ROW, pa.array(np.arange(len(table)), pa.int64())))


def _from_dataset_dict(dataset_dict, source: str, base_dir: Path | None) -> HFData:
    splits, label_names = {}, {}
    for hf_split, dataset in dataset_dict.items():
        if hf_split in HF_SPLITS:
            splits[HF_SPLITS[hf_split]] = _tag_rows(hf_split, dataset.with_format("arrow")[:])
            label_names.update(_class_label_names(dataset.features.to_dict()))
    return HFData(splits, label_names, source, base_dir)


def _parquet_split(path: Path, folder: Path) -> str:
    for part in (path.stem, *(p.name for p in path.relative_to(folder).parents)):
        match = _SPLIT_IN_NAME.match(part)
        if match:
            return match[1]
    raise DataError(f"{path}: cannot tell which split this Parquet file holds; name it like the hub does "
                    "(data/train-00000-of-00001.parquet, data/validation-…, data/test-…)")


def _from_folder(folder: Path) -> HFData:
    if (folder / "dataset_dict.json").exists():
        import datasets

        return _from_dataset_dict(datasets.load_from_disk(str(folder)), str(folder), folder)
    files = sorted(folder.rglob("*.parquet"))
    if not files:
        raise DataError(f"{folder} holds neither Parquet files (data/train-00000-of-00001.parquet, as on the "
                        "hub) nor a dataset saved with save_to_disk (dataset_dict.json); see "
                        "datasets/README.md")
    by_split: dict[str, list[Path]] = {}
    for path in files:
        by_split.setdefault(_parquet_split(path, folder), []).append(path)
    splits, label_names = {}, {}
    for hf_split, paths in by_split.items():
        try:
            table = pa.concat_tables([pq.read_table(p) for p in paths])
        except (OSError, pa.ArrowInvalid) as exc:
            raise DataError(f"{folder}: the {hf_split} Parquet files do not read as one table ({exc}); "
                            "copy them again from the hub") from exc
        metadata = (table.schema.metadata or {}).get(b"huggingface")
        if metadata:
            label_names.update(_class_label_names(json.loads(metadata).get("info", {}).get("features", {})))
        splits[HF_SPLITS[hf_split]] = _tag_rows(hf_split, table.replace_schema_metadata(None))
    return HFData(splits, label_names, str(folder), folder)


def _from_hub(hub_id: str, folder: str) -> HFData:
    import datasets

    try:
        dataset_dict = datasets.load_dataset(hub_id)
    except Exception as exc:  # network, auth and hub errors come in many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"could not load {hub_id} from the Hugging Face hub ({first}); offline, put a copy "
                        f"in <mirror>/{folder} or pass the benchmark parameter data_dir (datasets/README.md)"
                        ) from exc
    return _from_dataset_dict(dataset_dict, hub_id, None)


def load_hf(raw, hub_id: str, folder: str, data_dir: str | None) -> HFData:
    """The dataset from `data_dir`, else `<mirror>/<folder>`, else the hub; it must have a train split."""
    if data_dir is not None:
        path = Path(data_dir).expanduser().resolve()
        if not path.is_dir():
            raise DataError(f"data_dir {path} is not a folder; point it at a local copy of {hub_id}")
        data = _from_folder(path)
    elif raw.mirror is not None:
        path = raw.mirror / folder
        if not path.is_dir():
            raise DataError(f"the data mirror {raw.mirror} has no {folder}/; copy {hub_id} there "
                            "(datasets/README.md), pass data_dir, or unset --mirror/MMRAY_DATA_MIRROR to "
                            "download")
        data = _from_folder(path)
    else:
        data = _from_hub(hub_id, folder)
    if "train" not in data.splits:
        raise DataError(f"{data.source} has no train split (found {sorted(data.splits)})")
    return data


def carve_splits(data: HFData, seed: int, val_fraction: float, test_fraction: float,
                 limit: int | None = None) -> tuple[dict[str, pa.Table], dict[str, int]]:
    """train/val/test tables: a split the dataset lacks is a seeded random share of train; `limit` caps each.

    Returns the tables and how many rows each carved split took from train.
    """
    tables = dict(data.splits)
    missing = [(s, f) for s, f in (("val", val_fraction), ("test", test_fraction)) if s not in tables]
    carved = {}
    if missing:
        order = np.random.default_rng(seed).permutation(len(tables["train"]))
        start = 0
        for split, fraction in missing:
            n = max(1, round(fraction * len(order)))
            carved[split] = n
            tables[split] = tables["train"].take(np.sort(order[start:start + n]))
            start += n
        if start >= len(order):
            raise DataError(f"{data.source}: train has {len(order)} rows, too few to hold out {carved}")
        tables["train"] = tables["train"].take(np.sort(order[start:]))
    if limit is not None:
        tables = {s: t.slice(0, limit) for s, t in tables.items()}
    return {s: tables[s] for s in SPLITS}, carved


def _decode_image(item: tuple[str, bytes | None, str | None], size: int, channels: int) -> np.ndarray:
    """One image as uint8 (C, size, size): centre-cropped to a square, resized."""
    where, data, path = item
    try:
        if data is None and path is None:
            raise ValueError("the row holds no image")
        with Image.open(io.BytesIO(data) if data is not None else path) as image:
            square = ImageOps.fit(image.convert("L" if channels == 1 else "RGB"), (size, size),
                                  method=Image.Resampling.BICUBIC)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # PIL's "bad file"
        reason = "not an image file PIL knows" if isinstance(exc, Image.UnidentifiedImageError) else exc
        raise DataError(f"{where}: the image does not decode ({reason})") from exc
    array = np.asarray(square, np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def _decode_image_or_zeros(item, size: int, channels: int) -> tuple[np.ndarray, str | None]:
    """`_decode_image`, or a black image and why when it does not decode."""
    try:
        return _decode_image(item, size, channels), None
    except DataError as error:
        return np.zeros((channels, size, size), np.uint8), str(error)


def _image_payload(value, base_dir: Path | None) -> tuple[bytes | None, str | None]:
    """HF image cells are {'bytes', 'path'} structs; plain binary or path columns work too."""
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
    elif isinstance(value, (bytes, str)):
        data, path = (value, None) if isinstance(value, bytes) else (None, value)
    else:
        data, path = None, None
    if data is None and path is not None and base_dir is not None and not Path(path).is_absolute():
        path = str(base_dir / path)
    return data, path


def decode_images(data: HFData, table: pa.Table, column: str, raw, size: int, channels: int,
                  desc: str, zero_fill: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """float32 (N, C, size, size) in [0, 1] for the rows whose image decodes, and those rows' indices.

    Each distinct image is decoded once (PathVQA asks several questions about one image), in parallel. A bad
    image stops the build, or with --skip-bad drops its rows; given a `zero_fill` list, it becomes a black
    image instead and why is appended to the list.
    """
    cells = table.column(column).to_pylist()
    sources, rows = table.column(SOURCE_SPLIT).to_pylist(), table.column(SOURCE_ROW).to_pylist()
    payloads = [_image_payload(cell, data.base_dir) for cell in cells]
    first_of: dict = {}
    unique = []
    for index, payload in enumerate(payloads):
        if payload not in first_of:
            first_of[payload] = len(unique)
            place = f", {payload[1]}" if payload[1] else ""
            where = f"{data.source}: split {sources[index]} row {rows[index]} (column {column!r}{place})"
            unique.append((where, *payload))
    if zero_fill is None:
        decoded = map_files(partial(_decode_image, size=size, channels=channels), unique, raw, desc=desc)
    else:
        outcomes = map_files(partial(_decode_image_or_zeros, size=size, channels=channels), unique, raw, desc=desc)
        decoded = [image for image, _ in outcomes]
        zero_fill.extend(why for _, why in outcomes if why is not None)
    keep = np.array([i for i, p in enumerate(payloads) if decoded[first_of[p]] is not None], np.int64)
    images = np.empty((len(keep), channels, size, size), np.float32)
    for out, index in enumerate(keep):
        images[out] = decoded[first_of[payloads[index]]]
    images /= 255.0
    return images, keep


def text_values(data: HFData, table: pa.Table, column: str, param: str) -> list[str]:
    """A text column as strings (missing values become empty texts)."""
    if not (pa.types.is_string(table.schema.field(column).type)
            or pa.types.is_large_string(table.schema.field(column).type)):
        raise DataError(f"{data.source}: column {column!r} holds {table.schema.field(column).type}, not "
                        f"text; set the benchmark parameter {param} to a text column of {data.columns}")
    return ["" if value is None else value for value in table.column(column).to_pylist()]


def class_indices(data: HFData, table: pa.Table, column: str, class_names: Sequence[str],
                  param: str) -> np.ndarray:
    """Labels as indices into `class_names`: ClassLabel ids and string labels are matched by name, plain
    integers are taken as they are (prepare checks that they are in range)."""
    values = table.column(column).to_pylist()
    names = data.label_names.get(column)
    if names is not None:
        values = [names[v] for v in values]
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return np.asarray(values, np.int64)
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted({str(v) for v in values} - index.keys())
    if unknown:
        raise DataError(f"{data.source}: column {column!r} has labels {unknown[:5]} that are not in the "
                        f"class list {list(class_names)}; set the benchmark parameter {param} to the "
                        "dataset's classes")
    return np.array([index[str(v)] for v in values], np.int64)


IMAGE_COLUMNS = ("image", "img", "images", "picture", "photo")


def image_splits(data: HFData, p: HFImageTextParams, raw, channels: int,
                 name: str) -> tuple[dict[str, np.ndarray], dict[str, pa.Table], dict]:
    """Carve the splits, decode each one's images; the tables keep only the rows whose image decoded.

    Returns images and tables per split, and the manifest facts (source, carved splits, image scaling).
    """
    column = data.pick_column("image", IMAGE_COLUMNS, p.image_column, "image_column")
    tables, carved = carve_splits(data, p.seed, p.val_fraction, p.test_fraction, p.limit)
    images, zero_filled = {}, {}
    for split, table in tables.items():
        failed = [] if p.unreadable_images == "zero_fill" else None
        images[split], keep = decode_images(data, table, column, raw, p.image_size, channels,
                                            desc=f"{name} {split} images", zero_fill=failed)
        tables[split] = table.take(keep)
        if failed:
            raw.log(f"{name} {split}: {len(failed)} images do not decode and were zero-filled (the first: "
                    f"{failed[0]})")
            zero_filled[split] = {"count": len(failed), "first": failed[0]}
    extra = {
        "source": data.source,
        "columns": {"image": column},
        "carved_from_train": carved,
        "normalization": {"image": f"centre square crop, bicubic resize to {p.image_size}, pixels / 255"},
        "zero_filled_images": zero_filled,  # split -> how many distinct images did not decode, and the first
    }
    return images, tables, extra
