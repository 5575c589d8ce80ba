"""cpc: its pure losses on hand-made inputs, the latent queue, the module on sine tones, a real Ray sweep."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_sweep_ray import ray_session  # noqa: F401 - the module-scoped local Ray fixture

from mmray import api
from mmray.data.prepare import prepare
from mmray.data.shards import read_split
from mmray.data.spec import ModalitySpec
from mmray.engine.batching import tensor_batches
from mmray.engine.training import build_method, embed_all, seed_everything, train_epoch
from mmray.eval.probes import fit_probe, probe_accuracy
from mmray.methods.card import second_view
from mmray.methods.cpc.model import CPC, LatentQueue
from mmray.methods.losses import cpc_info_nce, perturbed_negatives, time_shifted_negatives
from mmray.results import schema

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGE = ModalitySpec("image", "image", (3, 8, 8))
AUDIO = ModalitySpec("audio", "audio", (1, 6, 10))
TINY_SINE = {"n_train": 400, "n_val": 100, "n_test": 200, "n_mels": 16, "frames": 16}


def one_hot_groups(groups: int, rows: int) -> torch.Tensor:
    """(groups, rows, rows): in every group, row i is the i-th unit vector (all positives orthogonal)."""
    return torch.eye(rows).expand(groups, rows, rows).clone()


# --- pure losses --------------------------------------------------------------------------------------------

def test_info_nce_matches_its_closed_form_and_is_minimal_at_the_positives():
    positives = one_hot_groups(3, 4)
    # prediction == positive: logit 1/T on the diagonal, 0 elsewhere -> -log(e^(1/T) / (e^(1/T) + 3))
    exact = cpc_info_nce(positives, positives, None, temperature=1.0)
    assert exact.item() == pytest.approx(math.log(math.e + 3) - 1, abs=1e-6)
    assert cpc_info_nce(positives, positives, None, temperature=0.05).item() < 1e-6
    torch.manual_seed(0)
    for _ in range(5):
        other = positives + 0.5 * torch.randn_like(positives)
        assert cpc_info_nce(other, positives, None, 1.0) > exact


def test_info_nce_counts_shared_and_hard_negatives():
    positives = one_hot_groups(2, 3)
    shared = torch.zeros(5, 4)
    shared[:, 3] = 1.0  # orthogonal to every prediction: five more e^0 terms in each denominator
    padded = torch.cat([positives, torch.zeros(2, 3, 1)], dim=-1)
    expected = math.log(math.e + 2 + 5) - 1
    assert cpc_info_nce(padded, padded, shared, 1.0).item() == pytest.approx(expected, abs=1e-6)
    per_group = shared.expand(2, 5, 4)
    assert torch.allclose(cpc_info_nce(padded, padded, per_group, 1.0),
                          cpc_info_nce(padded, padded, shared, 1.0))
    hard = padded[:, :, None, :].clone()  # each row's hard negative equals its positive: one more e^1 term
    assert cpc_info_nce(padded, padded, None, 1.0, hard_negatives=hard).item() == pytest.approx(
        math.log(2 * math.e + 2) - 1, abs=1e-6)


def test_perturbed_negatives_are_detached_noisy_copies_of_the_normalised_positives():
    positives = torch.randn(5, 3, 8, requires_grad=True)
    noisy = perturbed_negatives(positives, noise_scale=0.1)
    assert noisy.shape == positives.shape and not noisy.requires_grad
    exact = perturbed_negatives(positives, noise_scale=0.0)
    assert torch.allclose(exact, torch.nn.functional.normalize(positives.detach(), dim=-1))
    assert 0 < (noisy - exact).std() < 0.2


def test_time_shifted_negatives_come_from_the_same_sequence_at_another_time():
    steps, rows, k = 6, 4, 2
    # latents[t, n] = (t, n): every value names where it came from
    latents = torch.stack(torch.meshgrid(torch.arange(steps), torch.arange(rows), indexing="ij"), -1).float()
    latents.requires_grad_(True)
    torch.manual_seed(0)
    for _ in range(20):
        shifted = time_shifted_negatives(latents, k)
        assert shifted.shape == (steps - k, rows, 2) and not shifted.requires_grad
        target_times = torch.arange(k, steps)[:, None].expand(-1, rows)
        assert (shifted[..., 0] != target_times).all()  # never the target's own time
        assert (shifted[..., 1] == torch.arange(rows)).all()  # always the target's own sequence


# --- the latent queue ---------------------------------------------------------------------------------------

def test_queue_is_fifo_bounded_and_detached():
    queue = LatentQueue(size=4, shape=(2,))
    assert queue.contents().shape == (0, 2)
    rows = torch.arange(12.0).view(6, 2).requires_grad_(True)
    queue.push(rows[:3])
    assert torch.equal(queue.contents(), rows[:3].detach())
    queue.push(rows[3:])  # six pushed, capacity four: rows 0 and 1 are gone, the rest stay oldest first
    assert torch.equal(queue.contents(), rows[2:].detach())
    queue.push(torch.arange(100.0, 120.0).view(10, 2))  # more than the capacity at once: the newest four
    assert torch.equal(queue.contents(), torch.arange(112.0, 120.0).view(4, 2))
    assert not queue.contents().requires_grad
    assert list(queue.parameters()) == [] and {"items", "pointer", "count"} <= set(queue.state_dict())


def test_module_queue_fills_in_training_only_and_gradients_survive_the_push():
    torch.manual_seed(0)
    model = build_method("cpc", (AUDIO,), 2, {"negatives": "queue", "queue_size": 10, "z_dim": 4, "c_dim": 8,
                                              "encoder_width": 4})
    batch = {"audio": torch.randn(6, *AUDIO.shape), "label": torch.zeros(6, dtype=torch.long)}
    model.train()
    model(batch)["loss"].backward()  # the push after the loss must not break backward
    model(batch)
    assert int(model.queues["audio"].count) == 10 and int(model.queues["audio"].pointer) == 2
    assert model.queues["audio"].contents().shape == (10, 5, 4)  # whole sequences: 10 frames -> 5 latents
    model.eval()
    before = model.queues["audio"].contents()
    model(batch)
    model.embed(batch)
    assert torch.equal(model.queues["audio"].contents(), before)


# --- the module ---------------------------------------------------------------------------------------------

def test_crossmodal_negatives_come_from_the_other_modality():
    batch = {"image": torch.rand(8, *IMAGE.shape), "audio": torch.randn(8, *AUDIO.shape)}
    params = {"z_dim": 4, "c_dim": 8, "encoder_width": 4, "patch_size": 4, "w_align": 0.0}
    image_grads = {}
    for mode in ("inbatch", "crossmodal"):
        seed_everything(0)
        model = CPC((IMAGE, AUDIO), 2, CPC.Params(negatives=mode, **params))
        model(batch)["cpc_audio"].backward()
        image_grads[mode] = sum(float(p.grad.abs().sum()) for p in model.encoders["image"].parameters()
                                if p.grad is not None)
    assert image_grads["inbatch"] == 0  # audio's CPC term alone never sees the images...
    assert image_grads["crossmodal"] > 0  # ...unless the image latents are its negatives
    seed_everything(0)
    model = CPC((IMAGE, AUDIO), 2, CPC.Params(negatives="crossmodal", **params))
    z, c = model.sequences("audio", batch["audio"])
    image_z = model.sequences("image", batch["image"])[0]
    torch.manual_seed(1)
    assert model.cpc_loss("audio", z, c, image_z, batch["audio"]) > model.cpc_loss("audio", z, c, None,
                                                                                 batch["audio"])  # more negatives


def test_crossmodal_negatives_combine_with_the_queue_and_synthetic_ones():
    batch = {"image": torch.rand(8, *IMAGE.shape), "audio": torch.randn(8, *AUDIO.shape)}
    params = {"z_dim": 4, "c_dim": 8, "encoder_width": 4, "patch_size": 4, "w_align": 0.0, "queue_size": 16}
    seed_everything(0)
    model = CPC((IMAGE, AUDIO), 2, CPC.Params(negatives="queue+synthetic+crossmodal", **params))
    assert model.negative_kinds == {"queue", "synthetic", "crossmodal"}
    model(batch)["cpc_audio"].backward()  # fills the queue
    assert int(model.queues["audio"].count) == 8
    assert sum(float(p.grad.abs().sum()) for p in model.encoders["image"].parameters() if p.grad is not None) > 0


def test_the_queue_holds_latents_of_a_momentum_encoder_that_trails_the_online_one():
    torch.manual_seed(0)
    params = {"negatives": "queue", "queue_size": 8, "z_dim": 4, "c_dim": 8, "encoder_width": 4}
    model = build_method("cpc", (AUDIO,), 2, {**params, "momentum": 0.9})
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    batch = {"audio": torch.randn(4, *AUDIO.shape), "label": torch.zeros(4, dtype=torch.long)}
    online, key = model.encoders["audio"], model.momentum_encoders["audio"]
    assert all(not p.requires_grad for p in key.parameters())
    before = [p.detach().clone() for p in online.parameters()]
    for _ in range(3):
        optimizer.zero_grad()
        model(batch)["loss"].backward()
        optimizer.step()
    moved_online = sum(float((p.detach() - b).abs().sum()) for p, b in zip(online.parameters(), before))
    moved_key = sum(float((p - b).abs().sum()) for p, b in zip(key.parameters(), before))
    assert 0 < moved_key < moved_online  # the momentum encoder follows, slowly
    with torch.no_grad():
        assert torch.allclose(model.queues["audio"].contents()[-4:], key(batch["audio"]), atol=1e-6)
    without = build_method("cpc", (AUDIO,), 2, {**params, "momentum": 0.0})
    assert without.momentum_encoders is None


def test_a_modality_subset_never_reads_the_other_modality():
    params = {"z_dim": 4, "c_dim": 8, "encoder_width": 4, "patch_size": 4, "modalities": ["image"]}
    seed_everything(0)
    model = build_method("cpc", (IMAGE, AUDIO), 2, params)
    assert [m.name for m in model.modalities] == ["image"] and set(model.encoders) == {"image"}
    images = torch.rand(6, *IMAGE.shape)
    torch.manual_seed(1)
    with_tone = model({"image": images, "audio": torch.randn(6, *AUDIO.shape)})
    torch.manual_seed(1)
    other_tone = model({"image": images, "audio": 100 * torch.randn(6, *AUDIO.shape)})
    assert "align" not in with_tone and torch.equal(with_tone["loss"], other_tone["loss"])
    assert set(model.embed({"image": images, "audio": torch.randn(6, *AUDIO.shape)})) == {"image", "fused"}
    with pytest.raises(ValueError, match=r"cpc: modalities \['tone'\] must name some of the benchmark's "
                                         r"modalities \['image', 'audio'\]"):
        build_method("cpc", (IMAGE, AUDIO), 2, {**params, "modalities": ["tone"]})


def test_two_views_add_an_instance_term_that_training_lowers_through_both_views():
    """augment.views: 2: InfoNCE between the mean contexts of an example's two views, against the batch's other
    examples. A random network's contexts barely tell examples apart (the term sits at log(batch)); a few
    steps on the term teach it to, and the second view's path gets a gradient."""
    params = {"z_dim": 4, "c_dim": 8, "encoder_width": 4, "patch_size": 4, "modalities": ["image"], "w_cpc": 0.0}
    seed_everything(0)
    model = build_method("cpc", (IMAGE, AUDIO), 2, params)
    assert model.wants_two_views
    images = torch.rand(8, *IMAGE.shape)
    assert "views" not in model({"image": images})
    noisy = images + 0.05 * torch.randn_like(images)
    first = model({"image": images, second_view("image"): noisy})
    assert abs(float(first["views"]) - math.log(8)) < 0.1
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        optimizer.zero_grad()
        model({"image": images, second_view("image"): noisy})["loss"].backward()
        optimizer.step()
    assert float(model({"image": images, second_view("image"): noisy})["views"]) < 0.5 * math.log(8)
    view = noisy.clone().requires_grad_()
    model({"image": images, second_view("image"): view})["loss"].backward()
    assert view.grad.abs().sum() > 0


def test_image_sequence_is_one_latent_per_patch_and_embeddings_survive_a_missing_modality():
    params = {"z_dim": 4, "c_dim": 8, "encoder_width": 4, "patch_size": 2}
    model = build_method("cpc", (IMAGE, AUDIO), 2, params)
    z, c = model.sequences("image", torch.rand(3, *IMAGE.shape))
    assert z.shape == (3, 16, 4) and c.shape == (3, 16, 8)  # 8x8 in 2x2 patches
    audio_only = model.embed({"audio": torch.randn(3, *AUDIO.shape)})
    assert set(audio_only) == {"audio", "fused"} and audio_only["fused"].shape == (3, 8)
    losses = model({"image": torch.rand(3, *IMAGE.shape), "audio": torch.randn(3, *AUDIO.shape)})
    assert {"loss", "cpc", "cpc_image", "cpc_audio", "align"} <= set(losses)
    with pytest.raises(ValueError, match="patch_size 3 must divide image 'image' of 8x8"):
        build_method("cpc", (IMAGE,), 2, {"patch_size": 3})
    assert CPC.incompatibility((AUDIO,)) is None  # single-modality benchmarks (sine) are allowed


@pytest.fixture(scope="module")
def tiny_sine(tmp_path_factory):
    return prepare("sine", TINY_SINE, cache_dir=tmp_path_factory.mktemp("cache"), log=lambda *_: None)


def test_cpc_learns_sine_tones_and_its_contexts_separate_the_classes(tiny_sine):
    torch.set_num_threads(1)
    seed_everything(0)
    train, test = read_split(tiny_sine, "train"), read_split(tiny_sine, "test")
    modalities = tiny_sine.modalities
    model = build_method("cpc", tiny_sine.modalities, tiny_sine.num_classes,
                         {"z_dim": 16, "c_dim": 32, "encoder_width": 16, "prediction_steps": 2})

    def probe() -> float:
        train_emb, train_labels = embed_all(model, tensor_batches(train, 200, modalities))
        test_emb, test_labels = embed_all(model, tensor_batches(test, 200, modalities))
        return probe_accuracy(fit_probe(train_emb["audio"], train_labels), test_emb["audio"], test_labels)

    untrained = probe()  # random conv + GRU features of a pure tone already separate its band fairly well
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses = [train_epoch(model, tensor_batches(train, 64, modalities, shuffle=True, drop_last=True,
                                                 generator=generator), optimizer, grad_clip=5.0)["cpc"]
              for _ in range(4)]
    assert losses[-1] < 0.8 * losses[0], losses
    trained = probe()
    assert trained > 0.9 and trained > untrained, (untrained, trained)  # four classes: chance is 0.25


def test_cpc_sweep_file_is_valid():
    spec = api.load_spec(REPO_ROOT / "sweeps" / "cpc.yaml")
    assert spec.methods == ["cpc"] and {b.name for b in spec.benchmarks} == {"sine", "cifar2-audio"}
    assert {"method.negatives", "method.temperature", "method.prediction_steps"} <= set(spec.search_space)


@pytest.mark.ray
def test_cpc_runs_a_real_ray_sweep_on_sine(tmp_path, ray_session):  # noqa: F811
    import ray

    from mmray.orchestration.sweep import ensure_ray

    path = tmp_path / "spec.yaml"
    path.write_text(f"""
name: cpc-tiny
benchmarks:
  - name: sine
    params: {TINY_SINE}
methods: [cpc]
train: {{epochs: 2, batch_size: 64, probe_examples: 200}}
method_params: {{cpc: {{z_dim: 16, c_dim: 32, encoder_width: 16, prediction_steps: 2, queue_size: 128}}}}
search_space:
  method.negatives: {{choice: [queue, queue+synthetic]}}
search: {{num_samples: 1, metric: val/audio_acc, mode: max}}
scheduler: {{type: none}}
""")
    ensure_ray()
    try:
        out = api.run_sweep(api.load_spec(path), cache_dir=tmp_path / "cache",
                            results_dir=tmp_path / "results", report=False, log=lambda *_: None)
    finally:
        ray.shutdown()
    trials = pd.read_parquet(out / schema.TRIALS_FILE)
    assert len(trials) == 1 and (trials[schema.STATUS] == schema.STATUS_COMPLETED).all()
    assert set(trials["config/method/negatives"]) <= {"queue", "queue+synthetic"}
    assert (trials[schema.EPOCHS_RUN] == 2).all()
    assert trials["final/test/audio_acc"].min() > 0.5  # four classes: chance is 0.25
