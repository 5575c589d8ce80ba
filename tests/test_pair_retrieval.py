"""Pair-identity retrieval counts each distinct input once: a recording that AV-MNIST pairs with many images is
one gallery item, and any image paired with it is a hit for it."""

from __future__ import annotations

import numpy as np
import pytest

from mmray.eval import SplitExtras, evaluate
from mmray.eval.retrieval import content_ids, pair_retrieval_scores

RECORDINGS, COPIES = 20, 10  # AV-MNIST in small: every recording is paired with 10 images


def shared_recordings(noise: float = 0.05, seed: int = 0):
    """Image rows each paired with one of RECORDINGS audio inputs (row i -> recording i % RECORDINGS), and a
    "perfect" embedding: an image lands next to its own recording, identical audio inputs embed identically."""
    rng = np.random.default_rng(seed)
    recording_of = np.arange(RECORDINGS * COPIES) % RECORDINGS
    audio_inputs = rng.standard_normal((RECORDINGS, 1, 4, 5))[recording_of]  # repeated input rows
    image_inputs = rng.standard_normal((len(recording_of), 1, 3, 3))  # every image distinct
    audio = rng.standard_normal((RECORDINGS, 16))[recording_of]
    image = audio + noise * rng.standard_normal(audio.shape)
    return image, audio, content_ids([image_inputs]), content_ids([audio_inputs[:70], audio_inputs[70:]])


def brute_force(queries, gallery, query_contents, gallery_contents, ks, only=None):
    """The definition, one query at a time: distinct queries (those in `only`, if given) against distinct
    gallery items, a hit being any item the query is paired with; a tie with a non-partner counts against it."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    items = {c: g[np.flatnonzero(gallery_contents == c)[0]] for c in np.unique(gallery_contents)}
    names, vectors = list(items), np.stack(list(items.values()))
    ranks, aps = [], []
    for content in np.unique(query_contents) if only is None else only:
        rows = np.flatnonzero(query_contents == content)
        partners = set(gallery_contents[rows])
        similarity = vectors @ q[rows[0]]
        relevant = np.array([n in partners for n in names])
        irrelevant_above = [(similarity[~relevant] >= s).sum() for s in similarity[relevant]]
        ranks.append(min(irrelevant_above) + 1)
        found = np.arange(1, relevant.sum() + 1)
        aps.append(np.mean(found / (found + np.sort(irrelevant_above))))
    ranks = np.array(ranks)
    return {**{f"recall@{k}": float((ranks <= k).mean()) for k in ks}, "map": float(np.mean(aps))}


def test_content_ids_match_identical_rows_across_blocks():
    rows = np.array([[0.0, 1.0], [2.0, 3.0], [0.0, 1.0], [2.0, 3.000001]], dtype=np.float32)
    assert content_ids([rows[:1], rows[1:3], rows[3:]]).tolist() == [0, 1, 0, 2]
    assert content_ids([np.array([[5, 6], [5, 6]])]).tolist() == [0, 0]


def test_shared_recording_is_one_gallery_item():
    image, audio, image_contents, audio_contents = shared_recordings()
    # row by row, the recording's 10 identical copies tie with the own one (float32 rounding breaks a few
    # ties): rank ~10, recall@1 ~0 by construction
    naive = pair_retrieval_scores(image, audio, ks=(1, 10))
    assert naive["recall@1"] < 0.05 and naive["map"] == pytest.approx(1 / COPIES, abs=0.02)
    deduplicated = pair_retrieval_scores(image, audio, image_contents, audio_contents, ks=(1, 10))
    assert deduplicated == {"recall@1": 1.0, "recall@10": 1.0, "map": pytest.approx(1.0)}


def test_shared_recording_as_query_finds_any_of_its_images():
    image, audio, image_contents, audio_contents = shared_recordings()
    naive = pair_retrieval_scores(audio, image, ks=(1,))
    assert naive["recall@1"] <= 1 / COPIES  # 10 identical queries, 10 different own images: one can be first
    scores = pair_retrieval_scores(audio, image, audio_contents, image_contents, ks=(1,))
    assert scores == {"recall@1": 1.0, "map": pytest.approx(1.0)}


def test_unique_pairs_are_unchanged():
    rng = np.random.default_rng(3)
    queries, gallery = rng.standard_normal((60, 8)), rng.standard_normal((60, 8))
    distinct = content_ids([rng.standard_normal((60, 5))])
    plain = pair_retrieval_scores(queries, gallery, ks=(1, 5))
    assert pair_retrieval_scores(queries, gallery, distinct, distinct, ks=(1, 5)) == plain
    assert plain == pytest.approx(brute_force(queries, gallery, np.arange(60), np.arange(60), ks=(1, 5)))
    # one input per row: AP is the reciprocal rank of the own gallery row
    similarity = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ (
        gallery / np.linalg.norm(gallery, axis=1, keepdims=True)).T
    ranks = (similarity >= np.diag(similarity)[:, None]).sum(axis=1)
    assert plain["map"] == pytest.approx(np.mean(1 / ranks))


@pytest.mark.parametrize("chunk", [1024, 7])
def test_many_to_many_pairs_match_the_definition(chunk):
    # repeats on both sides (a question asked of several images, an image with several questions) and ties
    rng = np.random.default_rng(8)
    query_contents, gallery_contents = rng.integers(0, 25, 120), rng.integers(0, 30, 120)
    query_vectors = np.round(rng.standard_normal((25, 4)), 1)
    gallery_vectors = np.round(rng.standard_normal((30, 4)), 1)
    gallery_vectors[5] = gallery_vectors[6]  # two distinct inputs with one embedding: a tie between items
    queries, gallery = query_vectors[query_contents], gallery_vectors[gallery_contents]
    scores = pair_retrieval_scores(queries, gallery, query_contents, gallery_contents, ks=(1, 3, 10), chunk=chunk)
    assert scores == pytest.approx(brute_force(queries, gallery, query_contents, gallery_contents, (1, 3, 10)))


def test_collapsed_embeddings_still_score_near_zero():
    # repeats are found from the inputs, so embeddings that coincide for distinct inputs are not merged
    _, _, image_contents, audio_contents = shared_recordings()
    collapsed = np.ones((len(image_contents), 4))
    scores = pair_retrieval_scores(collapsed, collapsed, image_contents, audio_contents, ks=(1, 10))
    assert scores["recall@1"] == 0.0 and scores["recall@10"] == 0.0


def test_query_subsample_draws_distinct_queries():
    image, audio, image_contents, audio_contents = shared_recordings(noise=1.0)
    whole = pair_retrieval_scores(audio, image, audio_contents, image_contents, max_queries=RECORDINGS)
    assert whole == pair_retrieval_scores(audio, image, audio_contents, image_contents)
    sampled = pair_retrieval_scores(audio, image, audio_contents, image_contents, max_queries=5, seed=2)
    picked = np.sort(np.random.default_rng(2).choice(RECORDINGS, 5, replace=False))  # content ids = 0..19
    assert sampled == pytest.approx(brute_force(audio, image, audio_contents, image_contents, (1, 5, 10), picked))
    assert sampled != whole


def test_suite_reads_the_contents_from_split_extras():
    image, audio, image_contents, audio_contents = shared_recordings()
    labels = np.arange(len(image)) % RECORDINGS % 5
    embeddings = {"image": image, "audio": audio}
    plain = evaluate(embeddings, labels, embeddings, labels, ("image", "audio"))
    extras = SplitExtras(contents={"image": image_contents, "audio": audio_contents})
    deduplicated = evaluate(embeddings, labels, embeddings, labels, ("image", "audio"), extras)
    assert plain["pair_recall@1_image_to_audio"] < 0.05 and plain["pair_recall@1_audio_to_image"] <= 1 / COPIES
    assert deduplicated["pair_recall@1_image_to_audio"] == 1.0 and deduplicated["pair_map_audio_to_image"] == 1.0
    assert deduplicated["recall@1_image_to_audio"] == plain["recall@1_image_to_audio"]  # by label: as before
