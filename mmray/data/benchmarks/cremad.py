"""CREMA-D: a still of an actor's face paired with the log-mel of the sentence they speak; the class is the
emotion they act (ANG DIS FEA HAP NEU SAD).

Raw layout (the dataset's own): `cremad/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav` (16 kHz mono) and
`cremad/VideoFlash/<same stem>.flv`, 91 actors 1001-1091, 7,442 clips. Splits are actor-disjoint: the actors
are shuffled with the seed and `test_fraction` / `val_fraction` of them hold the test / validation clips, so
no face or voice of a test actor is seen in training. Each split's clips are shuffled, so `limit` keeps a
random subset (and only that subset is decoded).
"""

from __future__ import annotations

import csv
import os
import re
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator
from tqdm import tqdm

from mmray.data.audio import log_mel_stats, note_resampling, standardise, wav_log_mel
from mmray.data.benchmarks.raw_input import (
    audio_file,
    first_line,
    image_header,
    input_file,
    note_image,
    stored,
)
from mmray.data.parallel import map_files
from mmray.data.sources import LFS_POINTER, download
from mmray.data.spec import SPLITS, Benchmark, BenchmarkParams, ModalitySpec, Note, SplitArrays
from mmray.data.video import video_frame
from mmray.errors import DataError

EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")  # label = index here
CLIP_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")  # 1001_DFA_ANG_XX
REPO = "CheyneyComputerScience/CREMA-D"
LISTING_URL = f"https://raw.githubusercontent.com/{REPO}/master/SentenceFilenames.csv"  # the 7,442 stems
MEDIA_URL = f"https://media.githubusercontent.com/media/{REPO}/master/"  # git-lfs file contents
GITLAB_MIRROR = "https://gitlab.com/cs-cooper-lab/crema-d-mirror"
FOLDERS = (("AudioWAV", ".wav"), ("VideoFlash", ".flv"))  # VideoFlash last: it marks a complete download
VIDEO_SUFFIXES = (".flv", ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")  # a face from a clip, not a still
FACE_FILE = "a PNG or JPEG face image (or a video clip such as CREMA-D's .flv)"


class CremaDParams(BenchmarkParams):
    image_size: int = Field(64, ge=8)
    frame_position: float = Field(0.5, ge=0, le=1)  # which frame of the clip: 0 first, 0.5 middle, 1 last
    sample_rate: int = 16000
    n_mels: int = 40
    n_fft: int = 1024
    hop_length: int = 400  # 25 ms at 16 kHz: 100 frames cover 2.5 s, about one CREMA-D sentence
    frames: int = 100
    utterance_norm: bool = Field(False, description="each log-mel to mean 0 and variance 1 over its own bins "
                                 "and frames, before the training statistics standardise the split")
    val_fraction: float = Field(0.1, gt=0, lt=1)  # of the actors
    test_fraction: float = Field(0.2, gt=0, lt=1)

    @model_validator(mode="after")
    def _fractions(self):
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction} "
                             "leaves no training actors; keep the sum below 1")
        return self


def _fetch_one(stem_file: tuple[str, str], partial_dir: Path, subfolder: str) -> None:
    name = stem_file[0] + stem_file[1]
    dest = partial_dir / name
    if dest.exists() and dest.stat().st_size > 0:  # resumed download
        return
    download(f"{MEDIA_URL}{subfolder}/{name}", dest)
    with open(dest, "rb") as f:
        if f.read(len(LFS_POINTER)) == LFS_POINTER:
            dest.unlink()
            raise DataError(f"{MEDIA_URL}{subfolder}/{name} served a git-lfs pointer, not the file")


def fetch_cremad(folder: Path, workers: int = 8) -> None:
    """Download the clips listed in SentenceFilenames.csv: AudioWAV/*.wav and VideoFlash/*.flv only (about
    3.5 GB of the repository's 7.5 GB), from GitHub's git-lfs media host, `workers` files at a time.

    Each folder is filled under a hidden name and renamed when complete; an interrupted download resumes.
    """
    listing = download(LISTING_URL, folder / "SentenceFilenames.csv")
    with open(listing, newline="") as f:
        stems = [row["Filename"] for row in csv.DictReader(f)]
    for subfolder, suffix in FOLDERS:
        if (folder / subfolder).is_dir():
            continue
        partial_dir = folder / f".{subfolder}.partial"
        partial_dir.mkdir(exist_ok=True)
        fetch = partial(_fetch_one, partial_dir=partial_dir, subfolder=subfolder)
        with ThreadPoolExecutor(workers) as pool:
            try:
                jobs = pool.map(fetch, [(stem, suffix) for stem in stems])
                for _ in tqdm(jobs, total=len(stems), desc=f"CREMA-D {subfolder}", unit="file"):
                    pass
            except DataError as exc:
                pool.shutdown(cancel_futures=True)
                raise DataError(f"{exc}; if GitHub's git-lfs quota for {REPO} is spent, clone the mirror "
                                f"{GITLAB_MIRROR} with git-lfs into <mirror>/cremad and pass --mirror "
                                "(see datasets/README.md)") from exc
        os.replace(partial_dir, folder / subfolder)


def list_clips(folder: Path, raw) -> list[tuple[str, int, Path, Path]]:
    """(actor, label, wav, flv) for every clip stem found in AudioWAV/ or VideoFlash/, sorted by stem.

    A stem present in only one folder still becomes a clip: decoding it reports the missing file.
    """
    audio_dir = folder / "AudioWAV"
    if not audio_dir.is_dir():
        raise DataError(f"{audio_dir} does not exist; CREMA-D needs AudioWAV/ and VideoFlash/ side by side")
    stems = set()
    for subfolder, suffix in FOLDERS:
        for path in (folder / subfolder).iterdir():
            if path.name.startswith(".") or path.suffix != suffix:
                continue
            match = CLIP_NAME.match(path.stem)
            if match is None or match[3] not in EMOTIONS:
                raw.bad(f"{path}: not a CREMA-D clip name like 1001_DFA_ANG_XX{suffix} with an emotion in "
                        f"{', '.join(EMOTIONS)}; remove or rename it")
                continue
            stems.add(path.stem)
    if not stems:
        raise DataError(f"no CREMA-D clips (like AudioWAV/1001_DFA_ANG_XX.wav) in {folder}")
    return [(stem[:4], EMOTIONS.index(stem.split("_")[2]), folder / "AudioWAV" / f"{stem}.wav",
             folder / "VideoFlash" / f"{stem}.flv") for stem in sorted(stems)]


def split_actors(actors: list[str], p: CremaDParams, rng: np.random.Generator) -> dict[str, list[str]]:
    order = [actors[i] for i in rng.permutation(len(actors))]
    n_test = max(1, round(p.test_fraction * len(actors)))
    n_val = max(1, round(p.val_fraction * len(actors)))
    if n_test + n_val >= len(actors):
        raise DataError(f"CREMA-D: {len(actors)} actor(s) cannot fill actor-disjoint train, val and test "
                        f"splits ({n_test} test, {n_val} val); add actors or lower the fractions")
    return {"test": sorted(order[:n_test]), "val": sorted(order[n_test:n_test + n_val]),
            "train": sorted(order[n_test + n_val:])}


def decode_clip(clip: tuple[Path, Path], p: CremaDParams) -> tuple[np.ndarray, np.ndarray, int]:
    """(face frame, log-mel, the WAV's own sample rate) of one clip; runs in a worker process."""
    wav, flv = clip
    return video_frame(flv, p.image_size, p.frame_position), *wav_log_mel(wav, p)


class CremaD(Benchmark):
    name = "cremad"
    Params = CremaDParams

    def modalities(self, p: CremaDParams) -> tuple[ModalitySpec, ...]:
        return (ModalitySpec("face", "image", (1, p.image_size, p.image_size)),
                ModalitySpec("audio", "audio", (1, p.n_mels, p.frames)))

    def class_names(self, p: CremaDParams) -> tuple[str, ...]:
        return EMOTIONS

    def build(self, p: CremaDParams, raw) -> tuple[dict[str, SplitArrays], dict]:
        rng = np.random.default_rng(p.seed)
        folder = raw.folder("cremad", fetch_cremad, "VideoFlash")
        clips = list_clips(folder, raw)
        actors = split_actors(sorted({c[0] for c in clips}), p, rng)
        chosen = {}
        for split in SPLITS:
            in_split = [c for c in clips if c[0] in actors[split]]
            chosen[split] = [in_split[i] for i in rng.permutation(len(in_split))][:p.limit]
        work = [(split, clip) for split in SPLITS for clip in chosen[split]]
        decoded = map_files(partial(decode_clip, p=p), [(c[2], c[3]) for _, c in work], raw,
                            desc="CREMA-D clips")
        kept = [(split, clip, out) for (split, clip), out in zip(work, decoded) if out is not None]
        resampled = note_resampling([c[2] for _, c, _ in kept], [o[2] for _, _, o in kept], p.sample_rate,
                                    raw.log)
        faces, mels, labels = {}, {}, {}
        for split in SPLITS:
            rows = [(clip, out) for s, clip, out in kept if s == split]
            if not rows:
                raise DataError(f"CREMA-D split {split} has no usable clip (actors "
                                f"{', '.join(actors[split])}); check {folder}")
            labels[split] = np.array([clip[1] for clip, _ in rows], np.int64)
            faces[split] = np.stack([out[0] for _, out in rows])[:, None]
            mels[split] = np.stack([out[1] for _, out in rows])
        stats = log_mel_stats(mels["train"])
        splits = {s: SplitArrays(labels[s], {"face": faces[s], "audio": standardise(mels[s], stats)[:, None]})
                  for s in SPLITS}
        extra = {
            "source": f"{REPO} AudioWAV/*.wav + VideoFlash/*.flv (frame at {p.frame_position} of each clip)",
            "normalization": {**stats, "face": "grey pixels / 255"},
            "actors_per_split": actors,
            "resampled_audio_files": resampled,
        }
        return splits, extra

    def preprocess(self, p: CremaDParams, modality: ModalitySpec, source, manifest: dict,
                   note: Note) -> np.ndarray:
        """A face: a still image (PNG/JPEG) read as a one-frame clip, or a video clip's frame at
        `frame_position`, through `video_frame` as every CREMA-D clip is (grey, centre square crop, bilinear
        resize to `image_size`). Speech: a WAV/FLAC file as a CREMA-D sentence (mono, `sample_rate`, log-mel,
        standardised with the training clips' statistics)."""
        spec = self.declared(p, modality)
        if spec.kind == "audio":
            return audio_file(source, spec, p, manifest, note)
        path = input_file(source, spec, FACE_FILE)
        header = None if path.suffix.lower() in VIDEO_SUFFIXES else image_header(path)
        if header is None:
            return stored(video_frame(path, p.image_size, p.frame_position)[None], spec)
        try:
            face = video_frame(path, p.image_size, p.frame_position)
        except DataError as exc:
            reason = first_line(exc.__cause__ or exc)
            raise DataError(f"image file {path} does not decode as a frame ({reason}); pass "
                            f"{FACE_FILE}") from exc
        note_image(path, header, "L", p.image_size, "centre crop to a square, bilinear, as CREMA-D's frames",
                   note, target="grey (FFmpeg's luma, as for the clips' frames)")
        return stored(face[None], spec)
