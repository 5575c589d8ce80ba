"""What the demo accepts as an upload, checked before the model sees it: each refusal is one line for the page,
naming the file by its own name (not the server's temporary copy) and what to do instead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from mmray.data.audio import read_wav
from mmray.errors import DataError

# Longer clips are refused, not trimmed: the model hears a window of about a second (the middle of the clip,
# as its benchmark crops every recording), so a long recording would be judged by a part the user never chose,
# and decoding minutes of audio would hold up the page.
MAX_AUDIO_SECONDS = 30.0
# Quieter than -60 dBFS RMS is silence (a muted microphone, digital zero): its log-mel is the floor everywhere
# and every answer would be the same arbitrary one.
SILENCE_RMS = 1e-3


class InputError(DataError):
    """An upload the demo cannot use; its message is shown in the page."""


def uploaded_file(path) -> Path:
    if path is None or not str(path):
        raise InputError("no file chosen: upload a file first, or press \"random test example\"")
    return Path(path)


def check_audio(path: Path, sample_rate: int) -> None:
    """Refuse a file that is not audio soundfile decodes, longer than MAX_AUDIO_SECONDS, or silent. Reads the
    header first, so a long file is refused without decoding it."""
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise InputError(f"{path.name} is not an audio file this demo reads ({_reason(exc)}); upload a WAV or "
                         "FLAC file") from None
    seconds = info.frames / info.samplerate if info.samplerate else 0.0
    if seconds > MAX_AUDIO_SECONDS:
        raise InputError(f"{path.name} is {seconds:.0f} s long; the demo takes clips up to "
                         f"{MAX_AUDIO_SECONDS:.0f} s (the model hears about a second of it): cut out the part "
                         "to recognise")
    wave = read_wav(path, sample_rate)
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if len(wave) else 0.0
    if rms < SILENCE_RMS:
        level = f"{20 * np.log10(rms):.0f} dBFS" if rms > 0 else "digital silence"
        raise InputError(f"{path.name} is silent (RMS {level}, below {20 * np.log10(SILENCE_RMS):.0f} dBFS); "
                         "record it again closer to the microphone")


def check_text(text) -> str:
    text = (text or "").strip()
    if not text:
        raise InputError("the text is empty: type a text first, or press \"random test example\"")
    return text


def own_name(message: str, path: Path | None) -> str:
    """`message` with the server's temporary path of an upload replaced by the file's own name."""
    return message.replace(str(path), path.name) if path is not None else message


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(": ", 1)[-1] if "Error opening" in text else text
