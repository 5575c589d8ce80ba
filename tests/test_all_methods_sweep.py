"""One sweep over every method x every benchmark it fits: it validates, leaves out the pairs that do not fit
(saying why), and runs one short real trial per pair on Ray."""

from __future__ import annotations

import pytest
from test_jepa import PATHVQA_TINY, TINY
from test_sweep_ray import TINY_SYNTHETIC, ray_session  # noqa: F401 - the module-scoped local Ray fixture

from mmray import api
from mmray.config import parse_spec
from mmray.methods import METHODS
from mmray.results import schema

pytestmark = pytest.mark.ray

SMALL = {  # each method at a size that trains in seconds
    "pavlov": {"encoder_width": 8, "hidden_dim": 32, "latent_dim": 16},
    "fusion": {"encoder_width": 8, "hidden_dim": 32, "latent_dim": 16},
    "cpc": {"encoder_width": 8, "z_dim": 16, "c_dim": 16, "patch_size": 4},
    "aecluster": {"encoder_width": 32, "decoder_hidden": 32, "latent_dim": 8},
    "jepa": TINY,
}


def test_every_method_runs_on_every_benchmark_it_fits(tmp_path, ray_session):  # noqa: F811
    from hf_fixtures import pathvqa

    folder = pathvqa(tmp_path / "pathvqa", rows={"train": 48, "validation": 16, "test": 16})
    spec = parse_spec({
        "name": "all-methods", "pairs": "fitting", "methods": METHODS.names(),
        "benchmarks": [{"name": "synthetic-av", "params": TINY_SYNTHETIC},
                       {"name": "pathvqa", "params": {**PATHVQA_TINY, "data_dir": str(folder)}}],
        "method_params": SMALL,
        "train": {"epochs": 1, "batch_size": 16, "probe_examples": 100, "eval_examples": 100},
        "search": {"num_samples": 1}, "scheduler": {"type": "none"},
    }, "all-methods.yaml")
    runs, left_out = spec.runs()
    expected = {("synthetic-av", m) for m in ("pavlov", "fusion", "cpc", "aecluster")} | {
        ("pathvqa", "jepa"), ("pathvqa", "fusion")}
    assert {(entry.name, method) for entry, method in runs} == expected
    assert ("synthetic-av", "jepa") in {(b, m) for b, m, _ in left_out}

    lines: list[str] = []
    out = api.run_sweep(spec, cache_dir=tmp_path / "cache", results_dir=tmp_path / "results", report=False,
                        log=lines.append)
    trials = api.load_results(out).trials
    assert set(zip(trials[schema.BENCHMARK], trials[schema.METHOD])) == expected
    assert (trials[schema.STATUS] == schema.STATUS_COMPLETED).all(), trials[[schema.METHOD, schema.ERROR]]
    assert trials["final/test/fused_acc"].notna().all()
    assert any("not running jepa on synthetic-av" in line for line in lines)
