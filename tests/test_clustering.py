"""Clustering metrics and the cross-modal relationship/zones, on hand-made embeddings and assignments."""

from __future__ import annotations

import numpy as np
import pytest

from mmray.eval.clustering import (
    ClusterAnalysis,
    cluster_analysis,
    cluster_majority,
    cluster_relationship,
    cluster_tables,
    clustering_scores,
    joint_embedding,
    kmeans_assignments,
    silhouette,
    zones,
)
from mmray.results import schema


def blobs(k: int = 4, per_cluster: int = 50, dim: int = 8, spread: float = 0.05, seed: int = 0):
    """k tight, far-apart Gaussian blobs; labels are the blob index."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * rng.standard_normal((k, dim))
    labels = np.repeat(np.arange(k), per_cluster)
    return centres[labels] + spread * rng.standard_normal((len(labels), dim)), labels


def test_separated_blobs_score_perfectly():
    x, labels = blobs()
    scores = clustering_scores(x, labels, k=4)
    assert set(scores) == {"silhouette", "nmi", "ari"}
    assert scores["nmi"] == pytest.approx(1.0) and scores["ari"] == pytest.approx(1.0)
    assert scores["silhouette"] > 0.9


def test_random_labels_score_near_zero():
    x, _ = blobs(k=4, per_cluster=250)
    labels = np.random.default_rng(1).integers(0, 4, len(x))
    scores = clustering_scores(x, labels, k=4)
    assert abs(scores["ari"]) < 0.02 and scores["nmi"] < 0.02
    assert scores["silhouette"] > 0.9  # the geometry is still perfectly clustered: silhouette ignores labels


def test_scores_are_deterministic_and_check_their_inputs():
    x, labels = blobs(k=3, per_cluster=30, spread=3.0)
    assert clustering_scores(x, labels, 3, seed=5) == clustering_scores(x, labels, 3, seed=5)
    with pytest.raises(ValueError, match="90 embeddings but 89 labels"):
        clustering_scores(x, labels[:-1], 3)
    with pytest.raises(ValueError, match="2 <= k <= 90"):
        kmeans_assignments(x, 1)


def test_silhouette_is_subsampled_and_nan_when_undefined():
    x, labels = blobs(k=2, per_cluster=3000, dim=4)
    assert silhouette(x, labels, max_points=500) > 0.9  # 6000 rows scored on 500: fast
    assert np.isnan(silhouette(x, np.zeros(len(x), int)))


def test_permuted_clusters_give_a_permutation_matrix():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 400)
    permutation = np.array([3, 0, 4, 1, 2])
    table = cluster_relationship(a, permutation[a], 5, 5)
    assert table.counts.sum() == 400 and (table.counts.sum(1) == np.bincount(a, minlength=5)).all()
    assert (table.fractions == np.eye(5)[permutation]).all()
    assert (table.best_match == permutation).all()
    frame = table.to_frame()
    assert list(frame["best"]) == list(permutation) and (frame["best_fraction"] == 1.0).all()


def test_relationship_rows_are_fractions_and_empty_clusters_are_marked():
    a = np.array([0, 0, 0, 0, 2, 2])
    b = np.array([1, 1, 1, 0, 0, 0])
    table = cluster_relationship(a, b, 3, 2)
    np.testing.assert_allclose(table.fractions, [[0.25, 0.75], [0.0, 0.0], [1.0, 0.0]])
    assert list(table.best_match) == [1, -1, 0]
    with pytest.raises(ValueError, match="assign_b must be a 1-D array of cluster indices in 0..1"):
        cluster_relationship(a, b + 1, 3, 2)
    with pytest.raises(ValueError, match="same paired examples"):
        cluster_relationship(a, b[:-1], 3, 2)


def test_zones_split_agreeing_and_disagreeing_examples():
    # a's cluster 0 -> b's 1 for 3 of 4 examples; a's cluster 1 -> b's 0 for both; a's 2 -> b's 2 for 1 of 2
    a = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    b = np.array([1, 1, 1, 2, 0, 0, 2, 1])
    z = zones(a, b, 3, 3)
    assert list(z.mapping) == [1, 0, 2]
    assert list(z.agree) == [True, True, True, False, True, True, True, False]
    assert z.convergence + z.divergence == pytest.approx(1.0)
    assert z.convergence == pytest.approx(6 / 8)
    np.testing.assert_allclose(z.cluster_agreement, [0.75, 1.0, 0.5])


def test_hungarian_is_one_to_one_and_best_match_is_not():
    # both of a's clusters sit mostly in b's cluster 0: best match sends both there, Hungarian only one
    a = np.array([0, 0, 0, 1, 1, 1])
    b = np.array([0, 0, 1, 0, 0, 1])
    hungarian, best = zones(a, b, 2, 2), zones(a, b, 2, 2, matching="best")
    assert sorted(hungarian.mapping) == [0, 1] and list(best.mapping) == [0, 0]
    assert best.convergence == pytest.approx(4 / 6) and hungarian.convergence == pytest.approx(3 / 6)
    # more a clusters than b clusters: the unmatched one diverges entirely
    z = zones(np.array([0, 1, 2]), np.array([0, 1, 1]), 3, 2)
    assert (z.mapping == -1).sum() == 1 and z.convergence + z.divergence == pytest.approx(1.0)
    with pytest.raises(ValueError, match="matching must be"):
        zones(a, b, 2, 2, matching="greedy")


def test_relations_one_to_one_one_to_many_many_to_one_and_none():
    # a's cluster 0 -> b's 0 alone; a's 1 splits over b's 1 and 2; a's 2 and 3 both go to b's 3 (b merges them);
    # a's 4 spreads thinly over everything; a's 5 is empty
    counts = np.array([[10, 0, 0, 0, 0], [0, 5, 5, 0, 0], [0, 0, 0, 8, 0], [1, 0, 0, 6, 0], [2, 2, 2, 2, 2],
                       [0, 0, 0, 0, 0]])
    rows, columns = np.indices(counts.shape)
    a = np.repeat(rows.ravel(), counts.ravel())
    b = np.repeat(columns.ravel(), counts.ravel())
    table = cluster_relationship(a, b, 6, 5)
    np.testing.assert_array_equal(table.counts, counts)
    assert [list(p) for p in table.partners()] == [[0], [1, 2], [3], [3], [], []]
    assert table.relations() == ["one-to-one", "one-to-many", "many-to-one", "many-to-one", "none", "none"]
    # seen from b: its 1 and 2 both come from a's 1 (b splits what a merges), its 3 from a's 2 and 3, its 4
    # from a's thinly spread cluster alone
    assert table.transpose().relations() == ["one-to-one", "many-to-one", "many-to-one", "one-to-many",
                                             "one-to-one"]
    assert table.relations(share=0.5) == ["one-to-one", "one-to-many", "many-to-one", "many-to-one", "none",
                                          "none"]


def test_joint_embedding_weighs_modalities_equally():
    rng = np.random.default_rng(0)
    big, small = 1000.0 * rng.standard_normal((10, 3)), 0.001 * rng.standard_normal((10, 5))
    joint = joint_embedding([big, small])
    assert joint.shape == (10, 8)
    np.testing.assert_allclose(np.linalg.norm(joint[:, :3], axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(joint[:, 3:], axis=1), 1.0)


def test_cluster_majority_names_clusters_by_their_commonest_label():
    assert list(cluster_majority(np.array([0, 0, 0, 2]), np.array([5, 5, 1, 3]), 3)) == [5, -1, 3]


def test_cluster_analysis_of_two_modalities():
    image, labels = blobs(k=3, per_cluster=40, seed=0)
    audio, _ = blobs(k=3, per_cluster=40, seed=1)
    audio[labels == 2] = audio[labels == 1]  # audio cannot tell classes 1 and 2 apart: they diverge
    noise = np.random.default_rng(2).standard_normal(audio.shape) * 0.05
    result = cluster_analysis({"image": image, "audio": audio + noise}, labels, k=3)
    assert set(result.scores) == {"image", "audio", "joint"}
    assert result.scores["image"]["nmi"] == pytest.approx(1.0)
    assert result.scores["audio"]["nmi"] < 0.9 and result.scores["joint"]["nmi"] == pytest.approx(1.0)
    assert set(result.relationships) == set(result.zones) == {("image", "audio")}
    z = result.zones[("image", "audio")]
    assert z.convergence + z.divergence == pytest.approx(1.0)
    assert 0.5 < z.convergence < 1.0  # class 0 agrees; classes 1 and 2 share one audio region
    assert result.relationships[("image", "audio")].counts.sum() == len(labels)


def test_cluster_tables_are_the_analysis_as_artifact_tables():
    labels = np.repeat(np.arange(3), 4)
    image = labels.copy()  # image clusters follow the label
    audio = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2])  # audio merges labels 1 and 2
    analysis = ClusterAnalysis(3, {"image": image, "audio": audio}, {},
                               {("image", "audio"): cluster_relationship(image, audio, 3, 3)},
                               {("image", "audio"): zones(image, audio, 3, 3)})
    tables = cluster_tables(analysis, labels)
    assert {name: tuple(t.columns) for name, t in tables.items()} == {
        name: schema.ARTIFACT_COLUMNS[name] for name in (schema.ARTIFACT_CLUSTER_RELATIONSHIPS,
                                                         schema.ARTIFACT_CLUSTER_RELATIONS,
                                                         schema.ARTIFACT_CLUSTER_ZONES)}
    table = tables[schema.ARTIFACT_CLUSTER_RELATIONSHIPS]
    counts = table.pivot(index=schema.CLUSTER_A, columns=schema.CLUSTER_B, values=schema.COUNT).to_numpy()
    np.testing.assert_array_equal(counts, [[4, 0, 0], [0, 4, 0], [0, 3, 1]])
    assert table.groupby(schema.CLUSTER_B)[schema.LABEL_B].first().tolist() == [0, 1, 2]  # commonest labels
    relations = tables[schema.ARTIFACT_CLUSTER_RELATIONS].set_index([schema.MODALITY_A, schema.CLUSTER_A])
    assert relations.loc[("image", 1), schema.RELATION] == "many-to-one"  # image 1 and 2 share audio 1
    assert list(relations.loc[("image", 2), schema.PARTNERS]) == [1]
    assert list(relations.loc[("image", 2), schema.SHARES]) == [0.75]
    assert relations.loc[("audio", 1), schema.RELATION] == "one-to-many"  # audio 1 splits over image 1 and 2
    assert relations.loc[("audio", 0), schema.RELATION] == "one-to-one"
    zone = tables[schema.ARTIFACT_CLUSTER_ZONES]
    assert zone[schema.CONVERGENT].tolist() == [True] * 8 + [False] * 3 + [True]  # image 2 is matched to audio 2
    assert zone[schema.MATCHED].tolist() == [0] * 4 + [1] * 4 + [2] * 4
