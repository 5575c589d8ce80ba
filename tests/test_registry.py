"""The lazy name -> class registries."""

from __future__ import annotations

import collections
import inspect

import pytest

from mmray.data.benchmarks import BENCHMARKS
from mmray.data.spec import Benchmark
from mmray.methods import METHODS
from mmray.methods.base import Method
from mmray.registry import Registry, UnknownNameError


@pytest.fixture
def registry() -> Registry:
    return Registry("thing", {"zeta": "collections:OrderedDict", "alpha": "collections:Counter"})


def test_names_are_sorted(registry):
    assert registry.names() == ["alpha", "zeta"]


def test_contains(registry):
    assert "alpha" in registry and "zeta" in registry
    assert "beta" not in registry


def test_get_imports_the_attribute_and_caches_it(registry):
    assert registry.get("zeta") is collections.OrderedDict
    assert registry.get("alpha") is collections.Counter
    assert registry.get("alpha") is registry.get("alpha")


def test_unknown_name_lists_valid_names(registry):
    with pytest.raises(UnknownNameError) as info:
        registry.get("beta")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == "unknown thing 'beta'; valid things: alpha, zeta"  # plain, not KeyError-quoted


def test_entries_are_copied():
    entries = {"a": "collections:Counter"}
    registry = Registry("thing", entries)
    entries["b"] = "collections:OrderedDict"
    assert registry.names() == ["a"]


def test_bad_target_fails_on_get_only():
    registry = Registry("thing", {"broken": "collections:NoSuchThing"})
    assert "broken" in registry
    with pytest.raises(AttributeError):
        registry.get("broken")


ALL_METHODS = ["aecluster", "cpc", "fusion", "jepa", "pavlov"]
ALL_BENCHMARKS = ["animal-faces", "avmnist", "cifar2-audio", "cremad", "mnist-captions", "pathvqa", "sine",
                  "synthetic-av"]


def test_methods_registry():
    assert METHODS.names() == ALL_METHODS
    for name in METHODS.names():
        cls = METHODS.get(name)
        assert inspect.isclass(cls) and issubclass(cls, Method) and cls.name == name
    with pytest.raises(KeyError, match="valid methods: " + ", ".join(ALL_METHODS)):
        METHODS.get("nope")


def test_benchmarks_registry():
    assert BENCHMARKS.names() == ALL_BENCHMARKS
    for name in BENCHMARKS.names():
        cls = BENCHMARKS.get(name)
        assert inspect.isclass(cls) and issubclass(cls, Benchmark) and cls.name == name
    with pytest.raises(KeyError, match="valid benchmarks: " + ", ".join(ALL_BENCHMARKS)):
        BENCHMARKS.get("mnist")
