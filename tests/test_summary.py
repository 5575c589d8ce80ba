"""Leaderboards with confidence intervals over seeds, ranks, Pareto fronts and parameter importances."""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import pytest

from mmray.results import schema
from mmray.results.summary import (
    BEST_OF_SEARCH,
    NOT_VARIED,
    benchmark_ranks,
    choose_unit,
    ci_column,
    config_labels,
    format_ci,
    leaderboard_ci,
    leaderboard_tables,
    mean_ci,
    optuna_study,
    param_importances,
    pareto_front,
    terminal_leaderboard,
    welch_p,
)

METRIC = "val/fused_acc"


def trials(rows: list[tuple]) -> pd.DataFrame:
    """(benchmark, method, seed, lr, val score, test score) rows as a trials table."""
    return pd.DataFrame([{schema.TRIAL_ID: f"t{i}", schema.BENCHMARK: b, schema.METHOD: m, schema.SEED: s,
                          "config/train/lr": lr, "config/train/epochs": 4, "best/" + METRIC: v,
                          "best/test/fused_acc": t}
                         for i, (b, m, s, lr, v, t) in enumerate(rows)])


def test_mean_ci_uses_the_t_distribution():
    mean, half = mean_ci([1, 2, 3, 4, 5])
    # sd 1.5811, sem 0.7071, t(0.975, df=4) = 2.7764
    assert mean == 3 and half == pytest.approx(2.7764 * 0.70711, rel=1e-4)
    assert mean_ci([1, 2, 3, 4, 5], confidence=0.99)[1] > half
    assert mean_ci([0.7, np.nan])[0] == 0.7 and math.isnan(mean_ci([0.7, np.nan])[1])  # one seed: no interval
    assert all(math.isnan(v) for v in mean_ci([]))


def test_welch_p():
    assert welch_p([0.90, 0.91, 0.92], [0.50, 0.51, 0.52]) < 0.001
    assert welch_p([0.70, 0.80, 0.75], [0.72, 0.78, 0.74]) > 0.5
    assert welch_p([0.5, 0.5], [0.5, 0.5]) == 1.0 and welch_p([0.5, 0.5], [0.6, 0.6]) == 0.0
    assert math.isnan(welch_p([0.5], [0.6, 0.7]))


def test_config_labels_name_what_varies_and_ignore_the_seed():
    table = trials([("b", "m", 0, 1e-3, .5, .5), ("b", "m", 1, 1e-3, .6, .6), ("b", "m", 0, 3e-3, .7, .7),
                    ("b", "other", 0, 1e-3, .5, .5)])
    labels = config_labels(table)
    assert list(labels) == ["lr=0.001", "lr=0.001", "lr=0.003", NOT_VARIED]


SEEDED = trials([
    # method a: lr 1e-3 over three seeds (best), lr 3e-3 over three seeds, and one lucky unrepeated sample
    ("b1", "a", 0, 1e-3, .80, .78), ("b1", "a", 1, 1e-3, .82, .80), ("b1", "a", 2, 1e-3, .81, .79),
    ("b1", "a", 0, 3e-3, .70, .69), ("b1", "a", 1, 3e-3, .72, .70), ("b1", "a", 2, 3e-3, .71, .70),
    ("b1", "a", 0, 2e-3, .95, .90),
    # method b: clearly worse; method c: as good as a within noise
    ("b1", "b", 0, 1e-3, .60, .60), ("b1", "b", 1, 1e-3, .61, .60), ("b1", "b", 2, 1e-3, .59, .58),
    ("b1", "c", 0, 1e-3, .78, .77), ("b1", "c", 1, 1e-3, .84, .80), ("b1", "c", 2, 1e-3, .80, .79),
    ("b2", "b", 0, 1e-3, .50, .50), ("b2", "b", 1, 1e-3, .52, .50),
    ("b2", "a", 0, 1e-3, .40, .40), ("b2", "a", 1, 1e-3, np.nan, np.nan),  # a failed trial: one value left
])


def test_leaderboard_ci_means_intervals_and_distinguishability():
    board = leaderboard_ci(SEEDED, METRIC, "max", columns=("test/fused_acc",))
    b1 = board[board[schema.BENCHMARK] == "b1"].set_index(schema.METHOD)
    assert list(b1.index) == ["a", "c", "b"] and list(b1["rank"]) == [1, 2, 3]
    # the lucky single-seed configuration (0.95) does not win over one measured with three seeds
    assert b1.loc["a", "config"] == "lr=0.001" and b1.loc["a", "seeds"] == 3
    assert b1.loc["a", METRIC] == pytest.approx(0.81)
    assert b1.loc["a", ci_column(METRIC)] == pytest.approx(mean_ci([.80, .82, .81])[1])
    assert b1.loc["a", "test/fused_acc"] == pytest.approx(0.79)
    assert list(b1["distinguishable"]) == ["top", "no", "yes"]
    assert b1.loc["b", "p_vs_top"] < 0.05 < b1.loc["c", "p_vs_top"]
    b2 = board[board[schema.BENCHMARK] == "b2"].set_index(schema.METHOD)
    assert list(b2.index) == ["b", "a"] and b2.loc["a", "seeds"] == 1
    assert b2.loc["a", "distinguishable"] == "n/a"  # one seed left: nothing to test
    text = format_ci(board)
    assert text.loc[0, METRIC] == f"0.810 ± {b1.loc['a', ci_column(METRIC)]:.3f}"
    assert ci_column(METRIC) not in text


def test_leaderboard_ci_minimises_a_loss():
    loss = SEEDED.assign(**{"best/train/loss": 1 - SEEDED["best/" + METRIC]})
    board = leaderboard_ci(loss, "train/loss", "min")
    assert board.iloc[0][schema.METHOD] == "a" and board.iloc[0]["train/loss"] == pytest.approx(0.19)


def test_search_unit_takes_each_seeds_best_trial():
    board = leaderboard_ci(SEEDED, METRIC, "max", unit="search")
    a = board[(board[schema.BENCHMARK] == "b1") & (board[schema.METHOD] == "a")].iloc[0]
    assert a["config"] == BEST_OF_SEARCH and a["seeds"] == 3
    assert a[METRIC] == pytest.approx(np.mean([.95, .82, .81]))
    with pytest.raises(ValueError, match="unit must be"):
        leaderboard_ci(SEEDED, METRIC, unit="trial")
    with pytest.raises(KeyError, match="best/val/bogus_acc"):
        leaderboard_ci(SEEDED, "val/bogus_acc")


def test_terminal_leaderboard_shows_mean_and_interval_over_seeds():
    text = terminal_leaderboard(SEEDED, METRIC, "max")
    lines = text.splitlines()
    assert lines[0] == "b1" and "b2" in lines
    assert lines[1].split() == ["method", "rank", "seeds", METRIC, "test/fused_acc", "p_vs_top", "distinguishable",
                                "config"]
    a = lines[2]
    assert a.split()[:4] == ["a", "1", "3", "0.810"]
    assert f"0.810 ± {mean_ci([.80, .82, .81])[1]:.3f}" in a and f"0.790 ± {mean_ci([.78, .80, .79])[1]:.3f}" in a
    assert "0.95" not in text  # not the luckiest single trial
    assert terminal_leaderboard(SEEDED.iloc[:0], METRIC, "max") == "(no finished trial has a score yet)"


def test_report_and_terminal_show_the_same_leaderboard():
    from mmray.report.common import ReportContext
    from mmray.report.leaderboards import leaderboard_section
    from mmray.results.io import Results

    page = leaderboard_section(ReportContext(Results(SEEDED, pd.DataFrame(), "results/x"), METRIC, "max"))
    text = terminal_leaderboard(SEEDED, METRIC, "max")
    tables = leaderboard_tables(SEEDED, METRIC, "max")
    assert list(tables) == ["b1", "b2"]
    for table in tables.values():
        for cell in table.astype(str).to_numpy().ravel():
            assert html.escape(cell) in page and cell in text, cell


def test_choose_unit():
    assert choose_unit(SEEDED) == "config"  # configurations repeat over seeds
    each_seed_searched = trials([("b", "m", 0, 1e-3, .5, .5), ("b", "m", 1, 2e-3, .6, .6)])
    assert choose_unit(each_seed_searched) == "search"
    assert choose_unit(each_seed_searched[each_seed_searched[schema.SEED] == 0]) == "config"


def test_benchmark_ranks():
    ranks = benchmark_ranks(leaderboard_ci(SEEDED, METRIC))
    assert ranks.loc["a", "b1"] == 1 and ranks.loc["a", "b2"] == 2 and ranks.loc["a", "mean rank"] == 1.5
    assert math.isnan(ranks.loc["c", "b2"]) and ranks.loc["c", "mean rank"] == 2
    assert list(ranks.index) == ["a", "b", "c"]  # b (ranks 3, 1) and c (2) tie on 2: by name


def test_pareto_front():
    cost = [10, 20, 30, 15, 40, np.nan, 20]
    quality = [0.5, 0.7, 0.9, 0.4, 0.85, 0.99, 0.7]
    assert list(pareto_front(cost, quality)) == [True, True, True, False, False, False, True]
    assert list(pareto_front([1, 2, 3], [0.1, 0.2, 0.05], higher_is_better=False)) == [True, False, True]


def test_param_importances_find_the_value_that_matters():
    rng = np.random.default_rng(0)
    n = 40
    table = pd.DataFrame({schema.BENCHMARK: "b", schema.METHOD: "m", schema.SEED: 0,
                          "config/train/lr": np.exp(rng.uniform(np.log(1e-4), np.log(1e-2), n)),
                          "config/method/latent_dim": rng.choice([16, 32, 64], n),
                          "config/train/epochs": 4})
    table["best/" + METRIC] = -np.abs(np.log10(table["config/train/lr"]) + 3) + rng.normal(0, 0.01, n)
    space = {"train.lr": {"loguniform": [1e-4, 1e-2], "choice": None},
             "method.latent_dim": {"choice": [16, 32, 64]}}
    study = optuna_study(table, METRIC, "max", space)
    assert len(study.trials) == n and study.direction.name == "MAXIMIZE"
    lr, dim = (study.trials[0].distributions[k] for k in ("train/lr", "method/latent_dim"))
    assert lr.log and (lr.low, lr.high) == (1e-4, 1e-2) and list(dim.choices) == [16, 32, 64]
    importances = param_importances(table, METRIC, "max", space)
    assert set(importances.index) == {"train/lr", "method/latent_dim"}  # epochs did not vary
    assert importances["train/lr"] > 0.8 and importances.sum() == pytest.approx(1)
    assert param_importances(table.head(1), METRIC).empty
