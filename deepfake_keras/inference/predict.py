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
- ``<video>.annotated.mp4`` (H.264): every frame of the input, each face boxed
  in its score's colour (green 0, yellow 0.5, red 1; between sampled frames the
  box of the nearest one, in a thin line), the verdict in a banner, shrunk to
  ``video_max_side`` pixels; no audio (:func:`.annotate.annotate_video`).
- ``<video>.gradcam/frame_NNNNNN.png`` (Xception bundles): for the
  :data:`.annotate.GRADCAM_FRAMES` most fake-looking faces, the crop beside its Grad-CAM
  overlay (the mean of the bags' heat maps of the fake logit,
  :mod:`deepfake_keras.explain.gradcam`). Triplet bundles have none: their
  score comes from an embedding, not from a map over the face.

A video that cannot be read or shows no face gets its JSON only (with the
error), no annotated video. A bad input (missing, unreadable, not a regular
file, no face) is reported on its own and the others are still scored; so is an
output that cannot be written (a full disk, a read-only folder): each output is
written under a temporary name and moved to its final name only when complete,
so no partial file ever has a final name, and nothing existing is replaced.

Output names are the input's name without its extension; a name longer than
:data:`MAX_STEM_BYTES` bytes is cut, and the first 8 hex digits of the sha256 of
the whole name are added (``<prefix>~<hash>``), so that every output name fits
the file system. Walking an input folder skips the output folder and earlier
outputs of predict (a ``<name>.annotated.mp4`` beside its ``<name>.json``).
"""
from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import shutil
import stat
import time
import uuid
from pathlib import Path

from ..io import about, printable
from .annotate import VIDEO_MAX_SIDE, annotate_video, write_gradcam
from .schema import file_kind

DEFAULT_OUT = "predictions"
VERDICT_NO_FACE = "no face found"
STATUS_SCORED, STATUS_NO_FACE, STATUS_FAILED = "scored", "no face found", "failed"
#: output names (before ``.json``, ``.annotated.mp4``...) are cut to this many bytes: file names may have
#: 255, and temporary names add up to 40 to it
MAX_STEM_BYTES = 160
ANNOTATED_SUFFIX = ".annotated.mp4"


# --------------------------------------------------------------------------- inputs

def input_problem(path) -> str | None:
    """Why ``path`` cannot be read as a video file, found with ``stat`` alone (nothing is opened, so a
    FIFO never blocks): ``"file not found"``, a dangling symbolic link, a link loop, ``"a folder"``, not a
    regular file (a FIFO, a device...); None for a regular file (or a symbolic link to one)."""
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop (too many levels of symbolic links)"
        if e.errno != errno.ENOENT:
            return f"cannot be read ({e.strerror})"
        if not os.path.islink(path):
            return "file not found"
        try:
            target = printable(os.readlink(path))
        except OSError:
            target = "?"
        return f"dangling symbolic link (to {target}, which does not exist)"
    if stat.S_ISDIR(st.st_mode):
        return "a folder"
    return None if stat.S_ISREG(st.st_mode) else f"not a regular file ({file_kind(st.st_mode)})"


def is_prediction_output(path: Path) -> bool:
    """A ``<name>.annotated.mp4`` written by predict (its ``<name>.json`` report is beside it)."""
    name = path.name
    return name.endswith(ANNOTATED_SUFFIX) and (path.parent / f"{name[:-len(ANNOTATED_SUFFIX)]}.json").is_file()


def _walk(folder: Path, skip: list, extensions) -> list:
    """``[(path, problem)]`` of the video files under ``folder`` (by extension, sorted), skipping the
    folders in ``skip`` and predict's own outputs; an entry that cannot be read and a folder that
    cannot be listed are listed with their problem."""
    found, stack = [], [folder]
    while stack:
        here = stack.pop()
        try:
            with os.scandir(here) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            found.append((here, f"cannot list this folder ({e.strerror})"))
            continue
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if not any(path.resolve() == s for s in skip):
                    subfolders.append(path)
            elif path.suffix.lower() in extensions and not is_prediction_output(path):
                found.append((path, input_problem(path)))
        stack.extend(reversed(subfolders))
    return sorted(found, key=lambda item: str(item[0]))


def find_videos(inputs, skip=()) -> list:
    """``[(shown, path or None, problem or None)]`` for each video of ``inputs`` (files or folders).

    A folder gives its video files (by extension, recursively, sorted; not following links to
    folders), without the folders in ``skip`` (the output folder) nor predict's own outputs
    (:func:`is_prediction_output`); a folder without any gives one entry with the problem. A file is
    taken as given, whatever its extension (a file that is not a video fails when it is read); one
    that is missing, not a regular file (a FIFO, a device...), a dangling link or a link loop gives
    one entry with its problem (:func:`input_problem`), and is never opened.
    """
    from ..data.datasets import VIDEO_EXTENSIONS

    skip = [Path(s).resolve() for s in skip]
    out = []
    for item in inputs:
        path = Path(item)
        problem = input_problem(path)
        if problem == "a folder":
            videos = _walk(path, skip, VIDEO_EXTENSIONS)
            if not videos:
                out.append((printable(item), None, f"no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) "
                                                    f"in this folder"))
            out.extend((printable(p), None if why else p, why) for p, why in videos)
        else:
            out.append((printable(item), None if problem else path, problem))
    return out


# --------------------------------------------------------------------------- outputs

def output_dir(out=None) -> Path:
    """``out`` (created if needed), or a new ``predictions/<timestamp>`` folder (``-2``... if taken),
    checked to be writable (a file is made and removed). ValueError, one line, where it cannot be made or
    written to (a read-only file system, a path through a file...)."""
    base = Path(out) if out else Path(DEFAULT_OUT) / time.strftime("%Y%m%d-%H%M%S")
    path, k = base, 1
    while not out and os.path.lexists(path):
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    name = f"output folder {printable(path)}"
    if path.exists() and not path.is_dir():
        raise about(ValueError(f"{name} is a file; give a folder"), "out")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".deepfake-keras-write-test-{uuid.uuid4().hex[:8]}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as e:
        parent = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        why = f"{printable(parent)} is a file, not a folder" if parent is not None else e.strerror or str(e)
        raise about(ValueError(f"{name}: cannot write there ({why})"), "out") from None
    return path


def _outputs(stem: str) -> tuple:
    return f"{stem}.json", f"{stem}{ANNOTATED_SUFFIX}", f"{stem}.gradcam"


def output_stem(path) -> str:
    """The name of a video's outputs: its file name without the extension, or where that is longer than
    :data:`MAX_STEM_BYTES` bytes (UTF-8), a prefix of it, ``~`` and 8 hex digits of the sha256 of the
    whole file name, so that two long names never share outputs by chance."""
    path = Path(path)
    stem = path.stem or "input"
    raw = os.fsencode(stem)
    if len(raw) <= MAX_STEM_BYTES:
        return stem
    digest = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:8]
    prefix = raw[:MAX_STEM_BYTES - 9]
    while prefix:  # do not cut a UTF-8 character in two
        try:
            prefix.decode("utf-8")
            break
        except UnicodeDecodeError as e:
            if e.start < len(prefix) - 4:  # not UTF-8 anyway (bytes kept as surrogates): cut anywhere
                break
            prefix = prefix[:e.start]
    return f"{os.fsdecode(prefix)}~{digest}"


def unique_stem(out_dir: Path, stem: str, taken: set) -> str:
    """``stem``, or ``stem-2``, ``stem-3``... so that no output of it exists in ``out_dir`` or is
    taken by another input of this run."""
    candidate, k = stem, 1
    while candidate in taken or any(os.path.lexists(out_dir / name) for name in _outputs(candidate)):
        k += 1
        candidate = f"{stem}-{k}"
    taken.add(candidate)
    return candidate


def _temp_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.part{final.suffix}")


def publish(tmp: Path, final: Path) -> Path:
    """Move the complete file or folder ``tmp`` to ``final``, never over anything (FileExistsError if
    ``final`` exists): a hard link then unlink for a file (atomic and exclusive), a rename for a folder
    or where links are not supported."""
    try:
        os.link(tmp, final, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError:  # a folder, or a file system without hard links
        if os.path.lexists(final):
            raise FileExistsError(errno.EEXIST, "exists", str(final)) from None
        os.rename(tmp, final)
        return final
    os.unlink(tmp)
    return final


def _remove(path: Path) -> None:
    """Remove a temporary output of ours (a file or a folder), if it is there."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            path.unlink()
    except OSError:
        pass


def write_new(path, data: bytes) -> Path:
    """Write ``data`` to ``path``, a name that must not exist, through a temporary file beside it moved
    into place only when complete (:func:`publish`). On any error (disk full, read-only, name taken)
    the temporary file is removed and the error raised: nothing is left under the final name."""
    path = Path(path)
    tmp = _temp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return publish(tmp, path)
    finally:
        _remove(tmp)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _not_written(what: str, name: str, e: BaseException) -> str:
    """One line: why an output was not written."""
    if isinstance(e, OSError) and e.errno is not None:
        return f"{what} not written ({name}: {os.strerror(e.errno)})"
    return _one_line(f"{what} failed: {type(e).__name__}: {e}")


# --------------------------------------------------------------------------- scoring

def _base_report(shown: str, stem: str, bundle) -> dict:
    from .. import __version__
    from .base import source_summary

    meta = bundle.meta
    return {"input": shown, "name": stem, "status": None, "verdict": None, "video_score": None,
            "threshold": bundle.threshold, "threshold_source": bundle.threshold_source,
            "demo_model": bundle.demo_model, "aggregation": bundle.aggregation, "decision": bundle.decision,
            "faces_found": 0, "frames_sampled": 0, "sampled_frames": [], "frames": [], "video": {},
            "model": {"bundle": printable(bundle.path), "kind": bundle.kind, "created": meta.get("created"),
                      "source": source_summary(meta)},
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
    stem = stem or output_stem(path)
    report = _base_report(shown or printable(path), stem, bundle)
    started = time.perf_counter()
    try:
        crops, rows, info = extract_video(path, detector, bundle.extract_config)
    except VideoError as e:
        return _finish(report, out_dir, started, STATUS_FAILED, error=e.problem)
    except Exception as e:  # whatever else a strange file raises: this input fails, the others go on
        return _finish(report, out_dir, started, STATUS_FAILED, error=f"{type(e).__name__}: {e}")
    report["timings"]["extract_s"] = round(time.perf_counter() - started, 3)
    report["video"] = {k: info[k] for k in ("width", "height", "fps", "reported_frames", "decoder")}
    times = dict(zip(info["sampled_frames"], info["sampled_times"]))  # the file's own timestamps (variable rate)
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
        time_s = times.get(int(row["frame"]))  # None only where the file gives no rate at all
        frame = {"frame": int(row["frame"]), "time_s": None if time_s is None else round(float(time_s), 3),
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
            written = _write_output(report, "Grad-CAM", out_dir / f"{stem}.gradcam",
                                    lambda tmp: write_gradcam(bundle, faces, report["frames"], tmp))
            if written:
                report["outputs"]["gradcam"] = [f"{stem}.gradcam/{name.split('/', 1)[1]}" for name in written]
            report["timings"]["gradcam_s"] = round(time.perf_counter() - t, 3)
        if video:
            t = time.perf_counter()
            written = _write_output(report, "annotated video", out_dir / f"{stem}{ANNOTATED_SUFFIX}",
                                    lambda tmp: annotate_video(path, tmp, report, max_side=video_max_side))
            if written is not None:
                report["outputs"]["annotated_video"] = f"{stem}{ANNOTATED_SUFFIX}"
                report["annotated_frames"] = written["frames"]
            report["timings"]["annotate_s"] = round(time.perf_counter() - t, 3)
    return _finish(report, out_dir, started, STATUS_SCORED)


def _write_output(report: dict, what: str, final: Path, write):
    """``write(tmp)`` the output ``final`` under a temporary name beside it, then :func:`publish` it;
    returns what ``write`` returned, or None with the error recorded in ``report["errors"]`` (one line)
    and the temporary output removed, so that no partial output is left under ``final``'s name."""
    tmp = _temp_name(final)
    try:
        result = write(tmp)
        if os.path.lexists(tmp):
            publish(tmp, final)
        return result
    except Exception as e:  # a full disk, a read-only folder, a video that stops decoding...
        report.setdefault("errors", []).append(_not_written(what, final.name, e))
        return None
    finally:
        _remove(tmp)
        for left in final.parent.glob(glob.escape(f".{tmp.stem}.") + "*.tmp*"):  # annotate_video's temporary
            _remove(left)


def _finish(report: dict, out_dir, started: float, status: str, error: str | None = None) -> dict:
    """Set the status (and error), and write the report to ``<name>.json`` in ``out_dir``; a report that
    cannot be written says so in its ``errors`` (the batch goes on)."""
    report["status"] = status
    if status == STATUS_NO_FACE:
        report["verdict"] = VERDICT_NO_FACE
    if error:
        report["error"] = _one_line(error, 1000)
    report["timings"]["total_s"] = round(time.perf_counter() - started, 3)
    if out_dir is not None:
        name = f"{report['name']}.json"
        report["outputs"]["json"] = name
        try:
            write_new(Path(out_dir) / name, (json.dumps(report, indent=2) + "\n").encode())
        except OSError as e:
            del report["outputs"]["json"]
            report.setdefault("errors", []).append(_not_written("report", name, e))
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

    Writes each video's outputs into ``out`` (:func:`output_dir`, ValueError if it cannot be made or
    written; None: a new ``predictions/<timestamp>``). ``on_result(report)`` is called after each
    video. Returns ``(out_dir, reports)``, one report per input video, in order; inputs that cannot
    be read are reported as failed too, and an output that cannot be written is recorded in its
    report's ``errors``: no input stops the batch.
    """
    from tqdm.auto import tqdm

    from .base import Bundle
    from .bundle import load_bundle

    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    out_dir = output_dir(out)
    found = find_videos(inputs, skip=[out_dir])
    detector = None
    if any(p is not None for _, p, _ in found):  # load the models now, so that no video's timing holds it
        detector = preload(bundle)
    taken, reports = set(), []
    for shown, path, problem in tqdm(found, desc="predict", unit="video", disable=not progress):
        started = time.perf_counter()
        stem = output_stem(path if path is not None else Path(shown))
        try:
            stem = unique_stem(out_dir, stem, taken)
            if problem is not None:
                report = _finish(_base_report(shown, stem, bundle), out_dir, started, STATUS_FAILED, error=problem)
            else:
                report = predict_video(path, bundle, detector, out_dir, stem=stem, shown=shown, video=video,
                                       gradcam=gradcam, video_max_side=video_max_side)
        except Exception as e:  # whatever else goes wrong with this input: it fails, the others go on
            report = _finish(_base_report(shown, stem, bundle), out_dir, started, STATUS_FAILED,
                             error=f"{type(e).__name__}: {e}")
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
