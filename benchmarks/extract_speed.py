"""Speed and agreement of the project's face extractor against the naive MTCNN baseline.

For each clip, the same sampled frames are decoded once (timed on their own:
decoding is common to both sides), both detectors are warmed up on that clip
(the first TensorFlow calls on new shapes are slow; that is not counted), then,
in one run and alternating which side goes first from clip to clip:

* detection only: the baseline, ``MTCNN().detect_faces`` on each
  full-resolution frame (:func:`deepfake_keras.data.faces.detect_naive`),
  against :meth:`FaceDetector.detect` on batches of ``ExtractConfig.batch_size``
  frames, for each ``--detect-size``;
* end to end (decode, detect, crop the largest face): decode + baseline +
  crop against :func:`deepfake_keras.data.extract.extract_video`.

Agreement compares the largest face of each frame (``select_largest``):
frames where the baseline found a face and ours did not (misses) and the
reverse (extras), and the IoU of the two boxes. Targets (issue: 2 CPU cores,
25 frames of a 1080p clip): detection at least 10x faster than the baseline,
recall against the baseline >= 98%, IoU >= 0.8 on >= 95% of the frames where
the baseline found a face (a miss counts as IoU 0). PASS/FAIL is judged on the
1080p clips; an all-clips line is printed too when other clips are given.

    python benchmarks/extract_speed.py                       # default clips, detect size 480
    python benchmarks/extract_speed.py --detect-size 320 400 480 640 --json out.json

Times are wall clock (``time.perf_counter``); with ``--repeat N`` each timing
is the fastest of N (the machine may be shared). Ratios are baseline time /
our time, summed over clips for the overall line.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("DEEPFAKE_KERAS_TEST_DATA", REPO / ".." / "shared" / "data"))
# the 1080p clips of the shared test data (one DFDC clip is 720p), relative to --data
DEFAULT_CLIPS = (
    "dfdc_mini/**/*.mp4",
    "ffpp_mini/manipulated_sequences/Face2Face/c23/videos/750_743.mp4",
    "face_videos/conan_obrien.mp4",
)
TARGET_SPEEDUP = 10.0
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


def baseline_end_to_end(path, mtcnn, config):
    """Decode + naive detection per frame + crop of the largest face: the naive extractor."""
    from deepfake_keras.data.faces import crop_face, detect_naive, select_largest
    from deepfake_keras.data.video import read_frames

    frames = read_frames(path, config.frames_per_video, config.fps, config.max_frame_side)
    crops = []
    for index, image in zip(frames.indices, frames.images):
        face = select_largest(detect_naive(image, mtcnn))
        if face is not None:
            crops.append((index, crop_face(image, face["box"], config.crop_size, config.margin)))
    return crops


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
    ap.add_argument("--json", type=Path, help="also write every number (and every box) to this file")
    args = ap.parse_args(argv)
    if args.frames < 1 or args.repeat < 1:
        ap.error("--frames and --repeat must be >= 1")

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

    print(f"{len(clips)} clip(s), {args.frames} frames each, detect_size {args.detect_size}, batch {batch_size}, "
          f"repeat {args.repeat}; {os.cpu_count()} CPU(s), TensorFlow {tf.__version__}, mtcnn "
          f"{mtcnn_version}, threads {args.threads or 'default'}", flush=True)
    results = []
    for k, path in enumerate(clips):
        name = str(path.relative_to(args.data)) if path.is_relative_to(args.data) else str(path)
        try:
            frames, t_decode = timed(lambda: read_frames(path, args.frames, None, default.max_frame_side), args.repeat)
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
                "decode_s": t_decode, "baseline_first": baseline_first, "ours": {}}

        def time_baseline():
            faces, t = timed(lambda: run_baseline(images, naive), args.repeat)
            clip["baseline_detect_s"] = t
            clip["baseline_faces"] = all_boxes(faces)
            if not args.no_end_to_end:
                _, clip["baseline_e2e_s"] = timed(lambda: baseline_end_to_end(path, naive, configs[args.detect_size[0]]),
                                                  args.repeat)

        def time_ours():
            for s, det in detectors.items():
                faces, t = timed(lambda: run_ours(images, det, batch_size), args.repeat)
                entry = {"detect_s": t, "faces": all_boxes(faces)}
                if not args.no_end_to_end:
                    (_, rows, _), entry["e2e_s"] = timed(lambda: extract_video(path, det, configs[s]), args.repeat)
                    entry["e2e_faces"] = len(rows)
                clip["ours"][str(s)] = entry

        for step in ((time_baseline, time_ours) if baseline_first else (time_ours, time_baseline)):
            step()
        for s in args.detect_size:
            entry = clip["ours"][str(s)]
            entry["agreement"] = agreement(clip["baseline_faces"], entry["faces"])
            entry["detect_speedup"] = clip["baseline_detect_s"] / entry["detect_s"]
            if not args.no_end_to_end:
                entry["e2e_speedup"] = clip["baseline_e2e_s"] / entry["e2e_s"]
        results.append(clip)
        print(f"  [{k + 1}/{len(clips)}] {name} {w}x{h}: decode {t_decode:.2f} s, baseline "
              f"{clip['baseline_detect_s']:.2f} s, ours "
              + ", ".join(f"{s}: {clip['ours'][str(s)]['detect_s']:.2f} s" for s in args.detect_size), flush=True)

    if not results:
        print("no clip could be read; nothing to report", file=sys.stderr)
        return 2
    summary = report(results, args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                        "tensorflow": tf.__version__, "mtcnn": mtcnn_version},
            "batch_size": batch_size, "clips": results, "summary": summary}, indent=1))
        print(f"numbers written to {args.json}")
    return 0 if all(e["pass"] for e in summary.values()) else 1


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
    if e2e:
        o["e2e_speedup"] = sum(c["baseline_e2e_s"] for c in results) / sum(c["ours"][key]["e2e_s"] for c in results)
    o["pass_speed"] = o["detect_speedup"] >= TARGET_SPEEDUP
    o["pass_recall"] = o["recall"] >= TARGET_RECALL
    o["pass_iou"] = o["iou_ok_fraction"] >= TARGET_IOU_FRACTION
    o["pass"] = o["pass_speed"] and o["pass_recall"] and o["pass_iou"]
    return o


def overall_line(label: str, o: dict) -> str:
    n = len(o["clips"])
    text = (f"{label} ({n} clip{'s' * (n != 1)}, {o['frames']} frames): "
            f"detection {o['detect_speedup']:.1f}x (worst clip {o['worst_clip_detect_speedup']:.1f}x) "
            f"[>= {TARGET_SPEEDUP:g}x: {verdict(o['pass_speed'])}]")
    if "e2e_speedup" in o:
        text += f", end to end {o['e2e_speedup']:.1f}x (not a target)"
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
        print(f"{'clip':<44} {'size':>9} {'dec s':>6} {'base s':>7} {'ours s':>7} {'det x':>6} "
              + (f"{'e2e base':>8} {'e2e ours':>8} {'e2e x':>6} " if e2e else "")
              + f"{'faces b/o':>9} {'miss':>4} {'extra':>5} {'IoU min':>7} {'IoU med':>7} {'IoU>=.8':>7} {'any>=.8':>7}")
        for c in results:
            o = c["ours"][key]
            a = o["agreement"]
            print(f"{c['clip'][-44:]:<44} {c['width']:>4}x{c['height']:<4} {c['decode_s']:>6.2f} "
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
        print(f"per frame (all clips): decode {o['decode_s_per_frame']:.3f} s, baseline {o['baseline_s_per_frame']:.3f} s, "
              f"ours {o['ours_s_per_frame']:.3f} s")
        if len(full_hd) != len(results):
            print(overall_line(f"all clips, detect_size {s}", entry["all"]))
        if full_hd:
            print(overall_line(f"OVERALL 1080p clips, detect_size {s}", entry["1080p"]))
        else:
            print(overall_line(f"OVERALL (no 1080p clip) detect_size {s}", entry["all"]))
    return summary


if __name__ == "__main__":
    sys.exit(main())
