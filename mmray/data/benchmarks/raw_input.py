"""One raw input for `Benchmark.preprocess`: checking a file, reading an image or a text the way the
benchmarks' builds do, and returning an example exactly as shards store it.

Every check raises DataError with one line naming the file and the fix; every conversion (mode, size) is
told to `note` in one line naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from mmray.data.audio import manifest_stats, standardise, wav_log_mel
from mmray.data.hf import _decode_image
from mmray.data.sources import LFS_POINTER
from mmray.data.spec import ModalitySpec, Note
from mmray.data.text import Tokenizer, encode_text, tokenizer_from_state
from mmray.errors import DataError

AUDIO_FILE = "a WAV or FLAC file"
IMAGE_FILE = "a PNG or JPEG image"
CROP_RESIZE = "centre crop to a square, bicubic"  # hf._decode_image: ImageOps.fit(..., BICUBIC)


def input_file(source, modality: ModalitySpec, expected: str) -> Path:
    """`source` as the path of an existing, non-empty file holding data; else a DataError saying why."""
    if not isinstance(source, (str, os.PathLike)):
        raise DataError(f"{modality.kind} input for {modality.name!r} must be a file path (str or Path), not "
                        f"{type(source).__name__}; pass the path of {expected}")
    path = Path(source).expanduser()
    if path.is_dir():
        raise DataError(f"{modality.kind} file {path} is a folder; pass the path of {expected} inside it")
    if not path.is_file():
        raise DataError(f"{modality.kind} file {path} does not exist; pass the path of {expected}")
    if path.stat().st_size == 0:
        raise DataError(f"{modality.kind} file {path} is empty (0 bytes); pass {expected} that holds data")
    with open(path, "rb") as f:
        if f.read(len(LFS_POINTER)) == LFS_POINTER:
            raise DataError(f"{modality.kind} file {path} is a git-lfs pointer, not the data; fetch the real "
                            "file (`git lfs pull` in its clone)")
    return path


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def image_header(path: Path) -> tuple[str, int, int, bool]:
    """(mode, height, width, has transparency) from the file's header; a DataError if PIL cannot read it."""
    try:
        with Image.open(path) as image:
            alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
            return image.mode, image.height, image.width, alpha
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = ("not an image file PIL knows" if isinstance(exc, Image.UnidentifiedImageError)
                  else first_line(exc))
        raise DataError(f"image file {path} does not decode as an image ({reason}); pass "
                        f"{IMAGE_FILE}") from exc


def note_image(path: Path, header: tuple[str, int, int, bool], mode: str, size: int, resize: str,
               note: Note, target: str | None = None) -> None:
    """Tell `note` what turning this image into `mode` (size x size) does to it: its mode, its size."""
    found, height, width, alpha = header
    if found != mode:
        dropped = " (transparency dropped, not composited)" if alpha else ""
        note(f"image file {path}: converted from mode {found} to {target or mode}{dropped}")
    if (height, width) != (size, size):
        note(f"image file {path}: resized from {height}x{width} to {size}x{size} ({resize})")


def image_file(source, modality: ModalitySpec, note: Note, resize: str = CROP_RESIZE) -> np.ndarray:
    """uint8 (C, S, S) pixels of an image file for an image modality of shape (C, S, S): converted to L
    (C = 1) or RGB (C = 3) and centre-cropped to a square and resized with bicubic resampling when it is
    another size: exactly what the Hugging Face image benchmarks do to every image (`hf._decode_image`).
    `resize` is how the note describes that resize."""
    channels, size = modality.shape[0], modality.shape[-1]
    path = input_file(source, modality, IMAGE_FILE)
    header = image_header(path)
    try:
        pixels = _decode_image((str(path), None, str(path)), size, channels)
    except DataError as exc:
        raise DataError(f"image file {path} does not decode ({first_line(exc.__cause__ or exc)}); pass "
                        f"{IMAGE_FILE}") from exc
    note_image(path, header, "L" if channels == 1 else "RGB", size, resize, note)
    return pixels


def text_input(source, modality: ModalitySpec) -> str:
    if not isinstance(source, str):
        raise DataError(f"text input for {modality.name!r} must be the text itself (a str), not "
                        f"{type(source).__name__}; read a text file's contents first")
    return source


def saved_tokenizer(manifest: dict, modality: ModalitySpec) -> Tokenizer:
    """The tokenizer the shard set's text modality was made with (saved in its manifest)."""
    saved = manifest.get("tokenizers", {})
    if modality.name not in saved:
        raise DataError(f"the shard manifest of {manifest.get('benchmark', 'this benchmark')!r} saves no "
                        f"tokenizer for text modality {modality.name!r} (it has {sorted(saved)}); prepare "
                        "its shards again")
    return tokenizer_from_state(saved[modality.name])


def tokens(source, modality: ModalitySpec, manifest: dict, note: Note) -> np.ndarray:
    """(max_length,) int64 ids of one text through the shard set's own tokenizer; truncation is noted."""
    text = text_input(source, modality)
    return encode_text(saved_tokenizer(manifest, modality), text, modality.shape[0], note,
                       what=f"{modality.name} text")


def stored(values: np.ndarray, modality: ModalitySpec) -> np.ndarray:
    """`values` as a shard row holds them: `modality.shape` in `modality.dtype` (float16 for images and
    log-mels, the same rounding as writing the shards), C-contiguous."""
    out = np.ascontiguousarray(values, dtype=modality.dtype)
    if out.shape != modality.shape:
        raise DataError(f"modality {modality.name!r}: a preprocessed input has shape {out.shape}, declared "
                        f"{modality.shape}; this is a bug in the benchmark's preprocess")
    return out


def audio_file(source, modality: ModalitySpec, p, manifest: dict, note: Note) -> np.ndarray:
    """(1, n_mels, frames) of one WAV/FLAC file as the recordings of a build become shard rows: decoded,
    mixed to mono, resampled to `p.sample_rate` (both noted), log-mel (`wav_log_mel`), standardised with
    the shard set's training statistics."""
    path = input_file(source, modality, AUDIO_FILE)
    stats = manifest_stats(manifest)
    mel, _ = wav_log_mel(path, p, note)
    return stored(standardise(mel, stats)[None], modality)
