"""Speed and agreement of the project's face extractor against the naive MTCNN baseline.

For each clip, in one run and alternating which side goes first from clip to clip:

* decoding the sampled frames: the naive reader (OpenCV, every frame decoded in order from the
  start up to the last sampled one: the package's reader before issue 16) against
  :func:`deepfake_keras.data.video.read_frames` (PyAV, only the packets the sampled frames need);
  whether the two give the same pixels is reported;
* detection only, after both detectors are warmed up on the clip (the first TensorFlow calls on
  new shapes are slow; that is not counted): the baseline, ``MTCNN().detect_faces`` on each
  full-resolution frame of the naive reader (:func:`deepfake_keras.data.faces.detect_naive`),
  against :meth:`FaceDetector.detect` on batches of ``ExtractConfig.batch_size`` of our frames,
  for each ``--detect-size``;
* end to end (decode, detect, crop the largest face): naive reader + baseline + crop against
  :func:`deepfake_keras.data.extract.extract_video`.

Agreement compares the largest face of each frame (``select_largest``):
frames where the baseline found a face and ours did not (misses) and the
reverse (extras), and the IoU of the two boxes. Targets (2 CPU cores, 25 frames of
a 1080p clip): detection at least 10x faster than the baseline (issue 5), end to end
at least 10x (issue 16), recall against the baseline >= 98% (issue 16: 100%),
IoU >= 0.8 on >= 95% of the frames where the baseline found a face (a miss counts as
IoU 0). PASS/FAIL is judged on the 1080p clips; an all-clips line is printed too
when other clips are given.

Then (``--no-long`` skips it) a 10-minute 720p video made here the first time (ffmpeg,
from the real 720p FF++ clips, a key frame every 10 s; kept in the package cache):
25 frames read in order from the start (the naive reader, and PyAV without seeking)
against ours, and extracting its faces end to end; target under 10 s.

    python benchmarks/extract_speed.py                       # default clips, detect size 480
    python benchmarks/extract_speed.py --detect-size 320 400 480 640 --json out.json

Times are wall clock (``time.perf_counter``); with ``--repeat N`` each timing
is the fastest of N (the machine may be shared: the load average is printed
with every clip). Ratios are baseline time / our time, summed over clips for
the overall line.

Throughput mode (``--workers`` and/or ``--scheduler``; nothing above is run): the
whole extraction (:func:`deepfake_keras.data.extract.extract`, process or cluster
start-up included) of the shared clips into a new face store, once per setting,
side by side in one run: ``--workers 1 2`` (worker processes) and
``--scheduler local:2`` (a Dask LocalCluster, needs ``pip install -e .[distributed]``).
It reports videos per minute of wall clock (start-up included), the steady rate
(between the first and the last video finished), CPU seconds per video (this
process and its workers) and the load average before and after each setting.

    python benchmarks/extract_speed.py --workers 1 2 --scheduler local:2
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("DEEPFAKE_KERAS_TEST_DATA", REPO / ".." / "shared" / "data"))
# the 1080p clips of the shared test data (one DFDC clip is 720p), relative to --data
DEFAULT_CLIPS = (
    "dfdc_mini/**/*.mp4",
    "ffpp_mini/manipulated_sequences/Face2Face/c23/videos/750_743.mp4",
    "face_videos/conan_obrien.mp4",
)
# the throughput mode's default clips (when --clips is not given): real FF++ and DFDC clips
THROUGHPUT_CLIPS = (
    "ffpp_mini/**/*.mp4",
    "ffpp_c23_subset/original_sequences/**/*.mp4",
    "dfdc_mini/**/*.mp4",
)
TARGET_SPEEDUP = 10.0
TARGET_E2E_SPEEDUP = 10.0
TARGET_LONG_S = 10.0
TARGET_RECALL = 0.98
TARGET_IOU = 0.8
TARGET_IOU_FRACTION = 0.95


def find_clips(data: Path, patterns) -> list:
    """Clip paths for ``patterns`` (paths or globs, absolute or relative to ``data``); missing ones are reported."""
    clips = []
    for pattern in patterns:
        p = Path(pattern)
        base, rel = (Path(p.anchor), str(p.relative_to(p.anchor))) if p.is_absolute() else (data, pattern)
        if any(c in pattern for c in "*?["):
            found = sorted(base.glob(rel))
            if not found:
                print(f"skipping {pattern}: no file matches under {base}", file=sys.stderr)
            clips.extend(found)
        elif (base / rel).is_file():
            clips.append(base / rel)
        else:
            print(f"skipping {base / rel}: not found", file=sys.stderr)
    seen, unique = set(), []
    for c in clips:
        if c.resolve() not in seen:
            seen.add(c.resolve())
            unique.append(c)
    return unique


def timed(fn, repeat: int):
    """(result of the last call, fastest wall time of ``repeat`` calls)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def all_boxes(faces_per_frame) -> list:
    """Per frame: ``[x1, y1, x2, y2, confidence]`` of every face, largest first."""
    from deepfake_keras.data.faces import box_area

    return [[[round(v, 2) for v in f["box"]] + [round(f["confidence"], 4)]
             for f in sorted(faces, key=lambda f: -box_area(f["box"]))] for faces in faces_per_frame]


def agreement(base: list, ours: list) -> dict:
    """Compare per-frame face lists (``all_boxes``, largest first) of the baseline and ours.

    The target compares the largest faces (a frame where the baseline has a face
    and ours has none counts as IoU 0). ``matched_ok`` is a diagnostic: frames
    where *some* face of ours has IoU >= 0.8 with the baseline's largest face, to
    tell a different choice of largest face (another person, a photo on the
    wall, a false positive) from a box that moved.
    """
    from deepfake_keras.data.faces import iou

    pairs = [(b[0][:4], o[0][:4]) for b, o in zip(base, ours) if b and o]
    both = [iou(b, o) for b, o in pairs]
    n_base = sum(bool(b) for b in base)
    misses = sum(bool(b) and not o for b, o in zip(base, ours))
    extras = sum(not b and bool(o) for b, o in zip(base, ours))
    good = sum(v >= TARGET_IOU for v in both)
    matched = sum(bool(b) and any(iou(b[0][:4], f[:4]) >= TARGET_IOU for f in o) for b, o in zip(base, ours))
    return {
        "frames": len(base), "baseline_faces": n_base, "our_faces": sum(bool(o) for o in ours),
        "misses": misses, "extras": extras,
        "recall": (n_base - misses) / n_base if n_base else 1.0,
        "iou_ok": good, "iou_ok_fraction": good / n_base if n_base else 1.0, "matched_ok": matched,
        "iou_min": min(both) if both else None,
        "iou_median": statistics.median(both) if both else None,
        "iou_mean": statistics.fmean(both) if both else None,
        "ious": [round(v, 4) for v in both],
    }


def run_baseline(frames, mtcnn):
    from deepfake_keras.data.faces import detect_naive

    return [detect_naive(f, mtcnn) for f in frames]


def run_ours(frames, detector, batch_size: int):
    faces = []
    for start in range(0, len(frames), batch_size):
        faces.extend(detector.detect(frames[start:start + batch_size]))
    return faces


def naive_read(path, count: int, max_side: int) -> tuple:
    """The naive reader (the package's before issue 16): OpenCV, every frame decoded in order from
    the start up to the last of ``count`` evenly spaced frames of the reported count;
    ``(indices, RGB images, scale)``, shrunk to ``max_side`` like ``read_frames`` (by ``scale``)."""
    import cv2

    from deepfake_keras.data.video import sample_indices

    cap = cv2.VideoCapture(str(path))
    try:
        wanted = sample_indices(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), count)
        keep, last = set(wanted), max(wanted)
        indices, images, i, scale = [], [], 0, 1.0
        while i <= last and cap.grab():
            if i in keep:
                ok, frame = cap.retrieve()
                h, w = frame.shape[:2]
                if max_side and max(h, w) > max_side:
                    scale = max_side / max(h, w)
                    frame = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
                indices.append(i)
                images.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            i += 1
    finally:
        cap.release()
    return indices, images, scale


def baseline_end_to_end(path, mtcnn, config):
    """Naive reader + naive detection per frame + crop of the largest face: the naive extractor."""
    from deepfake_keras.data.faces import crop_face, detect_naive, select_largest

    crops = []
    indices, images, _ = naive_read(path, config.frames_per_video, config.max_frame_side)
    for index, image in zip(indices, images):
        face = select_largest(detect_naive(image, mtcnn))
        if face is not None:
            crops.append((index, crop_face(image, face["box"], config.crop_size, config.margin)))
    return crops


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def fmt(v, spec=".2f", none="-"):
    return none if v is None else format(v, spec)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv=None) -> int:
    from deepfake_keras.config import ExtractConfig

    default = ExtractConfig()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="the shared test data folder (default: $DEEPFAKE_KERAS_TEST_DATA or ../shared/data)")
    ap.add_argument("--clips", nargs="+", default=list(DEFAULT_CLIPS),
                    help="video paths or globs, absolute or relative to --data (default: the 1080p clips there)")
    ap.add_argument("--frames", type=int, default=25, help="frames sampled per clip, evenly spaced (default 25)")
    ap.add_argument("--detect-size", type=int, nargs="+", default=[default.detect_size],
                    help=f"our detector's detect_size; several values are each timed against the same baseline "
                         f"(default {default.detect_size}, the ExtractConfig default)")
    ap.add_argument("--repeat", type=int, default=1, help="time each step this many times and keep the fastest")
    ap.add_argument("--no-end-to-end", action="store_true",
                    help="skip the end-to-end timing (it runs the baseline a second time)")
    ap.add_argument("--threads", type=int, default=0,
                    help="TensorFlow intra/inter-op threads (default 0: TensorFlow's choice, all cores)")
    ap.add_argument("--no-long", action="store_true", help="skip the 10-minute 720p video")
    ap.add_argument("--long-video", type=Path,
                    help="where the 10-minute 720p video is made and kept (default: the package cache)")
    ap.add_argument("--json", type=Path, help="also write every number (and every box) to this file")
    ap.add_argument("--workers", type=int, nargs="+", default=[],
                    help="throughput mode: extract the clips with each of these numbers of worker processes "
                         "(default clips there: " + ", ".join(THROUGHPUT_CLIPS) + ")")
    ap.add_argument("--scheduler", nargs="+", default=[],
                    help="throughput mode: and with each of these Dask schedulers (local:N or dask://HOST:PORT)")
    args = ap.parse_args(argv)
    if args.frames < 1 or args.repeat < 1:
        ap.error("--frames and --repeat must be >= 1")
    if args.workers or args.scheduler:
        return throughput_case(args)

    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import mtcnn

    from deepfake_keras.data.extract import extract_video
    from deepfake_keras.data.faces import FaceDetector
    from deepfake_keras.data.video import VideoError, read_frames
    from deepfake_keras.io import versions

    mtcnn_version = versions().get("mtcnn", "?")
    clips = find_clips(args.data, args.clips)
    if not clips:
        print("no clip found; nothing to time (see --data and --clips)", file=sys.stderr)
        return 2
    configs = {s: replace(default, frames_per_video=args.frames, fps=None, detect_size=s) for s in args.detect_size}
    batch_size = default.batch_size
    naive = mtcnn.MTCNN()
    detectors = {s: FaceDetector(s, default.min_face) for s in args.detect_size}

    loads = [os.getloadavg()]
    print(f"{len(clips)} clip(s), {args.frames} frames each, detect_size {args.detect_size}, batch {batch_size}, "
          f"repeat {args.repeat}; {os.cpu_count()} CPU(s), TensorFlow {tf.__version__}, mtcnn "
          f"{mtcnn_version}, threads {args.threads or 'default'}; {load()}", flush=True)
    results = []
    for k, path in enumerate(clips):
        name = str(path.relative_to(args.data)) if path.is_relative_to(args.data) else str(path)
        try:
            frames = read_frames(path, args.frames, None, default.max_frame_side)
        except VideoError as e:
            print(f"skipping {e}", file=sys.stderr)
            continue
        images = frames.images
        h, w = images[0].shape[:2]
        # warm-up, not counted: one baseline frame, one batch of ours of each size that will run
        run_baseline(images[:1], naive)
        sizes = sorted({len(images[s:s + batch_size]) for s in range(0, len(images), batch_size)})
        for det in detectors.values():
            for n in sizes:
                det.detect(images[:n])

        baseline_first = k % 2 == 0
        clip = {"clip": name, "width": w, "height": h, "frames": len(images), "indices": frames.indices,
                "decoder": frames.decoder, "baseline_first": baseline_first, "ours": {}}
        naive_out = {}

        def time_baseline():
            (naive_out["indices"], naive_out["images"], _), clip["naive_decode_s"] = timed(
                lambda: naive_read(path, args.frames, default.max_frame_side), args.repeat)
            faces, t = timed(lambda: run_baseline(naive_out["images"], naive), args.repeat)
            clip["baseline_detect_s"] = t
            clip["baseline_faces"] = all_boxes(faces)
            if not args.no_end_to_end:
                _, clip["baseline_e2e_s"] = timed(lambda: baseline_end_to_end(path, naive, configs[args.detect_size[0]]),
                                                  args.repeat)

        def time_ours():
            _, clip["decode_s"] = timed(lambda: read_frames(path, args.frames, None, default.max_frame_side),
                                        args.repeat)
            for s, det in detectors.items():
                faces, t = timed(lambda: run_ours(images, det, batch_size), args.repeat)
                entry = {"detect_s": t, "faces": all_boxes(faces)}
                if not args.no_end_to_end:
                    (_, rows, _), entry["e2e_s"] = timed(lambda: extract_video(path, det, configs[s]), args.repeat)
                    entry["e2e_faces"] = len(rows)
                clip["ours"][str(s)] = entry

        for step in ((time_baseline, time_ours) if baseline_first else (time_ours, time_baseline)):
            step()
        same = [a.shape == b.shape and bool(np.array_equal(a, b)) for a, b in zip(images, naive_out["images"])]
        clip["same_indices"] = naive_out["indices"] == frames.indices
        clip["same_pixels"] = sum(same)
        clip["pixel_diff_mean"] = float(np.mean([np.abs(a.astype(np.int16) - b).mean() for a, b in zip(
            images, naive_out["images"]) if a.shape == b.shape])) if naive_out["images"] else None
        for s in args.detect_size:
            entry = clip["ours"][str(s)]
            entry["agreement"] = agreement(clip["baseline_faces"], entry["faces"])
            entry["detect_speedup"] = clip["baseline_detect_s"] / entry["detect_s"]
            if not args.no_end_to_end:
                entry["e2e_speedup"] = clip["baseline_e2e_s"] / entry["e2e_s"]
        results.append(clip)
        clip["load_average"] = os.getloadavg()
        loads.append(clip["load_average"])
        print(f"  [{k + 1}/{len(clips)}] {name} {w}x{h}: decode naive {clip['naive_decode_s']:.2f} s, ours "
              f"{clip['decode_s']:.2f} s ({frames.decoder}; same pixels on {sum(same)}/{len(same)} frames); "
              f"detect baseline {clip['baseline_detect_s']:.2f} s, ours "
              + ", ".join(f"{s}: {clip['ours'][str(s)]['detect_s']:.2f} s" for s in args.detect_size)
              + f"; {load()}", flush=True)

    if not results:
        print("no clip could be read; nothing to report", file=sys.stderr)
        return 2
    summary = report(results, args)
    long = None if args.no_long else long_video_case(args, detectors[args.detect_size[0]],
                                                      configs[args.detect_size[0]])
    loads.append(os.getloadavg())
    print("load averages (1, 5, 15 min) at the start, after each clip and at the end: "
          + "; ".join(" ".join(f"{v:.2f}" for v in x) for x in loads))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                        "tensorflow": tf.__version__, "mtcnn": mtcnn_version},
            "batch_size": batch_size, "clips": results, "summary": summary, "long_video": long,
            "load_averages": loads}, indent=1))
        print(f"numbers written to {args.json}")
    passed = all(e["pass"] for e in summary.values()) and (long is None or long["pass"])
    return 0 if passed else 1


def overall(results: list, key: str, e2e: bool) -> dict:
    """Totals over ``results`` for detect size ``key``: time ratios of summed times, pooled frame counts."""
    agree = [c["ours"][key]["agreement"] for c in results]
    frames = sum(c["frames"] for c in results)
    base_t = sum(c["baseline_detect_s"] for c in results)
    ours_t = sum(c["ours"][key]["detect_s"] for c in results)
    n_base = sum(a["baseline_faces"] for a in agree)
    misses = sum(a["misses"] for a in agree)
    ious = [v for a in agree for v in a["ious"]]
    o = {
        "clips": [c["clip"] for c in results], "frames": frames,
        "decode_s_per_frame": sum(c["decode_s"] for c in results) / frames,
        "naive_decode_s_per_frame": sum(c["naive_decode_s"] for c in results) / frames,
        "decode_speedup": sum(c["naive_decode_s"] for c in results) / sum(c["decode_s"] for c in results),
        "same_pixels": sum(c["same_pixels"] for c in results),
        "baseline_s_per_frame": base_t / frames, "ours_s_per_frame": ours_t / frames,
        "detect_speedup": base_t / ours_t,
        "worst_clip_detect_speedup": min(c["ours"][key]["detect_speedup"] for c in results),
        "baseline_faces": n_base, "misses": misses, "extras": sum(a["extras"] for a in agree),
        "recall": (n_base - misses) / n_base if n_base else 1.0,
        "iou_ok": sum(a["iou_ok"] for a in agree),
        "iou_ok_fraction": sum(a["iou_ok"] for a in agree) / n_base if n_base else 1.0,
        "matched_ok_fraction": sum(a["matched_ok"] for a in agree) / n_base if n_base else 1.0,
        "iou_min": min(ious) if ious else None,
        "iou_p5": statistics.quantiles(ious, n=20, method="inclusive")[0] if len(ious) > 1 else None,
        "iou_median": statistics.median(ious) if ious else None,
    }
    o["pass_speed"] = o["detect_speedup"] >= TARGET_SPEEDUP
    o["pass_recall"] = o["recall"] >= TARGET_RECALL
    o["pass_iou"] = o["iou_ok_fraction"] >= TARGET_IOU_FRACTION
    o["pass"] = o["pass_speed"] and o["pass_recall"] and o["pass_iou"]
    if e2e:
        o["e2e_speedup"] = sum(c["baseline_e2e_s"] for c in results) / sum(c["ours"][key]["e2e_s"] for c in results)
        o["pass_e2e"] = o["e2e_speedup"] >= TARGET_E2E_SPEEDUP
        o["pass"] = o["pass"] and o["pass_e2e"]
    return o


def overall_line(label: str, o: dict) -> str:
    n = len(o["clips"])
    text = (f"{label} ({n} clip{'s' * (n != 1)}, {o['frames']} frames): "
            f"detection {o['detect_speedup']:.1f}x (worst clip {o['worst_clip_detect_speedup']:.1f}x) "
            f"[>= {TARGET_SPEEDUP:g}x: {verdict(o['pass_speed'])}]")
    if "e2e_speedup" in o:
        text += (f", end to end {o['e2e_speedup']:.1f}x [>= {TARGET_E2E_SPEEDUP:g}x: {verdict(o['pass_e2e'])}]; "
                 f"decoding {o['decode_speedup']:.1f}x faster than the naive reader, the same pixels on "
                 f"{o['same_pixels']}/{o['frames']} frames")
    return text + (
        f"; recall {o['recall']:.1%} ({o['misses']} missed of {o['baseline_faces']}, {o['extras']} extra) "
        f"[>= {TARGET_RECALL:.0%}: {verdict(o['pass_recall'])}]"
        f"; IoU >= {TARGET_IOU} on {o['iou_ok_fraction']:.1%} ({o['iou_ok']}/{o['baseline_faces']}; "
        f"min {fmt(o['iou_min'], '.3f')}, 5th percentile {fmt(o['iou_p5'], '.3f')}, median {fmt(o['iou_median'], '.3f')}) "
        f"[>= {TARGET_IOU_FRACTION:.0%}: {verdict(o['pass_iou'])}]"
        f" => {verdict(o['pass'])}")


def is_1080p(clip: dict) -> bool:
    return min(clip["width"], clip["height"]) >= 1080


def report(results: list, args) -> dict:
    """Print the per-clip tables and overall lines; return the numbers per detect size.

    The targets are stated for 1080p clips, so PASS/FAIL of a detect size is
    that of its 1080p clips (of all clips if none is 1080p); the all-clips line
    is printed too when other clips were timed.
    """
    e2e = not args.no_end_to_end
    summary = {}
    for s in args.detect_size:
        key = str(s)
        print(f"\n== detect_size {s} ==")
        print(f"{'clip':<44} {'size':>9} {'dec b':>6} {'dec o':>6} {'base s':>7} {'ours s':>7} {'det x':>6} "
              + (f"{'e2e base':>8} {'e2e ours':>8} {'e2e x':>6} " if e2e else "")
              + f"{'faces b/o':>9} {'miss':>4} {'extra':>5} {'IoU min':>7} {'IoU med':>7} {'IoU>=.8':>7} {'any>=.8':>7}")
        for c in results:
            o = c["ours"][key]
            a = o["agreement"]
            print(f"{c['clip'][-44:]:<44} {c['width']:>4}x{c['height']:<4} {c['naive_decode_s']:>6.2f} "
                  f"{c['decode_s']:>6.2f} "
                  f"{c['baseline_detect_s']:>7.2f} {o['detect_s']:>7.2f} {o['detect_speedup']:>6.1f} "
                  + (f"{c['baseline_e2e_s']:>8.2f} {o['e2e_s']:>8.2f} {o['e2e_speedup']:>6.1f} " if e2e else "")
                  + f"{a['baseline_faces']:>4}/{a['our_faces']:<4} {a['misses']:>4} {a['extras']:>5} "
                  f"{fmt(a['iou_min'], '.3f'):>7} {fmt(a['iou_median'], '.3f'):>7} "
                  f"{a['iou_ok']:>3}/{a['baseline_faces']:<3} {a['matched_ok']:>3}/{a['baseline_faces']:<3}")
        full_hd = [c for c in results if is_1080p(c)]
        entry = {"all": overall(results, key, e2e)}
        if full_hd:
            entry["1080p"] = overall(full_hd, key, e2e)
        entry["target"] = entry["1080p"] if full_hd else entry["all"]
        entry["pass"] = entry["target"]["pass"]
        summary[key] = entry
        o = entry["all"]
        print(f"per frame (all clips): decode naive {o['naive_decode_s_per_frame']:.3f} s, ours "
              f"{o['decode_s_per_frame']:.3f} s; detect baseline {o['baseline_s_per_frame']:.3f} s, "
              f"ours {o['ours_s_per_frame']:.3f} s")
        if len(full_hd) != len(results):
            print(overall_line(f"all clips, detect_size {s}", entry["all"]))
        if full_hd:
            print(overall_line(f"OVERALL 1080p clips, detect_size {s}", entry["1080p"]))
        else:
            print(overall_line(f"OVERALL (no 1080p clip) detect_size {s}", entry["all"]))
    return summary


# ---------------------------------------------------------------- the 10-minute 720p video

LONG_SOURCES = (  # real 720p clips at 25 fps: ffpp_mini, then ffpp_c23_subset where present
    "ffpp_mini/original_sequences/youtube/c23/videos/004.mp4",
    "ffpp_mini/original_sequences/youtube/c23/videos/634.mp4",
    "ffpp_c23_subset/original_sequences/youtube/c23/videos/648.mp4",
    "ffpp_c23_subset/original_sequences/youtube/c23/videos/712.mp4",
    "ffpp_c23_subset/original_sequences/youtube/c23/videos/811.mp4",
    "ffpp_c23_subset/original_sequences/youtube/c23/videos/942.mp4",
)
LONG_SECONDS = 600


def make_long_video(data: Path, path: Path) -> Path:
    """A 10-minute 1280x720 H.264 video (yuv420p, 25 fps, B-frames, a key frame every 10 s exactly)
    from the real 720p FF++ clips, played one after another until 10 minutes are filled. Made once:
    an existing file is reused."""
    if path.is_file():
        return path
    import imageio_ffmpeg

    sources = [data / s for s in LONG_SOURCES if (data / s).is_file()]
    if not sources:
        raise FileNotFoundError(f"none of the 720p FF++ clips under {data}")
    path.parent.mkdir(parents=True, exist_ok=True)
    listing = path.with_suffix(".txt")
    listing.write_text("ffconcat version 1.0\n" + "".join(f"file '{s.resolve()}'\n" for s in sources) * 60)
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    print(f"making {path} ({LONG_SECONDS} s from {len(sources)} clips; a few minutes, once)", flush=True)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-nostdin", "-v", "error", "-f", "concat", "-safe", "0",
           "-i", str(listing), "-t", str(LONG_SECONDS), "-an", "-vf", "fps=25,scale=1280:720", "-c:v", "libx264",
           "-preset", "veryfast", "-g", "250", "-keyint_min", "250", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
           str(tmp)]
    subprocess.run(cmd, check=True)
    listing.unlink()
    os.replace(tmp, path)
    return path


def long_video_case(args, detector, config) -> dict:
    """25 frames of the 10-minute video: read in order (the naive reader; PyAV without seeking)
    against ours, and extracted end to end (target: under 10 s)."""
    from deepfake_keras.config import cache_dir
    from deepfake_keras.data.extract import extract_video
    from deepfake_keras.data.video import read_frames

    path = make_long_video(args.data, args.long_video or cache_dir() / "benchmarks" / "long_720p_10min.mp4")
    print(f"\n== {path.name}: 25 frames of a 10-minute 720p video; {load()} ==", flush=True)
    out = {"video": str(path), "load_before": os.getloadavg()}
    frames, out["ours_s"] = timed(lambda: read_frames(path, args.frames, None, config.max_frame_side), 1)
    (_, rows, _), out["ours_e2e_s"] = timed(lambda: extract_video(path, detector, config), 1)
    (indices, _, _), out["naive_s"] = timed(lambda: naive_read(path, args.frames, config.max_frame_side), 1)
    _, out["in_order_s"] = timed(lambda: read_frames(path, args.frames, None, config.max_frame_side, seek=False), 1)
    out.update(frames=len(frames.indices), same_indices=indices == frames.indices, faces=len(rows),
               load_after=os.getloadavg())
    out["pass"] = out["ours_e2e_s"] < TARGET_LONG_S
    print(f"decode 25 frames: naive reader (OpenCV, in order) {out['naive_s']:.2f} s, PyAV in order without "
          f"seeking {out['in_order_s']:.2f} s, ours {out['ours_s']:.2f} s ({out['naive_s'] / out['ours_s']:.1f}x "
          f"faster than the naive reader; same frame indices: {out['same_indices']})")
    print(f"TARGET: extract 25 frames of the 10-minute video (decode, detect, crop; {out['faces']} faces) "
          f"under {TARGET_LONG_S:g} s: {out['ours_e2e_s']:.2f} s => {verdict(out['pass'])}; {load()}", flush=True)
    return out


# ---------------------------------------------------------------- throughput: processes and Dask workers

def cpu_seconds() -> float:
    """CPU time of this process and of its ended children (the worker processes, once they are gone)."""
    import resource

    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def throughput_case(args) -> int:
    """Extract the clips into a new store once per setting (``--workers``, ``--scheduler``), side by side,
    ``--repeat`` rounds in rotating order (the best round of each kept); print videos per minute."""
    import tempfile

    from deepfake_keras.config import ExtractConfig
    from deepfake_keras.data.datasets import folder_manifest
    from deepfake_keras.data.extract import extract

    patterns = THROUGHPUT_CLIPS if args.clips == list(DEFAULT_CLIPS) else args.clips
    clips = {c.resolve() for c in find_clips(args.data, patterns)}
    manifest = folder_manifest(args.data)
    manifest = manifest[[Path(p).resolve() in clips for p in manifest["path"]]].reset_index(drop=True)
    if manifest.empty:
        print("no clip found; nothing to time (see --data and --clips)", file=sys.stderr)
        return 2
    config = ExtractConfig(frames_per_video=args.frames, fps=None, detect_size=args.detect_size[0])
    settings = [(f"--workers {n}", {"workers": n}) for n in args.workers]
    settings += [(f"--scheduler {s}", {"scheduler": s}) for s in args.scheduler]
    print(f"throughput: {len(manifest)} clip(s) ({', '.join(patterns)}), {args.frames} frames each, detect_size "
          f"{config.detect_size}; {os.cpu_count()} CPU(s) shared with whatever else runs on this machine (the load "
          f"average says how busy it was); {load()}", flush=True)
    runs = {name: [] for name, _ in settings}
    for r in range(args.repeat):
        for name, kwargs in settings[r % len(settings):] + settings[:r % len(settings)]:
            with tempfile.TemporaryDirectory(prefix="extract_speed_") as tmp:
                before, cpu, t = os.getloadavg(), cpu_seconds(), time.perf_counter()
                summary = extract(manifest, Path(tmp) / "store", config, progress=False, **kwargs)
                wall, cpu = time.perf_counter() - t, cpu_seconds() - cpu
                done = sorted(p.stat().st_mtime for p in (Path(tmp) / "store").rglob("video.json"))
            n = summary.done + summary.failed
            steady = (len(done) - 1) / (done[-1] - done[0]) * 60 if len(done) > 1 and done[-1] > done[0] else None
            run = {"videos": n, "failed": summary.failed, "faces": summary.faces, "wall_s": wall,
                   "videos_per_min": n / wall * 60, "steady_videos_per_min": steady, "cpu_s": cpu,
                   "cpu_s_per_video": cpu / n if n else None, "load_before": before, "load_after": os.getloadavg()}
            runs[name].append(run)
            print(f"  {name}: {n} videos ({summary.failed} failed, {summary.faces} faces) in {wall:.1f} s = "
                  f"{run['videos_per_min']:.1f} videos/min (steady {fmt(steady, '.1f')}), {fmt(run['cpu_s_per_video'])} "
                  f"CPU s/video; load {before[0]:.2f} -> {run['load_after'][0]:.2f}", flush=True)
    best = {name: max(rs, key=lambda x: x["videos_per_min"]) for name, rs in runs.items()}
    print(f"\n{'setting':<22} {'videos':>6} {'wall s':>7} {'videos/min':>10} {'steady/min':>10} {'CPU s/video':>11} "
          f"{'load 1-min before/after':>24}")
    for name, b in best.items():
        print(f"{name:<22} {b['videos']:>6} {b['wall_s']:>7.1f} {b['videos_per_min']:>10.1f} "
              f"{fmt(b['steady_videos_per_min'], '.1f'):>10} {fmt(b['cpu_s_per_video']):>11} "
              f"{b['load_before'][0]:>11.2f} / {b['load_after'][0]:<10.2f}")
    print(f"videos/min: wall clock, process or cluster start-up included (best of {args.repeat} round(s)); steady: "
          f"between the first and the last video finished; {load()}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"clips": list(manifest["path"]), "frames": args.frames,
                                         "detect_size": config.detect_size, "cpus": os.cpu_count(),
                                         "platform": platform.platform(), "runs": runs}, indent=1))
        print(f"numbers written to {args.json}")
    return 0 if all(b["failed"] == 0 for b in best.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
