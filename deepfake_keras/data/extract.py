"""The extraction stage: manifest -> sampled frames -> MTCNN faces -> face store.

:func:`extract_video` does one video; :func:`extract` does a manifest, skipping videos the store
already has, with a progress bar and optional worker processes (which end with the process that
started them, even when it is killed), and recording every video that yields nothing (with its
reason) instead of stopping.

Across machines: :func:`select_shard` keeps shard K of N of a manifest (by a SHA-256 of each
``store_key``, the same on every machine), so a job array fills one store, each job its shard;
:func:`merge` then rebuilds the index CSVs from the video folders. ``extract(scheduler=...)`` sends
the videos to Dask workers (``dask://HOST:PORT`` or ``local:N``; the optional ``distributed``
extra) that share the store's file system: each keeps one MTCNN and writes its videos itself.
"""
from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import re
import socket
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
from ..io import about
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
    problem = row.get(PROBLEM)
    if isinstance(problem, str) and problem:  # the dataset scan found it unreadable (a FIFO, a dead link...)
        meta = lost_video(row, problem)
        store.write_video(row["store_key"], [], [], meta)
        return meta
    meta = {k: row[k] for k in MANIFEST_COLUMNS}
    meta["label"] = int(meta["label"])
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
        return text + listed("FAILED", [f"{key}: {reason}" for key, reason in self.failures])


def listed(tag: str, items: list, limit: int | None = None) -> str:
    """``items`` as indented lines under ``tag`` (``"\\n  FAILED x"``), at most ``limit`` of them and a
    count of the rest."""
    shown = items if limit is None else items[:limit]
    text = "".join(f"\n  {tag} {item}" for item in shown)
    if len(items) > len(shown):
        text += f"\n  ... and {len(items) - len(shown)} more {tag.lower()}"
    return text


def check_outside(out: Path, roots) -> None:
    """Refuse a store inside a dataset root: nothing under a dataset root is ever written."""
    out = Path(out).resolve()
    for root in roots:
        root = Path(root).resolve()
        if out == root or root in out.parents:
            raise about(StoreError(f"the face store {out} is inside the dataset folder {root}; the dataset is never "
                                   f"written to, choose a store folder outside it"), "out")


def extract(manifest: pd.DataFrame, out, config: ExtractConfig = ExtractConfig(), workers: int = 0,
            retry_failed: bool = False, dataset_roots=(), progress: bool = True, scheduler: str | None = None,
            index: bool = True) -> Summary:
    """Extract the faces of every video of ``manifest`` into the face store at ``out``.

    ``workers=0`` works in this process; ``workers=N`` starts N processes (each
    with its own MTCNN and ``max(1, cores // N)`` TensorFlow threads), which
    also keeps a decoder crash on a broken file from ending the run.
    ``scheduler`` (``"dask://HOST:PORT"`` or ``"local:N"``, :func:`parse_scheduler`)
    sends the videos to Dask workers instead (``workers`` is then unused). Videos
    already in the store are skipped; ones that failed before are retried only
    with ``retry_failed``. ``index=False`` leaves the index CSVs as they are (a
    shard among others running at the same time: :func:`merge` rebuilds them).
    """
    start = time.time()
    spec = parse_scheduler(scheduler) if scheduler else None
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
                summary.failures.append((row["store_key"], f"{status['reason']} (in an earlier run; not retried unless asked)"))
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

    finished = False
    try:
        if not todo:  # all done already: no need to load MTCNN
            pass
        elif spec is not None:
            _run_dask(todo, store, config, spec, record)
        elif workers <= 0:
            detector = FaceDetector(config.detect_size, config.min_face)
            for row in todo:
                record(_process(row, store, detector))
        else:
            _run_pool(todo, store, config, workers, record)
        finished = True
    finally:
        bar.close()
        if index:  # what was finished is indexed even when the run stops
            try:
                store.rebuild_index()
            except OSError as e:
                if finished:
                    raise
                # a full disk, say: the error that stopped the run is the one to report
                print(f"the index of {store.root} could not be rebuilt ({e}); the next run rebuilds it",
                      file=sys.stderr)
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
            meta = lost_video(row, "reading this file crashed the worker process (broken or hostile video)")
            store.write_video(row["store_key"], [], [], meta)
            record(meta)


def lost_video(row: dict, reason: str) -> dict:
    """The failed record of a video that no worker finished, with ``reason``."""
    meta = {k: row[k] for k in MANIFEST_COLUMNS}
    meta.update(label=int(row["label"]), status="failed", reason=reason, frames_sampled=0, frames_with_face=0)
    return meta


# ---------------------------------------------------------------- shards (a job array, one store)
def shard_of(store_key: str, shards: int) -> int:
    """The shard (1 to ``shards``) of a video: the first 8 bytes of the SHA-256 of its ``store_key`` (UTF-8)
    modulo ``shards``, plus 1. The same on every machine and Python (unlike the salted ``hash()``), and a
    video keeps its shard when others are added to or removed from the dataset."""
    digest = hashlib.sha256(str(store_key).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1


def parse_shard(text: str) -> tuple:
    """``"K/N"`` -> ``(K, N)``: shard K (1-based: 1 to N) of N >= 1; a ValueError saying what is wrong."""
    m = re.fullmatch(r"\s*(-?\d+)\s*/\s*(-?\d+)\s*", str(text))
    if not m:
        raise ValueError(f"shard {text!r} is not K/N (shard K of N, e.g. 1/4)")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1:
        raise ValueError(f"shard {text!r}: N (the number of shards) must be at least 1, got {n}")
    if not 1 <= k <= n:
        raise ValueError(f"shard {text!r}: K must be from 1 to {n} (shards are numbered from 1), got {k}")
    return k, n


def select_shard(manifest: pd.DataFrame, k: int, n: int) -> pd.DataFrame:
    """The rows of ``manifest`` in shard ``k`` of ``n`` (:func:`shard_of`), in the manifest's order."""
    keep = [shard_of(key, n) == k for key in manifest["store_key"]]
    return manifest.loc[keep].reset_index(drop=True)


@dataclass
class MergeSummary:
    """What :func:`merge` found in the store."""

    root: str = ""
    videos: int = 0
    ok: int = 0
    failed: int = 0
    faces: int = 0
    failures: list = field(default_factory=list)  # (store_key, reason)
    manifest: int | None = None  # videos in the manifest checked against, if one was given
    missing: list = field(default_factory=list)  # its store keys not in the store

    def __str__(self) -> str:
        text = (f"index rebuilt from the video folders of {self.root}: {self.videos} video(s), {self.ok} ok, "
                f"{self.failed} failed; {self.faces} face crop(s)")
        if self.manifest is not None:
            text += (f"; {self.manifest - len(self.missing)} of the manifest's {self.manifest} video(s) are in the "
                     f"store, {len(self.missing)} not (yet)")
        return (text + listed("FAILED", [f"{key}: {reason}" for key, reason in self.failures])
                + listed("MISSING", self.missing, 20))


def merge(out, manifest: pd.DataFrame | None = None) -> MergeSummary:
    """Rebuild the index CSVs of the store at ``out`` from its video folders (after shards that each left
    the index alone); with ``manifest``, also list its videos that are not in the store."""
    store = FaceStore.open(out)
    videos, faces = store.rebuild_index()
    failed = videos.loc[videos["status"] != "ok"]
    summary = MergeSummary(root=str(store.root), videos=len(videos), ok=len(videos) - len(failed),
                           failed=len(failed), faces=len(faces),
                           failures=list(zip(failed["store_key"], failed["reason"])))
    if manifest is not None:
        have = set(videos["store_key"])
        summary.manifest = len(manifest)
        summary.missing = [key for key in manifest["store_key"] if key not in have]
    return summary


# ---------------------------------------------------------------- Dask (the optional `distributed` extra)
DASK_INSTALL = "pip install -e .[distributed]"
_dask_state = {}
_dask_lock = threading.Lock()


class SchedulerError(ValueError):
    """Dask cannot be used as asked (not installed, a bad address, no scheduler there, a worker that cannot run)."""


def parse_scheduler(text: str) -> tuple:
    """``"local:N"`` -> ``("local", N)``; ``"dask://HOST:PORT"`` -> ``("address", "tcp://HOST:PORT")``."""
    text = str(text).strip()
    m = re.fullmatch(r"local:(\d+)", text)
    if m and int(m.group(1)) >= 1:
        return "local", int(m.group(1))
    m = re.fullmatch(r"dask://([^\s/:]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})", text)
    if m and 0 < int(m.group(2)) < 65536:
        return "address", f"tcp://{m.group(1)}:{m.group(2)}"
    raise SchedulerError(f"scheduler {text!r} is neither dask://HOST:PORT (a running Dask scheduler) nor local:N "
                         f"(N >= 1 local worker processes)")


def import_dask():
    """``dask.distributed``, or a SchedulerError naming the command that installs it."""
    try:
        import dask.distributed as dd
    except ImportError:
        raise SchedulerError(f"Dask (dask.distributed) is not installed; install the project's distributed extra: "
                             f"{DASK_INSTALL}") from None
    return dd


def extract_on_dask_worker(row: dict, root: str, config: dict, parent: int | None = None) -> dict:
    """One video on a Dask worker: its store and MTCNN are made once per worker process (and kept), TensorFlow
    gets as many threads as the worker has Dask threads, and its videos run one at a time."""
    with _dask_lock:
        cfg = ExtractConfig.from_dict(config)
        key = ("store", root, tuple(sorted(cfg.to_dict().items())))
        if key not in _dask_state and not (Path(root) / "extract_config.json").is_file():
            raise SchedulerError(f"the face store {root} is not there on the Dask worker at {socket.gethostname()}: "
                                 f"the workers must see the store's file system at the same path")
        if "ready" not in _dask_state:  # this worker's first video: set it up once
            if parent is not None and os.getppid() == parent:  # a local:N worker: it ends with `extract`
                die_with_parent(parent)
            from distributed import get_worker

            import tensorflow as tf

            threads = get_worker().state.nthreads
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(threads)
            except RuntimeError:  # TensorFlow already started in this worker
                pass
            _dask_state["ready"] = True
        if key not in _dask_state:
            _dask_state[key] = FaceStore(root, cfg)
        det = ("detector", cfg.detect_size, cfg.min_face)
        if det not in _dask_state:
            _dask_state[det] = FaceDetector(cfg.detect_size, cfg.min_face)
        return _process(row, _dask_state[key], _dask_state[det])


def _dask_client(dd, spec: tuple):
    """``(client, cluster or None)`` for a parsed scheduler."""
    kind, value = spec
    if kind == "local":
        cluster = dd.LocalCluster(n_workers=value, threads_per_worker=1, processes=True, dashboard_address=None)
        return dd.Client(cluster), cluster
    try:
        return dd.Client(value, timeout="20s"), None
    except OSError as e:
        raise SchedulerError(f"no Dask scheduler answered at {value} ({type(e).__name__}: {e}); start one with "
                             f"`dask scheduler` and workers with `dask worker {value}`") from None


def _run_dask(rows: list, store: FaceStore, config: ExtractConfig, spec: tuple, record) -> None:
    """Run ``rows`` on Dask workers, a window of them submitted at a time (in the manifest's order). A video
    whose worker died is run again on another by Dask; one that killed workers too often (``KilledWorker``)
    is reported failed and not stored, so a rerun extracts it."""
    dd = import_dask()
    from distributed import KilledWorker

    client, cluster = _dask_client(dd, spec)
    try:
        workers = client.scheduler_info()["workers"]
        threads = sum(w.get("nthreads", 1) for w in workers.values())
        print(f"Dask scheduler {client.scheduler.address}: {len(workers)} worker(s), {threads} thread(s)"
              + ("" if workers else f"; none yet: the videos wait for `dask worker {client.scheduler.address}`"),
              file=sys.stderr, flush=True)
        args = (str(store.root), config.to_dict(), os.getpid() if spec[0] == "local" else None)
        pending, todo = {}, iter(rows)
        window = dd.as_completed()

        def submit() -> None:
            row = next(todo, None)
            if row is not None:
                future = client.submit(extract_on_dask_worker, row, *args, pure=False)
                pending[future.key] = row
                window.add(future)

        for _ in range(max(256, 4 * threads)):
            submit()
        for future in window:
            row = pending.pop(future.key)
            try:
                meta = future.result()
            except KilledWorker:  # after distributed.scheduler.allowed-failures (3) deaths
                meta = lost_video(row, "every Dask worker that ran it died (KilledWorker); not stored: a rerun "
                                       "retries it")
            except Exception as e:  # not a bad video (that is recorded): the store, the workers' set-up, the network
                raise SchedulerError(f"Dask could not extract {row['store_key']}: {type(e).__name__}: {e}") from None
            record(meta)
            submit()
    finally:
        client.close()
        if cluster is not None:  # TensorFlow keeps a worker from exiting on its own: the nanny kills it, no news
            nanny = logging.getLogger("distributed.nanny")
            level = nanny.level
            nanny.setLevel(logging.ERROR)
            try:
                cluster.close()
            finally:
                nanny.setLevel(level)
