"""Augmentation: each pure function on hand-made inputs, the per-trial augmenter (seeded, off by default, training
batches only), per-utterance normalisation, and a real Ray sweep on the mirror that learns with it on."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from mmray import api
from mmray.augment import ops
from mmray.augment.augmenter import Augmenter
from mmray.augment.params import AudioAugment, AugmentParams
from mmray.config import SearchKey, TrialConfig, parse_spec
from mmray.data import prepare
from mmray.data.audio import utterance_normalise
from mmray.data.benchmarks import BENCHMARKS
from mmray.data.shards import read_split
from mmray.data.spec import ModalitySpec
from mmray.engine.batching import tensor_batches
from mmray.engine.loop import EpochLoop
from mmray.engine.params import TrainParams
from mmray.engine.training import build_method, recompute_batch_norm
from mmray.errors import SpecError
from mmray.methods.card import second_view
from mmray.orchestration.sweep import param_space
from mmray.results import schema

AUDIO = ModalitySpec("audio", "audio", (1, 16, 20))
IMAGE = ModalitySpec("image", "image", (3, 9, 9))
TEXT = ModalitySpec("text", "text", (6,), vocab_size=50, tokenizer="t", pad_id=1)
SCALE = ops.LogMelScale(mean=0.0, std=1.0, centres_hz=ops.mel_centres(16, 8000))
ONES = torch.ones(1)


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def spike(frame: int, mel_bin: int) -> torch.Tensor:
    """A silent log-mel (-5) with energy (5) in one bin of one frame."""
    mels = torch.full((1, 1, 16, 20), -5.0)
    mels[0, 0, mel_bin, frame] = 5.0
    return mels


def peak(mels: torch.Tensor) -> tuple[int, int]:
    index = int(mels[0, 0].argmax())
    return divmod(index, mels.shape[-1])  # (bin, frame)


def test_time_shift_moves_energy_later_by_whole_frames():
    shifted = ops.warp_log_mel(spike(6, 8), torch.tensor([4.0]), ONES, ONES, SCALE.centres_hz)
    assert peak(shifted) == (8, 10)
    assert torch.allclose(shifted[0, 0, 8, 10], torch.tensor(5.0)) and shifted.sum() < spike(6, 8).sum() + 1e-4
    unchanged = ops.warp_log_mel(spike(6, 8), torch.zeros(1), ONES, ONES, SCALE.centres_hz)
    assert torch.allclose(unchanged, spike(6, 8), atol=1e-4)


def test_pitch_up_moves_energy_to_higher_bins_and_speed_up_towards_the_centre():
    up = ops.warp_log_mel(spike(10, 8), torch.zeros(1), ONES, torch.tensor([2 ** (4 / 12)]), SCALE.centres_hz)
    assert peak(up)[0] > 8 and peak(up)[1] == 10
    faster = ops.warp_log_mel(spike(2, 8), torch.zeros(1), torch.tensor([1.25]), ONES, SCALE.centres_hz)
    bin_, frame = peak(faster)
    assert 2 < frame < 9.5 and bin_ > 8  # shorter about the centre (9.5), every frequency higher


def test_gain_raises_power_by_its_decibels():
    scale = ops.LogMelScale(mean=-3.0, std=2.0, centres_hz=SCALE.centres_hz)
    mels = torch.randn(2, 1, 16, 20)
    louder = ops.gain(mels, torch.tensor([10.0, -20.0]), scale)
    ratio = torch.exp((louder - mels) * scale.std)  # power ratio per bin
    assert torch.allclose(ratio[0], torch.tensor(10.0)) and torch.allclose(ratio[1], torch.tensor(0.01))


def test_noise_at_a_given_snr_adds_that_share_of_the_power_to_chosen_examples_only():
    mels = torch.randn(2, 1, 16, 20)
    noisy = ops.add_noise(mels, 10.0, torch.tensor([True, False]), SCALE, generator())
    added = torch.exp(noisy[0]).mean() - torch.exp(mels[0]).mean()
    assert added / torch.exp(mels[0]).mean() == pytest.approx(0.1, rel=0.2)  # 10 dB: a tenth of the power
    assert torch.equal(noisy[1], mels[1])


def test_a_mask_zeroes_its_band_and_nothing_else():
    mels = torch.full((64, 1, 16, 20), 3.0)
    masked = ops.mask_stretches(mels, 2, 1, 5, generator())  # one band of mel bins per example, width 0..5
    for example in masked[:, 0]:
        zero_bins = torch.nonzero((example == 0).all(1)).flatten()
        assert ((example == 0) | (example == 3.0)).all()  # a bin is either wholly masked or untouched
        assert len(zero_bins) <= 5
        if len(zero_bins):
            assert torch.equal(zero_bins, torch.arange(zero_bins[0], zero_bins[-1] + 1))  # one stretch
    assert (masked == 0).any()
    time_masked = ops.mask_stretches(mels, 3, 2, 4, generator())
    assert ((time_masked == 0).all(2) | (time_masked == 3.0).all(2)).all()  # whole frames


def test_image_translation_rotation_and_colour():
    image = torch.zeros(1, 1, 9, 9)
    image[0, 0, 4, 2] = 1.0
    moved = ops.affine_images(image, torch.zeros(1), ONES, torch.tensor([[-2 * 2 / 9, 0.0]]))  # 2 px right
    assert divmod(int(moved.argmax()), 9) == (4, 4)
    turned = ops.affine_images(image, torch.tensor([90.0]), ONES, torch.zeros(1, 2))
    assert divmod(int(turned.argmax()), 9) in {(2, 4), (6, 4)}  # a quarter turn about the centre
    colour = torch.rand(2, 3, 9, 9)
    grey = ops.colour_jitter(colour, ONES.expand(2), ONES.expand(2), torch.zeros(2))
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
    assert torch.allclose(ops.colour_jitter(colour, ONES.expand(2), ONES.expand(2), ONES.expand(2)), colour)


def test_token_dropout_pads_tokens_but_the_first():
    ids = torch.arange(10, 70).view(10, 6)
    dropped = ops.token_dropout(ids, 0.5, 1, generator())
    assert torch.equal(dropped[:, 0], ids[:, 0])
    assert ((dropped == ids) | (dropped == 1)).all() and 10 < int((dropped == 1).sum()) < 40


def test_utterance_normalisation_numpy_and_torch_alike():
    mels = np.random.default_rng(0).normal(3.0, 4.0, (5, 16, 20)).astype(np.float32)
    normed = utterance_normalise(mels)
    assert np.allclose(normed.mean((1, 2)), 0, atol=1e-5) and np.allclose(normed.std((1, 2)), 1, atol=1e-4)
    assert np.allclose(utterance_normalise(torch.from_numpy(mels)).numpy(), normed, atol=1e-5)


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = generator(seed)
    return {"audio": torch.randn(8, 1, 16, 20, generator=g), "image": torch.rand(8, 3, 9, 9, generator=g),
            "text": torch.randint(2, 50, (8, 6), generator=g), "label": torch.arange(8)}


EVERYTHING = AugmentParams.model_validate({
    "audio": {"shift": 0.1, "gain_db": 6, "noise_p": 0.5, "speed": 0.1, "pitch_semitones": 2, "time_masks": 1,
              "freq_masks": 1},
    "image": {"translate": 0.1, "rotate_degrees": 10, "crop_scale": 0.8, "brightness": 0.2, "contrast": 0.2,
              "saturation": 0.2},
    "text": {"token_dropout": 0.2}, "views": 2})
MODALITIES = (AUDIO, IMAGE, TEXT)
MANIFEST = {"normalization": {"audio_log_mel_mean": -4.0, "audio_log_mel_std": 3.0}, "params": {"sample_rate": 8000}}


def augmented(seed: int, epoch: int, params: AugmentParams = EVERYTHING) -> list[dict[str, torch.Tensor]]:
    augmenter = Augmenter.build(params, MODALITIES, MANIFEST, seed, wants_two_views=True)
    return list(augmenter.epoch([batch(0), batch(1)], epoch))


def test_augmenter_is_deterministic_per_seed_and_epoch_and_leaves_its_input_alone():
    first, again = augmented(3, 2), augmented(3, 2)
    original = batch(0)
    for a, b in zip(first, again):
        assert all(torch.equal(a[k], b[k]) for k in a)
    for key in ("audio", "image", "text", second_view("audio"), second_view("image"), second_view("text")):
        assert not torch.equal(first[0][key], original[key.split("#")[0]]), key
    assert not torch.equal(first[0]["audio"], first[0][second_view("audio")])  # two independent views
    assert not torch.equal(augmented(4, 2)[0]["audio"], first[0]["audio"])  # another trial seed
    assert not torch.equal(augmented(3, 3)[0]["audio"], first[0]["audio"])  # another epoch
    assert all(torch.equal(batch(0)[k], original[k]) for k in original)  # never in place


def test_switched_off_is_the_identity():
    assert Augmenter.build(AugmentParams(), MODALITIES, MANIFEST, 0, wants_two_views=True) is None
    assert Augmenter.build(None, MODALITIES, MANIFEST, 0, wants_two_views=False) is None
    assert not AudioAugment(noise_snr_db=5.0).active  # a level without a chance of noise changes nothing
    # views: 2 for a method without a two-view term, nothing else on: nothing to do
    assert Augmenter.build(AugmentParams(views=2), MODALITIES, MANIFEST, 0, wants_two_views=False) is None
    # only audio on: images and text pass through untouched, no second views
    audio_only = AugmentParams.model_validate({"audio": {"time_masks": 2}})
    out = augmented(0, 1, audio_only)[0]
    assert torch.equal(out["image"], batch(0)["image"]) and torch.equal(out["text"], batch(0)["text"])
    assert set(out) == set(batch(0)) and not torch.equal(out["audio"], batch(0)["audio"])


def test_the_loop_augments_training_batches_and_never_evaluation(tmp_path):
    prepared = prepare("synthetic-av", {"n_train": 256, "n_val": 100, "n_test": 100, "image_size": 16, "n_mels": 16,
                                        "frames": 16}, cache_dir=tmp_path, log=lambda *a, **k: None)
    seen = {"losses": [], "embed": []}

    def has_masked_frame(audio: torch.Tensor | None) -> bool:  # None: evaluated with the audio missing
        return audio is not None and bool((audio == 0).all(2).any())

    module = build_method("pavlov", prepared.modalities, prepared.num_classes, {"encoder_width": 8})
    losses, embed = module.losses, module.embed
    module.losses = lambda b: (seen["losses"].append(has_masked_frame(b.get("audio"))), losses(b))[1]
    module.embed = lambda b: (seen["embed"].append(has_masked_frame(b.get("audio"))), embed(b))[1]
    augment = AugmentParams.model_validate({"audio": {"time_masks": 3, "time_mask_frames": 6}})
    loop = EpochLoop(module, TrainParams(epochs=1, batch_size=64, probe_examples=100), prepared, augment=augment)
    train = read_split(prepared, "train")
    epoch = next(loop.run(lambda _: tensor_batches(train, 64, prepared.modalities, shuffle=True, drop_last=True)))
    assert any(seen["losses"]) and seen["embed"] and not any(seen["embed"])
    assert math.isfinite(epoch.metrics["val/fused_acc"])


def test_utterance_norm_is_a_recorded_benchmark_parameter_and_preprocess_applies_it(tmp_path):
    prepared = prepare("sine", {"n_train": 60, "n_val": 20, "n_test": 20, "utterance_norm": True}, cache_dir=tmp_path,
                       log=lambda *a, **k: None)
    assert prepared.manifest["params"]["utterance_norm"] is True
    audio = read_split(prepared, "train").modalities["audio"].astype(np.float64)
    norm = prepared.manifest["normalization"]
    raw = audio * norm["audio_log_mel_std"] + norm["audio_log_mel_mean"]  # undo the split's standardisation
    assert np.allclose(raw.mean((1, 2, 3)), 0, atol=0.02) and np.allclose(raw.std((1, 2, 3)), 1, atol=0.02)
    assert BENCHMARKS.get("avmnist").Params(utterance_norm=True).utterance_norm


BASE_SPEC = {"name": "x", "benchmarks": ["synthetic-av"], "methods": ["pavlov"]}


@pytest.mark.parametrize("bad, message", [
    ({"augment": {"audio": {"nois_p": 0.5}}}, "'augment.audio.nois_p'; did you mean augment.audio.noise_p?"),
    ({"search_space": {"augment.image.rotate": {"uniform": [0, 10]}}}, "did you mean augment.image.rotate_degrees?"),
    ({"augment": {"text": {"token_dropout": 0.1}}}, "augment.text: no benchmark of this sweep has a text modality"),
    ({"augment": {"audio": {"noise_p": 2}}}, "augment.audio.noise_p: Input should be less than or equal to 1"),
    ({"methods": ["fusion"], "augment": {"views": 2}}, "augment.views: 2, but fusion has no two-view term"),
])
def test_a_bad_augment_setting_is_one_clear_line(bad, message):
    with pytest.raises(SpecError) as error:
        parse_spec({**BASE_SPEC, **bad})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_augment_knobs_are_searched_where_the_trial_reads_them_and_recorded():
    spec = parse_spec({**BASE_SPEC, "augment": {"audio": {"time_masks": 2}},
                       "search_space": {"augment.audio.noise_p": {"uniform": [0.0, 0.5]}}})
    space = param_space(spec, spec.benchmarks[0], "pavlov", 0, mirror=None, cache_dir="c", results_dir="r")
    assert space["augment"]["audio"]["time_masks"] == 2 and hasattr(space["augment"]["audio"]["noise_p"], "sample")
    trial = TrialConfig.model_validate({**space, "augment": {**space["augment"], "audio": {
        **space["augment"]["audio"], "noise_p": 0.25}}})
    assert trial.augment.audio.noise_p == 0.25
    columns = trial.config_columns()
    assert columns["config/augment/audio.noise_p"] == 0.25 and columns["config/augment/audio.time_masks"] == 2
    assert SearchKey.parse("augment.audio.noise_p").column == "config/augment/audio.noise_p"


@pytest.mark.mirror
@pytest.mark.ray
def test_a_real_sweep_with_augmentation_learns_on_the_mirror(mirror, tmp_path):
    import ray

    from mmray.orchestration.sweep import ensure_ray

    spec = api.load_spec(_write(tmp_path, """
name: avmnist-augmented
benchmarks:
  - name: avmnist
    params: {max_train: 2000, max_eval: 400, n_val_images: 400, speaker_holdout: theo, utterance_norm: true}
methods: [pavlov]
train: {epochs: 2, batch_size: 64, probe_examples: 1000}
method_params: {pavlov: {encoder_width: 16}}
augment: {audio: {shift: 0.1, time_masks: 2, freq_masks: 2, speed: 0.1}, image: {translate: 0.08}, views: 2}
search_space:
  augment.audio.noise_p: {choice: [0.5]}
search: {num_samples: 1}
scheduler: {type: none}
"""))
    ensure_ray()
    try:
        out = api.run_sweep(spec, mirror=mirror, cache_dir=tmp_path / "cache", results_dir=tmp_path / "results",
                            report=False, log=lambda *_: None)
    finally:
        ray.shutdown()
    row = pd.read_parquet(out / schema.TRIALS_FILE).iloc[0]
    assert row[schema.STATUS] == schema.STATUS_COMPLETED and row[schema.EPOCHS_RUN] == 2
    assert row["config/augment/audio.noise_p"] == 0.5 and row["config/augment/views"] == 2
    assert row["config/augment/audio.time_masks"] == 2 and bool(row["config/benchmark/utterance_norm"])
    epochs = pd.read_parquet(out / schema.EPOCHS_FILE)
    assert epochs["train/views"].notna().all()  # the two-view term ran
    # chance is 0.1; an unheard speaker's audio and the fused space must be far above it
    assert row["final/test/audio_acc"] > 0.3 and row["final/test/fused_acc"] > 0.7


def _write(folder, text: str):
    path = folder / "spec.yaml"
    path.write_text(text)
    return path


def _small_synthetic(tmp_path):
    return prepare("synthetic-av", {"n_train": 256, "n_val": 100, "n_test": 100, "image_size": 16, "n_mels": 16,
                                    "frames": 16}, cache_dir=tmp_path, log=lambda *a, **k: None)


def _batch_norms(module: torch.nn.Module) -> list[torch.nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def test_recompute_batch_norm_averages_clean_batches_and_leaves_the_weights(tmp_path):
    prepared = _small_synthetic(tmp_path)
    torch.manual_seed(0)
    module = build_method("pavlov", prepared.modalities, prepared.num_classes, {"encoder_width": 8})
    batches = list(tensor_batches(read_split(prepared, "train"), 64, prepared.modalities))
    first = _batch_norms(module)[0]
    inputs = []  # what the first batch norm sees, batch by batch, from an eval-mode pass (only a conv before it)
    hook = first.register_forward_pre_hook(lambda _, args: inputs.append(args[0].detach()))
    with torch.no_grad():
        module.eval()
        for batch in batches[:2]:
            module.embed(batch)
    hook.remove()
    dims = [0] + list(range(2, inputs[0].dim()))
    expected = torch.stack([x.mean(dims) for x in inputs]).mean(0)  # equal batches: the average of batch means
    weights = {k: v.clone() for k, v in module.state_dict().items() if "running" not in k and "num_batches" not in k}
    momentum = first.momentum

    assert recompute_batch_norm(module, batches, limit=128)  # two batches of 64 rows, the rest ignored
    assert torch.allclose(first.running_mean, expected, atol=1e-5)
    assert first.momentum == momentum and not module.training
    assert all(torch.equal(v, module.state_dict()[k]) for k, v in weights.items())

    class WithoutBatchNorm(torch.nn.Module):
        def embed(self, batch):
            raise AssertionError("nothing to re-estimate: no pass expected")

    assert not recompute_batch_norm(WithoutBatchNorm(), batches)


@pytest.mark.parametrize("augment, stats, recomputed", [
    ({"audio": {"gain_db": 20.0}}, "auto", True),
    ({"audio": {"gain_db": 20.0}}, "training", False),
    ({}, "auto", False),
    ({}, "clean", True),
])
def test_the_loop_evaluates_with_clean_batch_norm_statistics_when_it_augments(tmp_path, augment, stats, recomputed):
    prepared = _small_synthetic(tmp_path)
    torch.manual_seed(0)
    module = build_method("pavlov", prepared.modalities, prepared.num_classes, {"encoder_width": 8})
    loop = EpochLoop(module, TrainParams(epochs=1, batch_size=64, probe_examples=128, batch_norm_stats=stats),
                     prepared, augment=AugmentParams.model_validate(augment))
    train = read_split(prepared, "train")
    next(loop.run(lambda _: tensor_batches(train, 64, prepared.modalities, shuffle=True, drop_last=True)))
    evaluated = [norm.running_var.clone() for norm in _batch_norms(module)]
    recompute_batch_norm(module, loop.eval_sets["probe"])  # what clean statistics of the probe pairs are
    same = all(torch.allclose(a, norm.running_var, rtol=1e-4) for a, norm in zip(evaluated, _batch_norms(module)))
    assert same == recomputed
