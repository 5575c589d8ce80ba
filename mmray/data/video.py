"""Video decoding with PyAV: one still frame of a clip as a square greyscale image."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image

from mmray.data.sources import require_file
from mmray.errors import DataError


def _pick_frame(container: av.container.InputContainer, position: float) -> av.VideoFrame | None:
    """The frame on screen at `position` (0..1) of the clip's duration; decoding stops right after it.

    When the container does not state a duration, every frame is decoded and the one at `position` of the
    frame count is taken.
    """
    stream = container.streams.video[0]
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    else:
        duration = container.duration / av.time_base if container.duration else None
    target = position * duration if duration else None
    chosen, frames = None, []
    for frame in container.decode(stream):
        if target is None or frame.time is None:
            frames.append(frame)
        elif frame.time > target and chosen is not None:
            break
        else:
            chosen = frame
    if chosen is None and frames:
        chosen = frames[round(position * (len(frames) - 1))]
    return chosen


def video_frame(path: Path, size: int, position: float = 0.5) -> np.ndarray:
    """The frame at `position` of the clip, greyscale, centre-cropped to a square and resized to
    (size, size); float32 in [0, 1]. A missing, empty or undecodable file is a DataError naming it."""
    require_file(path, "video file")
    fix = "replace it with a playable copy from the dataset source"
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"video file {path} has no video stream; {fix}")
            frame = _pick_frame(container, position)
            grey = frame.to_ndarray(format="gray") if frame is not None else None
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise DataError(f"video file {path} cannot be decoded ({exc}); {fix}") from exc
    if grey is None:
        raise DataError(f"video file {path} holds no decodable frame; {fix}")
    height, width = grey.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(grey[top:top + side, left:left + side])
    resized = square.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32) / 255.0
