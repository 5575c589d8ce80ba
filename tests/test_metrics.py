"""Retrieval and probe metrics on hand-made embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from mmray.eval import evaluate
from mmray.eval.probes import fit_probe, l2_normalize, probe_accuracy
from mmray.eval.retrieval import retrieval_scores
from mmray.results import schema

# --- retrieval ----------------------------------------------------------------------------------------------


def test_identical_query_and_gallery_with_distinct_labels_is_perfect():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 8))
    labels = np.arange(20)
    scores = retrieval_scores(x, x.copy(), labels, labels, ks=(1, 5))
    assert scores == {"recall@1": 1.0, "recall@5": 1.0, "map": pytest.approx(1.0)}


def test_distinct_labels_with_gallery_reversed():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, 8))
    labels = np.arange(12)
    order = np.arange(12)[::-1]
    scores = retrieval_scores(x, 3.0 * x[order], labels, labels[order], ks=(1,))  # scale does not matter
    assert scores["recall@1"] == 1.0 and scores["map"] == pytest.approx(1.0)


QUERIES = np.array([[1.0, 0.0], [0.0, 2.0]])
QUERY_LABELS = np.array([0, 1])
GALLERY = np.array([[5.0, 0.0], [0.8, 0.6], [0.0, 1.0], [1.2, 1.6]])  # cosines to [1, 0]: 1, .8, 0, .6
GALLERY_LABELS = np.array([1, 0, 1, 0])


def test_hand_computed_recall_and_map():
    # query 0 (label 0) ranks gallery 0, 1, 3, 2 -> hits F T T F: AP = (1/2 + 2/3) / 2 = 7/12
    # query 1 (label 1) ranks gallery 2, 3, 1, 0 -> hits T F F T: AP = (1/1 + 2/4) / 2 = 3/4
    scores = retrieval_scores(QUERIES, GALLERY, QUERY_LABELS, GALLERY_LABELS, ks=(1, 2, 4))
    assert scores["recall@1"] == pytest.approx(0.5)
    assert scores["recall@2"] == pytest.approx(1.0)
    assert scores["recall@4"] == pytest.approx(1.0)
    assert scores["map"] == pytest.approx((7 / 12 + 3 / 4) / 2)


def test_chunking_does_not_change_scores():
    rng = np.random.default_rng(2)
    q, g = rng.standard_normal((37, 6)), rng.standard_normal((50, 6))
    ql, gl = rng.integers(0, 4, 37), rng.integers(0, 4, 50)
    whole = retrieval_scores(q, g, ql, gl, ks=(1, 5), chunk=1024)
    for chunk in (1, 7, 36):
        assert retrieval_scores(q, g, ql, gl, ks=(1, 5), chunk=chunk) == pytest.approx(whole)


def test_query_without_positive_scores_zero():
    scores = retrieval_scores(np.array([[1.0, 0.0]]), GALLERY, np.array([7]), GALLERY_LABELS, ks=(1, 4))
    assert scores == {"recall@1": 0.0, "recall@4": 0.0, "map": 0.0}


def test_l2_normalize_handles_zero_rows():
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


# --- probes and the suite -----------------------------------------------------------------------------------

NUM_CLASSES, DIM = 10, 16


def clusters(centres: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
             noise: float = 0.3) -> np.ndarray:
    return centres[labels] + noise * rng.standard_normal((len(labels), centres.shape[1]))


def make_inputs(permute_audio: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((NUM_CLASSES, DIM))
    audio_centres = np.roll(centres, 1, axis=0) if permute_audio else centres  # class c sits at c-1's centre
    sets = []
    for n in (400, 300):
        labels = np.arange(n) % NUM_CLASSES
        rng.shuffle(labels)
        image, audio = clusters(centres, labels, rng), clusters(audio_centres, labels, rng)
        fused = 0.5 * (l2_normalize(image) + l2_normalize(audio))
        sets.append(({"image": image, "audio": audio, "fused": fused}, labels))
    (train, train_labels), (test, test_labels) = sets
    return train, train_labels, test, test_labels


def test_probe_accuracy_on_separated_clusters():
    train, train_labels, test, test_labels = make_inputs(permute_audio=False)
    probe = fit_probe(train["image"], train_labels)
    assert probe_accuracy(probe, test["image"], test_labels) > 0.95
    shuffled = np.random.default_rng(5).permutation(test_labels)
    assert probe_accuracy(probe, test["image"], shuffled) < 0.3


def test_evaluate_shared_centres_transfer():
    results = evaluate(*make_inputs(permute_audio=False), modalities=("image", "audio"))
    for key in ("image_acc", "audio_acc", "fused_acc", "transfer_image_to_audio", "transfer_audio_to_image",
                "recall@1_image_to_audio", "recall@1_audio_to_image"):
        assert results[key] > 0.95, (key, results[key])
    assert results["map_image_to_audio"] > 0.9


def test_evaluate_permuted_centres_do_not_transfer():
    results = evaluate(*make_inputs(permute_audio=True), modalities=("image", "audio"))
    assert results["image_acc"] > 0.95 and results["audio_acc"] > 0.95
    assert results["transfer_image_to_audio"] < 0.3
    assert results["transfer_audio_to_image"] < 0.3
    assert results["recall@1_image_to_audio"] < 0.3


def test_evaluate_names_only_schema_metrics():
    results = evaluate(*make_inputs(permute_audio=False), modalities=("image", "audio"))
    expected = {"image_acc", "audio_acc", "fused_acc"}
    for a, b in (("image", "audio"), ("audio", "image")):
        expected |= {f"transfer_{a}_to_{b}", f"recall@1_{a}_to_{b}", f"recall@5_{a}_to_{b}",
                     f"map_{a}_to_{b}"}
    assert set(results) == expected
    for name, value in results.items():
        assert 0.0 <= value <= 1.0, name
        assert schema.is_metric_column(f"val/{name}"), name
        assert schema.higher_is_better(f"val/{name}"), name


def test_evaluate_without_fused():
    train, train_labels, test, test_labels = make_inputs(permute_audio=False)
    for d in (train, test):
        del d["fused"]
    results = evaluate(train, train_labels, test, test_labels, ("image", "audio"))
    assert "fused_acc" not in results and results["image_acc"] > 0.95
