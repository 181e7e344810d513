"""Folders of videos -> the manifest: labelled (real/ and fake/, or a labels CSV) and plain (labels unknown)."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ...io import printable
from .common import (FAKE, IS_FOLDER, REAL, UNKNOWN, VIDEO_EXTENSIONS, DatasetError, listed_problems,
                     manifest_table, need_dir, path_problem, read_labels, scan_videos, store_key_for)

# ---------------------------------------------------------------- a labelled folder

def labelled_manifest(root, labels=None, missing: str = "error") -> pd.DataFrame:
    """Videos labelled by folder, ``<root>/real/**`` and ``<root>/fake/**`` (any depth), or by a CSV
    ``labels`` with the columns ``path,label`` (label ``real``/``fake`` or ``0``/``1``; paths relative to
    ``root`` or absolute) and optionally ``group`` (for grouped splits; default: the video itself) and
    ``split`` (default ``unsplit``). A listed file that is not there raises (``missing="error"``) or is
    a row with that problem (``missing="record"``)."""
    root = Path(root).resolve()
    need_dir(root, "labelled video folder")
    if labels is not None:
        if not Path(labels).is_file():
            raise DatasetError(f"label file not found: {labels}")
        entries = [(Path(os.path.normpath(root / name)), label, extra)
                   for _, name, label, extra in read_labels(Path(labels), "path", extra=("group", "split"))]
        if not entries:
            raise DatasetError(f"{labels}: lists no video")
        problems = listed_problems([path for path, _, _ in entries], labels, missing)
        found = [(path, label, extra["group"], extra["split"] or "unsplit", problem)
                 for (path, label, extra), problem in zip(entries, problems)]
    else:
        folders = {name: root / name for name in ("fake", "real") if (root / name).is_dir()}
        if not folders:
            raise DatasetError(f"{root}: neither a real/ nor a fake/ folder (a labelled folder holds real/ and "
                               f"fake/, or give a CSV path,label with labels=)")
        listed_problems([], "", missing)
        found = [(path, FAKE if name == "fake" else REAL, "", "unsplit", problem)
                 for name, folder in sorted(folders.items()) for path, problem in scan_videos(folder)]
        if not found:
            raise DatasetError(f"{root}: no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) in "
                               f"{' or '.join(f.name + '/' for f in folders.values())}")
    keys = [store_key_for("labelled", root, path) for path, *_ in found]
    return manifest_table([[printable(path.stem), str(path), label, split, "labelled", "", "", "", "", key, group or key,
                    problem] for key, (path, label, group, split, problem) in zip(keys, found)])


# ---------------------------------------------------------------- a plain folder

def folder_manifest(root) -> pd.DataFrame:
    """Every video file under ``root`` (recursively, :func:`scan_videos`), label unknown, for
    inference; entries that cannot be read (dangling or looping links, FIFOs...) are rows with their
    ``problem``."""
    root = Path(os.path.abspath(root))
    problem = path_problem(root)
    if problem == "file not found":
        raise DatasetError(f"video folder not found: expected the folder {root}")
    if problem in ("", IS_FOLDER):
        root = root.resolve()
    entries, base = scan_videos(root), (root if problem == IS_FOLDER else root.parent)
    if not entries:
        raise DatasetError(f"no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) under {root}")
    rows = []
    for path, problem in entries:
        key = store_key_for("folder", base, path)  # keeps the extension: a.mp4 and a.avi stay apart
        rows.append([printable(path.stem), str(path), UNKNOWN, "predict", "folder", "", "", "", "", key, key, problem])
    return manifest_table(rows)
