"""fusion: encoders per modality kind, both fusion types, modality dropout, learning on real AV-MNIST, a Ray sweep."""

from __future__ import annotations

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
from mmray.eval.probes import fit_probe, probe_accuracy
from mmray.methods.encoders import ConvEncoder, LSTMEncoder, ResNetEncoder, build_encoder
from mmray.methods.fusion.card import FusionParams
from mmray.methods.fusion.model import modality_keep_mask
from mmray.results import schema

PAD = 1  # like BART: the pad id is not 0, so code assuming 0 would fail here
CAPTION = ModalitySpec("caption", "text", (10,), vocab_size=40, tokenizer="hand-made", pad_id=PAD)
LARGE_IMAGE = ModalitySpec("photo", "image", (3, 36, 36))  # just above the small-CNN limit: a ResNet
AVMNIST = (ModalitySpec("image", "image", (1, 28, 28)), ModalitySpec("audio", "audio", (1, 40, 40)))


def captions(labels: torch.Tensor, length: int = 10) -> torch.Tensor:
    """Hand-made token ids: 'the digit <label>' and a 2-4 word tail of the label's words, right-padded."""
    tokens = torch.full((len(labels), length), PAD)
    for row, label in enumerate(labels.tolist()):
        words = [2, 3, 10 + label] + [20 + label, 30 + label, 4, 5][:row % 3 + 2]
        tokens[row, :len(words)] = torch.tensor(words)
    return tokens


@pytest.mark.parametrize("spec, encoder_type, tokens", [
    (AVMNIST[0], ConvEncoder, 7 * 7),
    (AVMNIST[1], ConvEncoder, 10 * 10),
    (ModalitySpec("photo", "image", (3, 32, 32)), ConvEncoder, 8 * 8),
    (LARGE_IMAGE, ResNetEncoder, 5 * 5),
    (ModalitySpec("photo", "image", (3, 64, 64)), ResNetEncoder, 8 * 8),
    (ModalitySpec("face", "image", (1, 128, 128)), ResNetEncoder, 8 * 8),
    (CAPTION, LSTMEncoder, 10),
])
def test_build_encoder_picks_by_kind_and_shape(spec, encoder_type, tokens):
    encoder = build_encoder(spec, 24, 8)
    assert type(encoder) is encoder_type
    x = captions(torch.arange(3)) if spec.kind == "text" else torch.randn(3, *spec.shape)
    assert encoder(x).shape == (3, 24)
    t, valid = encoder.tokens(x)
    assert t.shape == (3, tokens, 24)
    assert valid is None or valid.shape == (3, tokens)


def test_conv_encoder_vector_is_the_mean_of_its_tokens():
    encoder = build_encoder(AVMNIST[1], 16, 8).eval()
    x = torch.randn(4, 1, 40, 40)
    assert torch.allclose(encoder(x), encoder.tokens(x)[0].mean(1), atol=1e-5)


def test_text_encoder_ignores_padding():
    encoder = build_encoder(CAPTION, 16, 8).eval()
    tokens = captions(torch.arange(4))
    longer = torch.cat([tokens, torch.full((4, 5), PAD)], dim=1)
    _, valid = encoder.tokens(tokens)
    assert torch.equal(valid, tokens != PAD)  # the hand-made captions have no pad inside a sentence
    assert torch.allclose(encoder(tokens), encoder(longer), atol=1e-5)
    changed = tokens.clone()
    changed[0, 1] = 30
    assert not torch.allclose(encoder(changed)[0], encoder(tokens)[0])


def test_unknown_modality_shape_is_refused():
    """A 2-D audio shape is a waveform (channels, samples); one shorter than a token's 160 samples is not."""
    assert build_encoder(ModalitySpec("x", "audio", (1, 8000)), 8, 8)(torch.zeros(2, 1, 8000)).shape == (2, 8)
    for shape in [(40, 40), (1, 40, 40, 1)]:
        with pytest.raises(ValueError, match="no encoder for modality 'x'"):
            build_encoder(ModalitySpec("x", "audio", shape), 8, 8)


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="hidden_dim 30 must be a multiple of heads 4"):
        FusionParams(hidden_dim=30, heads=4)
    FusionParams(hidden_dim=30, heads=4, fusion="concat")


def test_keep_mask_drops_whole_modalities_and_never_all():
    generator = torch.Generator().manual_seed(0)
    keep = modality_keep_mask(20000, 3, 0.6, generator)
    assert keep.shape == (20000, 3) and keep.any(1).all()
    # 0.6 drop chance, minus the examples revived after losing all three (0.6^3 of them, 1/3 each modality)
    assert abs((~keep).float().mean().item() - (0.6 - 0.6**3 / 3)) < 0.02
    assert (keep.sum(1) == 1).float().mean() > 0.3  # many examples keep a single modality
    assert modality_keep_mask(100, 2, 0.0).all()


@pytest.mark.parametrize("fusion", ["attention", "concat"])
def test_a_dropped_modality_is_whole_and_the_same_as_a_missing_one(fusion):
    seed_everything(0)
    model = build_method("fusion", AVMNIST, 10, {"fusion": fusion, "encoder_width": 8, "hidden_dim": 32}).eval()
    batch = {"image": torch.rand(4, 1, 28, 28), "audio": torch.randn(4, 1, 40, 40), "label": torch.arange(4)}
    keep = torch.tensor([[True, False], [True, True], [False, True], [True, True]])
    with torch.no_grad():
        fused = model._fused(*model._encode(batch, keep)[:2])
        noisy = dict(batch, audio=batch["audio"] + torch.randn(4, 1, 40, 40))
        fused_noisy = model._fused(*model._encode(noisy, keep)[:2])
        without_audio = model.embed({"image": batch["image"], "label": batch["label"]})
    # nothing of a dropped modality reaches the fused embedding; kept ones do
    assert torch.allclose(fused[0], fused_noisy[0], atol=1e-5)
    assert not torch.allclose(fused[1], fused_noisy[1], atol=1e-3)
    # dropping audio from one example is the same as embedding a batch without audio
    assert set(without_audio) == {"image", "fused"}
    assert torch.allclose(fused[0], without_audio["fused"][0], atol=1e-5)


@pytest.mark.parametrize("fusion", ["attention", "concat"])
def test_image_and_text_fusion_learns_a_batch(fusion):
    """The text and large-image paths (ResNet, LSTM, text decoder) on hand-made tensors: every loss term
    falls while overfitting one batch, and the fused embedding survives a missing caption."""
    seed_everything(0)
    specs = (LARGE_IMAGE, CAPTION)
    model = build_method("fusion", specs, 5, {"fusion": fusion, "encoder_width": 8, "hidden_dim": 32,
                                              "modality_dropout": 0.3})
    labels = torch.arange(16) % 5
    batch = {"photo": torch.rand(16, 3, 36, 36), "caption": captions(labels), "label": labels}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = last = None
    for _ in range(40):
        last = train_epoch(model, [batch], optimizer)
        first = first or last
    assert set(last) == {"loss", "classifier", "contrastive", "decoder_photo", "decoder_caption"}
    for term in ("loss", "classifier", "contrastive", "decoder_caption"):
        assert last[term] < 0.7 * first[term], term
    with torch.no_grad():
        embedded = model.eval().embed({"photo": batch["photo"], "label": labels})
        generated = model.generate_text(batch)["caption"]
        reconstructed = model.translate(batch, "photo", "photo")
        from_caption = model.translate({"caption": batch["caption"]}, "caption", "photo")  # the text alone
    assert set(embedded) == {"photo", "fused"} and embedded["fused"].shape == (16, 64)
    assert reconstructed.shape == from_caption.shape == batch["photo"].shape
    # captions generated from the photo alone: ids of the right shape, pad from the first pad on
    assert generated.shape == (16, 10) and generated.dtype == torch.long
    after_end = (generated == PAD).long().cummax(1).values.bool()
    assert (generated[after_end] == PAD).all()


def test_a_batch_without_any_modality_is_refused():
    model = build_method("fusion", AVMNIST, 10, {"encoder_width": 8, "hidden_dim": 32})
    with pytest.raises(ValueError, match="holds none of the modalities"):
        model.embed({"label": torch.arange(3)})


# ---- real AV-MNIST (mirror) ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def avmnist_small(mirror, tmp_path_factory):
    prepared = prepare("avmnist", {"max_train": 1500, "max_eval": 500, "n_val_images": 500}, mirror=mirror,
                       cache_dir=tmp_path_factory.mktemp("cache"), log=lambda *a, **k: None)
    return prepared, read_split(prepared, "train"), read_split(prepared, "test")


def _batches(prepared, arrays, size, without=None, generator=None):
    """mmray.engine.batching.tensor_batches, shuffled (full batches only) when a generator is given, `without` left out."""
    kept = [m for m in prepared.modalities if m.name != without]
    return tensor_batches(arrays, size, kept, shuffle=generator is not None, drop_last=generator is not None,
                          generator=generator)


@pytest.fixture(scope="module", params=["attention", "concat"])
def trained(request, avmnist_small):
    prepared, train, _ = avmnist_small
    seed_everything(0)
    torch.set_num_threads(2)
    model = build_method("fusion", prepared.modalities, prepared.num_classes,
                         {"fusion": request.param, "encoder_width": 16, "hidden_dim": 64})
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    history = [train_epoch(model, _batches(prepared, train, 64, generator=generator), optimizer, 5.0)
               for _ in range(3)]
    return model, history


@pytest.mark.mirror
def test_loss_falls_on_real_avmnist(trained):
    _, history = trained
    for term in ("loss", "classifier"):
        assert history[-1][term] < 0.9 * history[0][term], (term, history)


@pytest.mark.mirror
def test_fused_probe_is_far_above_chance_even_with_a_modality_missing(trained, avmnist_small):
    model, _ = trained
    prepared, train, test = avmnist_small
    fused_train, train_labels = embed_all(model, _batches(prepared, train, 256))
    probe = fit_probe(fused_train["fused"], train_labels)
    accuracy = {}
    for without in (None, "audio", "image"):
        embedded, labels = embed_all(model, _batches(prepared, test, 256, without=without))
        assert "fused" in embedded and (without is None or without not in embedded)
        accuracy[without] = probe_accuracy(probe, embedded["fused"], labels)
    # ten digits: chance is 0.1. Three short epochs on 1,500 pairs: complete pairs 0.75 and image alone 0.40
    # were measured (attention); audio alone is still near chance this early, so it is only embedded
    assert accuracy[None] > 0.6 and accuracy["audio"] > 0.25, accuracy


# ---- one real sweep ------------------------------------------------------------------------------------

@pytest.mark.ray
def test_fusion_sweep_on_ray_searches_the_fusion_type(tmp_path, ray_session):  # noqa: F811
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text("""
name: fusion-tiny
benchmarks:
  - name: synthetic-av
    params: {n_train: 400, n_val: 100, n_test: 200, image_size: 16, n_mels: 16, frames: 16, noise: 0.3,
             distractor: 0.2}
methods: [fusion]
train: {epochs: 2, batch_size: 64, probe_examples: 200}
method_params: {fusion: {encoder_width: 8, hidden_dim: 32, latent_dim: 16}}
search_space:
  method.fusion: {choice: [attention, concat]}
  method.modality_dropout: {uniform: [0.1, 0.4]}
search: {algorithm: random, num_samples: 2, metric: val/fused_acc, mode: max}
scheduler: {type: none}
""")
    out = api.run_sweep(api.load_spec(spec_path), cache_dir=tmp_path / "cache", results_dir=tmp_path / "results",
                        report=False, log=lambda *_: None)
    trials = pd.read_parquet(out / schema.TRIALS_FILE)
    assert len(trials) == 2 and (trials[schema.STATUS] == schema.STATUS_COMPLETED).all()
    assert set(trials["config/method/fusion"]) <= {"attention", "concat"}
    assert trials["config/method/modality_dropout"].between(0.1, 0.4).all()
    assert trials["final/test/fused_acc"].min() > 0.3  # ten classes: chance is 0.1
