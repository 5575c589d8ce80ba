"""The analysis notebooks run top to bottom (nbclient) on a results folder: any cell error fails the test.

The folder is written through the public API (mmray.report.synthetic + mmray.results.io.write_table): the
same tables, columns and artifacts a real sweep writes, without a minutes-long Ray sweep in the test.
"""

from __future__ import annotations

import nbformat
import pytest
from conftest import REPO_ROOT
from nbclient import NotebookClient

from mmray.report.synthetic import synthetic_results

NOTEBOOKS = sorted((REPO_ROOT / "analysis").glob("*.ipynb"))


@pytest.fixture(scope="module")
def results_folder(tmp_path_factory):
    return synthetic_results(tmp_path_factory.mktemp("results"), n_trials=24, epochs=3, benchmarks=2,
                             methods=2, seeds=2)


def test_the_three_notebooks_are_there_without_outputs():
    assert [p.name for p in NOTEBOOKS] == ["leaderboard.ipynb", "method_deep_dive.ipynb", "search_space.ipynb"]
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        assert all(not c.get("outputs") and c.get("execution_count") is None
                   for c in cells if c.cell_type == "code"), f"{path.name} is committed with outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, results_folder, monkeypatch):
    monkeypatch.setenv("MMRAY_RESULTS", str(results_folder))  # the kernel inherits this environment
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()  # raises on a cell error
    text = "\n".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert f"{results_folder}: 24 trials" in text  # it read the folder it was given, not results/demo
