"""search.first_trial and search.algorithm grid: checked before Ray starts, and real on Ray."""

from __future__ import annotations

import pytest
from test_sweep_ray import TINY_SYNTHETIC, ray_session  # noqa: F401 - the module-scoped local Ray fixture

from mmray import api
from mmray.config import parse_spec
from mmray.errors import SpecError
from mmray.results import schema

BASE = {"name": "s", "benchmarks": [{"name": "synthetic-av", "params": TINY_SYNTHETIC}], "methods": ["pavlov"],
        "train": {"epochs": 1, "batch_size": 64, "probe_examples": 200, "lr": 2e-3},
        "method_params": {"pavlov": {"encoder_width": 8, "hidden_dim": 32, "latent_dim": 16}}}


def test_a_grid_needs_choices_and_a_first_trial_of_defaults_needs_them_inside_the_space():
    with pytest.raises(SpecError, match=r"s.yaml: search.algorithm grid runs every combination of choices; "
                                        r"train.lr is a loguniform range: make it a choice"):
        parse_spec({**BASE, "search_space": {"train.lr": {"loguniform": [1e-3, 3e-3]}},
                    "search": {"algorithm": "grid"}}, "s.yaml")
    with pytest.raises(SpecError, match=r"s.yaml: search.first_trial defaults: pavlov's method.latent_dim is 16, "
                                        r"outside search_space.method.latent_dim \(choice \[4, 8\]\); widen"):
        parse_spec({**BASE, "search_space": {"method.latent_dim": {"choice": [4, 8]}},
                    "search": {"first_trial": "defaults"}}, "s.yaml")
    # the code's default counts where the spec sets none: pavlov's temperature is 0.5
    with pytest.raises(SpecError, match=r"pavlov's method.temperature is 0.5, outside"):
        parse_spec({**BASE, "search_space": {"method.temperature": {"uniform": [0.1, 0.3]}},
                    "search": {"first_trial": "defaults"}}, "s.yaml")


@pytest.mark.ray
@pytest.mark.parametrize("algorithm", ["optuna", "random"])
def test_the_first_trial_runs_the_defaults_and_the_search_goes_on(tmp_path, ray_session, algorithm):  # noqa: F811
    spec = parse_spec({**BASE, "search_space": {"method.latent_dim": {"choice": [8, 16, 32]},
                                                "train.lr": {"loguniform": [1e-3, 3e-3]}},
                       "search": {"algorithm": algorithm, "num_samples": 2, "first_trial": "defaults"},
                       "scheduler": {"type": "none"}})
    out = api.run_sweep(spec, cache_dir=tmp_path / "cache", results_dir=tmp_path / "results", report=False,
                        log=lambda *_: None)
    trials = api.load_results(out).trials
    assert len(trials) == 2
    configs = list(zip(trials[schema.config_column("method", "latent_dim")],
                       trials[schema.config_column("train", "lr")]))
    assert (16, 2e-3) in configs  # exactly the spec's values: a loguniform draw would not hit 2e-3
    assert len(set(configs)) == 2  # and the other trial was drawn


@pytest.mark.ray
def test_a_grid_runs_every_combination_once(tmp_path, ray_session):  # noqa: F811
    spec = parse_spec({**BASE, "search_space": {"method.latent_dim": {"choice": [8, 16]},
                                                "method.temperature": {"choice": [0.3, 0.5]}},
                       "search": {"algorithm": "grid", "num_samples": 7}, "scheduler": {"type": "none"}})
    out = api.run_sweep(spec, cache_dir=tmp_path / "cache", results_dir=tmp_path / "results", report=False,
                        log=lambda *_: None)
    trials = api.load_results(out).trials
    combos = sorted(zip(trials[schema.config_column("method", "latent_dim")],
                        trials[schema.config_column("method", "temperature")]))
    assert combos == [(8, 0.3), (8, 0.5), (16, 0.3), (16, 0.5)]  # num_samples does not repeat a grid


@pytest.mark.ray
def test_tpe_on_a_finite_space_runs_each_configuration_once_then_ends(tmp_path, ray_session):  # noqa: F811
    """Three configurations and six samples asked for: three trials, all different (a repeat would train the
    same curve again), and the search ends there."""
    spec = parse_spec({**BASE, "search_space": {"method.latent_dim": {"choice": [8, 16, 32]}},
                       "search": {"algorithm": "optuna", "num_samples": 6, "startup_trials": 1},
                       "scheduler": {"type": "none"}})
    lines = []
    out = api.run_sweep(spec, cache_dir=tmp_path / "cache", results_dir=tmp_path / "results", report=False,
                        log=lines.append)
    trials = api.load_results(out).trials
    assert sorted(trials[schema.config_column("method", "latent_dim")]) == [8, 16, 32]
    assert any("3 trials, optuna" in line for line in lines), lines
