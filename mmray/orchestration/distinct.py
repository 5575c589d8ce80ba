"""Searches that never run a configuration twice on a finite space.

Where every searched key is a choice (or an integer range), a configuration a trial already ran would train
again to the very same curve: the trial's seed is the run's, not the configuration's. TPE, once it has found
a good region, proposes the best configuration it has seen over and over: on the tabular benchmarks
(benchmarks/perf/search.py, finite spaces) most of its trials were repeats, and TPE + ASHA reached random
search's best more slowly than random search. Random search draws repeats too, and under ASHA, which runs
about three times as many trials as the space has configurations on those tables, most of its trials were.
`DistinctConfigurations` asks its searcher again instead, telling it the repeat failed (TPE leaves failed
trials out of its model); `RandomDraws` is random search as a searcher it can wrap. On a space with a
continuous key no two draws are equal, and it passes every call through.
"""

from __future__ import annotations

import copy
import json
import math
import pickle

import numpy as np
from ray.tune.search import Searcher
from ray.tune.search.sample import Categorical, Domain, Integer
from ray.tune.utils import flatten_dict

# Proposals asked for before a repeat is run after all: a space TPE has narrowed to configurations all tried.
ATTEMPTS = 3


class DistinctConfigurations(Searcher):
    """`searcher`, minus repeats on a finite space: a repeat proposal is told back as failed and the searcher
    asked again; after `attempts` repeats in a row (TPE has narrowed its proposals to configurations all
    tried) the trial takes a configuration drawn at random among those not yet run, which the searcher is
    told of once the trial completes. Once every configuration has run, the search ends."""

    def __init__(self, searcher: Searcher, seed: int, attempts: int = ATTEMPTS):
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher = searcher
        self.attempts = attempts
        self.random = np.random.RandomState(seed)
        self.space: dict = {}
        self.size = 0  # configurations in a finite space; 0 for a space with a continuous key
        self.seen: set[str] = set()
        self.inner_ids: dict[str, str] = {}  # Tune's trial id -> the id the searcher proposed it under
        self.drawn: dict[str, dict] = {}  # trials drawn here instead: their configuration

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        self.space = _searched(config)
        domains = _domains(self.space)
        finite = bool(domains) and all(isinstance(d, (Categorical, Integer)) for d in domains)
        self.size = math.prod(len(d.categories) if isinstance(d, Categorical) else d.upper - d.lower
                              for d in domains) if finite else 0
        done = self.searcher.set_search_properties(metric, mode, config, **spec)
        self._metric, self._mode = self.searcher.metric, self.searcher.mode
        return done

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str):
        if self.size and len(self.seen) >= self.size:  # every configuration has run: a repeat learns nothing
            return Searcher.FINISHED
        for attempt in range(self.attempts):
            inner_id = f"{trial_id}-{attempt}" if attempt else trial_id
            config = self.searcher.suggest(inner_id)
            if not isinstance(config, dict) or not self.size:
                self.inner_ids[trial_id] = inner_id
                return config
            if _key(config) not in self.seen:
                self.seen.add(_key(config))
                self.inner_ids[trial_id] = inner_id
                return config
            self.searcher.on_trial_complete(inner_id, error=True)
        config = self._draw_unseen()
        self.seen.add(_key(config))
        self.drawn[trial_id] = config
        return config

    def _draw_unseen(self) -> dict:
        for _ in range(1000):
            config = _sample(self.space, self.random)
            if _key(config) not in self.seen:
                break
        return config  # every draw a repeat: the space is all but exhausted

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self.drawn:
            self.searcher.on_trial_result(self.inner_ids.get(trial_id, trial_id), result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self.drawn:
            config = self.drawn.pop(trial_id)
            value = (result or {}).get(self.metric)
            # named as OptunaSearch names a nested space's keys
            self.searcher.add_evaluated_point(flatten_dict(config, delimiter="/"), value,
                                              error=error or value is None)
            return
        self.searcher.on_trial_complete(self.inner_ids.pop(trial_id, trial_id), result=result, error=error)

    # Tune saves a wrapper's state and its searcher's apart (SearchGenerator.save_to_dir), and restores both
    def get_state(self) -> dict:
        return copy.deepcopy({name: getattr(self, name) for name in _STATE})

    def set_state(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)


_STATE = ("random", "space", "size", "seen", "inner_ids", "drawn")


class RandomDraws(Searcher):
    """Random search: each key drawn from its domain, seeded; `points` (nested as the space) run first."""

    def __init__(self, seed: int, points: list[dict] | None = None):
        super().__init__()
        self.random = np.random.RandomState(seed)
        self.points = list(points or [])
        self.space: dict = {}

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        self._metric, self._mode = metric, mode
        self.space = _searched(config)
        return True

    def suggest(self, trial_id: str) -> dict:
        return self.points.pop(0) if self.points else _sample(self.space, self.random)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass  # draws do not depend on results

    def add_evaluated_point(self, *args, **kwargs) -> None:
        pass  # a configuration DistinctConfigurations drew in its place: nothing to learn

    def get_state(self) -> dict:
        return copy.deepcopy({"random": self.random, "points": self.points})

    def set_state(self, state: dict) -> None:
        self.random, self.points = state["random"], state["points"]

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.get_state(), file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.set_state(pickle.load(file))


def _key(config: dict) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def _searched(config: dict) -> dict:
    """The sampled part of a Tune param space, nested as it is (constants left out)."""
    out = {}
    for name, value in config.items():
        if isinstance(value, dict):
            if inner := _searched(value):
                out[name] = inner
        elif isinstance(value, Domain):
            out[name] = value
    return out


def _domains(space: dict) -> list[Domain]:
    return [d for value in space.values() for d in (_domains(value) if isinstance(value, dict) else [value])]


def _sample(space: dict, random: np.random.RandomState) -> dict:
    return {name: _sample(value, random) if isinstance(value, dict) else value.sample(random_state=random)
            for name, value in space.items()}

