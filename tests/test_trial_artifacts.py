"""What a trial shows at its last epoch, trained for one epoch on a small real AV-MNIST (mirror): pavlov's
same- and cross-modal translations with audio you can play, aecluster's per-modality latent sizes and cluster
relations, fusion's images from one modality alone; their SSIM metrics and directions."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from mmray.data import prepare
from mmray.data.audio import manifest_stats, waveform_from_log_mel
from mmray.engine.local import fit_local
from mmray.results import schema
from mmray.results.artifacts import load_artifacts

TRAIN = {"epochs": 1, "batch_size": 64, "probe_examples": 400, "eval_examples": 300}
TRANSLATIONS = {
    "pavlov": {("image", "image"), ("image", "audio"), ("audio", "image"), ("audio", "audio")},
    "aecluster": {("image", "image"), ("audio", "audio")},
    "fusion": {("image", "image"), ("audio", "image")},  # w_audio = 0: no audio decoder
}


@pytest.fixture(scope="module")
def avmnist(mirror, tmp_path_factory):
    return prepare("avmnist", {"max_train": 800, "max_eval": 300, "n_val_images": 300}, mirror=mirror,
                   cache_dir=tmp_path_factory.mktemp("cache"), log=lambda *a, **k: None)


@pytest.fixture(scope="module")
def trained(avmnist, tmp_path_factory):
    """{method: (last epoch's metrics, artifact tables)}."""
    out = {}
    for method, params in (("pavlov", {"encoder_width": 8}), ("aecluster", {"encoder_width": 64}),
                           ("fusion", {"encoder_width": 8, "hidden_dim": 32})):
        folder = tmp_path_factory.mktemp(method)
        history = fit_local(method, avmnist, method_params=params, train=TRAIN, artifacts_dir=folder,
                            torch_threads=2)
        out[method] = history[-1], load_artifacts(folder, "local")
    return out


@pytest.mark.mirror
@pytest.mark.parametrize("method", sorted(TRANSLATIONS))
def test_each_declared_translation_is_scored_and_kept(trained, method):
    metrics, tables = trained[method]
    for source, target in TRANSLATIONS[method]:
        for split in schema.SPLITS:
            column = f"{split}/ssim_{source}_to_{target}"
            assert -1 <= metrics[column] <= 1 and schema.higher_is_better(column), column
    samples = tables[schema.ARTIFACT_RECONSTRUCTIONS]
    assert set(samples.groupby([schema.SOURCE, schema.TARGET]).size().index) == TRANSLATIONS[method]
    # two test examples of each digit per translation, each the target's own input beside the output
    for _, rows in samples.groupby([schema.SOURCE, schema.TARGET]):
        assert rows[schema.LABEL].value_counts().to_dict() == dict.fromkeys(range(10), 2)
    assert (samples[schema.KIND] == samples[schema.TARGET]).all()  # AV-MNIST names its modalities by kind


@pytest.mark.mirror
def test_pavlov_audio_is_audible(trained, avmnist):
    _, tables = trained["pavlov"]
    samples = tables[schema.ARTIFACT_RECONSTRUCTIONS]
    audio = samples[samples[schema.TARGET] == "audio"]
    heard = audio[audio[schema.ORIGINAL_WAV].notna()]
    assert len(heard) == 2 * 10  # the first example of each digit, for each source
    assert samples.loc[samples[schema.TARGET] == "image", schema.ORIGINAL_WAV].isna().all()
    params = avmnist.manifest["params"]
    for column in (schema.ORIGINAL_WAV, schema.RECONSTRUCTION_WAV):
        wave, rate = sf.read(io.BytesIO(heard[column].iloc[0]), dtype="float32")
        assert rate == params["sample_rate"] and len(wave) == params["hop_length"] * (params["frames"] - 1)
        assert 0 < np.abs(wave).max() <= 1
    # the input's WAV is its stored log-mel through waveform_from_log_mel (16-bit)
    row = heard.iloc[0]
    expected = waveform_from_log_mel(np.asarray(row[schema.ORIGINAL]).reshape(row[schema.SHAPE]), params,
                                     manifest_stats(avmnist.manifest))
    np.testing.assert_allclose(sf.read(io.BytesIO(row[schema.ORIGINAL_WAV]), dtype="float32")[0], expected,
                               atol=1e-4)


@pytest.mark.mirror
def test_aecluster_keeps_per_modality_latent_sizes_and_its_cluster_relations(trained):
    metrics, tables = trained["aecluster"]
    # image 16, audio 32 (the seed's sizes): nothing compares the two latents coordinate by coordinate
    assert not [k for k in metrics if k.startswith(("test/transfer_", "test/recall@", "test/alignment_"))]
    assert 0 <= metrics["test/fused_acc"] <= 1 and 0 <= metrics["test/nmi_image"] <= 1
    tsne = tables[schema.ARTIFACT_TSNE]
    assert schema.SHARED_MAP not in set(tsne[schema.MAP])  # no one space to share
    relationships = tables[schema.ARTIFACT_CLUSTER_RELATIONSHIPS]
    assert len(relationships) == 10 * 10 and relationships[schema.COUNT].sum() == 300
    fractions = relationships.groupby(schema.CLUSTER_A)[schema.FRACTION].sum()
    sizes = relationships.groupby(schema.CLUSTER_A)[schema.COUNT].sum()
    assert np.allclose(fractions[sizes > 0], 1.0)
    relations = tables[schema.ARTIFACT_CLUSTER_RELATIONS]
    assert len(relations) == 2 * 10 and set(relations[schema.MODALITY_A]) == {"image", "audio"}
    assert set(relations[schema.RELATION]) <= {"one-to-one", "one-to-many", "many-to-one", "none"}
    zones = tables[schema.ARTIFACT_CLUSTER_ZONES]
    assert len(zones) == 300 and zones[schema.CONVERGENT].dtype == bool
    convergent = zones[schema.MATCHED] == zones[schema.CLUSTER_B]
    assert (convergent == zones[schema.CONVERGENT]).all()


@pytest.mark.mirror
def test_pavlov_puts_both_modalities_in_one_t_sne_map(trained):
    _, tables = trained["pavlov"]
    tsne = tables[schema.ARTIFACT_TSNE]
    shared = tsne[tsne[schema.MAP] == schema.SHARED_MAP]
    assert set(shared[schema.MODALITY]) == {"image", "audio"} and len(shared) == 2 * 300


def test_fusion_draws_images_from_captions_and_captions_from_images(tmp_path):
    # mnist-captions in the hub's layout (a handful of rows, no mirror needed): an image decoded from its
    # caption alone, scored against the image (ssim_caption_to_image) and kept beside the caption's text; a
    # caption generated from the image, scored by BLEU and kept beside the reference
    import hf_fixtures

    hf_fixtures.mnist_captions(tmp_path / "mirror" / "mnist-captions", rows={"train": 80, "test": 30})
    prepared = prepare("mnist-captions", {}, mirror=tmp_path / "mirror", cache_dir=tmp_path / "cache",
                       log=lambda *a, **k: None)
    history = fit_local("fusion", prepared, method_params={"encoder_width": 4, "hidden_dim": 16},
                        train={"epochs": 1, "batch_size": 8, "probe_examples": 100, "eval_examples": 100},
                        artifacts_dir=tmp_path / "artifacts")
    metrics = history[-1]
    for name in ("ssim_caption_to_image", "ssim_image_to_image", "bleu_caption"):
        assert np.isfinite(metrics[f"test/{name}"]) and schema.higher_is_better(f"test/{name}"), name
    tables = load_artifacts(tmp_path / "artifacts", "local")
    samples = tables[schema.ARTIFACT_RECONSTRUCTIONS]
    assert set(samples.groupby([schema.SOURCE, schema.TARGET]).size().index) == {("image", "image"),
                                                                                ("caption", "image")}
    from_text = samples[samples[schema.SOURCE] == "caption"]
    assert from_text[schema.SOURCE_TEXT].str.startswith("a picture of a").all(), from_text[schema.SOURCE_TEXT]
    assert samples.loc[samples[schema.SOURCE] == "image", schema.SOURCE_TEXT].isna().all()
    captions = tables[schema.ARTIFACT_GENERATIONS]
    assert (captions[schema.MODALITY] == "caption").all() and captions[schema.REFERENCE].str.len().gt(0).all()
