"""Every metric of the evaluation suite on hand-made inputs, the missing-modality embedding helper, t-SNE maps
and the per-trial artifact tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mmray.data.spec import ModalitySpec
from mmray.engine.training import build_method, embed_all, embed_missing
from mmray.eval import SplitExtras, evaluate
from mmray.eval.generation import answer_scores, bleu, normalise_answer, ssim, token_accuracy
from mmray.eval.probes import fit_probe, l2_normalize, probe_accuracy
from mmray.eval.retrieval import pair_retrieval_scores, retrieval_scores
from mmray.eval.robustness import missing_curve
from mmray.eval.tsne import embedding_sample, tsne_table
from mmray.results import schema
from mmray.results.artifacts import (
    draw_maps,
    generation_table,
    load_artifacts,
    reconstruction_table,
    rotation_table,
    write_artifacts,
)

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


def brute_force_scores(q, g, ql, gl, ks):
    """Recall@K and mAP the slow, obvious way (argsort per query), for random data without ties."""
    recalls, aps = {k: [] for k in ks}, []
    for i in range(len(q)):
        hits = gl[np.argsort(-(l2_normalize(g) @ l2_normalize(q[i:i + 1])[0]))] == ql[i]
        for k in ks:
            recalls[k].append(hits[:k].any())
        positions = np.flatnonzero(hits) + 1
        aps.append((np.arange(1, len(positions) + 1) / positions).mean() if len(positions) else 0.0)
    return {**{f"recall@{k}": np.mean(recalls[k]) for k in ks}, "map": np.mean(aps)}


def test_matches_brute_force_on_random_data():
    rng = np.random.default_rng(3)
    q, g = rng.standard_normal((60, 5)), rng.standard_normal((80, 5))
    ql, gl = rng.integers(0, 5, 60), rng.integers(0, 5, 80)
    ql[0] = 9  # a query without any relevant item
    expected = brute_force_scores(q, g, ql, gl, ks=(1, 5, 10))
    assert retrieval_scores(q, g, ql, gl, ks=(1, 5, 10), chunk=16) == pytest.approx(expected)


def test_collapsed_embeddings_score_near_zero_not_one():
    # every similarity ties: a tie counts against the query, so collapse cannot look like perfect retrieval
    x = np.ones((10, 4))
    labels = np.arange(10) % 2
    scores = retrieval_scores(x, x, labels, labels, ks=(1, 5))
    assert scores["recall@1"] == 0.0 and scores["recall@5"] == 0.0
    # each of the five relevant items ties with all five irrelevant ones: precision f / (f + 5) at the f-th hit
    assert scores["map"] == pytest.approx(np.mean([f / (f + 5) for f in range(1, 6)]))
    assert pair_retrieval_scores(x, x, ks=(1, 9))["recall@9"] == 0.0


def test_query_subsample_is_seeded_and_exact_on_its_queries():
    rng = np.random.default_rng(4)
    q, g = rng.standard_normal((50, 6)), rng.standard_normal((40, 6))
    ql, gl = rng.integers(0, 3, 50), rng.integers(0, 3, 40)
    assert retrieval_scores(q, g, ql, gl, max_queries=50) == retrieval_scores(q, g, ql, gl)
    sampled = retrieval_scores(q, g, ql, gl, max_queries=10, seed=7)
    assert sampled == retrieval_scores(q, g, ql, gl, max_queries=10, seed=7)
    rows = np.sort(np.random.default_rng(7).choice(50, 10, replace=False))
    assert sampled == pytest.approx(brute_force_scores(q[rows], g, ql[rows], gl, ks=(1, 5, 10)))


def test_pair_retrieval_perfect_and_hand_computed():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((30, 8))
    assert pair_retrieval_scores(x, 2.0 * x) == {"recall@1": 1.0, "recall@5": 1.0, "recall@10": 1.0,
                                                 "map": pytest.approx(1.0)}
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    gallery = np.array([[1.0, 0.1], [1.0, 0.0], [0.0, 1.0]])
    # own pair's rank: query 0 -> 2 (gallery 1 is closer); query 1 -> 3 (cosine 0, below both others);
    # query 2 -> 3 (cosine .707 ties gallery 1, and a tie counts against it)
    scores = pair_retrieval_scores(queries, gallery, ks=(1, 2, 3))
    assert scores["recall@1"] == 0.0
    assert scores["recall@2"] == pytest.approx(1 / 3)
    assert scores["recall@3"] == 1.0
    assert scores["map"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 3) / 3)
    with pytest.raises(ValueError, match="as many queries as gallery rows"):
        pair_retrieval_scores(queries, gallery[:2])


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


def make_extras(test: dict[str, np.ndarray], n: int = 100) -> SplitExtras:
    """What a worker collects on a split: embeddings of the first `n` rows with a modality absent (fused the way
    pavlov fuses: the mean of the normalised embeddings present), generated answers, translations (the image
    reconstructed from itself and from the audio)."""
    without = {"audio": {"image": test["image"][:n], "fused": l2_normalize(test["image"][:n])},
               "image": {"audio": test["audio"][:n], "fused": l2_normalize(test["audio"][:n])}}
    texts = {"answer": (["yes", "no", "a red cell"], ["yes", "yes", "a red cell"])}
    images = np.random.default_rng(0).standard_normal((4, 1, 12, 12))
    return SplitExtras(without, texts, {("image", "image"): (images, images.copy()),
                                        ("audio", "image"): (images, images[::-1].copy())})


EMITTED = {
    "image_acc", "audio_acc", "fused_acc",
    "alignment_image_audio", "uniformity_image", "uniformity_audio", "uniformity_fused",
    *(f"{score}_{space}" for score in ("silhouette", "nmi", "ari") for space in ("image", "audio", "fused")),
    *(f"fused_acc_without_{m}" for m in ("image", "audio")),
    *(f"fused_acc_drop{p}_{m}" for p in (0, 25, 50, 75, 100) for m in ("image", "audio")),
    "bleu_answer", *(f"{score}{subset}_answer" for score in ("exact_match", "token_acc")
                     for subset in ("", "_yesno", "_open")),
    "ssim_image_to_image", "ssim_audio_to_image",
    *(f"{kind}{score}_{a}_to_{b}" for a, b in (("image", "audio"), ("audio", "image"))
      for kind in ("", "pair_") for score in ("recall@1", "recall@5", "recall@10", "map")),
    "transfer_image_to_audio", "transfer_audio_to_image",
}


def full_results() -> dict[str, float]:
    """The suite on inputs that exercise every metric (shared with test_results_schema)."""
    train, train_labels, test, test_labels = make_inputs(permute_audio=False)
    return evaluate(train, train_labels, test, test_labels, ("image", "audio"), make_extras(test))


def test_evaluate_names_only_schema_metrics():
    results = full_results()
    assert set(results) == EMITTED
    for name, value in results.items():
        assert np.isfinite(value), name
        assert schema.is_metric_column(f"val/{name}"), name


def test_evaluate_without_extras_emits_no_robustness_or_generation_keys():
    results = evaluate(*make_inputs(permute_audio=False), modalities=("image", "audio"))
    assert set(results) == {k for k in EMITTED if not k.startswith(("fused_acc_", "bleu", "exact", "token", "ssim"))}


def test_geometry_and_clustering_of_the_suite():
    train, train_labels, test, test_labels = make_inputs(permute_audio=False)
    same = dict(test, audio=test["image"].copy())
    results = evaluate(train, train_labels, same, test_labels, ("image", "audio"))
    assert results["alignment_image_audio"] == pytest.approx(0.0, abs=1e-12)  # pairs coincide
    assert results["pair_recall@1_image_to_audio"] == 1.0 and results["pair_map_audio_to_image"] == 1.0
    for space in ("image", "audio", "fused"):
        assert results[f"nmi_{space}"] > 0.9 and results[f"ari_{space}"] > 0.9, space  # ten tight clusters
        assert results[f"silhouette_{space}"] > 0.5, space
    collapsed = dict(same, image=np.ones_like(test["image"]) + 1e-3 * test["image"])
    worse = evaluate(train, train_labels, collapsed, test_labels, ("image", "audio"))
    assert worse["uniformity_image"] > -0.01 > results["uniformity_image"]  # 0 = everything at one point
    assert worse["alignment_image_audio"] > 0.5


def test_missing_modality_curve_in_the_suite():
    train, train_labels, test, test_labels = make_inputs(permute_audio=True)  # audio probes need audio
    results = evaluate(train, train_labels, test, test_labels, ("image", "audio"), make_extras(test, n=100))
    first = evaluate(train, train_labels, {k: v[:100] for k, v in test.items()}, test_labels[:100],
                     ("image", "audio"))
    for m in ("image", "audio"):
        assert results[f"fused_acc_drop0_{m}"] == first["fused_acc"]  # endpoints: complete pairs ...
        assert results[f"fused_acc_drop100_{m}"] == results[f"fused_acc_without_{m}"]  # ... and m missing
    # the fused probe learnt class c from image c and audio c-1's centre: one modality alone misleads it
    assert results["fused_acc_without_audio"] < first["fused_acc"] - 0.2


def test_missing_curve_endpoints_and_nesting():
    full = np.array([1, 1, 1, 1, 1, 1, 1, 0], dtype=bool)
    missing = np.array([0, 0, 0, 0, 1, 1, 0, 0], dtype=bool)
    curve = missing_curve(full, missing, (0.0, 0.25, 0.5, 0.75, 1.0), seed=3)
    assert curve[0.0] == full.mean() and curve[1.0] == missing.mean()
    assert all(a >= b for a, b in zip(list(curve.values()), list(curve.values())[1:]))  # missing never helps here
    assert missing_curve(full, missing, seed=3) == curve
    with pytest.raises(ValueError, match="alike"):
        missing_curve(full, missing[:3])
    with pytest.raises(ValueError, match="within 0..1"):
        missing_curve(full, missing, (1.5,))


# --- generation -----------------------------------------------------------------------------------------------

def test_bleu_identical_unrelated_and_short():
    sentences = ["a cell with a large nucleus", "the tissue shows necrosis"]
    assert bleu(sentences, sentences) == pytest.approx(100.0)
    assert bleu(["yes", "no"], ["yes", "no"]) == pytest.approx(100.0)  # one-word answers score too
    assert bleu(["completely different words here"], ["a cell with a large nucleus"]) == pytest.approx(0.0)
    partial = bleu(["a cell with a small nucleus"], ["a cell with a large nucleus"])
    assert 0.0 < partial < 100.0
    with pytest.raises(ValueError, match="2 generated items but 1 references"):
        bleu(sentences, sentences[:1])


def test_answer_scores_split_yes_no_and_open():
    generated = ["Yes.", "no", "a cat", "red"]
    references = ["yes", "yes", "the cat", "red"]
    scores = answer_scores(generated, references)
    assert scores == pytest.approx({
        "exact_match": 0.5, "token_acc": (1 + 0 + 0.5 + 1) / 4,
        "exact_match_yesno": 0.5, "token_acc_yesno": 0.5,  # "Yes." normalises to yes
        "exact_match_open": 0.5, "token_acc_open": 0.75,
    })
    assert set(answer_scores(["a cat"], ["the cat"])) == {"exact_match", "token_acc", "exact_match_open",
                                                          "token_acc_open"}  # no yes/no question: no subset


def test_token_accuracy_counts_missing_and_extra_words():
    assert token_accuracy("a red cell", "a red cell") == 1.0
    assert token_accuracy("a red", "a red cell") == pytest.approx(2 / 3)
    assert token_accuracy("a red cell here", "a red cell") == pytest.approx(3 / 4)
    assert token_accuracy("", "") == 1.0 and token_accuracy("", "yes") == 0.0
    assert normalise_answer("  The  Cat, sat! ") == "the cat sat"


def test_ssim_of_identical_and_noisy_images():
    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.standard_normal((3, 2, 16, 16)), axis=2), axis=3)  # structured images
    assert ssim(smooth, smooth.copy()) == pytest.approx(1.0)
    assert ssim(smooth, rng.standard_normal(smooth.shape) * smooth.std()) < 0.3
    assert ssim(smooth[:, 0], smooth[:, 0]) == pytest.approx(1.0)  # (N, H, W) too
    assert ssim(smooth[:, :, :5, :5], smooth[:, :, :5, :5]) == pytest.approx(1.0)  # smaller than the window
    with pytest.raises(ValueError, match="do not match"):
        ssim(smooth, smooth[:2])


@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (4, 3, 16, 16), (3, 1, 40, 40), (6, 12, 12), (2, 1, 6, 9)])
def test_ssim_is_scikit_images_per_image_mean(shape):
    # the batched computation gives what structural_similarity gives image by image (channels averaged), for
    # MNIST-sized images, RGB, AV-MNIST log-mels, (N, H, W) and a window shrunk to fit
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(1)
    x = np.cumsum(rng.standard_normal(shape), axis=-1)
    y = x + rng.standard_normal(shape)
    side = min(shape[-2:])
    window = min(7, side if side % 2 else side - 1)
    expected = np.mean([structural_similarity(a, b, data_range=x.max() - x.min(), win_size=window,
                                              channel_axis=0 if x.ndim == 4 else None) for a, b in zip(x, y)])
    assert ssim(x, y) == pytest.approx(expected, abs=1e-12)


def test_same_modal_ssim_beats_cross_modal_on_hand_made_translations():
    # a same-modal reconstruction keeps the example's own strokes; a cross-modal translation that only knows the
    # class gives the class's mean shape: both are scored against the target's own input
    rng = np.random.default_rng(2)
    prototypes = np.cumsum(np.cumsum(rng.standard_normal((3, 1, 16, 16)), axis=2), axis=3)
    labels = np.repeat(np.arange(3), 4)
    inputs = prototypes[labels] + 2.0 * np.cumsum(rng.standard_normal((12, 1, 16, 16)), axis=3)
    same = inputs + 0.1 * rng.standard_normal(inputs.shape)
    cross = prototypes[labels]
    unrelated = prototypes[(labels + 1) % 3]
    assert ssim(inputs, same) > 0.9 > ssim(inputs, cross) > ssim(inputs, unrelated)


# --- missing-modality embeddings, t-SNE maps and artifacts -----------------------------------------------------

MODALITY_SPECS = (ModalitySpec("image", "image", (1, 8, 8)), ModalitySpec("audio", "audio", (1, 8, 8)))


def test_embed_missing_drops_one_modality_at_a_time():
    torch.manual_seed(0)
    model = build_method("pavlov", MODALITY_SPECS, 3, {"latent_dim": 4, "hidden_dim": 8, "encoder_width": 4})
    batches = [{"image": torch.randn(6, 1, 8, 8), "audio": torch.randn(6, 1, 8, 8),
                "label": torch.arange(6) % 3} for _ in range(2)]
    complete, _ = embed_all(model, batches)
    missing = embed_missing(model, batches, ("image", "audio"), limit=10)
    assert set(missing) == {"image", "audio"}
    assert set(missing["audio"]) == {"image", "fused"} and missing["audio"]["fused"].shape == (10, 4)
    # pavlov fuses what is present: with audio gone, the fused embedding is the normalised image embedding
    np.testing.assert_allclose(missing["audio"]["fused"], l2_normalize(complete["image"][:10]), atol=1e-5)
    assert not np.allclose(missing["audio"]["fused"], complete["fused"][:10])
    assert set(batches[0]) == {"image", "audio", "label"}  # the batches themselves are left whole


def test_tsne_table_keeps_clusters_apart():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    centres = 5.0 * np.eye(3, 8)
    spaces = {"image": centres[labels] + 0.1 * rng.standard_normal((120, 8)),
              "fused": centres[labels] + 0.1 * rng.standard_normal((120, 8))}
    table = tsne_table(spaces, labels, n=60, seed=1)
    assert tuple(table.columns) == schema.ARTIFACT_COLUMNS[schema.ARTIFACT_TSNE]
    assert len(table) == 120 and set(table[schema.MODALITY]) == {"image", "fused"}
    assert (table[schema.MAP] == table[schema.MODALITY]).all()  # no shared map asked for
    image, fused = (table[table[schema.MODALITY] == s] for s in ("image", "fused"))
    assert (image[schema.EXAMPLE].to_numpy() == fused[schema.EXAMPLE].to_numpy()).all()  # one subset for all
    assert (image[schema.LABEL].to_numpy() == labels[image[schema.EXAMPLE]]).all()
    # each point's nearest neighbour on the map has its label
    xy = image[[schema.X, schema.Y]].to_numpy()
    distances = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(len(xy)) * 1e9
    assert (image[schema.LABEL].to_numpy()[distances.argmin(1)] == image[schema.LABEL].to_numpy()).mean() > 0.95


def test_tsne_table_puts_every_modality_in_one_shared_map():
    # aligned modalities: an image and the audio of its class land together in the shared map
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 30)
    centres = 5.0 * np.eye(3, 8)
    spaces = {m: centres[labels] + 0.1 * rng.standard_normal((90, 8)) for m in ("image", "audio")}
    table = tsne_table(spaces, labels, n=60, seed=0, shared=("image", "audio"))
    shared = table[table[schema.MAP] == schema.SHARED_MAP]
    assert len(table) == 4 * 60 and len(shared) == 2 * 60 and set(shared[schema.MODALITY]) == {"image", "audio"}
    image, audio = (shared[shared[schema.MODALITY] == m] for m in ("image", "audio"))
    assert (image[schema.EXAMPLE].to_numpy() == audio[schema.EXAMPLE].to_numpy()).all()
    # the nearest audio point of each image point has the image's label
    distances = np.linalg.norm(image[[schema.X, schema.Y]].to_numpy()[:, None]
                               - audio[[schema.X, schema.Y]].to_numpy()[None], axis=2)
    assert (audio[schema.LABEL].to_numpy()[distances.argmin(1)] == image[schema.LABEL].to_numpy()).mean() > 0.95


def test_a_trial_keeps_its_embedding_sample_and_the_maps_are_drawn_from_it_later(tmp_path):
    # the maps drawn from the stored sample are the maps drawn at once; a trial without a sample gets none
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 30)
    spaces = {m: (5.0 * np.eye(3, 8))[labels] + 0.1 * rng.standard_normal((90, 8)) for m in ("image", "audio")}
    sample = embedding_sample(spaces, labels, n=60, seed=0, shared=("image", "audio"))
    assert tuple(sample.columns) == schema.ARTIFACT_COLUMNS[schema.ARTIFACT_EMBEDDINGS] and len(sample) == 2 * 60
    write_artifacts(tmp_path, "t1", {schema.ARTIFACT_EMBEDDINGS: sample})
    assert draw_maps(tmp_path, "t1") and not draw_maps(tmp_path, "t2")
    drawn = load_artifacts(tmp_path, "t1")[schema.ARTIFACT_TSNE]
    pd.testing.assert_frame_equal(drawn, tsne_table(spaces, labels, n=60, seed=0, shared=("image", "audio")))


def test_artifacts_round_trip(tmp_path):
    rotation = np.array([[0.0, -1.0], [1.0, 0.0]])
    images = np.arange(2 * 4, dtype=np.float32).reshape(2, 1, 2, 2)
    tables = {
        schema.ARTIFACT_ROTATIONS: rotation_table({"image": rotation, "audio": np.eye(2)}),
        schema.ARTIFACT_RECONSTRUCTIONS: reconstruction_table({("image", "image"): (images, images + 1)},
                                                              np.array([4, 5]), {"image": "image"}),
        schema.ARTIFACT_GENERATIONS: generation_table({"answer": (["yes", "no"], ["yes", "yes"])}, np.array([1, 0]),
                                                      n=1),
    }
    with pytest.raises(FileNotFoundError, match="wrote no artifacts"):
        load_artifacts(tmp_path, "t1")
    write_artifacts(tmp_path, "t1", tables)
    loaded = load_artifacts(tmp_path, "t1")
    assert set(loaded) == set(tables)
    matrix = loaded["rotations"].query("modality == 'image'").pivot(index="row", columns="col", values="value")
    np.testing.assert_array_equal(matrix.to_numpy(), rotation)
    recon = loaded["reconstructions"].iloc[1]
    np.testing.assert_array_equal(np.asarray(recon[schema.RECONSTRUCTION]).reshape(recon[schema.SHAPE]),
                                  images[1] + 1)
    assert recon[schema.LABEL] == 5 and (recon[schema.SOURCE], recon[schema.TARGET]) == ("image", "image")
    assert recon[schema.ORIGINAL_WAV] is None  # an image: nothing to hear
    assert loaded["generations"].to_dict("records") == [
        {"modality": "answer", "example": 0, "label": 1, "generated": "yes", "reference": "yes"}]
    with pytest.raises(ValueError, match="columns"):
        write_artifacts(tmp_path, "t1", {schema.ARTIFACT_TSNE: pd.DataFrame({"x": [1.0]})})


def test_spaces_of_different_sizes_are_not_compared_coordinate_by_coordinate():
    # aecluster's separate latents (image 16, audio 32 by default): transfer, retrieval and alignment have no
    # common coordinates; everything scored within one space still is
    train, train_labels, test, test_labels = make_inputs(permute_audio=False)
    for d in (train, test):
        d["audio"] = np.concatenate([d["audio"], d["audio"]], axis=1)
        d["fused"] = np.concatenate([l2_normalize(d["image"]), l2_normalize(d["audio"])], axis=1)
    results = evaluate(train, train_labels, test, test_labels, ("image", "audio"))
    assert not [k for k in results if k.startswith(("transfer_", "recall@", "map_", "pair_", "alignment_"))]
    assert results["image_acc"] > 0.95 and results["audio_acc"] > 0.95 and results["fused_acc"] > 0.95
    assert {"uniformity_audio", "nmi_fused"} <= set(results)


def test_evaluate_without_fused():
    train, train_labels, test, test_labels = make_inputs(permute_audio=False)
    for d in (train, test):
        del d["fused"]
    results = evaluate(train, train_labels, test, test_labels, ("image", "audio"))
    assert "fused_acc" not in results and results["image_acc"] > 0.95


def test_label_retrieval_is_not_hurt_by_duplicate_gallery_items():
    # AV-MNIST pairs one recording with several images: identical audio rows of the right label are all hits
    from mmray.eval.retrieval import retrieval_scores

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    prototypes = rng.normal(size=(10, 16))
    gallery = prototypes[labels]  # every item of a class is the same row
    queries = gallery + 0.3 * rng.normal(size=gallery.shape)
    scores = retrieval_scores(queries, gallery, labels, labels, ks=(1, 5))
    assert scores["recall@1"] == 1.0 and scores["map"] == 1.0


def test_reconstruction_table_keeps_a_few_per_class_and_hears_audio_targets():
    labels = np.array([0, 1, 0, 0, 2, 1, 1, 2])
    audio = np.arange(8 * 4, dtype=np.float32).reshape(8, 1, 2, 2)
    images = np.zeros((8, 1, 3, 3), np.float32)
    heard = []

    def to_wav(log_mel):
        heard.append(float(log_mel.sum()))
        return b"RIFF" + bytes([len(heard)])

    table = reconstruction_table({("image", "audio"): (audio, audio + 1), ("audio", "audio"): (audio, audio * 2),
                                  ("caption", "image"): (images, images)}, labels,
                                 {"image": "image", "audio": "audio"}, {"audio": to_wav},
                                 {"caption": [f"a {d}" for d in labels]}, per_class=2, wav_per_class=1)
    assert tuple(table.columns) == schema.ARTIFACT_COLUMNS[schema.ARTIFACT_RECONSTRUCTIONS]
    cross = table[(table[schema.SOURCE] == "image") & (table[schema.TARGET] == "audio")]
    assert cross[schema.EXAMPLE].tolist() == [0, 1, 2, 4, 5, 7]  # the first two rows of each class
    wav = cross[schema.ORIGINAL_WAV].notna()
    assert cross[schema.EXAMPLE][wav].tolist() == [0, 1, 4]  # the first row of each class is heard
    same = table[(table[schema.SOURCE] == "audio") & (table[schema.TARGET] == "audio")]
    # each input is inverted once, shared by the translations into its modality; each output once
    assert same[schema.ORIGINAL_WAV].tolist()[:3] == cross[schema.ORIGINAL_WAV].tolist()[:3]
    assert len(heard) == 3 + 3 + 3
    drawn = table[table[schema.TARGET] == "image"]
    assert drawn[schema.ORIGINAL_WAV].isna().all() and (drawn[schema.KIND] == "image").all()
    # an image drawn from a caption keeps the caption; other sources have no text
    assert drawn[schema.SOURCE_TEXT].tolist() == ["a 0", "a 1", "a 0", "a 2", "a 1", "a 2"]
    assert cross[schema.SOURCE_TEXT].isna().all()
