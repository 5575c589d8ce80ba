"""The spec's search and scheduler sections as Tune objects (issue 26): the defaults, the TPE options, the epoch
budget, and the tabular search benchmark's cached tables and in-process replay. No Ray instance needed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ray.tune.schedulers import AsyncHyperBandScheduler
from ray.tune.search import BasicVariantGenerator
from ray.tune.search.optuna import OptunaSearch

from mmray.config import SchedulerConfig, SearchConfig, parse_spec
from mmray.orchestration.sweep import EpochBudget, search_algorithm, trial_scheduler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "perf"))


def test_the_default_is_random_search_under_asha_with_reduction_factor_3():
    spec = parse_spec({"name": "d", "benchmarks": ["synthetic-av"], "methods": ["pavlov"]})
    assert spec.search.algorithm == "random" and spec.search.max_epochs is None
    assert (spec.scheduler.type, spec.scheduler.grace_period, spec.scheduler.reduction_factor,
            spec.scheduler.brackets) == ("asha", 1, 3.0, 1)
    assert isinstance(search_algorithm(spec.search, seed=0, concurrency=1), BasicVariantGenerator)
    scheduler = trial_scheduler(spec.scheduler, epochs=12)
    assert isinstance(scheduler, AsyncHyperBandScheduler)
    assert [milestone for milestone, _ in scheduler._brackets[0]._rungs] == [9, 3, 1]


def test_tpe_options_reach_the_sampler():
    one = search_algorithm(SearchConfig(algorithm="optuna", startup_trials=5, multivariate=True, seed=2), 1, 1)
    assert isinstance(one, OptunaSearch)
    sampler = one._sampler
    assert sampler._n_startup_trials == 5 and sampler._multivariate and sampler._group
    assert not sampler._constant_liar
    assert search_algorithm(SearchConfig(algorithm="optuna"), 0, concurrency=2)._sampler._constant_liar
    # without a searched space there is nothing for TPE to model: the seeded generator runs the fixed config
    assert isinstance(search_algorithm(SearchConfig(algorithm="optuna"), 0, 1, searched=False),
                      BasicVariantGenerator)


def test_brackets_and_no_scheduler():
    assert trial_scheduler(SchedulerConfig(type="none"), epochs=4) is None
    scheduler = trial_scheduler(SchedulerConfig(brackets=2), epochs=12)
    assert [[m for m, _ in b._rungs] for b in scheduler._brackets] == [[9, 3, 1], [9, 3]]


def test_epoch_budget_counts_each_epoch_once():
    budget = EpochBudget(3)
    assert not budget("a", {"epoch": 1}) and not budget("a", {"epoch": 1})  # a restored trial's repeat
    assert not budget("a", {"done": True})  # a result without an epoch
    assert not budget("b", {"epoch": 1})
    assert budget("b", {"epoch": 2}) and budget.stop_all()


def test_spec_refuses_a_bad_budget_and_brackets():
    base = {"name": "d", "benchmarks": ["synthetic-av"], "methods": ["pavlov"]}
    with pytest.raises(Exception, match="max_epochs"):
        parse_spec({**base, "search": {"max_epochs": 0}})
    with pytest.raises(Exception, match="brackets"):
        parse_spec({**base, "scheduler": {"brackets": 0}})


@pytest.mark.parametrize("name", ["pavlov-synthetic-av", "cpc-sine", "fusion-synthetic-av"])
def test_cached_tables_replay_in_process_deterministically(name):
    import search

    table = search.load_table(name)
    assert len(table["curves"]) == len(search.grid(table["space"])) >= 100
    assert all(len(curve) == table["epochs"] for curve in table["curves"].values())
    searchers = {"random": search.SEARCHERS["random"], "default": search.SEARCHERS["default"]}
    runs = [search.search_seed(table["curves"], table["space"], 0, table["epochs"], 8, searchers, in_process=True)
            for _ in range(2)]
    assert runs[0]["runs"]["default"]["scores"] == runs[1]["runs"]["default"]["scores"]
    assert len(runs[0]["runs"]["random"]["scores"]) == 8 * table["epochs"]
    assert len(runs[0]["runs"]["default"]["scores"]) == 8 * table["epochs"]  # the same epoch budget
    summary = search.summarise(runs[:1], list(searchers))
    assert summary["random"]["geometric_mean"] == 1.0
