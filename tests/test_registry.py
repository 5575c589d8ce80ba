"""The lazy name -> class registries."""

from __future__ import annotations

import collections
import inspect
import subprocess
import sys

import pytest

from mmray.data.benchmarks import BENCHMARKS
from mmray.data.spec import Benchmark
from mmray.methods import METHODS
from mmray.methods.base import Method
from mmray.methods.card import MethodCard
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
        card = METHODS.get(name)
        assert inspect.isclass(card) and issubclass(card, MethodCard) and card.name == name
        model = card.model_class()
        assert issubclass(model, Method) and issubclass(model, card)
    with pytest.raises(KeyError, match="valid methods: " + ", ".join(ALL_METHODS)):
        METHODS.get("nope")


CARD_ATTRIBUTES = [name for name in vars(MethodCard) if not name.startswith("__") and name != "model_class"]


@pytest.mark.parametrize("method", ALL_METHODS)
def test_a_model_takes_its_params_and_hooks_from_its_card_alone(method):
    # the sweep's driver reads the card only: a hook a model class redefined would be ignored there
    card = METHODS.get(method)
    model = card.model_class()
    for name in CARD_ATTRIBUTES:
        defined_by = next(klass for klass in model.__mro__ if name in vars(klass))
        assert issubclass(card, defined_by), f"{model.__name__}.{name} is defined by {defined_by.__name__}, " \
                                             f"not by {card.__name__}: move it to the card"


def test_checking_a_spec_of_every_method_and_importing_the_sweep_loads_no_torch():
    # a sweep's driver never builds a model: torch would cost it ~125 MiB and ~1.4 s (benchmarks/perf)
    script = """
import sys
from mmray.config import parse_spec
import mmray.orchestration.sweep, mmray.orchestration.trial
parse_spec({"name": "torchless", "benchmarks": [{"name": "synthetic-av"}],
            "methods": ["pavlov", "aecluster", "cpc", "fusion"],
            "search_space": {"train.lr": {"choice": [0.001, 0.002]}}})
parse_spec({"name": "torchless", "benchmarks": [{"name": "mnist-captions"}], "methods": ["jepa"],
            "method_params": {"jepa": {"image_weights": None, "text_weights": None}}})
print(sorted(name for name in ("torch", "transformers") if name in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_benchmarks_registry():
    assert BENCHMARKS.names() == ALL_BENCHMARKS
    for name in BENCHMARKS.names():
        cls = BENCHMARKS.get(name)
        assert inspect.isclass(cls) and issubclass(cls, Benchmark) and cls.name == name
    with pytest.raises(KeyError, match="valid benchmarks: " + ", ".join(ALL_BENCHMARKS)):
        BENCHMARKS.get("mnist")
