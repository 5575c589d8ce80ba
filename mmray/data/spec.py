"""What a benchmark declares: its modalities (name, kind, shape) and its preprocessing parameters."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from mmray.data.sources import RawData

ModalityKind = Literal["image", "audio", "text"]
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ModalitySpec:
    """One modality of a paired example. `shape` excludes the batch axis: images (C, H, W), audio (1, mels, frames)."""

    name: str
    kind: ModalityKind
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, d: dict) -> ModalitySpec:
        return cls(name=d["name"], kind=d["kind"], shape=tuple(d["shape"]))


class BenchmarkParams(BaseModel):
    """Preprocessing parameters. Every field is part of the cache key and may be searched by a sweep."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    seed: int = 0


@dataclass
class SplitArrays:
    """One split, in memory: labels plus one float32 array (N, *shape) per modality."""

    labels: np.ndarray
    modalities: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.labels)


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

