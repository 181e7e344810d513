"""What a scored video looks like: the annotated copy (each face boxed in its score's colour, the
verdict in a banner) and Grad-CAM overlays of the most fake-looking faces."""
from __future__ import annotations

import bisect
import os
import uuid
from pathlib import Path

import numpy as np

from ..io import write_atomic

GRADCAM_FRAMES = 3
VIDEO_MAX_SIDE = 1280


def score_colour(score: float) -> tuple:
    """BGR colour of a score: green (0) -> yellow (0.5) -> red (1)."""
    s = float(np.clip(score, 0.0, 1.0))
    return (0, 255, int(round(510 * s))) if s < 0.5 else (0, int(round(510 * (1 - s))), 255)


def nearest_sampled(frame: int, sampled: list):
    """The sampled frame index nearest to ``frame`` (the earlier one on a tie); ``sampled`` sorted."""
    if not sampled:
        return None
    k = bisect.bisect_left(sampled, frame)
    if k == 0:
        return sampled[0]
    if k == len(sampled):
        return sampled[-1]
    before, after = sampled[k - 1], sampled[k]
    return before if frame - before <= after - frame else after


def banner_text(report: dict) -> tuple:
    """``(text, BGR colour)`` of the banner on every frame of a video's annotated copy: the verdict, the video
    score and the threshold (and the bags' vote), the colour of the score; a DEMO model's says first that its
    verdicts mean nothing on real footage."""
    verdict = report.get("verdict") or report["status"]
    if report.get("video_score") is None:
        return verdict.upper(), (128, 128, 128)
    text = f"{verdict.upper()}  video score {report['video_score']:.2f} (threshold {report['threshold']:.2f})"
    if "votes_fake" in report:
        text += f", {report['votes_fake']}/{report['n_bags']} bags say fake"
    if report.get("demo_model"):  # a model of the DEMO data: its verdict means nothing on real footage
        text = f"DEMO MODEL, its verdicts mean nothing on real footage: {text}"
    return text, score_colour(report["video_score"])


def annotate_video(path, out_path, report: dict, max_side: int = VIDEO_MAX_SIDE) -> dict:
    """Write the annotated copy of the video at ``path`` to ``out_path`` (see the module docstring).

    ``report`` is the video's report (``frames`` with boxes and scores, ``sampled_frames``,
    verdict). Every frame that decodes is written, in order, at the input's frame rate (25 if
    unknown), shrunk to ``max_side`` pixels on its longer side if larger (0: never) and padded
    by one black row or column where a side is odd (H.264 in yuv420p needs even sides).
    Written under a temporary name and renamed; ffmpeg is given ``file:<absolute path>``, so that a
    name such as ``x:y.mp4`` is never read as a protocol's URL. Returns
    ``{"frames", "width", "height", "fps"}``.
    The frames are read like the sampled ones (:func:`~deepfake_keras.data.video.iter_frames`:
    same decoder, same frame numbers, only plain local media files); a file that cannot be read
    raises :class:`~deepfake_keras.data.video.VideoError`.
    """
    import cv2
    import imageio_ffmpeg

    from ..data.decode import media_url
    from ..data.video import iter_frames

    out_path = Path(out_path)
    faces = {f["frame"]: f for f in report["frames"]}
    sampled = sorted(report.get("sampled_frames") or faces)
    fps = float(report.get("video", {}).get("fps") or 0) or 25.0
    banner, banner_colour = banner_text(report)
    tmp = out_path.with_name(f".{out_path.stem}.{uuid.uuid4().hex[:8]}.tmp.mp4")
    frames = iter_frames(path, bgr=True)
    writer = None
    n = 0
    try:
        for frame in frames:
            h, w = frame.shape[:2]
            scale = min(1.0, max_side / max(h, w)) if max_side else 1.0
            if scale < 1.0:
                frame = cv2.resize(frame, (max(2, round(w * scale)), max(2, round(h * scale))),
                                   interpolation=cv2.INTER_AREA)
            if frame.shape[0] % 2 or frame.shape[1] % 2:
                frame = cv2.copyMakeBorder(frame, 0, frame.shape[0] % 2, 0, frame.shape[1] % 2, cv2.BORDER_CONSTANT)
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = imageio_ffmpeg.write_frames(  # file:<absolute path>: never read as a protocol's URL
                    media_url(tmp), size, pix_fmt_in="bgr24", fps=fps, codec="libx264", quality=None,
                    macro_block_size=2, ffmpeg_log_level="error",
                    output_params=["-preset", "veryfast", "-crf", "23", "-movflags", "+faststart"])
                writer.send(None)
                banner_unit = _unit(frame)  # every frame written has this size: measure the banner once
                banner_size = cv2.getTextSize(banner, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * banner_unit, banner_unit)
            elif (frame.shape[1], frame.shape[0]) != size:  # a stream whose size changes mid-way
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            _draw(frame, n, faces, sampled, scale, banner, banner_colour, banner_size)
            writer.send(np.ascontiguousarray(frame))
            n += 1
        if writer is None:
            raise ValueError(f"{path}: no frame could be decoded for the annotated video")
        writer.close()
        writer = None
        os.replace(tmp, out_path)
    finally:
        frames.close()
        if writer is not None:
            try:
                writer.close()
            except Exception:
                pass
        if tmp.exists():
            tmp.unlink()
    return {"frames": n, "width": size[0], "height": size[1], "fps": fps}


def _unit(frame) -> int:
    """Line width (and text scale unit) of the drawings on a frame: 1 per 640 pixels of its longer side."""
    return max(1, round(max(frame.shape[:2]) / 640))


def _draw(frame, index: int, faces: dict, sampled: list, scale: float, banner: str, banner_colour,
          banner_size=None) -> None:
    """Draw the box of the nearest sampled frame and the banner on ``frame``; ``banner_size`` is
    ``cv2.getTextSize`` of the banner at this frame's :func:`_unit` (measured here if None)."""
    import cv2

    h, w = frame.shape[:2]
    unit = _unit(frame)
    near = nearest_sampled(index, sampled)
    face = faces.get(near)
    if face is not None:
        x1, y1, x2, y2 = (int(round(v * scale)) for v in face["box"])
        colour = score_colour(face["score"])
        on_sampled = near == index
        cv2.rectangle(frame, (x1, y1), (x2, y2), colour, 3 * unit if on_sampled else unit, cv2.LINE_AA)
        label = f"{face['score']:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * unit, unit)
        ty = y1 - 4 * unit if y1 - th - 6 * unit > 0 else min(h - 2, y2 + th + 4 * unit)
        cv2.rectangle(frame, (x1, ty - th - base), (x1 + tw + 4 * unit, ty + base), colour, -1)
        cv2.putText(frame, label, (x1 + 2 * unit, ty), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * unit, (0, 0, 0), unit,
                    cv2.LINE_AA)
    (tw, th), base = banner_size or cv2.getTextSize(banner, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * unit, unit)
    cv2.rectangle(frame, (0, 0), (min(w, tw + 10 * unit), th + base + 8 * unit), (0, 0, 0), -1)
    cv2.putText(frame, banner, (5 * unit, th + 4 * unit), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * unit, banner_colour, unit,
                cv2.LINE_AA)


def write_gradcam(bundle, faces: list, frames: list, folder, count: int = GRADCAM_FRAMES) -> list:
    """Grad-CAM PNGs of the ``count`` highest-scoring faces into ``folder``, for bundles that have
    heat maps (:meth:`~deepfake_keras.inference.base.Bundle.gradcam`; Xception bundles: the mean of
    the bags' maps of the class the bundle predicts for the face).

    Each PNG is the face crop beside its overlay, captioned with the frame, its score and the class
    the map explains. Returns
    the file names relative to ``folder``'s parent, most fake-looking first (none for a bundle
    without heat maps).
    """
    import cv2

    from ..explain.gradcam import overlay

    folder = Path(folder)
    order = sorted(range(len(frames)), key=lambda k: -frames[k]["score"])[:count]
    picked = [np.asarray(faces[k]) for k in order]
    found = bundle.gradcam(picked, [frames[k]["score"] for k in order]) if picked else None
    if found is None:
        return []
    heats, targets = found
    names = []
    for k, face, heat, target in zip(order, picked, heats, targets):
        image = np.concatenate([face, overlay(face, heat)], axis=1)
        strip = np.zeros((max(18, image.shape[0] // 12), image.shape[1], 3), np.uint8)
        cv2.putText(strip, f"frame {frames[k]['frame']}  P(fake) {frames[k]['score']:.3f}  explains: {target}",
                    (4, strip.shape[0] - 5), cv2.FONT_HERSHEY_SIMPLEX, strip.shape[0] / 36, (255, 255, 255), 1,
                    cv2.LINE_AA)
        image = np.concatenate([strip, image], axis=0)
        ok_, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok_:
            raise OSError(f"could not encode the Grad-CAM of frame {frames[k]['frame']} as PNG")
        name = f"frame_{frames[k]['frame']:06d}.png"
        write_atomic(folder / name, png.tobytes())
        names.append(f"{folder.name}/{name}")
    return names
