"""Score videos with a trained model bundle: ``deepfake-keras predict INPUT... --model BUNDLE``.

For each video: faces are extracted exactly as for training (the bundle's
:class:`~deepfake_keras.config.ExtractConfig`, through
:func:`deepfake_keras.data.extract.extract_video`: the same sampled frames,
MTCNN settings, largest face, crop margin and size), each face gets P(fake)
from the bundle's model, the frame scores become one video score (the
bundle's aggregation, the paper's mean) and a verdict (``fake`` when the video
score is at least the bundle's threshold; for Xception bundles the majority
vote of the bags, as in training). A video in which no sampled frame shows a
face gets the verdict ``"no face found"``, never real or fake.

Outputs, in ``--out`` (default ``predictions/<timestamp>/``; nothing existing
is overwritten: a name already taken gets ``-2``, ``-3``...):

- ``<video>.json``: per sampled frame with a face, its index, time, box
  (``x1 y1 x2 y2`` in the video's pixels), MTCNN confidence and score (and
  each bag's probability for Xception bundles); the video score, verdict,
  threshold, aggregation, faces found, frames sampled, which frames were
  sampled, the model, the extraction settings, timings, and the error of a
  video that failed.
- ``<video>.annotated.mp4`` (H.264): every frame of the input (decoded in
  order, as many as decode), each face boxed and coloured by its score (green
  0, yellow 0.5, red 1), with the verdict in a banner. Faces are detected on
  the sampled frames only; each frame in between shows the box of the
  *nearest sampled frame* (the earlier one on a tie) in a thin line, the
  sampled frames themselves a thick line with the score, and no box where
  that nearest sampled frame had no face. So the box is always the one of a
  frame at most half a sampling step away, and the video does not blink.
  Frames larger than ``video_max_side`` (default 1280 pixels on the longer
  side) are shrunk, which keeps writing fast and the file small; the JSON
  boxes stay in the video's own pixels. No audio.
- ``<video>.gradcam/frame_NNNNNN.png`` (Xception bundles): for the
  :data:`GRADCAM_FRAMES` most fake-looking faces, the crop beside its Grad-CAM
  overlay (the mean of the bags' heat maps of the fake logit,
  :mod:`deepfake_keras.explain.gradcam`). Triplet bundles have none: their
  score comes from an embedding, not from a map over the face.

A video that cannot be read or shows no face gets its JSON only (with the
error), no annotated video. Every write is atomic. A bad input (missing,
unreadable, no face) is reported on its own and the others are still scored.
"""
from __future__ import annotations

import bisect
import json
import os
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from .runs import log, printable

GRADCAM_FRAMES = 3
VIDEO_MAX_SIDE = 1280
DEFAULT_OUT = "predictions"
VERDICT_NO_FACE = "no face found"
STATUS_SCORED, STATUS_NO_FACE, STATUS_FAILED = "scored", "no face found", "failed"


# --------------------------------------------------------------------------- inputs and outputs

def find_videos(inputs) -> list:
    """``[(shown, path or None, problem or None)]`` for each video of ``inputs`` (files or folders).

    A folder gives its video files (by extension, recursively, sorted); a folder without any
    and a path that does not exist give one entry with the problem. A file is taken as given,
    whatever its extension (a file that is not a video fails when it is read).
    """
    from .data.datasets import VIDEO_EXTENSIONS

    out = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            videos = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
            if not videos:
                out.append((printable(item), None, f"no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) "
                                                    f"in this folder"))
            out.extend((printable(p), p, None) for p in videos)
        elif path.exists():
            out.append((printable(item), path, None))
        else:
            out.append((printable(item), None, "file not found"))
    return out


def output_dir(out=None) -> Path:
    """``out`` (created if needed), or a new ``predictions/<timestamp>`` folder (``-2``... if taken)."""
    if out:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise ValueError(f"--out {path} is a file; give a folder")
        path.mkdir(parents=True, exist_ok=True)
        return path
    base = Path(DEFAULT_OUT) / time.strftime("%Y%m%d-%H%M%S")
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    path.mkdir(parents=True)
    return path


def _outputs(stem: str) -> tuple:
    return f"{stem}.json", f"{stem}.annotated.mp4", f"{stem}.gradcam"


def unique_stem(out_dir: Path, stem: str, taken: set) -> str:
    """``stem``, or ``stem-2``, ``stem-3``... so that no output of it exists in ``out_dir`` or is
    taken by another input of this run."""
    candidate, k = stem, 1
    while candidate in taken or any((out_dir / name).exists() for name in _outputs(candidate)):
        k += 1
        candidate = f"{stem}-{k}"
    taken.add(candidate)
    return candidate


# --------------------------------------------------------------------------- scoring

def video_decision(bundle, scores, per_bag=None) -> dict:
    """The video score and verdict from its frame scores (see the module docstring).

    Returns ``video_score`` (the bundle's aggregation of ``scores``), ``verdict``
    (``"fake"``/``"real"``) and, for a vote of bags, ``votes_fake`` and ``n_bags``.
    """
    import pandas as pd

    from .evaluation import AGGREGATIONS
    from .training import aggregate_bags

    scores = np.asarray(scores, dtype=float)
    score = AGGREGATIONS[bundle.aggregation](pd.Series(scores), bundle.threshold)
    out = {"video_score": float(score)}
    if bundle.decision == "vote" and per_bag is not None:
        bag_scores = np.array([[AGGREGATIONS[bundle.aggregation](pd.Series(col), bundle.threshold)
                                for col in np.asarray(per_bag).T]])
        vote, _ = aggregate_bags(bag_scores, bundle.threshold)
        out.update(verdict="fake" if int(vote[0]) else "real", votes_fake=int((bag_scores >= bundle.threshold).sum()),
                   n_bags=int(bag_scores.shape[1]), bag_video_scores=[float(v) for v in bag_scores[0]])
    else:
        out["verdict"] = "fake" if score >= bundle.threshold else "real"
    return out


def _base_report(shown: str, stem: str, bundle) -> dict:
    from . import __version__

    meta = bundle.meta
    return {"input": shown, "name": stem, "status": None, "verdict": None, "video_score": None,
            "threshold": bundle.threshold, "aggregation": bundle.aggregation, "decision": bundle.decision,
            "faces_found": 0, "frames_sampled": 0, "sampled_frames": [], "frames": [], "video": {},
            "model": {"bundle": printable(bundle.path), "kind": bundle.kind, "created": meta.get("created"),
                      "source": meta.get("source", {})},
            "extract": bundle.extract_config.to_dict(), "timings": {}, "outputs": {}, "error": None,
            "deepfake_keras": __version__}


def predict_video(path, bundle, detector, out_dir=None, stem: str | None = None, shown: str | None = None,
                  video: bool = True, gradcam: bool = True, video_max_side: int = VIDEO_MAX_SIDE) -> dict:
    """Score one video with a loaded bundle; returns its report (the JSON, as a dict).

    ``detector``: a :class:`~deepfake_keras.data.faces.FaceDetector` made with the bundle's
    ``detect_size`` and ``min_face`` (:func:`detector_for`). With ``out_dir``, writes
    ``<stem>.json``, the annotated video (``video``) and Grad-CAM PNGs (``gradcam``, Xception
    bundles) there. Never raises for a bad video: its report has ``status`` ``"failed"`` and the
    ``error``, or ``"no face found"``.
    """
    from .data.extract import extract_video
    from .data.video import VideoError

    path = Path(path)
    stem = stem or path.stem
    report = _base_report(shown or printable(path), stem, bundle)
    started = time.perf_counter()
    try:
        crops, rows, info = extract_video(path, detector, bundle.extract_config)
    except VideoError as e:
        return _finish(report, out_dir, started, STATUS_FAILED, error=e.problem)
    except Exception as e:  # whatever else a strange file raises: this input fails, the others go on
        return _finish(report, out_dir, started, STATUS_FAILED, error=f"{type(e).__name__}: {e}")
    report["timings"]["extract_s"] = round(time.perf_counter() - started, 3)
    fps = float(info["fps"])
    report["video"] = {k: info[k] for k in ("width", "height", "fps", "reported_frames")}
    report["frames_sampled"] = info["frames_sampled"]
    report["sampled_frames"] = info["sampled_frames"]
    report["faces_found"] = len(rows)
    if not rows:
        return _finish(report, out_dir, started, STATUS_NO_FACE,
                       error=f"no face found in {info['frames_sampled']} sampled frame(s)")

    t = time.perf_counter()
    faces = [crop for _, crop in crops]
    try:
        scores, per_bag = bundle.score_faces(faces)
    except Exception as e:  # e.g. out of memory: this input fails, the others go on
        return _finish(report, out_dir, started, STATUS_FAILED, error=f"scoring failed: {type(e).__name__}: {e}")
    report["timings"]["score_s"] = round(time.perf_counter() - t, 3)
    for k, row in enumerate(rows):
        frame = {"frame": int(row["frame"]), "time_s": round(row["frame"] / fps, 3) if fps > 0 else None,
                 "box": [float(row[c]) for c in ("x1", "y1", "x2", "y2")],
                 "confidence": round(float(row["confidence"]), 5), "score": float(scores[k])}
        if per_bag is not None:
            frame["bag_scores"] = [float(v) for v in per_bag[k]]
        report["frames"].append(frame)
    report.update(video_decision(bundle, scores, per_bag))

    if out_dir is not None:
        out_dir = Path(out_dir)
        if gradcam and bundle.kind == "xception":
            t = time.perf_counter()
            try:
                report["outputs"]["gradcam"] = write_gradcam(bundle, faces, report["frames"], out_dir / f"{stem}.gradcam")
            except Exception as e:
                report.setdefault("errors", []).append(f"Grad-CAM failed: {type(e).__name__}: {e}")
            report["timings"]["gradcam_s"] = round(time.perf_counter() - t, 3)
        if video:
            t = time.perf_counter()
            try:
                written = annotate_video(path, out_dir / f"{stem}.annotated.mp4", report, max_side=video_max_side)
                report["outputs"]["annotated_video"] = f"{stem}.annotated.mp4"
                report["annotated_frames"] = written["frames"]
            except Exception as e:
                report.setdefault("errors", []).append(f"annotated video failed: {type(e).__name__}: {e}")
            report["timings"]["annotate_s"] = round(time.perf_counter() - t, 3)
    return _finish(report, out_dir, started, STATUS_SCORED)


def _finish(report: dict, out_dir, started: float, status: str, error: str | None = None) -> dict:
    report["status"] = status
    if status == STATUS_NO_FACE:
        report["verdict"] = VERDICT_NO_FACE
    if error:
        report["error"] = error
    report["timings"]["total_s"] = round(time.perf_counter() - started, 3)
    if out_dir is not None:
        from .data.store import write_atomic

        name = f"{report['name']}.json"
        report["outputs"]["json"] = name
        write_atomic(Path(out_dir) / name, (json.dumps(report, indent=2) + "\n").encode())
    return report


def ok(report: dict) -> bool:
    """A report whose video was scored and whose outputs were all written."""
    return report["status"] == STATUS_SCORED and not report.get("errors")


# --------------------------------------------------------------------------- annotated video

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


def _banner(report: dict) -> tuple:
    verdict = report.get("verdict") or report["status"]
    if report.get("video_score") is None:
        return verdict.upper(), (128, 128, 128)
    text = f"{verdict.upper()}  video score {report['video_score']:.2f} (threshold {report['threshold']:.2f})"
    if "votes_fake" in report:
        text += f", {report['votes_fake']}/{report['n_bags']} bags say fake"
    return text, score_colour(report["video_score"])


def annotate_video(path, out_path, report: dict, max_side: int = VIDEO_MAX_SIDE) -> dict:
    """Write the annotated copy of the video at ``path`` to ``out_path`` (see the module docstring).

    ``report`` is the video's report (``frames`` with boxes and scores, ``sampled_frames``,
    verdict). Every frame that decodes is written, in order, at the input's frame rate (25 if
    unknown), shrunk to ``max_side`` pixels on its longer side if larger (0: never) and padded
    by one black row or column where a side is odd (H.264 in yuv420p needs even sides).
    Written under a temporary name and renamed. Returns ``{"frames", "width", "height", "fps"}``.
    """
    import cv2
    import imageio_ffmpeg

    from .data.video import _open

    out_path = Path(out_path)
    faces = {f["frame"]: f for f in report["frames"]}
    sampled = sorted(report.get("sampled_frames") or faces)
    fps = float(report.get("video", {}).get("fps") or 0) or 25.0
    banner, banner_colour = _banner(report)
    tmp = out_path.with_name(f".{out_path.stem}.{uuid.uuid4().hex[:8]}.tmp.mp4")
    cap = _open(path)
    writer = None
    n = 0
    try:
        while True:
            ok_, frame = cap.read()
            if not ok_ or frame is None:
                break
            h, w = frame.shape[:2]
            scale = min(1.0, max_side / max(h, w)) if max_side else 1.0
            if scale < 1.0:
                frame = cv2.resize(frame, (max(2, round(w * scale)), max(2, round(h * scale))),
                                   interpolation=cv2.INTER_AREA)
            if frame.shape[0] % 2 or frame.shape[1] % 2:
                frame = cv2.copyMakeBorder(frame, 0, frame.shape[0] % 2, 0, frame.shape[1] % 2, cv2.BORDER_CONSTANT)
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = imageio_ffmpeg.write_frames(
                    str(tmp), size, pix_fmt_in="bgr24", fps=fps, codec="libx264", quality=None,
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
        cap.release()
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


# --------------------------------------------------------------------------- Grad-CAM

def write_gradcam(bundle, faces: list, frames: list, folder, count: int = GRADCAM_FRAMES) -> list:
    """Grad-CAM PNGs of the ``count`` highest-scoring faces into ``folder`` (Xception bundles).

    Each PNG is the face crop beside its overlay with the mean of the bags' heat maps (fake
    logit, :func:`deepfake_keras.explain.gradcam.gradcam`), captioned with the frame and
    its score. Returns the file names relative to ``folder``'s parent, most fake-looking first.
    """
    import cv2

    from .data.store import write_atomic
    from .explain.gradcam import face_inputs, gradcam, overlay

    folder = Path(folder)
    order = sorted(range(len(frames)), key=lambda k: -frames[k]["score"])[:count]
    if not order:
        return []
    picked, x = face_inputs(bundle.bags[0], np.stack([faces[k] for k in order]))  # the bags share one input size
    heats = np.mean([gradcam(model, x) for model in bundle.bags], axis=0)
    names = []
    for k, face, heat in zip(order, picked, heats):
        image = np.concatenate([face, overlay(face, heat)], axis=1)
        strip = np.zeros((max(18, image.shape[0] // 12), image.shape[1], 3), np.uint8)
        cv2.putText(strip, f"frame {frames[k]['frame']}  P(fake) {frames[k]['score']:.3f}",
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


# --------------------------------------------------------------------------- many videos

_DETECTORS: dict = {}


def detector_for(config):
    """A :class:`~deepfake_keras.data.faces.FaceDetector` for ``config``'s detect_size and min_face
    (one per process and setting: building MTCNN costs seconds)."""
    from .data.faces import FaceDetector

    key = (config.detect_size, config.min_face)
    if key not in _DETECTORS:
        _DETECTORS[key] = FaceDetector(config.detect_size, config.min_face)
    return _DETECTORS[key]


def preload(bundle):
    """Load what scoring with ``bundle`` needs up front (the face detector, and FaceNet for triplet
    bundles), so that no video's timing holds it; returns the detector (:func:`detector_for`)."""
    detector = detector_for(bundle.extract_config)
    if bundle.kind == "triplet":
        bundle.facenet()
    return detector


def predict(inputs, bundle, out=None, video: bool = True, gradcam: bool = True,
            video_max_side: int = VIDEO_MAX_SIDE, progress: bool = True, on_result=None) -> tuple:
    """Score every video of ``inputs`` (files and folders, :func:`find_videos`) with ``bundle``
    (a loaded :class:`~deepfake_keras.bundle.Bundle` or a bundle folder).

    Writes each video's outputs into ``out`` (:func:`output_dir`; None: a new
    ``predictions/<timestamp>``). ``on_result(report)`` is called after each video.
    Returns ``(out_dir, reports)``, one report per input video, in order; inputs that do not
    exist are reported as failed too.
    """
    from tqdm.auto import tqdm

    from .bundle import Bundle, load_bundle

    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    found = find_videos(inputs)
    out_dir = output_dir(out)
    detector = None
    if any(p is not None for _, p, _ in found):  # load the models now, so that no video's timing holds it
        detector = preload(bundle)
    taken, reports = set(), []
    for shown, path, problem in tqdm(found, desc="predict", unit="video", disable=not progress):
        stem = unique_stem(out_dir, (path if path is not None else Path(shown)).stem or "input", taken)
        if problem is not None:
            report = _finish(_base_report(shown, stem, bundle), out_dir, time.perf_counter(), STATUS_FAILED,
                             error=problem)
        else:
            report = predict_video(path, bundle, detector, out_dir, stem=stem, shown=shown, video=video,
                                   gradcam=gradcam, video_max_side=video_max_side)
        reports.append(report)
        if on_result is not None:
            on_result(report)
    return out_dir, reports


def summary_table(reports: list) -> str:
    """A plain-text table of the reports: video, verdict, score, faces, seconds, JSON file."""
    rows = [("video", "verdict", "score", "faces", "seconds", "report")]
    for r in reports:
        verdict = r["verdict"] if r["status"] != STATUS_FAILED else "FAILED"
        if r.get("errors"):
            verdict += " (outputs incomplete)"
        rows.append((r["input"], verdict, "" if r["video_score"] is None else f"{r['video_score']:.3f}",
                     f"{r['faces_found']}/{r['frames_sampled']}", f"{r['timings'].get('total_s', 0):.1f}",
                     r["outputs"].get("json", "")))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    n = len(reports)
    scored = [r for r in reports if r["status"] == STATUS_SCORED]
    fake = sum(r["verdict"] == "fake" for r in scored)
    lines.append(f"{n} video(s): {len(scored)} scored ({fake} fake, {len(scored) - fake} real), "
                 f"{sum(r['status'] == STATUS_NO_FACE for r in reports)} with no face found, "
                 f"{sum(r['status'] == STATUS_FAILED for r in reports)} failed")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line

def add_arguments(p) -> None:
    """Arguments of ``deepfake-keras predict``."""
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video files and/or folders of videos")
    p.add_argument("--model", required=True, metavar="BUNDLE",
                   help="a model bundle folder (an experiment writes one to <run_dir>/bundle)")
    p.add_argument("--out", help=f"folder for the outputs (default {DEFAULT_OUT}/<timestamp>); existing files are "
                                 f"never overwritten")
    p.add_argument("--json", action="store_true", help="print the reports as JSON on stdout instead of the table")
    p.add_argument("--no-video", action="store_true", help="do not write the annotated videos")
    p.add_argument("--no-gradcam", action="store_true", help="do not write Grad-CAM overlays (Xception bundles)")
    p.add_argument("--video-max-side", type=int, default=VIDEO_MAX_SIDE,
                   help=f"shrink annotated videos to this many pixels on the longer side (default {VIDEO_MAX_SIDE}; "
                        f"0 keeps the input's size)")
    p.add_argument("--facenet", metavar="PATH",
                   help="the FaceNet weights file of a bundle trained on one that is not in the registry "
                        "(checked against the bundle's sha256)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_cli(args) -> int:
    """Run ``deepfake-keras predict``; exit status 0 all scored, 1 some input failed or had no face
    (each reported), 2 the bundle cannot be used (raised as :class:`~deepfake_keras.bundle.BundleError`,
    a ValueError, before anything is written)."""
    from .bundle import load_bundle

    if args.video_max_side < 0:
        raise ValueError(f"--video-max-side must be >= 0, got {args.video_max_side}")
    bundle = load_bundle(args.model, facenet_file=args.facenet)
    log(f"model: {bundle.kind} bundle {printable(bundle.path)} (threshold {bundle.threshold:g}, "
         f"{bundle.extract_config.frames_per_video} frames per video)")

    def say(report):
        if report["status"] != STATUS_SCORED or report.get("errors"):
            problem = report["error"] or "; ".join(report.get("errors", []))
            print(f"deepfake-keras predict: {report['input']}: {report['status']}: {problem}", file=sys.stderr,
                  flush=True)

    out_dir, reports = predict(args.inputs, bundle, args.out, video=not args.no_video, gradcam=not args.no_gradcam,
                               video_max_side=args.video_max_side, progress=not (args.quiet or args.json),
                               on_result=say)
    if args.json:
        print(json.dumps({"out": printable(out_dir), "videos": reports}, indent=2))
    else:
        print(summary_table(reports))
        print(f"outputs: {printable(out_dir)}")
    return 0 if reports and all(ok(r) for r in reports) else 1
