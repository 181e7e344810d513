"""Reading sampled frames from a video, in decode order.

Frames are always decoded in order from the start: seeking into files with
few keyframes (FF++ ``519.mp4`` has four) returns corrupt frames. The frame
count a container reports can be wrong, so the count that matters is the
number of frames that actually decode: when a first pass finds fewer frames
than reported and so misses some of the wanted ones, the indices are
recomputed from the true count and the file is read once more.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


class VideoError(ValueError):
    """A video that cannot be read; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    reported_frames: int


@dataclass
class Frames:
    """Sampled frames of one video: RGB arrays and their indices in decode order.

    ``scale`` is the factor applied to frames larger than ``max_side`` (1.0 if
    none was); boxes found on ``images`` divide by it to get back to the
    video's own pixel coordinates. ``decoded`` is the number of frames that
    decoded (-1 if reading stopped early, before the end).
    """

    indices: list
    images: list
    info: VideoInfo
    scale: float = 1.0
    decoded: int = -1


def open_video(path) -> cv2.VideoCapture:
    """An opened ``cv2.VideoCapture`` of ``path``, or :class:`VideoError` saying why it cannot be opened."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(path, "file not found")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in the name: OpenCV crashes (segfault) on such a str
        raise VideoError(path, "file name is not valid UTF-8, which OpenCV cannot open; rename the file") from None
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(path, "cannot be opened as a video (not a video, or an unsupported or corrupt container)")
    return cap


def video_info(path) -> VideoInfo:
    """Width, height, frame rate and reported frame count of a video (rotation applied)."""
    cap = open_video(path)
    try:
        return _info(cap)
    finally:
        cap.release()


def _info(cap) -> VideoInfo:
    fps = cap.get(cv2.CAP_PROP_FPS)
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 0.0
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    count = int(count) if math.isfinite(count) and count > 0 else 0
    return VideoInfo(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), fps, count)


def sample_indices(n_frames: int, frames_per_video: int, video_fps: float = 0.0, rate: float | None = None,
                   consecutive: bool = False) -> list:
    """Indices of the frames to take from a video of ``n_frames`` frames.

    ``rate=None``: ``frames_per_video`` frames evenly spaced from the first to the last
    (all of them if the video is shorter). ``rate`` (frames per second): one
    frame every ``video_fps / rate`` frames starting at frame 0, at most
    ``frames_per_video`` of them; a video whose frame rate is unknown is taken as 25 fps.
    ``consecutive=True``: ``frames_per_video`` frames in a row (every frame, or every
    sampled frame at ``rate``), centred in the video, for the sequence models.

    >>> sample_indices(10, 4)
    [0, 3, 6, 9]
    >>> sample_indices(100, 3, video_fps=25, rate=1)
    [0, 25, 50]
    >>> sample_indices(10, 4, consecutive=True)
    [3, 4, 5, 6]
    """
    count = frames_per_video
    if n_frames <= 0 or count <= 0:
        return []
    if rate is None and not consecutive:
        if n_frames <= count:
            return list(range(n_frames))
        return sorted(set(np.linspace(0, n_frames - 1, count).round().astype(int).tolist()))
    step = 1.0 if rate is None else (video_fps if video_fps > 0 else 25.0) / rate  # rate=None: every frame
    indices = []
    k = 0
    while consecutive or len(indices) < count:
        i = int(round(k * step))
        if i >= n_frames:
            break
        if not indices or i != indices[-1]:
            indices.append(i)
        k += 1
    if consecutive:
        start = max(0, (len(indices) - count) // 2)
        indices = indices[start:start + count]
    return indices


def _read(cap, wanted: list, max_side: int, read_to_end: bool):
    """Decode in order; keep the frames at ``wanted`` indices (RGB, shrunk to ``max_side``)."""
    wanted_set = set(wanted)
    last = max(wanted) if wanted else -1
    images, indices, scale = [], [], 1.0
    i = 0
    while read_to_end or i <= last:
        if not cap.grab():
            return indices, images, scale, i
        if i in wanted_set:
            ok, frame = cap.retrieve()
            if ok and frame is not None and frame.size:
                h, w = frame.shape[:2]
                if max_side and max(h, w) > max_side:
                    scale = max_side / max(h, w)
                    frame = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
                images.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                indices.append(i)
        i += 1
    return indices, images, scale, -1


def read_frames(path, frames_per_video: int = 25, rate: float | None = None, max_side: int = 1920,
                consecutive: bool = False) -> Frames:
    """Sampled frames of the video at ``path`` (see :func:`sample_indices`).

    Raises :class:`VideoError` for a file that is missing, empty, not a video
    or yields no frame at all.
    """
    cap = open_video(path)
    try:
        info = _info(cap)
        reported = info.reported_frames
        if reported > 0:
            wanted = sample_indices(reported, frames_per_video, info.fps, rate, consecutive)
            # read to the end only when sampling spans the whole video, so that
            # the true count is known if the reported one was too high
            indices, images, scale, decoded = _read(cap, wanted, max_side, read_to_end=False)
            if len(indices) == len(wanted):
                return Frames(indices, images, info, scale, decoded)
            if decoded < 0:  # a wanted frame failed to retrieve mid-file: keep what decoded
                return _nonempty(path, Frames(indices, images, info, scale, decoded))
            true_count = decoded
        else:  # no usable count: count first
            true_count = 0
            while cap.grab():
                true_count += 1
        cap.release()
        if true_count == 0:
            raise VideoError(path, "no frame could be decoded (truncated or corrupt video)")
        cap = open_video(path)
        wanted = sample_indices(true_count, frames_per_video, info.fps, rate, consecutive)
        indices, images, scale, decoded = _read(cap, wanted, max_side, read_to_end=False)
        return _nonempty(path, Frames(indices, images, info, scale, true_count))
    finally:
        cap.release()


def _nonempty(path, frames: Frames) -> Frames:
    if not frames.images:
        raise VideoError(path, "no frame could be decoded (truncated or corrupt video)")
    return frames
