"""CREMA-D from a generated tree in the dataset's true layout: AudioWAV/*.wav (16 kHz) + VideoFlash/*.flv.

Every generated clip carries its emotion twice: the middle video frame's grey level and the audio tone's
frequency both rise with the label, so the tests can tell that faces, audio and labels stay paired.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from mmray.data import prepare, verify_prepared
from mmray.data.benchmarks import cremad
from mmray.data.shards import MANIFEST, read_split
from mmray.errors import DataError

EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
ACTORS = tuple(str(a) for a in range(1001, 1007))  # 6 actors: 4 train, 1 val, 1 test by default
SENTENCES = ("DFA", "IEO")
SMALL = {"image_size": 16, "n_mels": 16, "frames": 12, "n_fft": 512, "hop_length": 400}


def quiet(*_args, **_kwargs):
    pass


def grey_level(label: int) -> int:
    return 30 + 35 * label  # the middle frame's grey level: 30 .. 205


def tone_hz(label: int) -> float:
    return 300.0 * 1.5**label  # 300 .. 2278 Hz, well apart on the mel scale


def write_wav(path: Path, label: int, rate: int = 16000, seconds: float = 0.4) -> None:
    t = np.arange(int(rate * seconds)) / rate
    sf.write(path, (0.5 * np.sin(2 * np.pi * tone_hz(label) * t)).astype(np.float32), rate, subtype="PCM_16")


def write_flv(path: Path, label: int, frames: int = 5) -> None:
    """A tiny Flash video (codec flv, 64x48, 30 fps): frames are white except the middle one."""
    with av.open(str(path), "w", format="flv") as container:
        stream = container.add_stream("flv", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            level = grey_level(label) if index == frames // 2 else 250
            image = np.full((48, 64, 3), level, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_cremad(root: Path, actors=ACTORS, sentences=SENTENCES, emotions=EMOTIONS) -> Path:
    """`root/cremad/` in the dataset's layout, one clip per actor x sentence x emotion; returns `root`."""
    for folder in ("AudioWAV", "VideoFlash"):
        (root / "cremad" / folder).mkdir(parents=True, exist_ok=True)
    for actor in actors:
        for sentence in sentences:
            for emotion in emotions:
                stem = f"{actor}_{sentence}_{emotion}_{'MD' if sentence == 'IEO' else 'XX'}"
                label = EMOTIONS.index(emotion)
                write_wav(root / "cremad" / "AudioWAV" / f"{stem}.wav", label)
                write_flv(root / "cremad" / "VideoFlash" / f"{stem}.flv", label)
    return root


@pytest.fixture(scope="module")
def mirror_tree(tmp_path_factory) -> Path:
    return make_cremad(tmp_path_factory.mktemp("mirror"))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def prepared(mirror_tree, cache):
    return prepare("cremad", SMALL, mirror=mirror_tree, cache_dir=cache, log=quiet)


def test_shapes_and_classes(prepared):
    assert [(m.name, m.kind, m.shape) for m in prepared.modalities] == [
        ("face", "image", (1, 16, 16)), ("audio", "audio", (1, 16, 12))]
    assert prepared.class_names == EMOTIONS
    assert sum(prepared.rows(s) for s in ("train", "val", "test")) == len(ACTORS) * len(SENTENCES) * 6
    for split in ("train", "val", "test"):
        arrays = read_split(prepared, split)
        face, audio = arrays.modalities["face"], arrays.modalities["audio"]
        assert face.shape == (len(arrays), 1, 16, 16) and audio.shape == (len(arrays), 1, 16, 12)
        assert 0.0 <= face.min() and face.max() <= 1.0 and np.isfinite(audio).all()
    verify_prepared(prepared.path)


def test_default_sizes(mirror_tree, tmp_path):
    default = prepare("cremad", {"limit": 2}, mirror=mirror_tree, cache_dir=tmp_path, log=quiet)
    assert [m.shape for m in default.modalities] == [(1, 64, 64), (1, 40, 100)]
    assert read_split(default, "train").modalities["face"].shape == (2, 1, 64, 64)


def test_splits_are_actor_disjoint(prepared):
    actors = prepared.manifest["actors_per_split"]
    assert [len(actors[s]) for s in ("train", "val", "test")] == [4, 1, 1]  # 20 % / 10 % of 6, at least 1
    assert sorted(actors["train"] + actors["val"] + actors["test"]) == list(ACTORS)
    for split in ("train", "val", "test"):  # every clip of a split's actors, and no other
        assert prepared.rows(split) == len(actors[split]) * len(SENTENCES) * 6


def test_label_counts(prepared):
    for split in ("train", "val", "test"):
        per_label = len(prepared.manifest["actors_per_split"][split]) * len(SENTENCES)
        assert prepared.manifest["splits"][split]["label_counts"] == {str(k): per_label for k in range(6)}
        assert np.bincount(read_split(prepared, split).labels).tolist() == [per_label] * 6


def test_face_audio_and_label_stay_paired(prepared):
    arrays = read_split(prepared, "train")
    # the middle frame was picked: its grey level encodes the label (the other frames are white)
    levels = arrays.modalities["face"].mean(axis=(1, 2, 3)) * 255
    np.testing.assert_allclose(levels, [grey_level(int(k)) for k in arrays.labels], atol=6)
    # the loudest mel band rises with the tone, i.e. with the label
    loudest = arrays.modalities["audio"][:, 0].mean(axis=2).argmax(axis=1)
    by_label = [np.unique(loudest[arrays.labels == k]) for k in range(6)]
    assert all(len(bands) == 1 for bands in by_label)
    assert [int(b[0]) for b in by_label] == sorted(int(b[0]) for b in by_label)
    assert len({int(b[0]) for b in by_label}) == 6


def test_audio_is_standardised_with_train_statistics(prepared):
    audio = read_split(prepared, "train").modalities["audio"]
    assert abs(float(audio.mean())) < 1e-3 and float(audio.std()) == pytest.approx(1.0, abs=1e-3)
    norm = prepared.manifest["normalization"]
    assert norm["audio_log_mel_std"] > 0 and prepared.manifest["resampled_audio_files"] == {}


def test_second_prepare_reuses_the_cache(prepared, mirror_tree, cache):
    mtime = (prepared.path / MANIFEST).stat().st_mtime_ns
    messages = []
    again = prepare("cremad", dict(SMALL), mirror=mirror_tree, cache_dir=cache, log=messages.append)
    assert again.path == prepared.path and messages == []
    assert (prepared.path / MANIFEST).stat().st_mtime_ns == mtime


def test_seed_changes_the_actor_split(mirror_tree, cache, prepared):
    splits = {json.dumps(prepared.manifest["actors_per_split"])}
    for seed in (1, 2, 3):
        other = prepare("cremad", {**SMALL, "seed": seed}, mirror=mirror_tree, cache_dir=cache, log=quiet)
        splits.add(json.dumps(other.manifest["actors_per_split"]))
    assert len(splits) > 1


def test_limit_keeps_a_random_subset_per_split(mirror_tree, cache, prepared):
    limited = prepare("cremad", {**SMALL, "limit": 5}, mirror=mirror_tree, cache_dir=cache, log=quiet)
    assert limited.path != prepared.path
    assert [limited.rows(s) for s in ("train", "val", "test")] == [5, 5, 5]
    assert limited.manifest["actors_per_split"] == prepared.manifest["actors_per_split"]
    assert len(np.unique(read_split(limited, "train").labels)) > 1  # shuffled, not the first actor's clips


def test_download_fetches_the_listed_clips(mirror_tree, tmp_path, monkeypatch):
    """The online path, against a local 'server' (file:// URLs) holding the repository's layout."""
    remote = tmp_path / "remote"
    (remote / "AudioWAV").mkdir(parents=True)
    (remote / "VideoFlash").mkdir()
    stems = sorted(p.stem for p in (mirror_tree / "cremad" / "AudioWAV").glob("1001_*.wav"))
    rows = "".join(f'{i},"{stem}"\n' for i, stem in enumerate(stems, 1))
    (remote / "SentenceFilenames.csv").write_text('"Stimulus_Number","Filename"\n' + rows)
    for stem in stems:
        for folder, suffix in (("AudioWAV", ".wav"), ("VideoFlash", ".flv")):
            source = mirror_tree / "cremad" / folder / f"{stem}{suffix}"
            (remote / folder / source.name).write_bytes(source.read_bytes())
    monkeypatch.setattr(cremad, "LISTING_URL", (remote / "SentenceFilenames.csv").as_uri())
    monkeypatch.setattr(cremad, "MEDIA_URL", remote.as_uri() + "/")
    folder = tmp_path / "raw" / "cremad"
    folder.mkdir(parents=True)
    (folder / ".AudioWAV.partial").mkdir()  # an interrupted earlier download: kept and completed
    (folder / ".AudioWAV.partial" / f"{stems[0]}.wav").write_bytes(b"partial")
    cremad.fetch_cremad(folder, workers=2)
    assert sorted(p.name for p in folder.iterdir()) == ["AudioWAV", "SentenceFilenames.csv", "VideoFlash"]
    assert sorted(p.stem for p in (folder / "VideoFlash").iterdir()) == stems
    assert (folder / "AudioWAV" / f"{stems[1]}.wav").read_bytes() == \
        (remote / "AudioWAV" / f"{stems[1]}.wav").read_bytes()
    assert (folder / "AudioWAV" / f"{stems[0]}.wav").read_bytes() == b"partial"  # not fetched twice


def test_download_rejects_a_git_lfs_pointer(tmp_path, monkeypatch):
    remote = tmp_path / "remote"
    (remote / "AudioWAV").mkdir(parents=True)
    (remote / "SentenceFilenames.csv").write_text('"Stimulus_Number","Filename"\n1,"1001_DFA_ANG_XX"\n')
    (remote / "AudioWAV" / "1001_DFA_ANG_XX.wav").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 10\n")
    monkeypatch.setattr(cremad, "LISTING_URL", (remote / "SentenceFilenames.csv").as_uri())
    monkeypatch.setattr(cremad, "MEDIA_URL", remote.as_uri() + "/")
    with pytest.raises(DataError) as info:
        cremad.fetch_cremad(tmp_path / "raw", workers=1)
    message = str(info.value)
    assert "git-lfs pointer" in message and cremad.GITLAB_MIRROR in message
    assert not (tmp_path / "raw" / ".AudioWAV.partial" / "1001_DFA_ANG_XX.wav").exists()


def test_process_pool_decoding_matches_in_process(mirror_tree):
    """The parallel path (several chunks on a process pool) returns the same arrays, in order."""
    from functools import partial

    from mmray.data.parallel import map_files
    from mmray.data.sources import RawData

    params = cremad.CremaDParams(**SMALL)
    clips = [(c[2], c[3]) for c in cremad.list_clips(mirror_tree / "cremad", RawData())][:12]
    decode = partial(cremad.decode_clip, p=params)
    pooled = map_files(decode, clips, RawData(), desc="test", workers=2, chunk=3)
    for clip, (face, mel, rate) in zip(clips, pooled):
        expected_face, expected_mel, _ = decode(clip)
        assert rate == 16000
        np.testing.assert_array_equal(face, expected_face)
        np.testing.assert_allclose(mel, expected_mel, rtol=1e-6)
