"""WAV reading (with resampling) and the log-mel front end."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mmray.data.audio import (
    griffin_lim,
    load_wav,
    log_mel,
    log_mel_stats,
    note_resampling,
    read_wav,
    standardise,
    wav_bytes,
    waveform_from_log_mel,
)
from mmray.data.benchmarks.avmnist import AVMNISTParams
from mmray.errors import DataError


def sine(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def wav_16k(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, sine(0.5, 16000), 16000, subtype="PCM_16")
    return path


def test_read_wav_native_rate(wav_16k):
    wave = read_wav(wav_16k, 16000)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == 8000
    np.testing.assert_allclose(wave, sine(0.5, 16000), atol=1e-3)  # PCM_16 quantisation only


def test_read_wav_resamples(wav_16k):
    wave = read_wav(wav_16k, 8000)
    assert wave.ndim == 1
    assert abs(len(wave) - 4000) <= 2
    assert np.isfinite(wave).all()
    # the 440 Hz tone survives: its peak stays near 0.5 and its dominant frequency stays at 440 Hz
    assert 0.4 < np.abs(wave[100:-100]).max() < 0.6
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.fft.rfftfreq(len(wave), 1 / 8000)[spectrum.argmax()] == pytest.approx(440, abs=5)


def test_read_wav_mixes_stereo_to_mono(tmp_path):
    path = tmp_path / "stereo.wav"
    left = sine(0.1, 8000)
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), 8000, subtype="FLOAT")
    wave = read_wav(path, 8000)
    assert wave.shape == left.shape
    np.testing.assert_allclose(wave, 0.5 * left, atol=1e-6)


@pytest.mark.parametrize("seconds,frames", [(0.5, 40), (2.0, 40), (0.1, 40)])
def test_log_mel_shape_and_finite(seconds, frames):
    # 0.5 s at hop 200 -> 21 frames (padded to 40); 2 s -> 81 frames (cropped); 0.1 s -> 5 frames (padded)
    mel = log_mel(sine(seconds, 8000), 8000, n_mels=40, n_fft=512, hop_length=200, frames=frames)
    assert mel.shape == (40, frames)
    assert mel.dtype == np.float32
    assert np.isfinite(mel).all()


def test_log_mel_pads_with_silence_and_finds_the_tone():
    mel = log_mel(sine(0.5, 8000), 8000, n_mels=40, n_fft=512, hop_length=200, frames=40)
    silence = np.log(1e-6)
    assert mel[:, 0] == pytest.approx(np.full(40, silence))  # padding is zero power
    assert mel[:, -1] == pytest.approx(np.full(40, silence))
    middle = mel[:, 20]
    assert middle.max() > silence + 5
    loud_band = middle.argmax()
    assert 5 < loud_band < 25  # 440 Hz is low in a 0-4 kHz mel scale, but not the first bands


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(DataError) as info:
        read_wav(path, 8000)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    path = tmp_path / "missing.wav"
    with pytest.raises(DataError, match="missing or empty"):
        read_wav(path, 8000)


def test_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(DataError) as info:
        read_wav(path, 8000)
    assert str(path) in str(info.value) and "cannot be decoded" in str(info.value)


def test_load_wav_reports_the_files_own_rate(wav_16k):
    wave, rate = load_wav(wav_16k, 8000)
    assert rate == 16000 and abs(len(wave) - 4000) <= 2


def test_note_resampling_logs_once_per_foreign_rate(tmp_path):
    paths = [tmp_path / f"{i}.wav" for i in range(5)]
    messages = []
    counts = note_resampling(paths, [8000, 16000, 16000, 44100, 8000], 8000, messages.append)
    assert counts == {"16000": 2, "44100": 1}
    assert messages == [
        f"audio file {paths[1]} is at 16000 Hz, not sample_rate=8000: resampling it and every other file at "
        "16000 Hz (counted in the manifest)",
        f"audio file {paths[3]} is at 44100 Hz, not sample_rate=8000: resampling it and every other file at "
        "44100 Hz (counted in the manifest)",
    ]


def test_git_lfs_pointer(tmp_path):
    path = tmp_path / "stub.wav"
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n")
    with pytest.raises(DataError) as info:
        read_wav(path, 8000)
    assert f"audio file {path} is a git-lfs pointer" in str(info.value) and "git lfs pull" in str(info.value)


def test_waveform_from_log_mel_sounds_like_the_original():
    # AV-MNIST's front end: a 440 Hz tone -> standardised log-mel -> waveform -> the same tone, as loud
    p = AVMNISTParams()
    tone = sine(1.0, p.sample_rate)
    mel = log_mel(tone, p.sample_rate, p.n_mels, p.n_fft, p.hop_length, p.frames)
    stats = log_mel_stats(mel[None])
    wave = waveform_from_log_mel(standardise(mel, stats), p, stats)
    assert wave.dtype == np.float32 and wave.shape == (p.hop_length * (p.frames - 1),)
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.fft.rfftfreq(len(wave), 1 / p.sample_rate)[spectrum.argmax()] == pytest.approx(440, abs=10)
    rms = np.sqrt(np.mean(wave[1000:-1000] ** 2))
    assert 0.8 < rms / np.sqrt(np.mean(tone ** 2)) < 1.25  # as loud
    again = log_mel(wave, p.sample_rate, p.n_mels, p.n_fft, p.hop_length, p.frames)
    loud = mel > mel.max() - 20  # the tone's bands; the rest is the log floor
    assert np.abs(again - mel)[loud].mean() < 1.0
    # the manifest's params dict serves as well as the params object; a shard row's (1, n_mels, frames) too
    same = waveform_from_log_mel(standardise(mel, stats)[None], p.model_dump(), stats)
    np.testing.assert_array_equal(same, wave)


def test_griffin_lim_gives_librosas_waveform():
    # the same algorithm as librosa.griffinlim (centred Hann frames, momentum 0.99, phases starting at 0), planned
    # once per shape for speed: its waveforms must not drift from librosa's. A recording has a noise floor; a pure
    # tone's all-but-zero bins have no defined phase, where float rounding alone makes any two versions differ.
    import librosa

    p = AVMNISTParams()
    hum = sine(1.0, p.sample_rate) + 0.01 * np.random.default_rng(0).normal(size=p.sample_rate)
    tone = np.abs(librosa.stft(hum, n_fft=p.n_fft, hop_length=p.hop_length))
    noise = np.abs(np.random.default_rng(1).normal(size=(1 + p.n_fft // 2, 7)))  # another shape: another plan
    for magnitude in (tone, noise):
        for n_iter in (0, 1, 16):
            expected = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=p.hop_length, n_fft=p.n_fft, init=None)
            np.testing.assert_allclose(griffin_lim(magnitude, n_iter, p.hop_length, p.n_fft), expected, atol=1e-10)


def test_waveform_of_a_decoded_log_mel_stays_below_full_scale():
    p = AVMNISTParams()
    stats = {"audio_log_mel_mean": -5.0, "audio_log_mel_std": 3.0}
    loud = np.full((p.n_mels, p.frames), 4.0, np.float32)  # far louder than anything recorded
    wave = waveform_from_log_mel(loud, p, stats)
    assert np.isfinite(wave).all() and 0.9 < np.abs(wave).max() <= 0.99
    with pytest.raises(ValueError, match="n_mels, frames"):
        waveform_from_log_mel(np.zeros(10), p, stats)


def test_wav_bytes_is_a_16_bit_wav_file(tmp_path):
    path = tmp_path / "out.wav"
    path.write_bytes(wav_bytes(sine(0.25, 8000), 8000))
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (8000, 1, 2000, "PCM_16")
    np.testing.assert_allclose(sf.read(path, dtype="float32")[0], sine(0.25, 8000), atol=1e-4)
