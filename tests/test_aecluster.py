"""aecluster: separate autoencoders per modality, latents that cluster by digit on real AV-MNIST, a Ray sweep."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from test_sweep_ray import ray_session  # noqa: F401 - the module-scoped local Ray fixture

from mmray import api
from mmray.data import prepare
from mmray.data.shards import read_split
from mmray.data.spec import ModalitySpec
from mmray.engine.batching import tensor_batches
from mmray.engine.training import build_method, embed_all, seed_everything, train_epoch
from mmray.methods.aecluster.card import AEClusterParams
from mmray.methods.aecluster.model import AECluster
from mmray.results import schema

AVMNIST = (ModalitySpec("image", "image", (1, 28, 28)), ModalitySpec("audio", "audio", (1, 40, 40)))


def _batch(n: int = 6) -> dict[str, torch.Tensor]:
    return {"image": torch.rand(n, 1, 28, 28), "audio": torch.randn(n, 1, 40, 40), "label": torch.arange(n) % 10}


@pytest.mark.parametrize("encoder", ["mlp", "conv"])
def test_embed_works_with_a_modality_missing(encoder):
    model = AECluster(AVMNIST, 10, AEClusterParams(latent_dim=8, encoder=encoder, encoder_width=8)).eval()
    batch = _batch()
    with torch.no_grad():
        full = model.embed(batch)
        image_only = model.embed({"image": batch["image"], "label": batch["label"]})
    assert set(full) == {"image", "audio", "fused"} and full["fused"].shape == (6, 16)
    assert set(image_only) == {"image", "fused"} and image_only["fused"].shape == (6, 16)
    # the fused vector is the joint one: each normalised latent in its place, zeros for a missing modality
    normalised = torch.nn.functional.normalize(full["image"], dim=-1)
    assert torch.allclose(full["fused"][:, :8], normalised, atol=1e-6)
    assert torch.allclose(image_only["fused"], torch.cat([normalised, torch.zeros(6, 8)], dim=1), atol=1e-6)
    with pytest.raises(ValueError, match="holds none of the modalities"):
        model.embed({"label": batch["label"]})


def test_losses_weigh_each_kind_and_align_only_when_asked():
    torch.manual_seed(0)
    batch = _batch()
    separate = AECluster(AVMNIST, 10, AEClusterParams(latent_dim=8, w_recon_audio=0.0))
    terms = separate.losses(batch)
    assert set(terms) == {"loss", "recon_image", "recon_audio", "align"}
    assert torch.isclose(terms["loss"], terms["recon_image"])  # audio weight 0, alignment off by default
    aligned = AECluster(AVMNIST, 10, AEClusterParams(latent_dim=8, w_align=0.5))
    terms = aligned.losses(batch)
    assert torch.isclose(terms["loss"], terms["recon_image"] + terms["recon_audio"] + 0.5 * terms["align"])
    with torch.no_grad():
        for name in ("image", "audio"):
            assert aligned.translate(batch, name, name).shape == batch[name].shape
        assert aligned.translate(batch, "image", "audio") is None  # separate autoencoders: same-modal only
    assert AECluster.translations(AVMNIST) == (("image", "image"), ("audio", "audio"))


def test_each_modality_kind_has_its_own_latent_size():
    torch.manual_seed(0)
    batch = _batch()
    model = AECluster(AVMNIST, 10, AEClusterParams(encoder_width=8)).eval()  # the seed's sizes: 16 and 32
    with torch.no_grad():
        z = model.embed(batch)
        assert (z["image"].shape, z["audio"].shape, z["fused"].shape) == ((6, 16), (6, 32), (6, 48))
        for name in ("image", "audio"):
            assert model.translate(batch, name, name).shape == batch[name].shape
    # separate latents of two sizes cannot be compared pair by pair: no alignment term, and none allowed
    assert set(model.losses(batch)) == {"loss", "recon_image", "recon_audio"}
    with pytest.raises(ValueError, match="needs one latent size: set latent_dim"):
        AEClusterParams(w_align=0.1)
    assert AEClusterParams(w_align=0.1, latent_dim=8).latent_size("audio") == 8  # latent_dim overrides both
    assert AEClusterParams(latent_dim_image=10, latent_dim_audio=10, w_align=0.1).latent_size("image") == 10


def test_text_modalities_are_refused_and_k_defaults_to_the_classes():
    caption = ModalitySpec("caption", "text", (8,), vocab_size=20, tokenizer="hand-made", pad_id=0)
    assert "'caption' is text" in AECluster.incompatibility((AVMNIST[0], caption))
    assert AECluster.incompatibility(AVMNIST) is None
    assert AECluster(AVMNIST, 10, AEClusterParams(latent_dim=4)).n_clusters == 10
    assert AECluster(AVMNIST, 10, AEClusterParams(latent_dim=4, n_clusters=6)).n_clusters == 6


# ---- real AV-MNIST (mirror) ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(mirror, tmp_path_factory):
    prepared = prepare("avmnist", {"max_train": 3000, "max_eval": 1000, "n_val_images": 500}, mirror=mirror,
                       cache_dir=tmp_path_factory.mktemp("cache"), log=lambda *a, **k: None)
    train, test = read_split(prepared, "train"), read_split(prepared, "test")
    seed_everything(0)
    torch.set_num_threads(2)
    model = build_method("aecluster", prepared.modalities, prepared.num_classes, {"latent_dim": 10})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    history = [train_epoch(model, tensor_batches(train, 64, prepared.modalities, shuffle=True, drop_last=True,
                                                 generator=generator), optimizer, 5.0) for _ in range(4)]
    embeddings, labels = embed_all(model, tensor_batches(test, 500, prepared.modalities))
    return model, history, embeddings, labels


@pytest.mark.mirror
def test_reconstruction_loss_falls_on_real_avmnist(trained):
    _, history, _, _ = trained
    for term in ("loss", "recon_image", "recon_audio"):
        assert history[-1][term] < 0.7 * history[0][term], (term, history)


@pytest.mark.mirror
def test_image_latents_cluster_by_digit(trained):
    model, _, embeddings, labels = trained
    analysis = model.cluster_analysis(embeddings, labels)
    assert set(analysis.scores) == {"image", "audio", "joint"}
    # ten digits: chance NMI of a 10-cluster k-means is ~0.01 on 1000 examples
    assert analysis.scores["image"]["nmi"] > 0.35, analysis.scores
    assert analysis.scores["image"]["ari"] > 0.2, analysis.scores
    zones = analysis.zones[("image", "audio")]
    assert zones.convergence + zones.divergence == pytest.approx(1.0)
    assert analysis.relationships[("image", "audio")].counts.sum() == len(labels)


# ---- one real sweep ------------------------------------------------------------------------------------

@pytest.mark.ray
def test_aecluster_sweep_on_ray(tmp_path, ray_session):  # noqa: F811
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text("""
name: aecluster-tiny
benchmarks:
  - name: synthetic-av
    params: {n_train: 400, n_val: 100, n_test: 200, image_size: 16, n_mels: 16, frames: 16, noise: 0.3,
             distractor: 0.2}
methods: [aecluster]
train: {epochs: 2, batch_size: 64, probe_examples: 200}
method_params: {aecluster: {encoder_width: 64}}
search_space:
  method.latent_dim: {choice: [8, 16]}
  method.w_recon_audio: {uniform: [0.5, 1.5]}
search: {algorithm: random, num_samples: 2, metric: val/nmi_image, mode: max}
scheduler: {type: none}
""")
    out = api.run_sweep(api.load_spec(spec_path), cache_dir=tmp_path / "cache", results_dir=tmp_path / "results",
                        report=False, log=lambda *_: None)
    trials = pd.read_parquet(out / schema.TRIALS_FILE)
    assert len(trials) == 2 and (trials[schema.STATUS] == schema.STATUS_COMPLETED).all()
    assert set(trials["config/method/latent_dim"]) <= {8, 16}
    assert trials["config/method/w_recon_audio"].between(0.5, 1.5).all()
    # the suite's k-means scores of every trial; ten classes: chance NMI is near 0
    assert np.isfinite(trials["final/test/nmi_image"]).all() and trials["final/test/nmi_image"].max() > 0.2
