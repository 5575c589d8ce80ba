"""Bad raw input and damaged shards: each is one line naming the file and the fix.

CREMA-D cases use a small generated tree in the dataset's layout (tests/test_cremad.py builds it); AV-MNIST
cases use a tiny fake mirror with the real file naming (`mnist/{train,test}.npz`,
`fsdd/recordings/{digit}_{speaker}_{index}.wav`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_cremad import make_cremad, write_wav

from mmray.cli import main
from mmray.data import prepare
from mmray.data.benchmarks.cremad import CremaD
from mmray.errors import DataError, SpecError

SMALL_CREMAD = {"image_size": 16, "n_mels": 16, "frames": 12, "n_fft": 512}
SMALL_AVMNIST = {"n_val_images": 10, "n_fft": 256}
FAKE_SPEAKERS = ("george", "jackson", "theo")


def quiet(*_args, **_kwargs):
    pass


@pytest.fixture(scope="module")
def cremad_tree(tmp_path_factory) -> Path:
    return make_cremad(tmp_path_factory.mktemp("cremad"), actors=("1001", "1002", "1003"), sentences=("DFA",))


@pytest.fixture
def cremad_copy(cremad_tree, tmp_path) -> Path:
    """A private copy of the CREMA-D mirror that a test may damage."""
    return Path(shutil.copytree(cremad_tree, tmp_path / "mirror"))


def write_fsdd_wav(path: Path, digit: int, rate: int = 8000) -> None:
    t = np.arange(int(0.3 * rate)) / rate
    wave = (0.4 * np.sin(2 * np.pi * (200 + 150 * digit) * t)).astype(np.float32)
    sf.write(path, wave, rate, subtype="PCM_16")


def make_avmnist(root: Path) -> Path:
    """`root/mnist/` (40 train, 20 test images) and `root/fsdd/recordings/` (3 speakers x 10 digits x takes 0,
    5, 10: one take per split under the official rule); returns `root`."""
    (root / "mnist").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("test", 20)):
        np.savez(root / "mnist" / f"{split}.npz", images=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                 labels=np.arange(n) % 10)
    (root / "fsdd" / "recordings").mkdir(parents=True)
    for speaker in FAKE_SPEAKERS:
        for digit in range(10):
            for take in (0, 5, 10):
                write_fsdd_wav(root / "fsdd" / "recordings" / f"{digit}_{speaker}_{take}.wav", digit)
    return root


@pytest.fixture(scope="module")
def avmnist_tree(tmp_path_factory) -> Path:
    return make_avmnist(tmp_path_factory.mktemp("avmnist"))


@pytest.fixture
def avmnist_copy(avmnist_tree, tmp_path) -> Path:
    return Path(shutil.copytree(avmnist_tree, tmp_path / "mirror"))


def prepare_cremad(mirror: Path, cache: Path, **kwargs):
    return prepare("cremad", SMALL_CREMAD, mirror=mirror, cache_dir=cache, log=kwargs.pop("log", quiet),
                   **kwargs)


def message_of(call) -> str:
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


# --- the mirror itself ---------------------------------------------------------------------------------

def test_missing_mirror_folder(tmp_path):
    missing = tmp_path / "no-such-mirror"
    message = message_of(lambda: prepare_cremad(missing, tmp_path / "cache"))
    assert f"data mirror {missing} does not exist" in message and "--mirror or MMRAY_DATA_MIRROR" in message


def test_mirror_without_the_dataset(tmp_path):
    (tmp_path / "mirror").mkdir()
    message = message_of(lambda: prepare_cremad(tmp_path / "mirror", tmp_path / "cache"))
    assert "has no cremad/VideoFlash" in message and "copy the dataset there" in message


# --- CREMA-D raw files ---------------------------------------------------------------------------------

def test_zero_length_wav(cremad_copy, tmp_path):
    wav = cremad_copy / "cremad" / "AudioWAV" / "1002_DFA_HAP_XX.wav"
    wav.write_bytes(b"")
    message = message_of(lambda: prepare_cremad(cremad_copy, tmp_path / "cache"))
    assert f"audio file {wav} is missing or empty; restore it" in message and "--skip-bad" in message


def test_missing_video(cremad_copy, tmp_path):
    flv = cremad_copy / "cremad" / "VideoFlash" / "1003_DFA_SAD_XX.flv"
    flv.unlink()
    message = message_of(lambda: prepare_cremad(cremad_copy, tmp_path / "cache"))
    assert f"video file {flv} is missing or empty" in message


def test_missing_wav_of_a_video(cremad_copy, tmp_path):
    wav = cremad_copy / "cremad" / "AudioWAV" / "1001_DFA_NEU_XX.wav"
    wav.unlink()
    message = message_of(lambda: prepare_cremad(cremad_copy, tmp_path))
    assert f"audio file {wav} is missing or empty" in message


def test_corrupt_wav(cremad_copy, tmp_path):
    wav = cremad_copy / "cremad" / "AudioWAV" / "1001_DFA_ANG_XX.wav"
    wav.write_bytes(np.random.default_rng(0).bytes(2048))
    message = message_of(lambda: prepare_cremad(cremad_copy, tmp_path))
    assert f"audio file {wav} cannot be decoded" in message and "replace it with a valid WAV" in message


def test_wav_without_samples(cremad_copy, tmp_path):
    wav = cremad_copy / "cremad" / "AudioWAV" / "1001_DFA_ANG_XX.wav"
    sf.write(wav, np.zeros(0, np.float32), 16000)  # a valid header and nothing else
    assert f"audio file {wav} holds no samples" in message_of(lambda: prepare_cremad(cremad_copy, tmp_path))


def test_video_that_will_not_decode(cremad_copy, tmp_path):
    flv = cremad_copy / "cremad" / "VideoFlash" / "1002_DFA_FEA_XX.flv"
    flv.write_bytes(np.random.default_rng(1).bytes(4096))
    message = message_of(lambda: prepare_cremad(cremad_copy, tmp_path))
    assert f"video file {flv} cannot be decoded" in message and "replace it with a playable copy" in message


def test_truncated_video(cremad_copy, tmp_path):
    flv = cremad_copy / "cremad" / "VideoFlash" / "1002_DFA_FEA_XX.flv"
    flv.write_bytes(flv.read_bytes()[:13])  # the FLV file header only
    assert f"video file {flv}" in message_of(lambda: prepare_cremad(cremad_copy, tmp_path))


def test_git_lfs_pointer_instead_of_the_video(cremad_copy, tmp_path):
    flv = cremad_copy / "cremad" / "VideoFlash" / "1001_DFA_DIS_XX.flv"
    flv.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:9269ed5e\nsize 414429\n")
    message = message_of(lambda: prepare_cremad(cremad_copy, tmp_path))
    assert f"video file {flv} is a git-lfs pointer" in message and "git lfs pull" in message


def test_file_not_named_like_a_clip(cremad_copy, tmp_path):
    odd = cremad_copy / "cremad" / "AudioWAV" / "1001_DFA_XYZ_XX.wav"
    write_wav(odd, 0)
    message = message_of(lambda: prepare_cremad(cremad_copy, tmp_path))
    assert f"{odd}: not a CREMA-D clip name like 1001_DFA_ANG_XX.wav" in message and "rename" in message


def test_wrong_sample_rate_is_resampled_and_noted_once(cremad_copy, tmp_path):
    audio = cremad_copy / "cremad" / "AudioWAV"
    for stem in ("1001_DFA_ANG_XX", "1002_DFA_ANG_XX", "1003_DFA_ANG_XX"):
        write_wav(audio / f"{stem}.wav", 0, rate=44100)
    messages = []
    prepared = prepare_cremad(cremad_copy, tmp_path, log=messages.append)
    notes = [m for m in messages if "44100 Hz" in m]
    assert len(notes) == 1, messages
    assert "resampling" in notes[0]
    assert any(f"audio file {audio / actor}_DFA_ANG_XX.wav is at 44100 Hz" in notes[0]
               for actor in ("1001", "1002", "1003"))
    assert prepared.manifest["resampled_audio_files"] == {"44100": 3}


def test_label_outside_the_class_list(cremad_copy, tmp_path, monkeypatch):
    monkeypatch.setattr(CremaD, "class_names", lambda self, p: ("ANG", "DIS", "FEA", "HAP", "NEU"))
    message = message_of(lambda: prepare_cremad(cremad_copy, tmp_path))
    assert "label 5 is outside the class list" in message and "check the raw labels" in message


def test_skip_bad_counts_in_manifest_and_info(cremad_copy, tmp_path, capsys):
    (cremad_copy / "cremad" / "AudioWAV" / "1002_DFA_HAP_XX.wav").write_bytes(b"")
    (cremad_copy / "cremad" / "VideoFlash" / "1003_DFA_SAD_XX.flv").write_bytes(b"not a video")
    args = ["--mirror", str(cremad_copy), "--cache", str(tmp_path / "cache"), "--set", "image_size=16"]
    assert main(["data", "prepare", "cremad", *args]) == 2  # without --skip-bad: stops at the first
    assert "--skip-bad" in capsys.readouterr().err
    assert main(["data", "prepare", "cremad", *args, "--skip-bad"]) == 0
    out = capsys.readouterr().out
    manifest_path = next((tmp_path / "cache" / "shards" / "cremad").glob("*/manifest.json"))
    skipped = json.loads(manifest_path.read_text())["skipped_files"]
    assert skipped["count"] == 2
    assert any("1002_DFA_HAP_XX.wav is missing or empty" in p for p in skipped["problems"])
    assert any("1003_DFA_SAD_XX.flv cannot be decoded" in p for p in skipped["problems"])
    assert "skipped    2 bad raw file(s)" in out
    assert main(["data", "info", "cremad", "--cache", str(tmp_path / "cache"), "--set", "image_size=16"]) == 0
    assert f"skipped    2 bad raw file(s), listed in {manifest_path}" in capsys.readouterr().out


# --- damaged shards ------------------------------------------------------------------------------------

def test_tampered_shard_fails_verify_with_the_rebuild_command(cremad_copy, tmp_path, capsys):
    cache = tmp_path / "cache"
    args = ["--cache", str(cache), "--set", "image_size=16", "--limit", "4"]
    assert main(["data", "prepare", "cremad", "--mirror", str(cremad_copy), *args]) == 0
    shard = next((cache / "shards" / "cremad").glob("*/train/part-00000.parquet"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["data", "verify", "cremad", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert f"shard {shard} fails its checksum" in err
    assert "`mmray data prepare cremad --limit 4 --set image_size=16 --force`" in err
    # the command it gives rebuilds this very set, which then verifies
    assert main(["data", "prepare", "cremad", "--mirror", str(cremad_copy), *args, "--force"]) == 0
    assert main(["data", "verify", "cremad", *args]) == 0


def test_truncated_shard_is_named_with_the_rebuild_command(cremad_copy, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(["data", "prepare", "cremad", "--mirror", str(cremad_copy), "--cache", str(cache)]) == 0
    shard = next((cache / "shards" / "cremad").glob("*/val/part-00000.parquet"))
    with open(shard, "r+b") as f:
        f.truncate(shard.stat().st_size // 2)
    capsys.readouterr()
    assert main(["data", "info", "cremad", "--cache", str(cache)]) == 2
    err = capsys.readouterr().err
    assert f"shard {shard} is missing or truncated" in err and "`mmray data prepare cremad --force`" in err


# --- AV-MNIST: MNIST npz and FSDD recordings -----------------------------------------------------------

def prepare_avmnist(mirror: Path, cache: Path, params=None, **kwargs):
    return prepare("avmnist", {**SMALL_AVMNIST, **(params or {})}, mirror=mirror, cache_dir=cache,
                   log=kwargs.pop("log", quiet), **kwargs)


def test_fake_avmnist_mirror_builds(avmnist_tree, tmp_path):
    prepared = prepare_avmnist(avmnist_tree, tmp_path)
    assert prepared.manifest["recordings_per_split"] == {"train": 30, "val": 30, "test": 30}
    assert [prepared.rows(s) for s in ("train", "val", "test")] == [30, 10, 20]


def test_empty_fsdd_recording(avmnist_copy, tmp_path):
    wav = avmnist_copy / "fsdd" / "recordings" / "3_theo_5.wav"
    wav.write_bytes(b"")
    message = message_of(lambda: prepare_avmnist(avmnist_copy, tmp_path))
    assert f"audio file {wav} is missing or empty" in message and "--skip-bad" in message
    prepared = prepare_avmnist(avmnist_copy, tmp_path / "again", skip_bad=True)
    assert prepared.manifest["skipped_files"]["count"] == 1
    assert prepared.manifest["recordings_per_split"]["val"] == 29


def test_corrupt_fsdd_recording(avmnist_copy, tmp_path):
    wav = avmnist_copy / "fsdd" / "recordings" / "7_george_10.wav"
    wav.write_bytes(b"RIFF" + np.random.default_rng(2).bytes(1000))
    message = message_of(lambda: prepare_avmnist(avmnist_copy, tmp_path))
    assert f"audio file {wav} cannot be decoded" in message


def test_fsdd_recording_at_another_rate(avmnist_copy, tmp_path):
    wav = avmnist_copy / "fsdd" / "recordings" / "2_jackson_0.wav"
    write_fsdd_wav(wav, 2, rate=16000)
    messages = []
    prepared = prepare_avmnist(avmnist_copy, tmp_path, log=messages.append)
    assert [m for m in messages if "16000 Hz" in m] == [
        f"[mmray] audio file {wav} is at 16000 Hz, not sample_rate=8000: resampling it and every other file "
        "at 16000 Hz (counted in the manifest)"]
    assert prepared.manifest["resampled_audio_files"] == {"16000": 1}


def test_fsdd_file_with_a_foreign_name(avmnist_copy, tmp_path):
    odd = avmnist_copy / "fsdd" / "recordings" / "seven_george_1.wav"
    write_fsdd_wav(odd, 7)
    message = message_of(lambda: prepare_avmnist(avmnist_copy, tmp_path))
    assert f"{odd}: not an FSDD name like 7_george_12.wav; remove or rename it" in message
    assert "--skip-bad" in message
    # with --skip-bad it is left out and counted like any other bad file; every well-named recording is kept
    prepared = prepare_avmnist(avmnist_copy, tmp_path / "again", skip_bad=True)
    assert prepared.manifest["skipped_files"]["count"] == 1
    assert str(odd) in prepared.manifest["skipped_files"]["problems"][0]
    assert prepared.manifest["recordings_per_split"] == {"train": 30, "val": 30, "test": 30}


@pytest.mark.parametrize("keep", [0, 100])
def test_corrupt_mnist_npz(avmnist_copy, tmp_path, keep):
    npz = avmnist_copy / "mnist" / "train.npz"
    npz.write_bytes(npz.read_bytes()[:keep])
    message = message_of(lambda: prepare_avmnist(avmnist_copy, tmp_path))
    assert f"{npz} is not an MNIST npz" in message and "restore it from the mirror" in message


def test_mnist_label_outside_the_digits(avmnist_copy, tmp_path):
    npz = avmnist_copy / "mnist" / "test.npz"
    with np.load(npz) as data:
        images, labels = data["images"], data["labels"].copy()
    labels[3] = 10
    np.savez(npz, images=images, labels=labels)
    message = message_of(lambda: prepare_avmnist(avmnist_copy, tmp_path))
    assert f"{npz}: label 10 is not a digit 0-9" in message


def test_unknown_holdout_speaker_lists_the_valid_ones(avmnist_tree, tmp_path):
    with pytest.raises(SpecError) as info:
        prepare_avmnist(avmnist_tree, tmp_path, {"speaker_holdout": "bob"})
    message = str(info.value)
    assert "speaker_holdout" in message and "unknown FSDD speaker 'bob'" in message
    assert "valid speakers: george, jackson, lucas, nicolas, theo, yweweler" in message


def test_holdout_speaker_missing_from_the_mirror(avmnist_tree, tmp_path):
    message = message_of(lambda: prepare_avmnist(avmnist_tree, tmp_path, {"speaker_holdout": "lucas"}))
    assert "has no recording of speaker 'lucas'" in message and "george, jackson, theo" in message


def test_speaker_holdout_on_the_fake_mirror(avmnist_tree, tmp_path):
    prepared = prepare_avmnist(avmnist_tree, tmp_path, {"speaker_holdout": "theo", "val_recordings": 1})
    assert prepared.manifest["speakers_per_split"] == {
        "train": ["george", "jackson"], "val": ["george", "jackson"], "test": ["theo"]}
    # theo's 30 takes are the test audio; the others' take 0 is val, takes 5 and 10 train
    assert prepared.manifest["recordings_per_split"] == {"train": 40, "val": 20, "test": 30}


@pytest.mark.parametrize(("train", "search_space", "largest"), [
    ({"batch_size": 512}, {}, 512),
    ({"batch_size": 64}, {"train.batch_size": {"choice": [64, 1024]}}, 1024),
])
def test_a_batch_larger_than_the_training_split_stops_the_sweep_before_ray_starts(tmp_path, capsys, train,
                                                                                   search_space, largest):
    import ray
    import yaml

    spec = {"name": "too-big", "benchmarks": [{"name": "synthetic-av", "params": {
                "n_train": 300, "n_val": 50, "n_test": 50, "image_size": 16, "n_mels": 16, "frames": 16}}],
            "methods": ["pavlov"], "train": {**train, "epochs": 1}, "search_space": search_space}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    ray_was_up = ray.is_initialized()
    code = main(["sweep", str(path), "--cache", str(tmp_path / "cache"), "--results", str(tmp_path / "results")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in error
    assert f"train.batch_size {largest} is larger than synthetic-av's training split (300 rows)" in error
    assert ray.is_initialized() == ray_was_up  # no Ray instance started for a sweep that could not run
