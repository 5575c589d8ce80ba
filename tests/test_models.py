"""Trained models in hand (issue 22): every method's model saved, loaded in a fresh process without Ray and
embedding exactly as it did in training; the evaluation it recorded reproduced; a sweep's trials keeping the
model of their best epoch, listed by `mmray best`, exported and evaluated; models on S3; each bad input by its
one-line message."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mmray import cli
from mmray.data import prepare
from mmray.data.shards import read_split
from mmray.engine.batching import tensor_batches
from mmray.engine.loop import EpochLoop
from mmray.engine.params import TrainParams
from mmray.engine.training import build_method, seed_everything
from mmray.eval.probes import l2_normalize
from mmray.models import load_model
from mmray.models.format import FORMAT_VERSION, INFO, PROBES, WEIGHTS, read_model
from mmray.models.save import save_model
from mmray.results import schema

SYNTHETIC = {"n_train": 256, "n_val": 64, "n_test": 64, "image_size": 16, "n_mels": 16, "frames": 16}
# jepa on the PathVQA-schema fixture (tests/hf_fixtures.pathvqa), tiny, randomly initialised as in test_jepa
PATHVQA = {"image_size": 16, "max_length": 12, "answer_max_length": 6, "vocab_size": 64}
JEPA = {"image_weights": None, "text_weights": None, "image_dim": 32, "image_layers": 1, "image_heads": 2,
        "patch_size": 4, "text_dim": 32, "text_layers": 1, "decoder_layers": 1, "text_heads": 2}
METHODS = ("pavlov", "fusion", "cpc", "aecluster", "jepa")
EMBEDDED_ROWS = 32  # test rows each model embeds in both processes


def _quiet(*_):
    pass


def train_one_epoch(method: str, prepared, method_params: dict, batch_size: int):
    """One epoch of `method` in this process, through the engine's EpochLoop (what a trial's worker runs)."""
    seed_everything(0)
    module = build_method(method, prepared.modalities, prepared.num_classes, method_params)
    params = TrainParams(epochs=1, batch_size=batch_size, probe_examples=128)
    train = read_split(prepared, "train")
    loop = EpochLoop(module, params, prepared)
    for epoch in loop.run(lambda _: tensor_batches(train, batch_size, prepared.modalities, shuffle=True,
                                                   drop_last=True)):
        pass
    return module.eval(), params, epoch


def first_test_rows(prepared) -> dict[str, np.ndarray]:
    test = read_split(prepared, "test")
    return {name: np.ascontiguousarray(values[:EMBEDDED_ROWS]) for name, values in test.modalities.items()}


@torch.no_grad()
def embed_in_process(module, prepared, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    kinds = {m.name: m.kind for m in prepared.modalities}
    batch = {name: torch.from_numpy(values).to(torch.long if kinds[name] == "text" else torch.float32)
             for name, values in rows.items()}
    return {key: value.float().numpy() for key, value in module.eval().embed(batch).items()}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shards")


@pytest.fixture(scope="module")
def shard_sets(cache, tmp_path_factory):
    from hf_fixtures import pathvqa

    rows = {"train": 48, "validation": 12, "test": 12}
    folder = pathvqa(tmp_path_factory.mktemp("pathvqa") / "data", rows=rows)
    return {"synthetic-av": prepare("synthetic-av", SYNTHETIC, cache_dir=cache, log=_quiet),
            "pathvqa": prepare("pathvqa", {**PATHVQA, "data_dir": str(folder)}, cache_dir=cache, log=_quiet)}


@pytest.fixture(scope="module")
def trained(shard_sets, tmp_path_factory) -> dict[str, dict]:
    """Each method trained for one epoch in this process and saved; what the process itself computes of it."""
    root = tmp_path_factory.mktemp("trained")
    out = {}
    for method in METHODS:
        prepared = shard_sets["pathvqa" if method == "jepa" else "synthetic-av"]
        module, params, epoch = train_one_epoch(method, prepared, JEPA if method == "jepa" else {},
                                                batch_size=16 if method == "jepa" else 64)
        probes = epoch.evaluation.probes.fitted()
        folder = root / method
        save_model(folder, module, probes, prepared.manifest, epoch=1, metrics=epoch.metrics,
                   trial={"train": params.model_dump(), "threads": torch.get_num_threads()})
        rows = first_test_rows(prepared)
        np.savez(root / f"{method}-inputs.npz", **rows)
        embeddings = embed_in_process(module, prepared, rows)
        # what the trial's own (scikit-learn) probe of the fused space predicts, as class names
        predicted = probes["fused"].predict(l2_normalize(embeddings["fused"]))
        out[method] = {"folder": folder, "module": module, "prepared": prepared, "rows": rows,
                       "embeddings": embeddings, "metrics": epoch.metrics,
                       "predicted": [prepared.class_names[int(i)] for i in predicted],
                       "inputs": root / f"{method}-inputs.npz", "out": root / f"{method}-embeddings.npz"}
    return out


FRESH_PROCESS = r"""
import json, sys, traceback
import numpy as np
import torch
from mmray import load_model
from mmray.models.evaluate import evaluate_model

jobs, report = json.load(open(sys.argv[1])), {}
for job in jobs:
    try:
        torch.set_num_threads(job["threads"])  # as in the process that trained it
        model = load_model(job["folder"])
        with np.load(job["inputs"]) as arrays:
            inputs = {name: list(arrays[name]) for name in arrays.files}  # an array per input, as users pass
        embeddings = model.embed(**inputs)
        np.savez(job["out"], **embeddings)
        evaluation = evaluate_model(model, cache_dir=job["cache"], log=lambda *_: None)
        report[job["method"]] = {"predicted": model.predict(**inputs), "metrics": evaluation.metrics,
                                 "recorded": evaluation.recorded, "worst": evaluation.largest_difference()}
    except Exception:
        report[job["method"]] = {"error": traceback.format_exc()}
report["ray_modules"] = sorted(name for name in sys.modules if name == "ray" or name.startswith("ray."))
json.dump(report, open(sys.argv[2], "w"))
"""


@pytest.fixture(scope="module")
def fresh_process(trained, cache, tmp_path_factory) -> dict:
    """One new Python process loads every saved model, embeds the same rows, predicts and evaluates them,
    offline, with no default shard cache, from another working directory."""
    work = tmp_path_factory.mktemp("fresh")
    jobs = [{"method": method, "folder": str(t["folder"]), "inputs": str(t["inputs"]), "out": str(t["out"]),
             "cache": str(cache), "threads": torch.get_num_threads()} for method, t in trained.items()]
    (work / "jobs.json").write_text(json.dumps(jobs))
    (work / "fresh.py").write_text(FRESH_PROCESS)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "MMRAY_CACHE": str(work / "no-cache-here")}
    argv = [sys.executable, str(work / "fresh.py"), str(work / "jobs.json"), str(work / "out.json")]
    done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (work / "no-cache-here").exists()
    return json.loads((work / "out.json").read_text())


def test_a_fresh_process_never_imports_ray(fresh_process):
    assert fresh_process["ray_modules"] == []


@pytest.mark.parametrize("method", METHODS)
def test_a_fresh_process_embeds_exactly_as_the_trained_model(method, trained, fresh_process):
    assert "error" not in fresh_process[method], fresh_process[method].get("error")
    ours = trained[method]["embeddings"]
    with np.load(trained[method]["out"]) as theirs:
        assert sorted(theirs.files) == sorted(ours)
        assert "fused" in theirs.files
        for space in ours:
            rows = min(EMBEDDED_ROWS, len(read_split(trained[method]["prepared"], "test").labels))
            assert theirs[space].shape == ours[space].shape == (rows, *ours[space].shape[1:])
            assert np.abs(theirs[space] - ours[space]).max() == 0, space


@pytest.mark.parametrize("method", METHODS)
def test_a_fresh_process_predicts_as_the_trials_probe(method, trained, fresh_process):
    assert "error" not in fresh_process[method], fresh_process[method].get("error")
    assert fresh_process[method]["predicted"] == trained[method]["predicted"]


@pytest.mark.parametrize("method", METHODS)
def test_evaluation_reproduces_every_recorded_test_metric_exactly(method, trained, fresh_process):
    result = fresh_process[method]
    assert "error" not in result, result.get("error")
    recorded = {k: v for k, v in trained[method]["metrics"].items() if k.startswith("test/")}
    assert result["recorded"] == pytest.approx(recorded, abs=0)  # what the model says it recorded
    assert set(recorded) <= set(result["metrics"])
    worst = result["worst"]
    print(f"{method}: {len(recorded)} test metrics, largest difference {worst[1]} ({worst[0]})")
    assert worst[1] == 0, worst
    assert {k: result["metrics"][k] for k in recorded} == recorded


def test_a_model_folder_holds_what_the_issue_lists(trained):
    folder = trained["jepa"]["folder"]
    assert {p.name for p in folder.iterdir()} == {WEIGHTS, PROBES, INFO, "MODEL_CARD.md"}
    from safetensors.torch import load_file

    state = load_file(folder / WEIGHTS)  # plain safetensors, no mmray needed
    assert set(state) == set(trained["jepa"]["module"].state_dict())
    info = json.loads((folder / INFO).read_text())
    assert info["format_version"] == FORMAT_VERSION and info["method"] == "jepa"
    assert info["data"]["benchmark"] == "pathvqa" and info["data"]["params"]["image_size"] == 16
    assert set(info["data"]["tokenizers"]) == {"question", "answer"}  # the shards' own tokenizers
    assert info["architecture"]["image_encoder"]["hidden_size"] == 32  # rebuilt from this, not from a cache
    assert "random-init" in info["weights"]["image_encoder"]
    assert {"mmray", "torch"} <= set(info["versions"])
    card = (folder / "MODEL_CARD.md").read_text()
    assert card.startswith("# jepa on pathvqa") and "random-init" in card and "| test/fused_acc |" in card


def test_jepa_rebuilds_the_architecture_of_its_weights_without_the_folder_they_came_from(shard_sets, tmp_path):
    """A jepa whose image encoder came from a local pretrained folder (hidden size 16, not the params' 32):
    with that folder gone, the model loads from what model.json says and embeds as before."""
    from transformers import Dinov2Config, Dinov2Model

    prepared = shard_sets["pathvqa"]
    pretrained = tmp_path / "dinov2"
    torch.manual_seed(1)
    Dinov2Model(Dinov2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=16,
                             patch_size=4)).save_pretrained(pretrained)
    seed_everything(0)
    module = build_method("jepa", prepared.modalities, prepared.num_classes,
                          {**JEPA, "image_weights": str(pretrained)}).eval()
    assert module.provenance["image_encoder"] == str(pretrained)
    save_model(tmp_path / "model", module, {}, prepared.manifest, epoch=1, metrics={})
    shutil.rmtree(pretrained)
    rows = first_test_rows(prepared)
    model = load_model(tmp_path / "model")
    assert model.module.image_encoder.config.hidden_size == 16
    assert model.module.pixel_mean is not None  # still standardised as a pretrained encoder wants
    assert model.info["weights"]["image_encoder"] == str(pretrained)  # where the weights came from, said
    out = model.embed(**{name: list(values) for name, values in rows.items()})
    for space, values in embed_in_process(module, prepared, rows).items():
        assert np.abs(out[space] - values).max() == 0, space


def test_evaluation_computes_with_the_thread_counts_its_model_was_saved_with(trained, tmp_path):
    """A Ray worker of one CPU runs torch on the trial's torch_threads but BLAS on one thread (Ray sets
    OMP_NUM_THREADS to its CPUs): the model records both, and `mmray eval` computes with both again (with
    BLAS on torch's count, a trial's metrics came back up to 1e-3 off on avmnist)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from mmray.models.evaluate import same_threads

    t = trained["pavlov"]
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threadpool_limits(1, user_api="blas"):
            save_model(tmp_path / "m", t["module"], {}, t["prepared"].manifest, epoch=1, metrics={})
    finally:
        torch.set_num_threads(before)
    recorded = load_model(tmp_path / "m").info["threads"]
    assert recorded == {"torch": 2, "blas": 1}
    with same_threads(recorded):
        assert torch.get_num_threads() == 2
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {1}
    assert torch.get_num_threads() == before


# --- S3 (moto server) ---------------------------------------------------------------------------------------


def test_a_model_saved_to_s3_loads_from_its_uri(trained, new_bucket):
    from pyarrow import fs

    t = trained["pavlov"]
    uri = f"{new_bucket()}/models/pavlov"
    save_model(uri, t["module"], {}, t["prepared"].manifest, epoch=1, metrics=t["metrics"])
    s3, root = fs.FileSystem.from_uri(uri)  # written where asked, read back by pyarrow alone
    listed = s3.get_file_info(fs.FileSelector(root))
    assert {info.base_name for info in listed} == {WEIGHTS, PROBES, INFO, "MODEL_CARD.md"}
    model = load_model(uri)
    assert model.folder == uri
    embeddings = model.embed(**{name: list(rows) for name, rows in t["rows"].items()})
    for space, values in t["embeddings"].items():
        assert np.abs(embeddings[space] - values).max() == 0, space


# --- bad input, each one line -------------------------------------------------------------------------------


def _error(capsys, argv: list[str]) -> str:
    """Run the CLI expecting a user error: exit code 2 and exactly one line on stderr, that line returned."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mmray: error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def pavlov_copy(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained["pavlov"]["folder"], tmp_path / "model"))


def test_a_model_folder_that_does_not_exist(capsys, tmp_path, cache):
    line = _error(capsys, ["eval", str(tmp_path / "nowhere"), "--cache", str(cache)])
    assert f"{tmp_path / 'nowhere'} does not exist" in line


def test_a_folder_that_is_not_a_model(capsys, tmp_path, cache):
    line = _error(capsys, ["eval", str(tmp_path), "--cache", str(cache)])
    assert f"{tmp_path} is not an exported model" in line


def test_a_truncated_weights_file(capsys, pavlov_copy, cache):
    weights = pavlov_copy / WEIGHTS
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    line = _error(capsys, ["eval", str(pavlov_copy), "--cache", str(cache)])
    assert f"{weights} is corrupted or truncated" in line


def test_a_corrupted_weights_file(capsys, pavlov_copy, cache):
    weights = pavlov_copy / WEIGHTS
    data = bytearray(weights.read_bytes())
    middle = slice(len(data) // 2, len(data) // 2 + 8)
    data[middle] = bytes(b ^ 0xFF for b in data[middle])
    weights.write_bytes(bytes(data))  # same size, eight bytes of a tensor flipped
    line = _error(capsys, ["eval", str(pavlov_copy), "--cache", str(cache)])
    assert f"{weights} is corrupted or truncated" in line


def _rewrite_info(folder: Path, change) -> None:
    info = json.loads((folder / INFO).read_text())
    change(info)
    (folder / INFO).write_text(json.dumps(info))


def test_a_truncated_weights_file_whose_checksum_was_rewritten(capsys, pavlov_copy, cache):
    """Past the checksum (someone re-signed a broken file): safetensors' own check, still one line."""
    import hashlib

    weights = pavlov_copy / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:100])
    _rewrite_info(pavlov_copy, lambda info: info["checksums"].update(
        {WEIGHTS: hashlib.sha256(weights.read_bytes()).hexdigest()}))
    line = _error(capsys, ["eval", str(pavlov_copy), "--cache", str(cache)])
    assert f"{weights} cannot be read" in line


def test_a_model_of_another_format_version(capsys, pavlov_copy, cache):
    _rewrite_info(pavlov_copy, lambda info: info.update(format_version=FORMAT_VERSION + 1))
    line = _error(capsys, ["eval", str(pavlov_copy), "--cache", str(cache)])
    assert f"has model format {FORMAT_VERSION + 1}, this mmray reads {FORMAT_VERSION}" in line


def test_weights_that_do_not_fit_the_architecture_its_json_describes(capsys, pavlov_copy, cache):
    _rewrite_info(pavlov_copy, lambda info: info["method_params"].update(latent_dim=8))
    line = _error(capsys, ["eval", str(pavlov_copy), "--cache", str(cache)])
    assert "the weights do not fit pavlov's model" in line


def test_a_benchmark_whose_modalities_differ(capsys, trained, cache):
    sine = ["--set", "n_train=40", "--set", "n_val=8", "--set", "n_test=8", "--set", "n_mels=16",
            "--set", "frames=16"]
    line = _error(capsys, ["eval", str(trained["pavlov"]["folder"]), "--benchmark", "sine", *sine,
                           "--cache", str(cache)])
    assert "the model does not fit sine: sine has modalities ['audio'], the model was trained on " \
           "['audio', 'image']" in line


def test_a_benchmark_variant_whose_image_size_differs(capsys, trained, cache):
    line = _error(capsys, ["eval", str(trained["pavlov"]["folder"]), "--set", "image_size=8",
                           "--cache", str(cache)])
    assert "synthetic-av's image has shape (1, 8, 8), the model's (1, 16, 16)" in line


def test_embedding_text_with_a_model_without_text(capsys, trained, tmp_path):
    line = _error(capsys, ["embed", str(trained["pavlov"]["folder"]), "--text", "a seven",
                           "--out", str(tmp_path / "out.parquet")])
    assert "--text: the model has no text modality" in line
    assert not (tmp_path / "out.parquet").exists()


def test_a_results_folder_that_does_not_exist(capsys, tmp_path):
    line = _error(capsys, ["export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "model")])
    assert str(tmp_path / "nowhere") in line
    line = _error(capsys, ["best", str(tmp_path / "nowhere")])
    assert str(tmp_path / "nowhere") in line


# --- the best epoch, kept as the worker keeps it ----------------------------------------------------------


def test_the_worker_keeps_the_model_of_the_best_epoch_so_far(shard_sets, tmp_path):
    """Three real epochs, the sweep's metric scripted to rise then fall: the model kept is epoch 2's, with
    epoch 2's weights, probes and metrics, and epoch 3 (worse) does not replace it; mode min keeps epoch
    1's."""
    from mmray.config import ResourcesConfig, TrialConfig
    from mmray.orchestration.worker import _keep_if_best

    prepared = shard_sets["synthetic-av"]
    seed_everything(0)
    module = build_method("pavlov", prepared.modalities, prepared.num_classes,
                          {"encoder_width": 8, "hidden_dim": 32, "latent_dim": 16})
    params = TrainParams(epochs=3, batch_size=64, probe_examples=128)
    train = read_split(prepared, "train")
    loop = EpochLoop(module, params, prepared)
    scripted = {1: 0.5, 2: 0.7, 3: 0.6}  # val/fused_acc the trial "reports"
    trials = {mode: TrialConfig(sweep="s", run="r", benchmark="synthetic-av", method="pavlov", seed=0,
                                benchmark_params=SYNTHETIC, method_params={}, train=params,
                                resources=ResourcesConfig(), mirror=None, cache_dir=str(tmp_path),
                                results_dir=str(tmp_path / mode), metric="val/fused_acc", mode=mode,
                                trial_id=f"t_{mode}")
              for mode in ("max", "min")}
    reported, states, kept_epochs = [], {}, {"max": [], "min": []}
    rows = first_test_rows(prepared)
    for epoch in loop.run(lambda _: tensor_batches(train, 64, prepared.modalities, shuffle=True,
                                                    drop_last=True)):
        reported.append({**epoch.metrics, "val/fused_acc": scripted[epoch.number]})
        states[epoch.number] = (embed_in_process(module, prepared, rows), dict(epoch.metrics))
        module.train()
        for mode, trial in trials.items():
            _keep_if_best(trial, module, epoch, reported, prepared.manifest)
            kept_epochs[mode].append(read_model(tmp_path / mode / "models" / trial.trial_id).info["epoch"])
    assert kept_epochs == {"max": [1, 2, 2], "min": [1, 1, 1]}
    for mode, epoch in (("max", 2), ("min", 1)):
        model = load_model(tmp_path / mode / "models" / f"t_{mode}")
        embeddings, metrics = states[epoch]
        assert model.info["trial"]["metric"] == "val/fused_acc" and model.info["trial"]["mode"] == mode
        scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, np.number))}
        assert model.metrics == scalars
        out = model.embed(**{name: list(values) for name, values in rows.items()})
        for space, values in embeddings.items():
            assert np.abs(out[space] - values).max() == 0, (mode, space)
    assert states[2][0]["fused"].tolist() != states[3][0]["fused"].tolist()  # epoch 3 did change the model


# --- a real sweep: every trial keeps its best epoch --------------------------------------------------------


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    import ray

    from mmray import api
    from mmray.orchestration.sweep import ensure_ray

    tmp = tmp_path_factory.mktemp("sweep")
    spec = api.load_spec(_write(tmp / "spec.yaml", {
        "name": "keep",
        "benchmarks": [{"name": "synthetic-av", "params": SYNTHETIC}],
        "methods": ["pavlov"],
        "train": {"epochs": 3, "batch_size": 64, "probe_examples": 128},
        "method_params": {"pavlov": {"encoder_width": 8, "hidden_dim": 32, "latent_dim": 16}},
        "search_space": {"train.lr": {"loguniform": [3.0e-4, 1.0e-2]}},
        "search": {"num_samples": 2, "metric": "val/fused_acc"},
        "scheduler": {"type": "none"},
        "resources": {"torch_threads": 2},  # a worker of 1 CPU: torch on 2 threads, BLAS on 1
    }))
    ensure_ray()
    try:
        out = api.run_sweep(spec, cache_dir=tmp / "cache", results_dir=tmp / "results", report=False,
                            log=_quiet)
    finally:
        ray.shutdown()
    return {"out": Path(out), "cache": tmp / "cache", "results": api.load_results(out)}


def _write(path: Path, spec: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(spec))
    return path


def _best_trial(trials: pd.DataFrame) -> pd.Series:
    return trials.sort_values("best/val/fused_acc", ascending=False, kind="stable").iloc[0]


@pytest.mark.ray
def test_every_trial_keeps_the_model_of_its_best_epoch(sweep):
    trials, epochs = sweep["results"].trials, sweep["results"].epochs
    assert len(trials) == 2 and (trials[schema.EPOCHS_RUN] == 3).all()
    for _, row in trials.iterrows():
        row = row.to_dict()
        trial_id = row[schema.TRIAL_ID]
        assert row[schema.BEST_CHECKPOINT] == f"models/{trial_id}"
        info = read_model(sweep["out"] / "models" / trial_id).info
        assert info["epoch"] == row[schema.BEST_EPOCH]
        assert info["trial"]["trial_id"] == trial_id and info["trial"]["threads"] == 2
        assert info["threads"] == {"torch": 2, "blas": 1}  # what the worker computed with, as it was
        history = epochs[epochs[schema.TRIAL_ID] == trial_id].set_index(schema.EPOCH)["val/fused_acc"]
        assert history.max() == history[row[schema.BEST_EPOCH]]  # the best epoch by the sweep's metric
        assert history.idxmax() == row[schema.BEST_EPOCH]  # the first of equals
        best = {c[len(schema.BEST_PREFIX):]: v for c, v in row.items()
                if c.startswith((schema.BEST_PREFIX + "val/", schema.BEST_PREFIX + "test/"))}
        best = {k: v for k, v in best.items() if pd.notna(v)}
        assert len(best) > 40 and {k: info["metrics"][k] for k in best} == best
    print("best epoch / epochs run:", dict(zip(trials[schema.TRIAL_ID],
                                              zip(trials[schema.BEST_EPOCH], trials[schema.EPOCHS_RUN]))))


@pytest.mark.ray
def test_best_lists_the_best_trial_and_its_model(sweep, capsys):
    assert cli.main(["best", str(sweep["out"])]) == 0
    out = capsys.readouterr().out
    best = _best_trial(sweep["results"].trials)
    assert out.startswith("best trial per benchmark x method by val/fused_acc (higher is better")
    (line,) = [line for line in out.splitlines() if "synthetic-av" in line]
    assert best[schema.TRIAL_ID] in line and str(sweep["out"] / "models" / best[schema.TRIAL_ID]) in line
    assert f"{best['best/val/fused_acc']:.4f}" in line


@pytest.mark.ray
def test_export_of_the_best_trial_evaluates_to_its_recorded_metrics(sweep, capsys, tmp_path):
    best = _best_trial(sweep["results"].trials)
    assert cli.main(["export", str(sweep["out"]), "--trial", "best", "--out", str(tmp_path / "m")]) == 0
    assert capsys.readouterr().out.strip() == f"exported: {tmp_path / 'm'}"
    assert read_model(tmp_path / "m").info["trial"]["trial_id"] == best[schema.TRIAL_ID]
    assert cli.main(["eval", str(tmp_path / "m"), "--cache", str(sweep["cache"])]) == 0
    out = capsys.readouterr().out
    assert "largest difference from the metrics its trial recorded: 0 (test/" in out, out
    line = next(line for line in out.splitlines() if line.strip().startswith("test/fused_acc "))
    assert float(line.split()[-1]) == pytest.approx(best["best/test/fused_acc"], abs=5e-5)


@pytest.mark.ray
def test_export_by_trial_id_reproduces_that_trials_best_epoch_not_its_last(sweep, tmp_path):
    """Each trial exported by its id evaluates to its best/ test metrics exactly. Where its best epoch was not
    its last (it depends on the run; the worker test above makes that case deterministically), the exported
    weights are shown not to be the last epoch's: their metrics differ from the final/ ones."""
    from mmray.models.evaluate import evaluate_model
    from mmray.models.export import export_model

    for _, trial in sweep["results"].trials.iterrows():
        trial_id = trial[schema.TRIAL_ID]
        export_model(sweep["out"], trial_id, tmp_path / trial_id)
        model = load_model(tmp_path / trial_id)
        assert model.info["trial"]["trial_id"] == trial_id and model.info["epoch"] == trial[schema.BEST_EPOCH]
        result = evaluate_model(model, cache_dir=sweep["cache"], log=_quiet)
        recorded = {k[len(schema.BEST_PREFIX):]: v for k, v in trial.items()
                    if k.startswith(schema.BEST_PREFIX + "test/") and pd.notna(v)}
        assert {k: result.metrics[k] for k in recorded} == recorded
        if trial[schema.BEST_EPOCH] < trial[schema.EPOCHS_RUN]:
            final = {k: trial[schema.FINAL_PREFIX + k] for k in recorded}
            assert {k: result.metrics[k] for k in recorded} != final
            print(f"trial {trial_id}: best epoch {trial[schema.BEST_EPOCH]} of {trial[schema.EPOCHS_RUN]}, "
                  f"exported as epoch {model.info['epoch']}; test/fused_acc "
                  f"{result.metrics['test/fused_acc']} (last epoch's: {final['test/fused_acc']})")
        # the same model straight from the results folder, as load_model(RESULTS, trial=ID)
        assert load_model(sweep["out"], trial=trial_id).info == model.info


@pytest.mark.ray
def test_an_unknown_trial_id_is_named(sweep, capsys, tmp_path):
    argv = ["export", str(sweep["out"]), "--trial", "no_such_trial", "--out", str(tmp_path / "m")]
    line = _error(capsys, argv)
    assert "no trial 'no_such_trial' in" in line
    assert not (tmp_path / "m").exists()


@pytest.mark.ray
def test_export_onto_an_existing_model_is_refused(sweep, capsys, tmp_path):
    assert cli.main(["export", str(sweep["out"]), "--out", str(tmp_path / "m")]) == 0
    before = (tmp_path / "m" / WEIGHTS).read_bytes()
    other = sweep["results"].trials[schema.TRIAL_ID].iloc[-1]
    line = _error(capsys, ["export", str(sweep["out"]), "--trial", other, "--out", str(tmp_path / "m")])
    assert f"{tmp_path / 'm'} already holds an exported model" in line
    assert (tmp_path / "m" / WEIGHTS).read_bytes() == before


@pytest.mark.ray
def test_a_results_folder_from_before_best_checkpoints(sweep, capsys, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    for name in (schema.EPOCHS_FILE, schema.SPEC_FILE):
        shutil.copy(sweep["out"] / name, old / name)
    trials = pd.read_parquet(sweep["out"] / schema.TRIALS_FILE).drop(columns=[schema.BEST_CHECKPOINT])
    trials.to_parquet(old / schema.TRIALS_FILE)
    for argv in (["best", str(old)], ["export", str(old), "--out", str(tmp_path / "m")]):
        line = _error(capsys, argv)
        assert f"{old} was written before mmray kept each trial's best checkpoint" in line


@pytest.mark.ray
def test_export_to_s3_and_load_from_the_uri(sweep, new_bucket, capsys):
    uri = f"{new_bucket()}/models/best"
    assert cli.main(["export", str(sweep["out"]), "--out", uri]) == 0
    assert capsys.readouterr().out.strip() == f"exported: {uri}"
    local = load_model(sweep["out"], trial="best")
    remote = load_model(uri)
    assert remote.info == local.info
    prepared = prepare("synthetic-av", SYNTHETIC, cache_dir=sweep["cache"], log=_quiet)
    rows = {name: list(values) for name, values in first_test_rows(prepared).items()}
    ours, theirs = local.embed(**rows), remote.embed(**rows)
    for space in ours:
        assert np.abs(ours[space] - theirs[space]).max() == 0, space
