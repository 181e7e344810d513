"""Reading sampled frames from a video.

The decoder is PyAV (:mod:`.decode`): a file is opened only as a plain local media file (never a
playlist, a concat list or a URL), and only the packets that the sampled frames need are decoded,
which gives exactly the frames of a full in-order decode. Files PyAV cannot open are read by
OpenCV, in order from the start, after the same refusals and under the same FFmpeg whitelists
(:func:`open_video`). :attr:`Frames.decoder` says which decoder read a video.

Frame ``i`` is the ``i``-th frame of the video in presentation order. The frame count a
container's header reports can be wrong (or hostile), so sampling never uses it: it uses the
frames present in the file (its packets) and, when sampled frames then fail to decode, the
frames that really decode (the file is read once more with indices recomputed from that count).
"""
from __future__ import annotations

import math
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .decode import (NO_FRAME, NOT_A_VIDEO, CannotOpen, SparseFailed, VideoError, allowed_demuxers, check_file,
                     codec_name, decode_sparse, index_packets, iter_decoded, media_url, open_container,
                     rotation_turns, to_array, unsupported, video_stream)

DECODERS = ("auto", "pyav", "opencv")
_ENV_LOCK = threading.Lock()


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    reported_frames: int


@dataclass
class Frames:
    """Sampled frames of one video: RGB arrays and their indices in presentation order.

    ``scale`` is the factor applied to frames larger than ``max_side`` (1.0 if
    none was); boxes found on ``images`` divide by it to get back to the
    video's own pixel coordinates. ``decoded`` is the number of frames that
    decoded (-1 if not every frame was decoded). ``decoder`` is ``"pyav"`` or
    ``"opencv"`` (:data:`DECODERS`), ``times`` the time of each frame in
    seconds from the first frame (its timestamp; ``index / fps`` where there
    is none).
    """

    indices: list
    images: list
    info: VideoInfo
    scale: float = 1.0
    decoded: int = -1
    decoder: str = "pyav"
    times: list = field(default_factory=list)


def sample_indices(n_frames: int, frames_per_video: int, video_fps: float = 0.0, rate: float | None = None,
                   consecutive: bool = False) -> list:
    """Indices of the frames to take from a video of ``n_frames`` frames.

    ``rate=None``: ``frames_per_video`` frames evenly spaced from the first to the last
    (all of them if the video is shorter). ``rate`` (frames per second): one
    frame every ``video_fps / rate`` frames starting at frame 0, at most
    ``frames_per_video`` of them; a video whose frame rate is unknown is taken as 25 fps.
    ``consecutive=True``: ``frames_per_video`` frames in a row (every frame, or every
    sampled frame at ``rate``), centred in the video, for the sequence models.
    The work and the list are bounded by ``frames_per_video``, whatever ``n_frames`` is.

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
    if step <= 1.0:  # every frame is reached (rounding k * step with steps under 1 hits every index)
        total = n_frames

        def at(k):
            return k
    else:  # round(k * step) strictly increases: count the k with round(k * step) < n_frames
        total = max(0, int((n_frames - 0.5) / step) - 1)
        while round(total * step) < n_frames:
            total += 1

        def at(k):
            return int(round(k * step))
    start = max(0, (total - count) // 2) if consecutive else 0
    return [at(k) for k in range(start, min(total, start + count))]


# --------------------------------------------------------------------------- OpenCV, guarded

def open_video(path, probed: bool = False):
    """An opened ``cv2.VideoCapture`` of ``path`` (OpenCV's FFmpeg backend), or :class:`VideoError`
    saying why it cannot be opened.

    The file is refused first if PyAV's probe finds a demuxer that opens other files or URLs, or
    it starts like a playlist (:func:`~.decode.open_container`; ``probed=True``: the caller has
    already probed it and PyAV could not open it, which is not a refusal); OpenCV then opens it as
    ``file:<absolute path>`` with the same protocol and demuxer whitelists, passed through
    ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` for this call.
    """
    import cv2

    path = check_file(path)
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in the name: OpenCV crashes (segfault) on such a str
        raise VideoError(path, "file name is not valid UTF-8, which OpenCV cannot open; rename the file") from None
    if not probed:
        try:
            open_container(path).close()
        except CannotOpen:
            pass  # PyAV cannot read it; OpenCV's FFmpeg is held to the same whitelists below
    key = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
    ours = f"protocol_whitelist;file|format_whitelist;{allowed_demuxers()}"
    with _ENV_LOCK:
        before = os.environ.get(key)
        os.environ[key] = f"{before}|{ours}" if before else ours  # later keys win
        try:
            cap = cv2.VideoCapture(media_url(path), cv2.CAP_FFMPEG)
        finally:
            if before is None:
                del os.environ[key]
            else:
                os.environ[key] = before
    if not cap.isOpened():
        cap.release()
        raise VideoError(path, NOT_A_VIDEO)
    return cap


def _opencv_info(cap) -> VideoInfo:
    import cv2

    fps = cap.get(cv2.CAP_PROP_FPS)
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 0.0
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    count = int(count) if math.isfinite(count) and 0 < count < 2 ** 62 else 0
    return VideoInfo(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), fps, count)


def _read_opencv(path, frames_per_video, rate, max_side, consecutive, probed=False) -> Frames:
    """In order from the start, twice: count the frames that decode, then keep the sampled ones."""
    cap = open_video(path, probed)
    try:
        info = _opencv_info(cap)
        total = 0
        while cap.grab():
            total += 1
    finally:
        cap.release()
    if total == 0:
        raise VideoError(path, _why_no_frame(path))
    wanted = set(sample_indices(total, frames_per_video, info.fps, rate, consecutive))
    last = max(wanted)
    shrink = _Shrink(max_side)
    indices, images = [], []
    cap = open_video(path, probed=True)
    try:
        import cv2

        i = 0
        while i <= last and cap.grab():
            if i in wanted:
                ok, frame = cap.retrieve()
                if ok and frame is not None and frame.size:
                    images.append(shrink(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
                    indices.append(i)
            i += 1
    finally:
        cap.release()
    if not images:
        raise VideoError(path, NO_FRAME)
    times = [i / info.fps if info.fps else None for i in indices]
    return Frames(indices, images, info, shrink.scale, total, "opencv", times)


def _why_no_frame(path) -> str:
    """Why OpenCV decoded nothing: a codec its build lacks (PyAV decodes a frame), or a broken file."""
    try:
        with opened(path) as (container, stream):
            if next(iter_decoded(container, stream, path), None) is not None:
                return unsupported(codec_name(stream), "OpenCV")
    except (CannotOpen, VideoError):
        pass
    return NO_FRAME


# --------------------------------------------------------------------------- PyAV

@contextmanager
def opened(path):
    """``(container, video stream)`` of the file at ``path``, closed on leaving; raises as
    :func:`~.decode.open_container` and :func:`~.decode.video_stream` do."""
    container = open_container(path)
    try:
        yield container, video_stream(container, path)
    finally:
        container.close()


class _Shrink:
    """Resize images larger than ``max_side`` on their longer side (INTER_AREA); remembers the scale."""

    def __init__(self, max_side: int):
        self.max_side = max_side
        self.scale = 1.0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        import cv2

        h, w = image.shape[:2]
        if self.max_side and max(h, w) > self.max_side:
            self.scale = self.max_side / max(h, w)
            image = cv2.resize(image, (round(w * self.scale), round(h * self.scale)), interpolation=cv2.INTER_AREA)
        return image


def _fps(stream) -> float:
    for rate in (stream.average_rate, stream.base_rate):
        fps = float(rate) if rate else 0.0
        if math.isfinite(fps) and 0 < fps <= 1000:
            return fps
    return 0.0


def _info(container, stream, fps: float, turns: int) -> VideoInfo:
    """Size (display rotation applied), frame rate and the frame count the header reports."""
    w, h = stream.codec_context.width, stream.codec_context.height
    if turns % 2:
        w, h = h, w
    reported = stream.frames
    if reported <= 0 and fps > 0:
        seconds = float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / 1e6
        reported = int(seconds * fps) if math.isfinite(seconds) and 0 < seconds * fps < 2 ** 62 else 0
    return VideoInfo(int(w), int(h), fps, int(reported))


def _read_pyav(path, frames_per_video, rate, max_side, consecutive, seek) -> Frames:
    with opened(path) as (container, stream):
        fps = _fps(stream)
        index = index_packets(container, stream)
        wanted = sample_indices(index.count, frames_per_video, fps, rate, consecutive)
        if index.sparse and wanted:
            shrink = _Shrink(max_side)
            base = stream.time_base
            origin = int(index.pts[index.order[0]])

            def convert(i, frame):
                return shrink(to_array(frame)), float((frame.pts - origin) * base), rotation_turns(frame)

            try:
                got = decode_sparse(container, stream, index, wanted, convert, seek)
            except SparseFailed:
                pass
            else:
                images, times, turns = zip(*(got[i] for i in wanted))
                info = _info(container, stream, fps, turns[0])
                return Frames(list(wanted), list(images), info, shrink.scale, -1, "pyav", list(times))
    return _read_in_order(path, index.count, frames_per_video, rate, max_side, consecutive, fps)


def _read_in_order(path, count_hint, frames_per_video, rate, max_side, consecutive, fps) -> Frames:
    """Decode in order from the start, keeping the sampled frames of ``count_hint`` frames; if some
    of them do not decode, sample again from the number that did and read once more."""
    wanted = sample_indices(count_hint, frames_per_video, fps, rate, consecutive)
    decoded = -1
    for attempt in range(2):
        shrink = _Shrink(max_side)
        with opened(path) as (container, stream):
            keep = set(wanted)
            got, n, origin, turns = {}, 0, None, 0
            for n, frame in enumerate(iter_decoded(container, stream, path), 1):
                if origin is None:
                    origin, turns = frame.time, rotation_turns(frame)
                if n - 1 in keep:
                    t = frame.time - origin if frame.time is not None and origin is not None else None
                    got[n - 1] = (shrink(to_array(frame)), t if t is not None else ((n - 1) / fps if fps else None))
                    if len(got) == len(keep):
                        break
            info = _info(container, stream, fps, turns)
        if wanted and len(got) == len(wanted):
            break
        if n == 0:
            raise VideoError(path, NO_FRAME)
        decoded = n  # reached the end: the true count
        wanted = sample_indices(n, frames_per_video, fps, rate, consecutive)
    indices = [i for i in wanted if i in got]
    if not indices:
        raise VideoError(path, NO_FRAME)
    return Frames(indices, [got[i][0] for i in indices], info, shrink.scale, decoded, "pyav",
                  [got[i][1] for i in indices])


# --------------------------------------------------------------------------- the interface

def read_frames(path, frames_per_video: int = 25, rate: float | None = None, max_side: int = 1920,
                consecutive: bool = False, *, decoder: str = "auto", seek: bool | None = None) -> Frames:
    """Sampled frames of the video at ``path`` (see :func:`sample_indices`).

    ``decoder``: ``"auto"`` (PyAV, OpenCV for files PyAV cannot open), ``"pyav"`` or ``"opencv"``.
    ``seek`` (PyAV): None decides per video from its key-frame index whether to jump to the start
    point before each sampled frame or decode through; True always jumps (seeking in the file);
    False decodes in order from the first frame. The frames are the same either way.

    Raises :class:`VideoError` for a file that is missing, empty, not a plain media file, not a
    video, in a codec this build cannot decode, or that yields no frame at all.
    """
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
    path = check_file(path)
    if decoder == "opencv":
        return _read_opencv(path, frames_per_video, rate, max_side, consecutive)
    try:
        return _read_pyav(path, frames_per_video, rate, max_side, consecutive, seek)
    except CannotOpen:
        if decoder == "pyav":
            raise VideoError(path, NOT_A_VIDEO) from None
    return _read_opencv(path, frames_per_video, rate, max_side, consecutive, probed=True)


def video_info(path) -> VideoInfo:
    """Width, height (display rotation applied), frame rate and reported frame count of a video."""
    path = check_file(path)
    try:
        with opened(path) as (container, stream):
            first = next(iter_decoded(container, stream, path), None)
            return _info(container, stream, _fps(stream), rotation_turns(first) if first is not None else 0)
    except CannotOpen:
        pass
    cap = open_video(path, probed=True)
    try:
        return _opencv_info(cap)
    finally:
        cap.release()


def iter_frames(path, bgr: bool = False):
    """Every frame of the video at ``path`` in order, as ``(h, w, 3)`` uint8 arrays (RGB, or BGR
    for OpenCV drawing), display rotation applied: a generator, one frame in memory at a time.
    Same decoders and refusals as :func:`read_frames`."""
    path = check_file(path)
    try:
        with opened(path) as (container, stream):
            for frame in iter_decoded(container, stream, path):
                yield to_array(frame, bgr)
        return
    except CannotOpen:
        pass
    import cv2

    cap = open_video(path, probed=True)
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            yield frame if bgr else cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
