"""Sweep specification loading: every mistake is one SpecError line naming file, key and choices."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from mmray.config import SearchDim, SweepSpec, load_spec, parse_spec
from mmray.engine.params import TrainParams
from mmray.errors import MmrayError, SpecError

REPO_ROOT = Path(__file__).resolve().parent.parent

DEMO = {
    "name": "demo",
    "description": "pavlov on the generated synthetic-av benchmark",
    "benchmarks": [{"name": "synthetic-av"}],
    "methods": ["pavlov"],
    "seeds": [0],
    "train": {"epochs": 4, "batch_size": 128, "probe_examples": 2000},
    "search_space": {
        "method.latent_dim": {"choice": [16, 32, 64]},
        "method.temperature": {"loguniform": [0.05, 0.5]},
        "method.w_cross": {"uniform": [0.0, 2.0]},
        "train.lr": {"loguniform": [3.0e-4, 3.0e-3]},
    },
    "search": {"algorithm": "optuna", "metric": "val/fused_acc", "mode": "max", "num_samples": 6},
    "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
}


def write(tmp_path: Path, data, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def spec_with(**changes) -> dict:
    data = copy.deepcopy(DEMO)
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return data


def load_error(path: Path, **kwargs) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message, f"SpecError is not one line: {message!r}"
    assert str(path) in message, f"SpecError does not name the file: {message!r}"
    return message


def test_valid_spec_loads(tmp_path):
    spec = load_spec(write(tmp_path, DEMO))
    assert isinstance(spec, SweepSpec)
    assert spec.name == "demo"
    assert [b.name for b in spec.benchmarks] == ["synthetic-av"]
    assert spec.methods == ["pavlov"]
    assert spec.search.num_samples == 6 and spec.search.metric == "val/fused_acc"
    assert spec.search_space["method.latent_dim"].kind == "choice"
    assert spec.search_space["method.temperature"].loguniform == (0.05, 0.5)
    assert spec.search_space["method.w_cross"].kind == "uniform"
    train = spec.train_params
    assert isinstance(train, TrainParams) and train.epochs == 4 and train.probe_examples == 2000


def test_benchmark_names_plain_strings_and_pinned_values(tmp_path):
    data = spec_with(benchmarks=["synthetic-av"])
    data["search_space"]["method.hidden_dim"] = 128  # a plain value pins the parameter
    data["search_space"]["train.epochs"] = {"int": [1, 3]}
    spec = load_spec(write(tmp_path, data))
    assert spec.benchmarks[0].name == "synthetic-av"
    assert spec.benchmarks[0].params["n_train"] == 3000  # the benchmark's default, written out
    assert spec.search_space["method.hidden_dim"].choice == [128]
    assert spec.search_space["train.epochs"].int == (1, 3)


def test_a_validated_spec_holds_every_default_as_sweep_yaml_records_it(tmp_path):
    spec = load_spec(write(tmp_path, spec_with(train={"epochs": 2})))
    assert spec.train == {**TrainParams().model_dump(), "epochs": 2}
    assert spec.method_params["pavlov"]["temperature"] == 0.5 and "w_orthogonality" in spec.method_params["pavlov"]
    again = parse_spec(yaml.safe_load(yaml.safe_dump(spec.model_dump(mode="json"))))
    assert again == spec  # what sweep.yaml holds reads back as the same spec


def test_trial_config_fills_defaults_without_rejecting_a_drawn_combination():
    from mmray.config import TrialConfig

    spec = parse_spec(DEMO)
    trial = TrialConfig.for_run(spec, spec.benchmarks[0], "pavlov", 0, run="r", mirror=None, cache_dir="/c",
                                results_dir="/r")
    drawn = TrialConfig.model_validate({**trial.model_dump(), "method_params": {"hidden_dim": 8},
                                        "train": {"lr": 0.01}})
    # the model rejects latent 64 > hidden 8 when built, failing that trial; the recorder still reads it
    assert drawn.method_params["hidden_dim"] == 8 and drawn.method_params["latent_dim"] == 64
    assert drawn.train.epochs == TrainParams().epochs and drawn.train.lr == 0.01
    assert drawn.config_columns()["config/train/epochs"] == TrainParams().epochs


def test_override_applies(tmp_path):
    path = write(tmp_path, DEMO)
    spec = load_spec(path, overrides={"search.num_samples": 2, "train.epochs": 1})
    assert spec.search.num_samples == 2
    assert spec.train_params.epochs == 1
    assert load_spec(path).search.num_samples == 6  # the file itself is untouched


def test_override_is_validated(tmp_path):
    message = load_error(write(tmp_path, DEMO), overrides={"search.num_samples": 0})
    assert "search.num_samples" in message


def test_unknown_top_level_key(tmp_path):
    message = load_error(write(tmp_path, spec_with(bogus=1)))
    assert "'bogus'" in message
    for valid in ("name", "benchmarks", "methods", "search_space", "search", "scheduler"):
        assert valid in message


def test_unknown_key_inside_search(tmp_path):
    data = spec_with(search__samples=3)
    message = load_error(write(tmp_path, data))
    assert "search.samples" in message
    for valid in ("algorithm", "metric", "mode", "num_samples", "seed"):
        assert valid in message


def test_unknown_key_inside_benchmark_entry(tmp_path):
    message = load_error(write(tmp_path, spec_with(benchmarks=[{"name": "synthetic-av", "parms": {}}])))
    assert "parms" in message and "params" in message


def test_unknown_method(tmp_path):
    message = load_error(write(tmp_path, spec_with(methods=["pavolv"])))
    assert "'pavolv'" in message and "methods" in message
    assert "pavlov" in message.split("valid")[-1]


def test_unknown_benchmark(tmp_path):
    message = load_error(write(tmp_path, spec_with(benchmarks=[{"name": "mnist"}])))
    assert "'mnist'" in message and "benchmarks" in message
    valid = message.split("valid")[-1]
    assert "avmnist" in valid and "synthetic-av" in valid


@pytest.mark.parametrize("low_high", [[2.0, 1.0], [1.0, 1.0]])
def test_uniform_range_low_not_below_high(tmp_path, low_high):
    data = spec_with()
    data["search_space"]["method.w_cross"] = {"uniform": low_high}
    message = load_error(write(tmp_path, data))
    assert "method.w_cross" in message and "low must be below high" in message


@pytest.mark.parametrize("low_high", [[0.0, 1.0], [-1.0, 0.5]])
def test_loguniform_low_not_positive(tmp_path, low_high):
    data = spec_with()
    data["search_space"]["train.lr"] = {"loguniform": low_high}
    message = load_error(write(tmp_path, data))
    assert "train.lr" in message and "positive" in message


def test_search_dim_needs_exactly_one_kind(tmp_path):
    data = spec_with()
    data["search_space"]["train.lr"] = {"uniform": [0.1, 0.2], "loguniform": [0.1, 0.2]}
    message = load_error(write(tmp_path, data))
    assert "train.lr" in message and "exactly one of choice, uniform, loguniform, int" in message


def test_search_space_unknown_method_parameter(tmp_path):
    data = spec_with()
    data["search_space"]["method.nope"] = {"choice": [1, 2]}
    message = load_error(write(tmp_path, data))
    assert "search_space.method.nope" in message and "'nope'" in message
    for valid in ("latent_dim", "hidden_dim", "temperature", "w_cross"):
        assert valid in message


def test_search_space_unknown_scope(tmp_path):
    data = spec_with()
    data["search_space"]["model.latent_dim"] = {"choice": [1]}
    message = load_error(write(tmp_path, data))
    assert "model.latent_dim" in message and "train" in message and "method" in message


def test_search_space_value_of_wrong_type(tmp_path):
    data = spec_with()
    data["search_space"]["method.latent_dim"] = {"choice": [16, "big"]}
    message = load_error(write(tmp_path, data))
    assert "method.latent_dim" in message and "latent_dim" in message


def test_search_space_benchmark_parameter(tmp_path):
    data = spec_with()
    data["search_space"]["benchmark.n_mels"] = {"choice": [16, 32]}
    assert load_spec(write(tmp_path, data)).search_space["benchmark.n_mels"].choice == [16, 32]
    data["search_space"]["benchmark.n_nope"] = {"choice": [1]}
    message = load_error(write(tmp_path, data, "bad.yaml"))
    assert "n_nope" in message and "n_mels" in message and "n_train" in message


def test_train_parameter_of_wrong_type(tmp_path):
    message = load_error(write(tmp_path, spec_with(train={"epochs": "many"})))
    assert "train" in message and "'epochs'" in message and "integer" in message


def test_unknown_train_parameter(tmp_path):
    message = load_error(write(tmp_path, spec_with(train={"epocs": 3})))
    assert "'epocs'" in message and "epochs" in message and "batch_size" in message


def test_unknown_method_params_parameter(tmp_path):
    message = load_error(write(tmp_path, spec_with(method_params={"pavlov": {"latent": 3}})))
    assert "'latent'" in message and "latent_dim" in message


def test_a_rule_across_method_fields_counts_the_values_the_search_draws(tmp_path):
    # hidden_dim 32 below latent_dim's default 64: every trial would fail as it builds its model
    message = load_error(write(tmp_path, spec_with(method_params={"pavlov": {"hidden_dim": 32}},
                                                   search_space={"train.lr": {"loguniform": [1e-4, 1e-2]}})))
    assert "latent_dim 64 must not exceed hidden_dim 32" in message and "method_params.pavlov" in message
    # the same fixed hidden_dim with a searched latent_dim that fits it: fine, and sweep.yaml reads back
    spec = load_spec(write(tmp_path, spec_with(method_params={"pavlov": {"hidden_dim": 32}},
                                               search_space={"method.latent_dim": {"choice": [16, 32]}})))
    assert spec.method_params["pavlov"]["hidden_dim"] == 32
    assert parse_spec(yaml.safe_load(yaml.safe_dump(spec.model_dump(mode="json")))) == spec
    # a space where only some draws break the rule is the search's to explore (those trials fail alone)
    load_spec(write(tmp_path, spec_with(search_space={"pavlov.hidden_dim": {"choice": [32, 8]}},
                                        method_params={"pavlov": {"latent_dim": 16}})))
    message = load_error(write(tmp_path, spec_with(search_space={"pavlov.hidden_dim": {"choice": [16, 8]}})))
    assert "must not exceed hidden_dim" in message and "search_space's hidden_dim" in message


def test_bad_benchmark_params(tmp_path):
    data = spec_with(benchmarks=[{"name": "synthetic-av", "params": {"n_trian": 10}}])
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, data))
    message = str(info.value)
    assert "\n" not in message and "n_trian" in message and "n_train" in message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    message = load_error(path)
    assert "does not exist" in message


def test_invalid_yaml(tmp_path):
    message = load_error(write(tmp_path, "name: demo\nmethods: [pavlov\nseeds: 0\n"))
    assert "not valid YAML" in message


def test_top_level_not_a_mapping(tmp_path):
    message = load_error(write(tmp_path, "- just\n- a list\n"))
    assert "mapping" in message


def test_search_dim_int_range_is_usable():
    dim = SearchDim.model_validate({"int": [1, 5]})
    assert dim.kind == "int" and dim.int == (1, 5) and dim.sample_values() == [1, 5]
    with pytest.raises(ValueError):
        SearchDim.model_validate({"int": [5, 1]})


SWEEP_FILES = sorted((REPO_ROOT / "sweeps").glob("**/*.yaml"))  # sweeps/seeds/ holds the seed presets


def test_there_are_sweep_files():
    assert SWEEP_FILES, "no sweeps/*.yaml found"


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.name)
def test_every_sweep_file_loads(path):
    try:
        spec = load_spec(path)
    except MmrayError as error:  # pretrained weights or a tokenizer this machine lacks: named, with the fix
        if "is not in the local Hugging Face cache" not in str(error):
            raise
        if "tokenizer" in str(error):
            return  # the text cannot even be described without it: nothing more to check offline
        assert "(fetch it once online: hf download" in str(error)
        spec = load_spec(path, {"allow_random_weights": True})
    assert spec.name and spec.methods and spec.benchmarks


def test_pretrained_weights_a_spec_names_must_be_cached_unless_random_weights_are_allowed():
    raw = {"name": "w", "benchmarks": [{"name": "pathvqa", "params": {"image_size": 28}}], "methods": ["jepa"],
           "method_params": {"jepa": {"image_weights": "no-such-org/dinov2", "text_weights": None}},
           "search": {"metric": "val/fused_acc"}}
    with pytest.raises(SpecError) as error:
        parse_spec(raw, "w.yaml")
    assert str(error.value) == (
        "w.yaml: on pathvqa, jepa: image_weights 'no-such-org/dinov2' is not in the local Hugging Face cache "
        "(fetch it once online: hf download no-such-org/dinov2). Or set those weights to null for random "
        "initialisation, or allow_random_weights: true (tests)")
    spec = parse_spec({**raw, "allow_random_weights": True}, "w.yaml")
    assert spec.allow_random_weights and spec.method_params["jepa"]["image_weights"] == "no-such-org/dinov2"


@pytest.mark.parametrize("method, benchmark, reason", [
    ("pavlov", "mnist-captions", "handles image and audio modalities only; 'caption' is text"),
    ("cpc", "pathvqa", "handles image and audio modalities only; 'question' is text"),
    ("aecluster", "sine", "needs at least 2 modalities, the benchmark has 1"),
    ("jepa", "avmnist", "text"),
    ("fusion", "sine", "needs at least 2 modalities"),
])
def test_method_that_cannot_use_a_benchmark_fails_validation(method, benchmark, reason):
    from mmray.config import parse_spec

    with pytest.raises(SpecError) as info:
        parse_spec({"name": "x", "benchmarks": [benchmark], "methods": [method]}, "pairing.yaml")
    message = str(info.value)
    assert f"pairing.yaml: method {method!r} cannot run on benchmark {benchmark!r}" in message
    assert reason in message


# --- search.metric and search.mode against the results schema --------------------------------------------------

def test_misspelled_search_metric_names_the_close_match(tmp_path):
    message = load_error(write(tmp_path, spec_with(search__metric="val/fused_acuracy")))
    assert ("search.metric 'val/fused_acuracy' is not a metric of synthetic-av x pavlov; "
            "did you mean 'val/fused_acc'?") in message


def test_search_metric_must_be_reported_by_every_run(tmp_path):
    # fusion generates captions on mnist-captions, but avmnist has no caption to generate
    data = spec_with(benchmarks=["mnist-captions", "avmnist"], methods=["fusion"], search_space={},
                     search={"metric": "val/bleu_caption"})
    message = load_error(write(tmp_path, data))
    assert "search.metric 'val/bleu_caption' is not a metric of avmnist x fusion" in message
    data["benchmarks"] = ["mnist-captions"]
    assert load_spec(write(tmp_path, data)).search.mode == "max"


def test_of_the_training_columns_only_the_total_loss_is_a_search_metric(tmp_path):
    message = load_error(write(tmp_path, spec_with(search={"metric": "train/orthogonality"})))
    assert "only train/loss is known before a run" in message


def test_search_mode_against_the_metric_direction_is_refused(tmp_path):
    message = load_error(write(tmp_path, spec_with(search__mode="min")))
    assert ("search.mode 'min' contradicts search.metric 'val/fused_acc', where higher is better; "
            "set search.mode: max or leave mode out") in message
    message = load_error(write(tmp_path, spec_with(search={"metric": "val/alignment_image_audio", "mode": "max"})))
    assert "where lower is better; set search.mode: min" in message


@pytest.mark.parametrize("search, mode", [
    ({}, "max"),  # the default metric, val/fused_acc
    ({"metric": "test/recall@5_audio_to_image"}, "max"),
    ({"metric": "val/uniformity_fused"}, "min"),
    ({"metric": "train/loss"}, "min"),
])
def test_search_mode_left_out_is_the_metric_direction(tmp_path, search, mode):
    assert load_spec(write(tmp_path, spec_with(search=search))).search.mode == mode
