"""The extraction stage: manifest -> sampled frames -> MTCNN faces -> face store.

:func:`extract_video` does one video; :func:`extract` does a manifest, skipping videos the store
already has, with a progress bar and optional worker processes (which end with the process that
started them, even when it is killed), and recording every video that yields nothing (with its
reason) instead of stopping.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from ..config import ExtractConfig
from .datasets import MANIFEST_COLUMNS, PROBLEM
from .faces import FaceDetector, LANDMARKS, crop_face, select_largest
from .store import FaceStore, StoreError
from .video import VideoError, read_frames


def extract_video(path, detector: FaceDetector, config: ExtractConfig) -> tuple:
    """Faces of one video: ``(crops, rows, info)``.

    ``crops`` is ``[(frame index, RGB crop)]`` for the frames where a face was
    found (the largest one), ``rows`` the matching :data:`store.FACE_COLUMNS`
    dicts (boxes and landmarks in the video's own pixels), ``info`` counts and
    video properties, ``sampled_frames``, the indices of every sampled frame
    (with a face or not), ``sampled_times`` their times in seconds, and
    ``decoder``, which decoder read the video (:attr:`~.video.Frames.decoder`).
    Raises :class:`VideoError` for an unreadable video.
    """
    frames = read_frames(path, config.frames_per_video, config.fps, config.max_frame_side, config.consecutive)
    crops, rows = [], []
    k = 1.0 / frames.scale
    for start in range(0, len(frames.images), config.batch_size):
        batch = frames.images[start:start + config.batch_size]
        for index, image, faces in zip(frames.indices[start:], batch, detector.detect(batch)):
            face = select_largest(faces)
            if face is None:
                continue
            crops.append((index, crop_face(image, face["box"], config.crop_size, config.margin)))
            row = {"frame": index, "crop": "", "confidence": face["confidence"], "n_faces": len(faces)}
            row.update(zip(("x1", "y1", "x2", "y2"), (round(v * k, 2) for v in face["box"])))
            for name in LANDMARKS:
                x, y = face["landmarks"][name]
                row[f"{name}_x"], row[f"{name}_y"] = round(x * k, 2), round(y * k, 2)
            rows.append(row)
    info = frames.info
    return crops, rows, {
        "frames_sampled": len(frames.images), "frames_with_face": len(rows), "width": info.width,
        "height": info.height, "fps": round(info.fps, 3), "reported_frames": info.reported_frames,
        "sampled_frames": [int(i) for i in frames.indices], "decoder": frames.decoder,
        "sampled_times": [None if t is None else round(float(t), 4) for t in frames.times],
    }


def _process(row: dict, store: FaceStore, detector: FaceDetector) -> dict:
    """Extract one manifest row into the store; never raises for a bad video."""
    meta = {k: row[k] for k in MANIFEST_COLUMNS}
    meta["label"] = int(meta["label"])
    problem = row.get(PROBLEM)
    if isinstance(problem, str) and problem:  # the dataset scan found it unreadable (a FIFO, a dead link...)
        meta.update(status="failed", reason=problem, frames_sampled=0, frames_with_face=0)
        store.write_video(row["store_key"], [], [], meta)
        return meta
    try:
        crops, rows, info = extract_video(row["path"], detector, store.config)
        meta.update(info)
        if rows:
            meta.update(status="ok", reason="")
        else:
            meta.update(status="failed", reason=f"no face found in {info['frames_sampled']} sampled frame(s)")
    except VideoError as e:
        crops, rows = [], []
        meta.update(status="failed", reason=e.problem, frames_sampled=0, frames_with_face=0)
    except Exception as e:  # anything else a strange file can raise: record it, go on
        crops, rows = [], []
        meta.update(status="failed", reason=f"{type(e).__name__}: {e}", frames_sampled=0, frames_with_face=0)
    store.write_video(row["store_key"], crops, rows, meta)
    return meta


# ---------------------------------------------------------------- worker processes
_worker = {}


def die_with_parent(parent: int, poll_s: float = 1.0) -> None:
    """End this process when ``parent`` ends, even by ``kill -9``: Linux's parent-death signal
    (SIGKILL), and, everywhere, a daemon thread that checks every ``poll_s`` seconds whether this
    process was handed to another parent."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before the signal was asked for
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _init_worker(root: str, config: dict, threads: int, parent: int) -> None:
    die_with_parent(parent)
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    cfg = ExtractConfig.from_dict(config)
    _worker["store"] = FaceStore(root, cfg)
    _worker["detector"] = FaceDetector(cfg.detect_size, cfg.min_face)


def _work(row: dict) -> dict:
    return _process(row, _worker["store"], _worker["detector"])


@dataclass
class Summary:
    """What a run did."""

    videos: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    failed_before: int = 0  # skipped, but failed in an earlier run (retry with retry_failed)
    faces: int = 0
    seconds: float = 0.0
    failures: list = field(default_factory=list)  # (store_key, reason)

    def __str__(self) -> str:
        text = (f"{self.videos} video(s): {self.done} extracted, {self.skipped} already in the store (skipped"
                f"{f', {self.failed_before} of them failed before' if self.failed_before else ''}), "
                f"{self.failed} failed; {self.faces} face crop(s) written in {self.seconds:.1f} s")
        for key, reason in self.failures:
            text += f"\n  FAILED {key}: {reason}"
        return text


def check_outside(out: Path, roots) -> None:
    """Refuse a store inside a dataset root: nothing under a dataset root is ever written."""
    out = Path(out).resolve()
    for root in roots:
        root = Path(root).resolve()
        if out == root or root in out.parents:
            raise StoreError(f"--out {out} is inside the dataset folder {root}; the dataset is never written to, "
                             f"choose an --out folder outside it")


def extract(manifest: pd.DataFrame, out, config: ExtractConfig = ExtractConfig(), workers: int = 0,
            retry_failed: bool = False, dataset_roots=(), progress: bool = True) -> Summary:
    """Extract the faces of every video of ``manifest`` into the face store at ``out``.

    ``workers=0`` works in this process; ``workers=N`` starts N processes (each
    with its own MTCNN and ``max(1, cores // N)`` TensorFlow threads), which
    also keeps a decoder crash on a broken file from ending the run. Videos
    already in the store are skipped; ones that failed before are retried only
    with ``retry_failed``.
    """
    start = time.time()
    check_outside(out, dataset_roots)
    store = FaceStore(out, config)
    summary = Summary(videos=len(manifest))
    todo = []
    for row in manifest.to_dict("records"):
        status = store.status(row["store_key"])
        if status is None or (retry_failed and status["status"] != "ok"):
            todo.append(row)
        else:
            summary.skipped += 1
            if status["status"] != "ok":
                summary.failed_before += 1
                summary.failures.append((row["store_key"], f"{status['reason']} (in an earlier run; --retry-failed retries)"))
    bar = tqdm(total=len(todo), desc="extract", unit="video", disable=not progress)

    def record(meta):
        if meta["status"] == "ok":
            summary.done += 1
            summary.faces += meta["frames_with_face"]
        else:
            summary.failed += 1
            summary.failures.append((meta["store_key"], meta["reason"]))
        bar.update(1)
        bar.set_postfix(failed=summary.failed, faces=summary.faces)

    try:
        if not todo:  # all done already: no need to load MTCNN
            pass
        elif workers <= 0:
            detector = FaceDetector(config.detect_size, config.min_face)
            for row in todo:
                record(_process(row, store, detector))
        else:
            _run_pool(todo, store, config, workers, record)
    finally:
        bar.close()
        store.rebuild_index()
    summary.seconds = time.time() - start
    return summary


def _run_pool(rows: list, store: FaceStore, config: ExtractConfig, workers: int, record) -> None:
    """Run ``rows`` in worker processes; rows caught in a crashed pool are retried one at a time,
    and a row that crashes its worker alone is recorded as failed."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")
    init = (str(store.root), config.to_dict(), threads, os.getpid())
    crashed = []
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=init) as pool:
        futures = {pool.submit(_work, row): row for row in rows}
        for future in as_completed(futures):
            try:
                record(future.result())
            except BrokenProcessPool:
                crashed.append(futures[future])
    for row in crashed:
        if store.status(row["store_key"]) is not None:  # it finished before the pool broke
            record(store.status(row["store_key"]))
            continue
        try:
            with ProcessPoolExecutor(1, mp_context=ctx, initializer=_init_worker, initargs=init) as pool:
                record(pool.submit(_work, row).result())
        except BrokenProcessPool:
            meta = {k: row[k] for k in MANIFEST_COLUMNS}
            meta.update(label=int(row["label"]), status="failed", frames_sampled=0, frames_with_face=0,
                        reason="reading this file crashed the worker process (broken or hostile video)")
            store.write_video(row["store_key"], [], [], meta)
            record(meta)
