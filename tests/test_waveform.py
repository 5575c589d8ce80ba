"""AV-MNIST with the raw waveform as its audio (`audio_input: waveform`, the aecluster seed's 8 kHz x 8,192
samples): hand-made recordings through the build and through one-file preprocessing, encoders for a 1-D
modality, and aecluster trained on it (on fixtures, and one short trial on the real mirror)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from test_bad_input import make_avmnist, write_fsdd_wav

from mmray.data import prepare
from mmray.data.benchmarks.avmnist import AVMNIST, AVMNISTParams
from mmray.data.prepare import cache_key
from mmray.data.shards import read_split
from mmray.data.spec import ModalitySpec
from mmray.data.waveform import STD_KEY, fixed_length
from mmray.engine.local import fit_local
from mmray.engine.training import build_method, seed_everything, train_epoch

WAVEFORM = {"audio_input": "waveform", "n_val_images": 10}


def quiet(*_args, **_kwargs):
    pass


@pytest.fixture(scope="module", autouse=True)
def one_thread(one_torch_thread):  # tiny models on a shared machine: a second thread only waits
    yield


def test_fixed_length_centres_a_recording_by_cropping_or_padding_evenly():
    assert fixed_length(np.arange(1, 4, dtype=np.float32), 7).tolist() == [0, 0, 1, 2, 3, 0, 0]
    assert fixed_length(np.arange(1, 4, dtype=np.float32), 6).tolist() == [0, 1, 2, 3, 0, 0]
    assert fixed_length(np.arange(10, dtype=np.float32), 4).tolist() == [3, 4, 5, 6]


def test_the_new_params_leave_the_cache_keys_of_log_mel_shard_sets_as_they_were():
    log_mel = AVMNISTParams()
    assert cache_key("avmnist", log_mel) == cache_key("avmnist", AVMNISTParams(waveform_samples=8192))
    assert "audio_input" not in log_mel.key_values()
    assert cache_key("avmnist", AVMNISTParams(audio_input="waveform")) != cache_key("avmnist", log_mel)
    waveform = AVMNISTParams(audio_input="waveform")
    assert cache_key("avmnist", waveform) != cache_key("avmnist", waveform.model_copy(update={"waveform_samples": 4096}))


@pytest.fixture(scope="module")
def fake_waveform(tmp_path_factory):
    mirror = make_avmnist(tmp_path_factory.mktemp("mirror"))
    prepared = prepare("avmnist", WAVEFORM, mirror=mirror, cache_dir=tmp_path_factory.mktemp("cache"), log=quiet)
    return mirror, prepared


def test_the_build_holds_each_recording_centred_and_scaled_and_says_so(fake_waveform):
    _, prepared = fake_waveform
    assert [(m.name, m.shape) for m in prepared.modalities] == [("image", (1, 28, 28)), ("audio", (1, 8192))]
    manifest = prepared.manifest
    assert manifest["params"]["audio_input"] == "waveform" and manifest["params"]["waveform_samples"] == 8192
    std = manifest["normalization"][STD_KEY]
    train = read_split(prepared, "train")
    audio = train.modalities["audio"][:, 0].astype(np.float32)
    # a fixture recording is a 0.3 s sine (2,400 samples) of a digit's frequency: zeros around it
    assert np.all(audio[:, :2896] == 0) and np.all(audio[:, -2896:] == 0)
    digit = int(train.labels[0])
    t = np.arange(2400) / 8000
    expected = 0.4 * np.sin(2 * np.pi * (200 + 150 * digit) * t)
    np.testing.assert_allclose(audio[0, 2896:2896 + 2400] * std, expected, atol=2e-3)  # 16-bit PCM, float16
    assert 0.5 < float(audio[:, 2896:-2896].std()) < 2  # divided by the training recordings' std


def test_one_file_is_preprocessed_as_the_build_did(fake_waveform, tmp_path):
    mirror, prepared = fake_waveform
    params = AVMNISTParams(**WAVEFORM)
    audio = prepared.modalities[1]
    row = AVMNIST().preprocess(params, audio, mirror / "fsdd" / "recordings" / "3_theo_0.wav", prepared.manifest,
                               quiet)
    test = read_split(prepared, "test")
    threes = test.modalities["audio"][test.labels == 3]
    assert row.shape == (1, 8192) and row.dtype == np.float16
    assert any(np.array_equal(row, shard_row) for shard_row in threes)  # the fixture's threes all sound alike
    loud = tmp_path / "stereo_16k.wav"  # another rate and two channels: converted, as a build would
    write_fsdd_wav(tmp_path / "mono.wav", 3, rate=16000)
    wave, _ = sf.read(tmp_path / "mono.wav", dtype="float32")
    sf.write(loud, np.stack([wave, wave], axis=1), 16000, subtype="PCM_16")
    lines = []
    converted = AVMNIST().preprocess(params, audio, loud, prepared.manifest, lines.append)
    assert converted.shape == (1, 8192) and len(lines) == 2
    assert np.abs(converted.astype(np.float32) - row.astype(np.float32)).mean() < 0.01  # resampling's ringing


@pytest.mark.parametrize("method, params", [("aecluster", {}), ("aecluster", {"encoder": "conv"}),
                                            ("pavlov", {}), ("cpc", {"patch_size": 7})])
def test_methods_encode_a_one_dimensional_waveform(method, params):
    modalities = (ModalitySpec("image", "image", (1, 28, 28)), ModalitySpec("audio", "audio", (1, 8192)))
    model = build_method(method, modalities, 10, params)
    batch = {"image": torch.rand(4, 1, 28, 28), "audio": torch.randn(4, 1, 8192), "label": torch.arange(4)}
    assert torch.isfinite(model.losses(batch)["loss"])
    assert model.embed(batch)["audio"].shape[0] == 4
    # a waveform is no picture: its reconstruction is not scored by SSIM nor drawn
    assert all(target != "audio" for _, target in model.translations(modalities))
    assert model.translate(batch, "audio", "audio") is None


def test_aecluster_learns_to_reconstruct_hand_made_waveforms():
    """Tones of two frequencies: the audio autoencoder's reconstruction error falls well below the signal's."""
    seed_everything(0)
    t = torch.arange(1024) / 8000
    labels = torch.arange(64) % 2
    audio = torch.sin(2 * torch.pi * (300 + 500 * labels[:, None]) * t)[:, None] * 1.4
    modalities = (ModalitySpec("image", "image", (1, 8, 8)), ModalitySpec("audio", "audio", (1, 1024)))
    model = build_method("aecluster", modalities, 2, {"latent_dim_audio": 8, "encoder_width": 64})
    data = {"image": labels[:, None, None, None].float().expand(64, 1, 8, 8), "audio": audio, "label": labels}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    history = [train_epoch(model, [data], optimizer, grad_clip=5.0) for _ in range(60)]
    assert history[-1]["recon_audio"] < 0.1 * history[0]["recon_audio"]


@pytest.mark.mirror
def test_aecluster_trains_on_real_fsdd_waveforms(mirror, tmp_path):
    prepared = prepare("avmnist", {"audio_input": "waveform", "max_train": 600, "max_eval": 200,
                                   "n_val_images": 200}, mirror=mirror, cache_dir=tmp_path, log=quiet)
    assert prepared.modalities[1].shape == (1, 8192) and prepared.manifest["recordings_per_split"]["train"] == 2400
    history = fit_local("aecluster", prepared, method_params={"n_clusters": 10}, seed=0, torch_threads=1,
                        train={"epochs": 2, "batch_size": 64, "probe_examples": 600})
    # an MLP reconstructs little of a raw waveform's phase in two epochs: the loss stays near the signal's
    # variance (1 after scaling), so only its finiteness is asked here; the image side must cluster
    assert all(np.isfinite(epoch["train/recon_audio"]) for epoch in history)
    assert 0 <= history[-1]["test/nmi_audio"] <= 1 and history[-1]["test/nmi_image"] > 0.2
