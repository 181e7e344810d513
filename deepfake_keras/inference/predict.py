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
  :data:`.annotate.GRADCAM_FRAMES` most fake-looking faces, the crop beside its Grad-CAM
  overlay (the mean of the bags' heat maps of the fake logit,
  :mod:`deepfake_keras.explain.gradcam`). Triplet bundles have none: their
  score comes from an embedding, not from a map over the face.

A video that cannot be read or shows no face gets its JSON only (with the
error), no annotated video. Every write is atomic. A bad input (missing,
unreadable, no face) is reported on its own and the others are still scored.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..io import printable, write_atomic
from .annotate import VIDEO_MAX_SIDE, annotate_video, write_gradcam

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
    from ..data.datasets import VIDEO_EXTENSIONS

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

def _base_report(shown: str, stem: str, bundle) -> dict:
    from .. import __version__

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
    from ..data.extract import extract_video
    from ..data.video import VideoError

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
    report.update(bundle.video_decision(scores, per_bag))

    if out_dir is not None:
        out_dir = Path(out_dir)
        if gradcam:
            t = time.perf_counter()
            try:
                written = write_gradcam(bundle, faces, report["frames"], out_dir / f"{stem}.gradcam")
                if written:
                    report["outputs"]["gradcam"] = written
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
        name = f"{report['name']}.json"
        report["outputs"]["json"] = name
        write_atomic(Path(out_dir) / name, (json.dumps(report, indent=2) + "\n").encode())
    return report


def ok(report: dict) -> bool:
    """A report whose video was scored and whose outputs were all written."""
    return report["status"] == STATUS_SCORED and not report.get("errors")


# --------------------------------------------------------------------------- many videos

_DETECTORS: dict = {}


def detector_for(config):
    """A :class:`~deepfake_keras.data.faces.FaceDetector` for ``config``'s detect_size and min_face
    (one per process and setting: building MTCNN costs seconds)."""
    from ..data.faces import FaceDetector

    key = (config.detect_size, config.min_face)
    if key not in _DETECTORS:
        _DETECTORS[key] = FaceDetector(config.detect_size, config.min_face)
    return _DETECTORS[key]


def preload(bundle):
    """Load what scoring with ``bundle`` needs up front (the face detector, and FaceNet for triplet
    bundles), so that no video's timing holds it; returns the detector (:func:`detector_for`)."""
    detector = detector_for(bundle.extract_config)
    bundle.preload()
    return detector


def predict(inputs, bundle, out=None, video: bool = True, gradcam: bool = True,
            video_max_side: int = VIDEO_MAX_SIDE, progress: bool = True, on_result=None) -> tuple:
    """Score every video of ``inputs`` (files and folders, :func:`find_videos`) with ``bundle``
    (a loaded :class:`~deepfake_keras.inference.base.Bundle` or a bundle folder).

    Writes each video's outputs into ``out`` (:func:`output_dir`; None: a new
    ``predictions/<timestamp>``). ``on_result(report)`` is called after each video.
    Returns ``(out_dir, reports)``, one report per input video, in order; inputs that do not
    exist are reported as failed too.
    """
    from tqdm.auto import tqdm

    from .base import Bundle
    from .bundle import load_bundle

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
