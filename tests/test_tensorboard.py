"""`tensorboard: true` / `mmray sweep --tensorboard`: each trial's metrics per epoch as TensorBoard scalars.

The callback is driven here as Tune drives it, with trials that report epochs; the event files are read back
with their TFRecord checksums checked, as TensorBoard reads them (it is not installed: tensorboardX, which
Ray Tune brings, writes the files). A real sweep with --tensorboard runs in tests/test_launcher.py.
"""

from __future__ import annotations

import struct
from pathlib import Path
from types import SimpleNamespace

import pytest

from mmray import storage
from mmray.config import SweepSpec
from mmray.errors import SpecError
from mmray.orchestration.sweep import TensorBoardScalars

RUN = "synthetic-av__pavlov__seed0"


def read_scalars(logdir: Path, trial_id: str) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value)]} from the event files of one trial's folder under `logdir`."""
    from tensorboardX.crc32c import crc32c
    from tensorboardX.proto import event_pb2

    def masked(data: bytes) -> int:
        crc = crc32c(data)
        return ((crc >> 15 | crc << 17) + 0xA282EAD8) & 0xFFFFFFFF

    folders = [p for p in Path(logdir).rglob(trial_id) if p.is_dir()]
    assert len(folders) == 1, f"{trial_id}: {folders}"
    files = sorted(folders[0].glob("events.out.tfevents.*"))
    assert files, f"no event file in {folders[0]}"
    scalars: dict[str, list[tuple[int, float]]] = {}
    for file in files:
        data, at = file.read_bytes(), 0
        while at < len(data):
            header = data[at:at + 8]
            (length,) = struct.unpack("<Q", header)
            assert struct.unpack("<I", data[at + 8:at + 12])[0] == masked(header), f"{file}: bad length checksum"
            record = data[at + 12:at + 12 + length]
            assert struct.unpack("<I", data[at + 12 + length:at + 16 + length])[0] == masked(record), \
                f"{file}: bad record checksum"
            at += 16 + length
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def _trial(trial_id: str) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, config={"run": RUN})


def _epoch(epoch: int, acc: float) -> dict:
    # what a trial reports: metrics, and facts that are no metrics (not written)
    return {"epoch": epoch, "val/fused_acc": acc, "train/loss": 2.0 / epoch, "test/fused_acc": acc - 0.1,
            "epoch_seconds": 3.5, "nodes": "abc,def", "training_iteration": epoch, "done": False}


def _drive(callback: TensorBoardScalars) -> None:
    a, b = _trial("aaaa0001"), _trial("bbbb0002")
    callback.on_trial_result(0, [], a, _epoch(1, 0.5))
    callback.on_trial_result(0, [], b, _epoch(1, 0.25))
    callback.on_trial_result(0, [], a, _epoch(2, 0.75))
    callback.on_trial_result(0, [], a, _epoch(2, 0.0))  # a worker restored from a checkpoint reports it again
    callback.on_trial_complete(0, [], a)
    callback.on_trial_error(0, [], b)


def _check(logdir: Path) -> None:
    a = read_scalars(logdir, "aaaa0001")
    assert set(a) == {"val/fused_acc", "train/loss", "test/fused_acc"}
    assert a["val/fused_acc"] == [(1, 0.5), (2, 0.75)]
    assert a["train/loss"] == [(1, 2.0), (2, 1.0)]
    assert read_scalars(logdir, "bbbb0002")["val/fused_acc"] == [(1, 0.25)]
    assert {p.parent.name for p in logdir.rglob("events.out.tfevents.*")} == {"aaaa0001", "bbbb0002"}
    assert all(p.parent.parent.name == RUN for p in logdir.rglob("events.out.tfevents.*"))


def test_scalars_per_trial_and_epoch_in_the_results_folder(tmp_path):
    _drive(TensorBoardScalars(tmp_path / "demo"))
    _check(tmp_path / "demo" / "tensorboard")


def test_scalars_of_a_sweep_with_remote_results(new_bucket, tmp_path):
    results = new_bucket() + "/demo"
    callback = TensorBoardScalars(results)
    callback.on_trial_result(0, [], _trial("aaaa0001"), _epoch(1, 0.5))
    # uploaded after every epoch: a reader of the bucket follows the trial as it runs
    local = tmp_path / "running"
    local.mkdir()
    _download(storage.join(results, "tensorboard"), local)
    assert read_scalars(local, "aaaa0001")["val/fused_acc"] == [(1, 0.5)]
    _drive(callback)
    done = tmp_path / "done"
    done.mkdir()
    _download(storage.join(results, "tensorboard"), done)
    _check(done)


def _download(where: str, folder: Path) -> None:
    from pyarrow import fs

    filesystem, path = storage.resolve(where)
    fs.copy_files(path, str(folder), source_filesystem=filesystem, destination_filesystem=fs.LocalFileSystem())


def test_the_callback_survives_tunes_pickling(tmp_path):
    import pickle

    callback = TensorBoardScalars(tmp_path)
    callback.on_trial_result(0, [], _trial("aaaa0001"), _epoch(1, 0.5))
    restored = pickle.loads(pickle.dumps(callback))  # Tune keeps its callbacks in the experiment state
    restored.on_trial_result(0, [], _trial("aaaa0001"), _epoch(2, 0.75))
    restored.on_trial_complete(0, [], _trial("aaaa0001"))
    callback.on_trial_complete(0, [], _trial("aaaa0001"))
    # two event files, both kept (TensorBoard reads every file of a folder and orders points by step)
    assert len(list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))) == 2
    assert sorted(read_scalars(tmp_path / "tensorboard", "aaaa0001")["val/fused_acc"]) == [(1, 0.5), (2, 0.75)]


def test_spec_key_and_command_line_flag(monkeypatch):
    from mmray import api, cli

    base = {"name": "t", "benchmarks": ["synthetic-av"], "methods": ["pavlov"]}
    assert SweepSpec.model_validate(base).tensorboard is False
    assert SweepSpec.model_validate({**base, "tensorboard": True}).tensorboard is True
    with pytest.raises(Exception, match="tensorboard"):
        SweepSpec.model_validate({**base, "tensorboard": "sometimes"})
    seen = {}
    monkeypatch.setattr(api, "run_sweep", lambda spec, **kwargs: seen.setdefault("spec", spec))
    cli.run(cli.build_parser().parse_args(["sweep", "sweeps/demo.yaml", "--tensorboard", "--no-report"]))
    assert seen.pop("spec").tensorboard is True
    cli.run(cli.build_parser().parse_args(["sweep", "sweeps/demo.yaml", "--set", "tensorboard=true"]))
    assert seen.pop("spec").tensorboard is True
    cli.run(cli.build_parser().parse_args(["sweep", "sweeps/demo.yaml"]))
    assert seen.pop("spec").tensorboard is False
    with pytest.raises(SpecError, match="tensorbord"):
        api.load_spec("sweeps/demo.yaml", {"tensorbord": True})
