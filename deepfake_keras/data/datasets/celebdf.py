"""Celeb-DF v2 as distributed -> the manifest."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .common import (CELEBDF_FOLDERS, CELEBDF_TEST_LIST, FAKE, REAL, DatasetError, manifest_table, need_dir,
                     videos_in)

# ---------------------------------------------------------------- Celeb-DF v2

def celebdf_manifest(root) -> pd.DataFrame:
    """Celeb-DF v2: ``Celeb-real/``, ``YouTube-real/``, ``Celeb-synthesis/`` and
    ``List_of_testing_videos.txt`` (``<label> <folder>/<file>``, 1 = real) at ``root``.

    Listed videos are ``test``, all others ``train``.
    """
    root = Path(root).resolve()
    need_dir(root, "Celeb-DF v2 root")
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
        for path, problem in videos_in(root / folder):
            rel = f"{folder}/{path.name}"
            vid = path.stem
            target, source = _celebdf_ids(vid, label)
            rows.append([vid, str(path), label, "test" if rel in test else "train", "celebdf", folder, "",
                         target, source, f"celebdf/{folder}/{vid}", f"celebdf-{celebdf_clip(vid, label)}", problem])
    found = {f"{r[5]}/{Path(r[1]).name}" for r in rows}
    absent = sorted(set(test) - found)
    if absent:
        raise DatasetError(f"{test_list} lists {len(absent)} video(s) not found under {root}, e.g. "
                           f"{', '.join(absent[:5])}")
    if not rows:
        raise DatasetError(f"Celeb-DF v2 at {root}: no video files in {', '.join(CELEBDF_FOLDERS)}")
    return manifest_table(rows)


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
