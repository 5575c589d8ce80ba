"""AV-MNIST built from the real-data mirror (MNIST + FSDD): shapes, split sizes and the FSDD split rule."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from mmray.data import prepare, verify_prepared
from mmray.data.audio import standardise
from mmray.data.benchmarks.avmnist import AVMNISTParams, fsdd_log_mel
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


@pytest.fixture(scope="module")
def theo_held_out(mirror, tmp_path_factory):
    return prepare("avmnist", {**PARAMS, "speaker_holdout": "theo"}, mirror=mirror,
                   cache_dir=tmp_path_factory.mktemp("holdout-cache"), log=lambda *a, **k: None)


def test_speaker_holdout_splits(theo_held_out):
    others = ["george", "jackson", "lucas", "nicolas", "yweweler"]
    assert theo_held_out.manifest["speakers_per_split"] == {"train": others, "val": others, "test": ["theo"]}
    # theo's 10 digits x 50 takes are the test audio; the others' takes 0-4 are val, 5-49 train
    assert theo_held_out.manifest["recordings_per_split"] == {"train": 2250, "val": 250, "test": 500}
    rows = {s: theo_held_out.rows(s) for s in ("train", "val", "test")}
    assert rows == {"train": 600, "val": 200, "test": 200}


def test_speaker_holdout_audio_is_the_held_out_voice(theo_held_out, mirror):
    """Every test row is one of theo's recordings and no train or val row is: the rows' log-mels are compared
    with theo's, computed here from the WAVs and standardised with the manifest's statistics."""
    params = AVMNISTParams(**PARAMS, speaker_holdout="theo")
    theo = np.stack([fsdd_log_mel(path, params)[0]
                     for path in sorted((mirror / "fsdd" / "recordings").glob("*_theo_*.wav"))])
    theo = standardise(theo, theo_held_out.manifest["normalization"]).reshape(len(theo), -1)
    theo = theo.astype(np.float16).astype(np.float64)  # rounded as the shards store it

    def distance_to_theo(split):
        rows = read_split(theo_held_out, split).modalities["audio"].reshape(theo_held_out.rows(split), -1)
        rows = rows.astype(np.float64)  # float64: the expanded squared distance cancels badly in float32
        squared = (rows**2).sum(1)[:, None] + (theo**2).sum(1)[None] - 2 * rows @ theo.T
        return np.sqrt(np.maximum(squared, 0) / rows.shape[1]).min(axis=1)  # RMS difference to the nearest

    assert distance_to_theo("test").max() < 1e-4
    assert distance_to_theo("train").min() > 0.1 and distance_to_theo("val").min() > 0.1
