"""One small registry type: a name -> "module:attribute" table, imported on first use.

Lazy import keeps `mmray --help` fast and lets a registry list names without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Generic, TypeVar

from mmray.errors import MmrayError

T = TypeVar("T")


class UnknownNameError(MmrayError, KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return self.args[0]


class Registry(Generic[T]):
    def __init__(self, kind: str, entries: dict[str, str]):
        self.kind = kind
        self._entries = dict(entries)
        self._loaded: dict[str, T] = {}

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(self.names())}"
            )
        if name not in self._loaded:
            self._loaded[name] = import_attribute(self._entries[name])
        return self._loaded[name]


def import_attribute(target: str):
    """The attribute a "module:attribute" string names, its module imported."""
    module_name, attribute = target.split(":")
    return getattr(importlib.import_module(module_name), attribute)
