"""The benchmarks with generated audio: sine (audio only, from a seed) and cifar2-audio (CIFAR-10 + tones)."""

from __future__ import annotations

import io
import pickle
import tarfile
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from mmray.config import parse_spec
from mmray.data import prepare, verify_prepared
from mmray.data.benchmarks import cifar2_audio
from mmray.data.benchmarks.sine import SineParams, class_bands
from mmray.data.prepare import resolve_params
from mmray.data.shards import read_split
from mmray.data.sources import MIRROR_ENV, RawData
from mmray.errors import DataError, SpecError

SINE = {"n_train": 160, "n_val": 40, "n_test": 80, "n_mels": 24, "frames": 20, "hop_length": 400}
CIFAR = {"max_train": 120, "max_eval": 40, "n_val_images": 200, "n_mels": 24, "frames": 20, "hop_length": 400}
ROWS = {"sine": {"train": 160, "val": 40, "test": 80}, "cifar2-audio": {"train": 120, "val": 40, "test": 40}}


def quiet(*_args, **_kwargs):
    pass


def flat(arrays) -> np.ndarray:
    return arrays.modalities["audio"].reshape(len(arrays), -1)


@pytest.fixture(scope="module")
def sine(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    # a generated benchmark never needs (or checks) a mirror: a missing one is no error
    return prepare("sine", SINE, mirror=cache / "no-such-mirror", cache_dir=cache, log=quiet)


def test_sine_shapes_and_classes(sine):
    assert [(m.name, m.kind, m.shape) for m in sine.modalities] == [("audio", "audio", (1, 24, 20))]
    assert sine.class_names == ("114-206Hz", "266-482Hz", "622-1128Hz", "1456-2641Hz")
    for split, rows in ROWS["sine"].items():
        arrays = read_split(sine, split)
        assert len(arrays) == rows and arrays.modalities["audio"].shape == (rows, 1, 24, 20)
        assert np.isfinite(arrays.modalities["audio"]).all()
        assert set(np.unique(arrays.labels)) == {0, 1, 2, 3}
    train = read_split(sine, "train").modalities["audio"]
    assert abs(float(train.mean())) < 1e-3 and abs(float(train.std()) - 1) < 1e-3  # train statistics
    norm = sine.manifest["normalization"]
    assert np.isfinite(norm["audio_log_mel_mean"]) and norm["audio_log_mel_std"] > 0
    verify_prepared(sine.path)


def test_sine_bands_do_not_overlap():
    bands = class_bands(SineParams(n_classes=6, f_min=50, f_max=3500))
    assert bands[0, 0] > 50 and bands[-1, 1] < 3500
    assert (bands[:, 0] < bands[:, 1]).all() and (bands[1:, 0] > bands[:-1, 1]).all()


def test_the_cpc_seeds_binary_sine_task_splits_150_to_900_hz_at_500():
    bands = class_bands(SineParams(n_classes=2, class_edges=[150, 500, 900], band_fill=1.0))
    assert np.allclose(bands, [[150, 500], [500, 900]])
    with pytest.raises(ValueError, match=r"class_edges \[150.0, 900.0\] must be n_classes \+ 1 = 3 increasing"):
        SineParams(n_classes=2, class_edges=[150, 900])


def test_sine_is_deterministic(sine, tmp_path):
    again = prepare("sine", SINE, cache_dir=tmp_path, log=quiet)
    other = prepare("sine", {**SINE, "seed": 1}, cache_dir=tmp_path, log=quiet)
    a, b, c = (read_split(p, "test") for p in (sine, again, other))
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.modalities["audio"], b.modalities["audio"])
    assert not np.array_equal(a.modalities["audio"], c.modalities["audio"])


def test_sine_label_is_in_the_audio(sine):
    train, test = read_split(sine, "train"), read_split(sine, "test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe = LogisticRegression(max_iter=300).fit(flat(train), train.labels)
    assert probe.score(flat(test), test.labels) > 0.9


def test_sine_params_are_checked():
    with pytest.raises(SpecError, match="Nyquist"):
        resolve_params("sine", {"f_max": 5000})
    with pytest.raises(SpecError, match="n_val=2 is below n_classes=4"):
        resolve_params("sine", {"n_val": 2})


def test_pavlov_refuses_the_audio_only_benchmark():
    with pytest.raises(SpecError) as info:
        parse_spec({"name": "t", "benchmarks": ["sine"], "methods": ["pavlov"]}, "t.yaml")
    message = str(info.value)
    assert "'sine'" in message and "needs at least 2 modalities, the benchmark has 1" in message


def test_cifar2_audio_missing_folder_names_it(tmp_path):
    with pytest.raises(DataError) as info:
        prepare("cifar2-audio", CIFAR, mirror=tmp_path, cache_dir=tmp_path / "cache", log=quiet)
    assert "cifar10_2class/test.npz" in str(info.value) and str(tmp_path) in str(info.value)


def test_cifar2_audio_bad_npz_names_the_file(tmp_path):
    folder = tmp_path / "cifar10_2class"
    folder.mkdir()
    names = np.array(["airplane", "automobile"])
    np.savez(folder / "train.npz", images=np.zeros((4, 28, 28), np.uint8), labels=np.zeros(4),
             class_names=names)
    np.savez(folder / "test.npz", images=np.zeros((4, 32, 32, 3), np.uint8), labels=np.zeros(4, np.int64))
    with pytest.raises(DataError) as info:
        prepare("cifar2-audio", CIFAR, mirror=tmp_path, cache_dir=tmp_path / "cache", log=quiet)
    assert str(folder / "train.npz") in str(info.value) and "(N, 32, 32, 3)" in str(info.value)


def fake_cifar10_tarball(path, rng) -> dict:
    """A tiny archive in the layout of cifar-10-python.tar.gz (pickled batches, CHW rows, bytes keys)."""
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        def add(name, obj):
            data = pickle.dumps(obj)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add("batches.meta", {b"label_names": [b"airplane", b"automobile", b"bird"]})
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            labels = rng.permutation([0, 0, 1, 1, 2, 2]).tolist()
            batches[name] = {b"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8), b"labels": labels,
                             b"filenames": [f"{name}_{i:02d}.png".encode() for i in range(6)][::-1]}
            add(name, batches[name])
    return batches


def test_cifar2_fetch_writes_the_mirror_layout(tmp_path, monkeypatch):
    tarball = tmp_path / "cifar-10-python.tar.gz"
    batches = fake_cifar10_tarball(tarball, np.random.default_rng(0))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.setattr(cifar2_audio, "download", lambda url, dest: tarball.rename(dest))
    raw = RawData(cache_dir=tmp_path / "cache")
    folder = raw.folder("cifar10_2class", cifar2_audio.fetch_cifar2, "test.npz")
    assert sorted(p.name for p in folder.iterdir()) == ["test.npz", "train.npz"]  # the archive is removed
    images, labels = cifar2_audio.load_cifar2(folder, "test")
    batch = batches["test_batch"]
    keep = [i for i, label in enumerate(batch[b"labels"]) if label < 2]
    expected = sorted(keep, key=lambda i: (batch[b"labels"][i], batch[b"filenames"][i]))  # class, then name
    assert labels.tolist() == [batch[b"labels"][i] for i in expected]
    assert np.array_equal(images, batch[b"data"][expected].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    with np.load(folder / "train.npz") as train:
        assert len(train["images"]) == sum(np.isin(b[b"labels"], (0, 1)).sum() for n, b in batches.items()
                                           if n != "test_batch")
        assert train["class_names"].tolist() == ["airplane", "automobile"]


@pytest.fixture(scope="module")
def cifar(mirror, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return prepare("cifar2-audio", CIFAR, mirror=mirror, cache_dir=cache, log=quiet)


@pytest.mark.mirror
def test_cifar2_audio_from_mirror(cifar):
    assert [(m.name, m.kind, m.shape) for m in cifar.modalities] == [
        ("image", "image", (3, 32, 32)), ("audio", "audio", (1, 24, 20))]
    assert cifar.class_names == ("airplane", "automobile")
    for split, rows in ROWS["cifar2-audio"].items():
        arrays = read_split(cifar, split)
        assert len(arrays) == rows
        assert set(np.unique(arrays.labels)) == {0, 1}  # shuffled before the cap: both classes
        image, audio = arrays.modalities["image"], arrays.modalities["audio"]
        assert image.shape == (rows, 3, 32, 32) and audio.shape == (rows, 1, 24, 20)
        assert image.min() >= 0.0 and image.max() <= 1.0 and image.max() > 0.9
        assert np.isfinite(audio).all()
    train, test = read_split(cifar, "train"), read_split(cifar, "test")
    probe = LogisticRegression(max_iter=300).fit(flat(train), train.labels)
    assert probe.score(flat(test), test.labels) > 0.9  # the generated audio tells the class
    verify_prepared(cifar.path)
