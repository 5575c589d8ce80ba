"""The spec's search and scheduler sections as Tune objects (issue 26): the defaults, the TPE options, the epoch
budget, and the tabular search benchmark's cached tables and in-process replay. No Ray instance needed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ray.tune.schedulers import AsyncHyperBandScheduler
from ray.tune.search import BasicVariantGenerator, Searcher
from ray.tune.search.optuna import OptunaSearch

from mmray.config import SchedulerConfig, SearchConfig, parse_spec
from mmray.orchestration.distinct import DistinctConfigurations
from mmray.orchestration.sweep import EpochBudget, search_algorithm, trial_scheduler

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "perf"))


def test_the_default_is_multivariate_tpe_under_asha_with_reduction_factor_3():
    spec = parse_spec({"name": "d", "benchmarks": ["synthetic-av"], "methods": ["pavlov"]})
    assert spec.search.algorithm == "optuna" and spec.search.max_epochs is None
    assert (spec.search.multivariate, spec.search.startup_trials) == (True, 5)
    assert (spec.scheduler.type, spec.scheduler.grace_period, spec.scheduler.reduction_factor,
            spec.scheduler.brackets) == ("asha", 1, 3.0, 1)
    searcher = search_algorithm(spec.search, seed=0, concurrency=1)
    assert isinstance(searcher, DistinctConfigurations) and isinstance(searcher.searcher, OptunaSearch)
    assert searcher.searcher._sampler._multivariate and searcher.searcher._sampler._n_startup_trials == 5
    scheduler = trial_scheduler(spec.scheduler, epochs=12)
    assert isinstance(scheduler, AsyncHyperBandScheduler)
    assert [milestone for milestone, _ in scheduler._brackets[0]._rungs] == [9, 3, 1]


def test_tpe_options_reach_the_sampler():
    one = search_algorithm(SearchConfig(algorithm="optuna", startup_trials=7, multivariate=False, seed=2), 1, 1)
    assert isinstance(one, DistinctConfigurations) and isinstance(one.searcher, OptunaSearch)
    sampler = one.searcher._sampler
    assert sampler._n_startup_trials == 7 and not sampler._multivariate and not sampler._group
    assert not sampler._constant_liar
    assert search_algorithm(SearchConfig(algorithm="optuna"), 0, concurrency=2).searcher._sampler._constant_liar
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


def _tpe(space: dict, startup: int = 2) -> DistinctConfigurations:
    searcher = search_algorithm(SearchConfig(algorithm="optuna", startup_trials=startup, metric="m", mode="max"),
                                0, 1)
    searcher.set_search_properties("m", "max", space)
    return searcher


def _run(searcher: DistinctConfigurations, trials: int, score) -> list[dict]:
    configs = []
    for number in range(trials):
        config = searcher.suggest(f"t{number}")
        searcher.on_trial_result(f"t{number}", {"m": score(config), "training_iteration": 1})
        searcher.on_trial_complete(f"t{number}", {"m": score(config)})
        configs.append(config)
    return configs


def test_tpe_on_a_finite_space_never_proposes_a_configuration_twice():
    """Six configurations, one clearly best: plain TPE proposes it again and again once found; the search
    proposes each configuration once (asking TPE again on a repeat, drawing an untried one when TPE keeps
    repeating itself), then ends."""
    from ray import tune

    space = {"method": {"width": tune.choice([8, 16, 32])}, "train": {"lr": tune.randint(0, 2)}}

    def score(config):
        return config["method"]["width"] + 10 * config["train"]["lr"]

    plain = _tpe(space).searcher
    repeats = []
    for number in range(6):
        config = plain.suggest(f"t{number}")
        plain.on_trial_complete(f"t{number}", {"m": score(config)})
        repeats.append(config)
    assert len({str(c) for c in repeats}) < 6
    searcher = _tpe(space)
    configs = _run(searcher, 6, score)
    assert searcher.size == 6 and len({str(c) for c in configs}) == 6  # the whole space, each once
    assert len(searcher.searcher._ot_study.trials) > 6  # TPE was asked again, and told of the drawn ones
    assert searcher.suggest("t6") == Searcher.FINISHED  # then the search ends


def test_a_continuous_space_is_passed_through_and_the_state_survives_a_restore(tmp_path):
    """Saved and restored as Tune does it, through its SearchGenerator: the restored search goes on with
    the configurations not yet run."""
    from ray import tune
    from ray.tune.search import SearchGenerator

    assert _tpe({"lr": tune.loguniform(1e-4, 1e-2)}).size == 0  # not finite: passed through
    space = {"width": tune.choice([8, 16, 32, 64])}
    searcher = _tpe(space)
    first = _run(searcher, 2, lambda config: config["width"])
    SearchGenerator(searcher).save_to_dir(str(tmp_path), session_str="test")
    restored = _tpe(space)
    SearchGenerator(restored).restore_from_dir(str(tmp_path))
    assert restored.seen == searcher.seen and len(restored.seen) == 2
    assert len(restored.searcher._ot_study.trials) == len(searcher.searcher._ot_study.trials)
    rest = _run(restored, 2, lambda config: config["width"])
    assert sorted(c["width"] for c in first + rest) == [8, 16, 32, 64]


def _random(space: dict, seed: int = 0, first: dict | None = None) -> DistinctConfigurations:
    searcher = search_algorithm(SearchConfig(algorithm="random", seed=seed, metric="m", mode="max"), 0, 1,
                                first=first)
    searcher.set_search_properties("m", "max", space)
    return searcher


def test_random_search_runs_each_configuration_of_a_finite_space_once_then_ends(tmp_path):
    """Tune's random search draws repeats (here: fewer than 8 distinct configurations in 8 draws of 8);
    mmray's draws every configuration once, seeded, its first trial where asked, then ends; a restored
    search goes on with the configurations not yet run."""
    from ray import tune
    from ray.tune.search import SearchGenerator
    from ray.tune.search.sample import _BackwardsCompatibleNumpyRng
    from ray.tune.search.variant_generator import generate_variants

    space = {"method": {"width": tune.choice([8, 16, 32, 64])}, "train": {"lr": tune.choice([1e-3, 1e-2])}}
    rng = _BackwardsCompatibleNumpyRng(0)
    tune_draws = [next(generate_variants({"config": space}, random_state=rng))[1]["config"] for _ in range(8)]
    assert len({str(c) for c in tune_draws}) < 8
    configs = _run(_random(space), 8, lambda config: 0.0)
    assert len({str(c) for c in configs}) == 8
    assert configs == _run(_random(space), 8, lambda config: 0.0)  # seeded
    assert configs != _run(_random(space, seed=1), 8, lambda config: 0.0)
    searcher = _random(space)
    _run(searcher, 8, lambda config: 0.0)
    assert searcher.suggest("t8") == Searcher.FINISHED
    first = {("method", "width"): 64, ("train", "lr"): 1e-2}
    assert _run(_random(space, first=first), 1, lambda config: 0.0) == [{"method": {"width": 64},
                                                                          "train": {"lr": 1e-2}}]

    searcher = _random(space)
    before = _run(searcher, 3, lambda config: 0.0)
    SearchGenerator(searcher).save_to_dir(str(tmp_path), session_str="test")
    restored = _random(space)
    SearchGenerator(restored).restore_from_dir(str(tmp_path))
    after = _run(restored, 5, lambda config: 0.0)
    assert len({str(c) for c in before + after}) == 8 and after == configs[3:]
    # a continuous key: nothing to repeat, every draw passed through
    assert _random({"lr": tune.loguniform(1e-4, 1e-2)}).size == 0
