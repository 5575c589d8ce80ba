"""What a benchmark declares: its modalities (name, kind, shape), its preprocessing parameters, and how one
raw input (a file, or a text) becomes an example exactly as its shards store it (`Benchmark.preprocess`)."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mmray.errors import DataError

if TYPE_CHECKING:
    from mmray.data.sources import RawData

ModalityKind = Literal["image", "audio", "text"]
SPLITS = ("train", "val", "test")
RawSource = str | os.PathLike  # a file path (image, audio) or, for text, the text itself
Note = Callable[[str], None]  # told each conversion applied to one raw input, one line each


@dataclass(frozen=True)
class ModalitySpec:
    """One modality of a paired example. `shape` excludes the batch axis.

    images (C, H, W), audio log-mels (1, mels, frames) or a waveform (1, samples), text (max_length,) int64
    token ids; a text modality also names its `vocab_size`, the `tokenizer` that made it and the id that pads
    it (tokenizers disagree: BART pads with 1).
    """

    name: str
    kind: ModalityKind
    shape: tuple[int, ...]
    vocab_size: int | None = None
    tokenizer: str | None = None
    pad_id: int | None = None

    def __post_init__(self):
        if self.kind == "text" and (len(self.shape) != 1 or not self.vocab_size or self.pad_id is None):
            raise ValueError(f"text modality {self.name!r} needs shape (max_length,), a vocab_size and a pad_id")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def dtype(self) -> np.dtype:
        """How shards store it. Images and (standardised) log-mels are float16: half the bytes of float32 to read,
        move through the object store and keep in a worker (benchmarks/perf, ingest), and
        finer than their sources (8-bit pixels; log-mels standardised to unit variance). Batches are float32."""
        return np.dtype(np.int64 if self.kind == "text" else np.float16)

    @property
    def nbytes(self) -> int:
        """Bytes of one example as shards store it."""
        return self.size * self.dtype.itemsize

    def to_json(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "shape": list(self.shape)}
        if self.kind == "text":
            out.update(vocab_size=self.vocab_size, tokenizer=self.tokenizer, pad_id=self.pad_id)
        return out

    @classmethod
    def from_json(cls, d: dict) -> ModalitySpec:
        return cls(name=d["name"], kind=d["kind"], shape=tuple(d["shape"]),
                   vocab_size=d.get("vocab_size"), tokenizer=d.get("tokenizer"), pad_id=d.get("pad_id"))


class BenchmarkParams(BaseModel):
    """Preprocessing parameters. Every field is part of the cache key and may be searched by a sweep."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Fields added after shard sets were cached: in the cache key only when set to other than their default, so
    # the shard sets prepared before them keep their keys (and are not built again)
    KEYED_WHEN_SET: ClassVar[frozenset[str]] = frozenset()
    seed: int = 0
    limit: int | None = Field(None, ge=1, description="keep at most this many examples per split (quick runs)")

    def key_values(self) -> dict:
        """The values the shard cache key is made of: every field, less KEYED_WHEN_SET ones at their default."""
        values = self.model_dump()
        for name in self.KEYED_WHEN_SET:
            if values[name] == type(self).model_fields[name].get_default(call_default_factory=True):
                del values[name]
        return values


@dataclass
class SplitArrays:
    """One split, in memory: labels plus one float32 array (N, *shape) per modality."""

    labels: np.ndarray
    modalities: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.labels)

    def head(self, n: int) -> SplitArrays:
        return SplitArrays(self.labels[:n], {k: v[:n] for k, v in self.modalities.items()})


class Benchmark(ABC):
    """A benchmark builds its splits from raw data (or a seed). Registered in `mmray.data.benchmarks`."""

    name: ClassVar[str]
    Params: ClassVar[type[BenchmarkParams]] = BenchmarkParams

    @abstractmethod
    def modalities(self, params: BenchmarkParams) -> tuple[ModalitySpec, ...]: ...

    @abstractmethod
    def class_names(self, params: BenchmarkParams) -> tuple[str, ...]: ...

    @abstractmethod
    def build(self, params: BenchmarkParams, raw: "RawData") -> tuple[dict[str, SplitArrays], dict]:
        """Return the splits and any extra manifest facts (normalisation statistics, sources)."""

    def preprocess(self, params: BenchmarkParams, modality: ModalitySpec, source: RawSource, manifest: dict,
                   note: Note) -> np.ndarray:
        """One raw input of `modality` through exactly the preprocessing `build` applies to the whole dataset.

        `source` is a file path (str or Path) for image/audio (WAV/FLAC; PNG/JPEG), or a str for text;
        `manifest` is the shard set's manifest (`PreparedData.manifest`): its statistics (the log-mel mean/std
        under "normalization") and its saved tokenizers (under "tokenizers"), so the numbers come from the
        training data, never from the new input. Returns an array of `modality.shape` in `modality.dtype`,
        exactly as shards store it: it equals the shard row of the same example bit for bit. `note(message)`
        is called once with each conversion applied (resampled, mixed to mono, resized, mode converted,
        truncated), one line each. Unusable input (a missing or empty file, a folder, a file that does not
        decode) raises DataError with one line naming the file and the fix.

        Benchmarks built from raw files override it (their `build` and this share one per-example
        function); a generated benchmark keeps this refusal.
        """
        raise DataError(f"benchmark {self.name!r} does not preprocess raw {modality.kind} files (its "
                        f"{modality.name!r} examples are generated, not read from files); pass arrays of "
                        f"shape {modality.shape} as its shards hold them instead")

    def declared(self, params: BenchmarkParams, modality: ModalitySpec) -> ModalitySpec:
        """`modality` as this benchmark declares it for `params`; a DataError if it has none such (another
        benchmark's modality, or shapes from other parameters)."""
        specs = {spec.name: spec for spec in self.modalities(params)}
        spec = specs.get(modality.name)
        if spec is None:
            raise DataError(f"benchmark {self.name!r} has no modality {modality.name!r} (it has "
                            f"{', '.join(specs)})")
        if (spec.kind, spec.shape) != (modality.kind, modality.shape):
            raise DataError(f"benchmark {self.name!r} with these parameters makes {modality.name!r} "
                            f"{spec.kind} {spec.shape}, not {modality.kind} {modality.shape}; pass the "
                            "parameters the shards were prepared with")
        return spec
