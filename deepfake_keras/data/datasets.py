"""Datasets as users hold them -> one manifest table.

Every loader returns a :class:`pandas.DataFrame` with the columns of
:data:`MANIFEST_COLUMNS`, one row per video:

========== =================================================================
video_id   the file name without extension (``004_982``, ``id0_0000``)
path       absolute path of the video file
label      1 = fake, 0 = real, -1 = unknown (plain folders). Note that
           Celeb-DF's own test list uses the opposite (1 = real).
split      ``train`` / ``val`` / ``test``; FF++ videos outside the official
           splits get ``unsplit``; plain folders get ``predict``
dataset    ``celebdf`` / ``ffpp`` / ``folder``
method     FF++: ``original`` or the manipulation (``NeuralTextures``...);
           Celeb-DF: its folder (``Celeb-real``, ``YouTube-real``,
           ``Celeb-synthesis``); folder: ``""``
compression FF++: ``raw`` / ``c23`` / ``c40``; others ``""``
target_id  whose video it is (FF++ ``TTT`` of ``TTT_SSS``; Celeb-DF ``id1`` of
           ``id1_id0_0007``; the person of a real video)
source_id  whose face was put in (FF++ ``SSS``; Celeb-DF ``id0``); ``""`` for reals
store_key  where the video's faces live in the face store, relative and unique
========== =================================================================
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..io import printable

MANIFEST_COLUMNS = ["video_id", "path", "label", "split", "dataset", "method", "compression",
                    "target_id", "source_id", "store_key"]
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
FAKE, REAL, UNKNOWN = 1, 0, -1

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
FFPP_COMPRESSIONS = ("raw", "c23", "c40")
FFPP_SPLITS = ("train", "val", "test")
CELEBDF_FOLDERS = {"Celeb-real": REAL, "YouTube-real": REAL, "Celeb-synthesis": FAKE}
CELEBDF_TEST_LIST = "List_of_testing_videos.txt"


class DatasetError(ValueError):
    """A dataset that is not as expected; the message says what is missing and where it looked."""


def _videos_in(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def _table(rows: list) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    df["label"] = df["label"].astype(int)
    return df.sort_values("store_key").reset_index(drop=True)


def _need_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{what} not found: expected the folder {path}")
    return path


# ---------------------------------------------------------------- Celeb-DF v2

def celebdf_manifest(root) -> pd.DataFrame:
    """Celeb-DF v2: ``Celeb-real/``, ``YouTube-real/``, ``Celeb-synthesis/`` and
    ``List_of_testing_videos.txt`` (``<label> <folder>/<file>``, 1 = real) at ``root``.

    Listed videos are ``test``, all others ``train``.
    """
    root = Path(root).resolve()
    _need_dir(root, "Celeb-DF v2 root")
    missing = [name for name in CELEBDF_FOLDERS if not (root / name).is_dir()]
    if missing:
        raise DatasetError(f"Celeb-DF v2 at {root}: missing folder(s) {', '.join(missing)}; expected "
                           f"{', '.join(CELEBDF_FOLDERS)} and {CELEBDF_TEST_LIST} at the root")
    test_list = root / CELEBDF_TEST_LIST
    if not test_list.is_file():
        raise DatasetError(f"Celeb-DF v2 at {root}: missing {CELEBDF_TEST_LIST} (the official test split, "
                           f"518 lines '<label> <folder>/<file>', 1 = real); expected it at {test_list}")
    test = {}
    for n, line in enumerate(test_list.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            raise DatasetError(f"{test_list} line {n}: expected '<0|1> <folder>/<file>', got {line!r}")
        rel = parts[1]
        folder = rel.split("/")[0]
        if folder not in CELEBDF_FOLDERS:
            raise DatasetError(f"{test_list} line {n}: unknown folder {folder!r} (expected one of {list(CELEBDF_FOLDERS)})")
        label = REAL if parts[0] == "1" else FAKE
        if label != CELEBDF_FOLDERS[folder]:
            raise DatasetError(f"{test_list} line {n}: label {parts[0]} contradicts folder {folder} "
                               f"(in this file 1 = real, 0 = fake)")
        test[rel] = label
    rows = []
    for folder, label in CELEBDF_FOLDERS.items():
        for path in _videos_in(root / folder):
            rel = f"{folder}/{path.name}"
            vid = path.stem
            target, source = _celebdf_ids(vid, label)
            rows.append([vid, str(path), label, "test" if rel in test else "train", "celebdf", folder, "",
                         target, source, f"celebdf/{folder}/{vid}"])
    found = {f"{r[5]}/{Path(r[1]).name}" for r in rows}
    absent = sorted(set(test) - found)
    if absent:
        raise DatasetError(f"{test_list} lists {len(absent)} video(s) not found under {root}, e.g. "
                           f"{', '.join(absent[:5])}")
    if not rows:
        raise DatasetError(f"Celeb-DF v2 at {root}: no video files in {', '.join(CELEBDF_FOLDERS)}")
    return _table(rows)


def celebdf_clip(video_id: str, label: int) -> str:
    """The real clip a Celeb-DF video was made from: ``id1_0007`` for the fake
    ``id1_id0_0007`` and for the real ``id1_0007`` itself; any other name
    (``YouTube-real/00170``) is its own clip. Used to keep a fake and its source
    clip on the same side of a validation split.

    >>> celebdf_clip("id1_id0_0007", 1), celebdf_clip("id1_0007", 0), celebdf_clip("00170", 0)
    ('id1_0007', 'id1_0007', '00170')
    """
    parts = video_id.split("_")
    if label == FAKE and len(parts) >= 3 and parts[0].startswith("id"):
        return f"{parts[0]}_{'_'.join(parts[2:])}"
    return video_id


def _celebdf_ids(video_id: str, label: int) -> tuple:
    parts = video_id.split("_")
    if label == FAKE and len(parts) >= 3:  # id1_id0_0007: id0's face in id1's video
        return parts[0], parts[1]
    if label == REAL and len(parts) >= 2 and parts[0].startswith("id"):  # id0_0000
        return parts[0], ""
    return "", ""  # YouTube-real/00170: identity unknown


# ---------------------------------------------------------------- FaceForensics++

def find_ffpp_splits(root, splits=None) -> Path:
    """The folder holding ``train.json``, ``val.json`` and ``test.json``: ``splits`` if
    given, else the first of ``<root>/splits``, ``<root>/dataset/splits``, ``<root>``."""
    candidates = [Path(splits)] if splits else [Path(root) / "splits", Path(root) / "dataset" / "splits", Path(root)]
    for folder in candidates:
        if all((folder / f"{s}.json").is_file() for s in FFPP_SPLITS):
            return folder
    looked = "; ".join(str(c) for c in candidates)
    raise DatasetError(
        f"FF++ split files train.json, val.json, test.json not found (looked in: {looked}). They are the "
        f"official [target, source] pair lists from the FaceForensics project (dataset/splits/ in "
        f"github.com/ondyari/FaceForensics); pass their folder with --splits")


def read_ffpp_splits(folder) -> dict:
    """``{video id: split}`` for originals ``TTT`` and fakes ``TTT_SSS`` and ``SSS_TTT``."""
    out = {}
    for split in FFPP_SPLITS:
        path = Path(folder) / f"{split}.json"
        try:
            pairs = json.loads(path.read_text())
            pairs = [(str(a), str(b)) for a, b in pairs]
        except (ValueError, TypeError) as e:
            raise DatasetError(f"{path}: not a JSON list of [target, source] id pairs ({e})") from e
        for a, b in pairs:
            for vid in (a, b, f"{a}_{b}", f"{b}_{a}"):
                if out.setdefault(vid, split) != split:
                    raise DatasetError(f"{path}: video {vid} is in both {out[vid]} and {split}")
    return out


def ffpp_manifest(root, compressions=("c40",), methods=FFPP_METHODS, splits=None) -> pd.DataFrame:
    """FaceForensics++ at ``root``: originals from ``original_sequences/youtube/<c>/videos``, fakes
    from ``manipulated_sequences/<method>/<c>/videos``; splits from the official JSONs
    (see :func:`find_ffpp_splits`)."""
    root = Path(root).resolve()
    _need_dir(root, "FaceForensics++ root")
    compressions = [compressions] if isinstance(compressions, str) else list(compressions)
    methods = [methods] if isinstance(methods, str) else list(methods)
    for c in compressions:
        if c not in FFPP_COMPRESSIONS:
            raise DatasetError(f"unknown FF++ compression {c!r}; expected one of {FFPP_COMPRESSIONS}")
    for m in methods:
        if m not in FFPP_METHODS:
            raise DatasetError(f"unknown FF++ method {m!r}; expected one of {FFPP_METHODS}")
    split_of = read_ffpp_splits(find_ffpp_splits(root, splits))
    rows = []
    for c in compressions:
        folders = [("original", _need_dir(root / "original_sequences" / "youtube" / c / "videos",
                                          f"FF++ originals at {c}"))]
        folders += [(m, _need_dir(root / "manipulated_sequences" / m / c / "videos", f"FF++ {m} at {c}"))
                    for m in methods]
        for method, folder in folders:
            for path in _videos_in(folder):
                vid = path.stem
                if method == "original":
                    label, target, source = REAL, vid, ""
                else:
                    parts = vid.split("_")
                    if len(parts) != 2:
                        raise DatasetError(f"{path}: FF++ fake videos are named TTT_SSS (target_source)")
                    label, (target, source) = FAKE, parts
                rows.append([vid, str(path), label, split_of.get(vid, "unsplit"), "ffpp", method, c,
                             target, source, f"ffpp/{c}/{method}/{vid}"])
    if not rows:
        raise DatasetError(f"FF++ at {root}: no video files for compression {compressions} and methods {methods}")
    return _table(rows)


# ---------------------------------------------------------------- a plain folder

def folder_manifest(root) -> pd.DataFrame:
    """Every video file under ``root`` (recursively), label unknown, for inference."""
    root = Path(root).resolve()
    if root.is_file():
        paths, base = [root], root.parent
    else:
        _need_dir(root, "video folder")
        paths = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        base = root
    if not paths:
        raise DatasetError(f"no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) under {root}")
    rows = []
    for path in paths:
        rel = printable(path.relative_to(base).as_posix())  # keeps the extension: a.mp4 and a.avi stay apart
        rows.append([printable(path.stem), str(path), UNKNOWN, "predict", "folder", "", "", "", "", f"folder/{rel}"])
    return _table(rows)


LOADERS = {"celebdf": celebdf_manifest, "ffpp": ffpp_manifest, "folder": folder_manifest}
