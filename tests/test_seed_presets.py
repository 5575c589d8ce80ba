"""Every seed preset (sweeps/seeds/*.yaml) trains one short trial on fixture data in each dataset's true layout:
the preset's own benchmark, method and parameters, as `TrialConfig.for_run` turns the parsed spec into a
trial, shrunk only in size (data, epochs, batch). The trial runs in this process (`fit_local`: the model, epoch
loop and evaluation a Ray trial runs) because nine Ray trial start-ups would take minutes; the Ray path
itself is tested in test_sweep_ray.py. jepa runs with allow_random_weights (its weights are not cached here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from hf_fixtures import word_tokenizer, write_mirror
from test_bad_input import make_avmnist
from test_cremad import make_cremad
from test_jepa import FIXTURE_WORDS

from mmray.config import TrialConfig, parse_spec
from mmray.data import prepare
from mmray.engine import local
from mmray.engine.local import fit_local
from mmray.engine.training import build_method, seed_everything

PRESETS = Path(__file__).resolve().parent.parent / "sweeps" / "seeds"
SMALL_TRAIN = {"epochs": 1, "batch_size": 16, "probe_examples": 100, "eval_examples": 64}
# per preset: benchmark params merged into its own (sizes only), and spec keys set on top of it
SHRINK = {
    "pavlov-avmnist": {"params": {"n_val_images": 15}},  # val rows > k = 10 for clustering
    "aecluster-mnist-fsdd": {"params": {"n_val_images": 15}},
    "pavlov-cremad": {"params": {}},
    "cpc-cifar2-image": {"params": {"n_val_images": 10}},
    "cpc-sine-audio": {"params": {"n_train": 64, "n_val": 32, "n_test": 32}},
    "cpc-multimodal": {"params": {"n_train": 64, "n_val": 32, "n_test": 32}},
    "fusion-mnist-captions": {"params": {}},
    "fusion-animal-faces": {"params": {}},
    "jepa-pathvqa": {"params": {"image_size": 28, "max_length": 12, "answer_max_length": 6},
                     "spec": {"allow_random_weights": True}},
}


def write_cifar2(root: Path) -> None:
    """`root/cifar10_2class/{train,test}.npz` as the mirror holds them: uint8 RGB, labels 0/1 and class names."""
    folder = root / "cifar10_2class"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 20)):
        np.savez(folder / f"{split}.npz", images=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                 labels=np.arange(n) % 2, class_names=np.array(["airplane", "automobile"]))


@pytest.fixture(scope="module")
def fixture_mirror(tmp_path_factory) -> Path:
    """One mirror folder holding every dataset a preset reads, each small and in its true layout."""
    root = tmp_path_factory.mktemp("mirror")
    make_avmnist(root)
    make_cremad(root, actors=("1001", "1002", "1003", "1004", "1005"), sentences=("DFA",))
    write_cifar2(root)
    write_mirror(root)
    return root


def shrunk_preset(name: str, tokenizer: Path) -> dict:
    """The preset as a raw spec, one trial of its own defaults (search space and seeds dropped), tiny data."""
    raw = yaml.safe_load((PRESETS / f"{name}.yaml").read_text())
    shrink = SHRINK[name]
    params = {**raw["benchmarks"][0].get("params", {}), **shrink["params"]}
    if raw["benchmarks"][0]["name"] == "pathvqa":
        params["tokenizer"] = str(tokenizer)  # BART's layout; facebook/bart-base needs the hub
    return {**raw, "benchmarks": [{"name": raw["benchmarks"][0]["name"], "params": params}], "seeds": [0],
            "train": {**raw.get("train", {}), **SMALL_TRAIN}, "search_space": {},
            "search": {"metric": raw["search"]["metric"], "num_samples": 1}, "scheduler": {"type": "none"},
            "resources": {"workers_per_trial": 1, "cpus_per_worker": 1, "torch_threads": 1},
            **shrink.get("spec", {})}


def quiet(*_args, **_kwargs):
    pass


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Path:
    return word_tokenizer(tmp_path_factory.mktemp("tokenizer"), FIXTURE_WORDS)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):  # tiny models on a shared machine: a second thread only waits
    yield


def preset_trial(name: str, mirror: Path, cache: Path, tokenizer: Path):
    """The shrunk preset's one trial, as the sweep would configure it: (spec, prepared data, its model)."""
    spec = parse_spec(shrunk_preset(name, tokenizer), f"{name}.yaml")
    (entry, method), = spec.runs()[0]
    config = TrialConfig.for_run(spec, entry, method, spec.seeds[0], run=name, mirror=mirror, cache_dir=cache,
                                 results_dir=cache)
    prepared = prepare(entry.name, config.benchmark_params, mirror=mirror, cache_dir=cache, log=quiet)
    model = build_method(method, prepared.modalities, prepared.num_classes, config.method_params,
                         allow_random_weights=config.allow_random_weights)
    return spec, config, prepared, model


def test_every_preset_is_shrunk_here():
    assert sorted(SHRINK) == sorted(p.stem for p in PRESETS.glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(SHRINK))
def test_a_preset_trains_one_trial_and_reports_its_search_metric(name, fixture_mirror, cache, tokenizer):
    spec, config, prepared, model = preset_trial(name, fixture_mirror, cache, tokenizer)
    history = fit_local(model, prepared, train=config.train, augment=config.augment, seed=config.seed)
    assert len(history) == 1 and np.isfinite(history[0]["train/loss"])
    assert np.isfinite(history[0][spec.search.metric])  # the metric the preset's search ranks trials by
    if name == "jepa-pathvqa":  # no pretrained weights offline: random ones, and the model says so
        assert all("random-init" in source for source in model.provenance.values()), model.provenance


def test_cpc_on_images_alone_never_reads_the_tone(fixture_mirror, cache, tokenizer, monkeypatch):
    """cpc-cifar2-image trains on the images only: with every split's tone replaced by loud noise, training
    and evaluation give exactly the same figures, and no audio metric is reported."""
    spec, config, prepared, _ = preset_trial("cpc-cifar2-image", fixture_mirror, cache, tokenizer)
    assert {m.name for m in prepared.modalities} == {"image", "audio"}  # the shards do hold the tone

    def run() -> list[dict]:
        seed_everything(0)  # the same initial weights both times
        model = build_method("cpc", prepared.modalities, prepared.num_classes, config.method_params)
        return fit_local(model, prepared, train=config.train, seed=0)

    plain = run()
    read_split = local.read_split

    def noisy_tone(data, split, *args, **kwargs):
        arrays = read_split(data, split, *args, **kwargs)
        rng = np.random.default_rng(1)
        arrays.modalities["audio"] = 100 * rng.standard_normal(arrays.modalities["audio"].shape, np.float32)
        return arrays

    monkeypatch.setattr(local, "read_split", noisy_tone)  # the training split
    monkeypatch.setattr("mmray.engine.evaluation.read_split", noisy_tone)  # probe, val and test
    noisy = run()
    assert not any("audio" in key for key in plain[-1])

    def figures(history):
        return [{k: v for k, v in epoch.items() if "seconds" not in k} for epoch in history]

    assert figures(plain) == figures(noisy)
