"""AV-MNIST built from the real-data mirror (MNIST + FSDD): shapes, split sizes and the FSDD split rule."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from mmray.data import prepare, verify_prepared
from mmray.data.shards import read_split

pytestmark = pytest.mark.mirror

PARAMS = {"max_train": 600, "max_eval": 200, "n_val_images": 200}


@pytest.fixture(scope="module")
def avmnist(mirror, tmp_path_factory):
    return prepare("avmnist", PARAMS, mirror=mirror, cache_dir=tmp_path_factory.mktemp("cache"),
                   log=lambda *a, **k: None)


def test_avmnist_from_mirror(avmnist):
    assert [(m.name, m.kind, m.shape) for m in avmnist.modalities] == [
        ("image", "image", (1, 28, 28)), ("audio", "audio", (1, 40, 40))]
    assert avmnist.class_names == tuple(str(d) for d in range(10))
    manifest = avmnist.manifest
    # FSDD: index 0-4 test, 5-9 val, 10-49 train; 6 speakers x 10 digits each
    assert manifest["recordings_per_split"] == {"test": 300, "val": 300, "train": 2400}
    assert {s: avmnist.rows(s) for s in ("train", "val", "test")} == {"train": 600, "val": 200, "test": 200}
    norm = manifest["normalization"]
    assert np.isfinite(norm["audio_log_mel_mean"]) and norm["audio_log_mel_std"] > 0
    verify_prepared(avmnist.path)


def test_avmnist_arrays(avmnist):
    train_audio = []
    for split, rows in (("train", 600), ("val", 200), ("test", 200)):
        arrays = read_split(avmnist, split)
        assert len(arrays) == rows
        assert set(np.unique(arrays.labels)) == set(range(10))
        image, audio = arrays.modalities["image"], arrays.modalities["audio"]
        assert image.shape == (rows, 1, 28, 28) and audio.shape == (rows, 1, 40, 40)
        assert image.min() >= 0.0 and image.max() <= 1.0 and image.max() > 0.9  # pixels / 255
        assert np.isfinite(audio).all()
        if split == "train":
            train_audio = audio
    # audio is standardised with train-recording statistics: the paired train audio is roughly N(0, 1)
    assert abs(float(train_audio.mean())) < 0.3 and 0.7 < float(train_audio.std()) < 1.3


def test_avmnist_pairs_share_the_digit(avmnist):
    """Each recording is paired with an image of its own digit: audio alone predicts the image labels."""
    train, test = read_split(avmnist, "train"), read_split(avmnist, "test")

    def pooled(arrays):  # 2x2 mean-pool of the (40, 40) log-mel: 400 features keep the probe quick
        audio = arrays.modalities["audio"]
        return audio.reshape(len(audio), 20, 2, 20, 2).mean((2, 4)).reshape(len(audio), -1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe = LogisticRegression(C=0.1, max_iter=200).fit(pooled(train), train.labels)
    # test recordings (FSDD index 0-4) are takes never used in train; chance (or mispairing) gives ~0.1
    assert (probe.predict(pooled(test)) == test.labels).mean() > 0.6
