"""The face store: cached face crops on disk, in one documented layout.

::

    <store>/
      extract_config.json   the ExtractConfig the crops were made with
      faces.csv             one row per crop: the video's manifest columns, frame,
                            crop (path relative to <store>), box x1 y1 x2 y2 (video
                            pixels), confidence, five landmarks, n_faces in the frame
      failures.csv          one row per video that yielded no face: store_key, video_id, path, reason
      videos.csv            one row per video: manifest columns, status, reason, counts
      <store_key>/          e.g. ffpp/c40/NeuralTextures/004_982, celebdf/Celeb-real/id0_0000
        000123.png          the crop of frame 123 (RGB, crop_size x crop_size)
        faces.csv           this video's rows
        video.json          its manifest row, status (ok | failed), reason, counts, video info

A video is done when its ``video.json`` exists. Each video folder is written
under ``<store>/.tmp/`` and renamed into place in one step, and the index CSVs
are written to a temporary file and renamed, so a run killed at any moment
leaves no partial file in the store, and a second run skips what is done and
ends with the same store as an uninterrupted run. Several processes, on one
machine or on several sharing the store's file system, may fill one store at
once: the first creates ``extract_config.json`` (the others check it), a
temporary folder is named by its process and machine (only this machine's
dead processes' folders are removed at once; another machine's after a day),
and a video finished by two of them keeps the first one's folder. The index
CSVs are rebuilt from the video folders by :meth:`FaceStore.rebuild_index`.

The CSVs are written with :func:`deepfake_keras.io.csv_text`: a text cell that a spreadsheet would
take for a formula (a video named ``=HYPERLINK(...).mp4`` gives the ``video_id``
``=HYPERLINK(...)``) is written with a leading single quote, and so is a text cell that starts with
a quote; read them with :meth:`FaceStore.faces` (or undo it with :func:`deepfake_keras.io.csv_unescape`)
to get the names back. Store keys start with their dataset's name (``folder/...``), so ``store_key``
and ``crop`` are never escaped. A store written before the ``group`` column has no ``group`` in its
``video.json`` files: its index shows an empty group, and nothing else changes.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..config import ExtractConfig
from ..io import about, csv_text, csv_unescape, is_temp_of, write_atomic
from .datasets import MANIFEST_COLUMNS
from .faces import LANDMARKS

FACE_COLUMNS = (["frame", "crop", "x1", "y1", "x2", "y2", "confidence"]
                + [f"{name}_{axis}" for name in LANDMARKS for axis in "xy"] + ["n_faces"])
VIDEO_COLUMNS = MANIFEST_COLUMNS + ["status", "reason", "frames_sampled", "frames_with_face", "decoder"]
# settings that change what is stored; a store refuses to mix them
_STORE_SETTINGS = ("frames_per_video", "fps", "consecutive", "crop_size", "margin", "detect_size", "min_face", "max_frame_side")


#: this machine in temporary folder names (``<pid>-<HOST>-<uuid>``): a pid means something on its own machine only
HOST = "h" + hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
#: another machine's temporary folder untouched this long is a killed run's
OTHER_HOST_STALE_S = 24 * 3600
_CONFIG = "extract_config.json"


class StoreError(ValueError):
    """A face store that cannot be used as asked; the message says why and what to do."""


def read_json(path, what: str = "file"):
    """The JSON of one of the store's files, or a StoreError naming the file and what is wrong."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise StoreError(f"{path}: the store's {what} is not valid JSON ({e}); the store is damaged: delete this "
                         f"file's folder to extract it again, or use another store") from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FaceStore:
    """A face store at ``root`` made with ``config`` (see the module docstring)."""

    def __init__(self, root, config: ExtractConfig):
        self.root = Path(root).resolve()
        self.config = config
        saved = self.root / _CONFIG
        wanted = {k: config.to_dict()[k] for k in _STORE_SETTINGS}
        if not saved.is_file():
            # another process may be creating the store right now: its config's temporary file is no content,
            # and anything else it writes comes after its config (so look at the config again after the folder)
            others = self.root.exists() and any(not is_temp_of(p.name, _CONFIG) for p in self.root.iterdir())
            if others and not saved.is_file():
                raise about(StoreError(f"{self.root} is not empty and is not a face store (no extract_config.json); "
                                       f"choose an empty or new folder"), "out")
            write_atomic(saved, (json.dumps(wanted, indent=2, sort_keys=True) + "\n").encode(), exclusive=True)
        # defaults fill the settings newer than the store (stores made before `consecutive` lack it)
        have = ExtractConfig.from_dict(read_json(saved, "extraction settings")).to_dict()
        diff = {k: (have.get(k), v) for k, v in wanted.items() if have.get(k) != v}
        if diff:
            desc = ", ".join(f"{k}: store has {a!r}, asked {b!r}" for k, (a, b) in diff.items())
            raise about(StoreError(f"{self.root} holds faces extracted with other settings ({desc}); "
                                   f"use the same settings or another folder"), "out")
        self._clean_tmp()

    @classmethod
    def open(cls, root) -> "FaceStore":
        """An existing store, with the settings it was made with."""
        saved = Path(root) / "extract_config.json"
        if not saved.is_file():
            raise StoreError(f"{root} is not a face store (no extract_config.json); run `deepfake-keras extract` first")
        return cls(root, ExtractConfig.from_dict(read_json(saved, "extraction settings")))

    # ------------------------------------------------------------ per video
    def video_dir(self, store_key: str) -> Path:
        return self.root / store_key

    def status(self, store_key: str):
        """The video's ``video.json`` as a dict, or None if it is not done."""
        path = self.video_dir(store_key) / "video.json"
        return read_json(path, "video record") if path.is_file() else None

    def conflicts(self, manifest: pd.DataFrame) -> list:
        """``[(store_key, stored path, manifest path)]`` of the videos of ``manifest`` that the store already
        holds from another file: the same store key, another path (e.g. a store filled from one dataset
        root, reused with another). Extracting would skip them and keep the other file's faces."""
        out = []
        for key, path in zip(manifest["store_key"], manifest["path"]):
            done = self.status(key)
            if done is not None and str(done.get("path")) != str(path):
                out.append((key, str(done.get("path")), str(path)))
        return out

    def write_video(self, store_key: str, crops: list, rows: list, meta: dict) -> None:
        """Store one video in one step: ``crops`` [(frame, RGB array)], ``rows`` (dicts with
        :data:`FACE_COLUMNS` but ``crop``), ``meta`` for ``video.json``."""
        tmp = self.root / ".tmp" / _tmp_name()
        tmp.mkdir(parents=True)
        try:
            for frame, image in crops:
                ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                if not ok:
                    raise OSError(f"could not encode the crop of frame {frame} of {store_key} as PNG")
                (tmp / f"{frame:06d}.png").write_bytes(png.tobytes())
            table = pd.DataFrame(rows, columns=FACE_COLUMNS)
            table["crop"] = [f"{store_key}/{f:06d}.png" for f in table["frame"]]
            (tmp / "faces.csv").write_bytes(csv_text(table).encode("utf-8"))
            (tmp / "video.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            final = self.video_dir(store_key)
            final.parent.mkdir(parents=True, exist_ok=True)
            old = None
            if final.exists():  # a re-run of a failed video: move the old result aside first
                old = self.root / ".tmp" / _tmp_name("-old")
                os.rename(final, old)
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / "video.json").is_file():
                    raise
                # another process (a retried Dask task, an overlapping run) stored this video meanwhile: theirs stays
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _clean_tmp(self) -> None:
        """Remove temporary folders left by killed runs: this machine's dead processes' at once, another
        machine's once untouched for :data:`OTHER_HOST_STALE_S` (its processes cannot be seen from here)."""
        tmp = self.root / ".tmp"
        if not tmp.is_dir():
            return
        for child in tmp.iterdir():
            parts = child.name.split("-")
            pid = parts[0]
            host = parts[1] if len(parts) > 2 and parts[1].startswith("h") else HOST  # older stores: no machine
            try:
                if host == HOST:
                    stale = not (pid.isdigit() and _pid_alive(int(pid)) and int(pid) != os.getpid())
                else:  # another machine's process: its pid means nothing here
                    stale = time.time() - child.stat().st_mtime > OTHER_HOST_STALE_S
                if stale:
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()
            except FileNotFoundError:  # another process cleaned it first
                pass

    # ------------------------------------------------------------ index
    def video_jsons(self) -> list:
        return sorted(p for p in self.root.rglob("video.json") if ".tmp" not in p.relative_to(self.root).parts)

    def rebuild_index(self) -> tuple:
        """Rewrite ``videos.csv``, ``faces.csv`` and ``failures.csv`` from the stored videos;
        returns (videos, faces) tables."""
        metas, face_tables = [], []
        for path in self.video_jsons():
            # stores written before a manifest column (group) was added lack it: empty there
            meta = {**dict.fromkeys(MANIFEST_COLUMNS, ""), **read_json(path, "video record")}
            metas.append(meta)
            faces = csv_unescape(pd.read_csv(path.parent / "faces.csv", dtype={"crop": str}))
            if len(faces):
                for col in MANIFEST_COLUMNS:
                    faces.insert(MANIFEST_COLUMNS.index(col), col, meta[col])
                face_tables.append(faces)
        videos = pd.DataFrame(metas, columns=VIDEO_COLUMNS)
        if len(videos):
            videos = videos.sort_values("store_key").reset_index(drop=True)
        faces = (pd.concat(face_tables, ignore_index=True) if face_tables
                 else pd.DataFrame(columns=MANIFEST_COLUMNS + FACE_COLUMNS))
        if len(faces):
            faces = faces.sort_values(["store_key", "frame"]).reset_index(drop=True)
        failures = videos.loc[videos["status"] != "ok", ["store_key", "video_id", "path", "reason"]]
        for name, table in (("videos.csv", videos), ("faces.csv", faces), ("failures.csv", failures)):
            # formula-like text cells get a leading quote; names that are not UTF-8 are written as \xNN
            write_atomic(self.root / name, csv_text(table).encode("utf-8"))
        return videos, faces

    def faces(self) -> pd.DataFrame:
        """The ``faces.csv`` index (one row per crop), with the names as they are (escaping undone)."""
        path = self.root / "faces.csv"
        if not path.is_file():
            raise StoreError(f"{path} not found; run `deepfake-keras extract` to fill the store")
        return csv_unescape(pd.read_csv(path, dtype={"video_id": str, "target_id": str, "source_id": str,
                                                     "compression": str, "method": str, "group": str,
                                                     "split": str, "dataset": str, "path": str},
                                        keep_default_na=False))

    def load_crop(self, crop: str) -> np.ndarray:
        """A stored crop as an RGB uint8 array."""
        image = cv2.imread(str(self.root / crop), cv2.IMREAD_COLOR)
        if image is None:
            raise StoreError(f"{self.root / crop}: missing or unreadable crop")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _tmp_name(suffix: str = "") -> str:
    return f"{os.getpid()}-{HOST}-{uuid.uuid4().hex}{suffix}"


def refuse_other_files(store_root, manifest: pd.DataFrame, allow: bool = False) -> list:
    """The videos of ``manifest`` that the store at ``store_root`` holds from other files
    (:meth:`FaceStore.conflicts`); a StoreError naming them unless ``allow`` (then they are kept, skipped,
    and returned). A store that does not exist yet holds nothing."""
    root = Path(store_root)
    if not (root / "extract_config.json").is_file():
        return []
    found = FaceStore.open(root).conflicts(manifest)
    if found and not allow:
        key, had, now = found[0]
        raise StoreError(f"{root.resolve()} holds {len(found)} of these videos extracted from other files (e.g. "
                         f"{key}: from {had}, now {now}); they would be skipped and their old faces used. Use another "
                         f"face store for this dataset, or allow it explicitly to keep the stored faces")
    return found

