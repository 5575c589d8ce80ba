"""The command line: help that explains, one-line errors with exit code 2, data commands end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mmray.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]

SMALL = ["--set", "n_train=120", "--set", "n_val=30", "--set", "n_test=30"]


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "mmray.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("sweep", "report", "data", "list", "examples:"):
        assert command in out.stdout


def test_python_dash_m_mmray_is_the_command_line():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "mmray", *args], capture_output=True, text=True, check=False)

    helped = run("--help")
    assert helped.returncode == 0 and "usage: mmray" in helped.stdout and "examples:" in helped.stdout
    listed = run("list")
    assert listed.returncode == 0 and "pavlov: latent_dim=64" in listed.stdout and "avmnist:" in listed.stdout
    failed = run("data", "info", "no-such-benchmark")  # an mmray error keeps its one line and exit code 2
    assert failed.returncode == 2 and failed.stderr.startswith("mmray: error: unknown benchmark")


@pytest.mark.parametrize("command", ["sweep", "report", "data"])
def test_subcommand_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: mmray " + command in capsys.readouterr().out


def test_sweep_help_explains_resume_and_overrides(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = capsys.readouterr().out
    assert "--resume" in text and "--set KEY=VALUE" in text and "--mirror" in text


def test_validate_demo_spec(capsys):
    assert main(["sweep", str(REPO_ROOT / "sweeps" / "demo.yaml"), "--validate"]) == 0
    assert "valid" in capsys.readouterr().out


def test_bad_spec_is_one_line_with_exit_code_2(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nbenchmarks: [synthetic-av]\nmethods: [nope]\n")
    assert main(["sweep", str(spec), "--validate"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(spec) in err and "nope" in err and "pavlov" in err


def test_bad_override_names_the_expected_form(capsys):
    assert main(["sweep", str(REPO_ROOT / "sweeps" / "demo.yaml"), "--set", "train.epochs", "--validate"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_unknown_benchmark_lists_the_valid_ones(capsys, tmp_path):
    assert main(["data", "prepare", "nope", "--cache", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "synthetic-av" in err and "avmnist" in err


def test_data_prepare_info_verify(tmp_path, capsys):
    cache = ["--cache", str(tmp_path)]
    assert main(["data", "info", "synthetic-av", *SMALL, *cache]) == 2
    assert "mmray data prepare synthetic-av" in capsys.readouterr().err
    assert main(["data", "prepare", "synthetic-av", *SMALL, *cache]) == 0
    assert "train      120 rows" in capsys.readouterr().out
    assert main(["data", "info", "synthetic-av", *SMALL, *cache]) == 0
    assert "image (image) (1, 28, 28)" in capsys.readouterr().out
    assert main(["data", "verify", "synthetic-av", *SMALL, *cache]) == 0
    assert "verified" in capsys.readouterr().out


def test_list_shows_methods_benchmarks_and_their_parameters(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "pavlov: latent_dim=64" in out and "avmnist:" in out and "synthetic-av:" in out


@pytest.mark.parametrize("command", [["report"], ["best"], ["export", "--out", "model"]])
def test_a_folder_without_finished_trials_is_one_line(command, tmp_path, capsys):
    """No results at all, and a sweep's folder whose first trial has not ended (only sweep.yaml written yet):
    each one line that says which, exit code 2."""
    started = tmp_path / "started"
    started.mkdir()
    (started / "sweep.yaml").write_text("name: started\n")
    for folder, expected in [(tmp_path, "is not a sweep's results folder"), (started, "holds no finished trial yet")]:
        assert main([*command, str(folder)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("mmray: error: ") and expected in err and err.count("\n") == 1, err
