"""FaceForensics++ (and its DeepFakeDetection actors' subset) as distributed -> the manifest."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .common import (FAKE, FFPP_COMPRESSIONS, FFPP_METHODS, FFPP_SPLITS, REAL, DatasetError, checked_choices,
                     manifest_table, need_dir, videos_in)

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
        f"github.com/ondyari/FaceForensics); give their folder as the splits folder")


def ffpp_pairs(folder) -> dict:
    """``{video id: (split, "TTT_SSS")}`` for originals ``TTT``, ``SSS`` and fakes ``TTT_SSS``,
    ``SSS_TTT`` of each pair ``[TTT, SSS]`` of the split files (the pair in the file's order)."""
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
                have = out.setdefault(vid, (split, f"{a}_{b}"))
                if have[0] != split:
                    raise DatasetError(f"{path}: video {vid} is in both {have[0]} and {split}")
                if have[1] != f"{a}_{b}":
                    raise DatasetError(f"{path}: video {vid} is in two pairs, {have[1]} and {a}_{b}")
    return out


def read_ffpp_splits(folder) -> dict:
    """``{video id: split}`` for originals ``TTT`` and fakes ``TTT_SSS`` and ``SSS_TTT``."""
    return {vid: split for vid, (split, _) in ffpp_pairs(folder).items()}


def ffpp_manifest(root, compressions=("c40",), methods=FFPP_METHODS, splits=None) -> pd.DataFrame:
    """FaceForensics++ at ``root``: originals from ``original_sequences/youtube/<c>/videos``, fakes
    from ``manipulated_sequences/<method>/<c>/videos``; splits and groups from the official JSONs
    (see :func:`find_ffpp_splits`)."""
    root = Path(root).resolve()
    need_dir(root, "FaceForensics++ root")
    compressions = checked_choices(compressions, FFPP_COMPRESSIONS, "FF++ compression")
    methods = checked_choices(methods, FFPP_METHODS, "FF++ method")
    pair_of = ffpp_pairs(find_ffpp_splits(root, splits))
    rows = []
    for c in compressions:
        folders = [("original", need_dir(root / "original_sequences" / "youtube" / c / "videos",
                                          f"FF++ originals at {c}"))]
        folders += [(m, need_dir(root / "manipulated_sequences" / m / c / "videos", f"FF++ {m} at {c}"))
                    for m in methods]
        for method, folder in folders:
            for path, problem in videos_in(folder):
                vid = path.stem
                if method == "original":
                    label, target, source = REAL, vid, ""
                else:
                    parts = vid.split("_")
                    if len(parts) != 2:
                        raise DatasetError(f"{path}: FF++ fake videos are named TTT_SSS (target_source)")
                    label, (target, source) = FAKE, parts
                split, pair = pair_of.get(vid, ("unsplit", "_".join(sorted({target, source} - {""}))))
                rows.append([vid, str(path), label, split, "ffpp", method, c, target, source,
                             f"ffpp/{c}/{method}/{vid}", f"ffpp-{pair}", problem])
    if not rows:
        raise DatasetError(f"FF++ at {root}: no video files for compression {compressions} and methods {methods}")
    partners = {}  # an original outside the split files: the partner its fakes name, if only one
    for a, b in (ids for r in rows if r[2] == FAKE for ids in ((r[7], r[8]), (r[8], r[7]))):
        partners.setdefault(a, set()).add(b)
    for r in rows:
        if r[2] == REAL and r[0] not in pair_of and len(partners.get(r[0], ())) == 1:
            r[10] = f"ffpp-{'_'.join(sorted({r[0], *partners[r[0]]}))}"
    return manifest_table(rows)


# ---------------------------------------------------------------- DFD (FF++ DeepFakeDetection)

def dfd_manifest(root, compressions=("c40",)) -> pd.DataFrame:
    """FF++'s DeepFakeDetection (the actors' subset) at the FF++ ``root``: ``original_sequences/actors/<c>/
    videos/01__scene.mp4`` (real, actor 01), ``manipulated_sequences/DeepFakeDetection/<c>/videos/01_02__scene__
    XXXXXXXX.mp4`` (02's face in 01's scene). No official split (``unsplit``); grouped by the actor whose
    scene it is (``dfd-01``): a fake 01_02 stays with 01's originals, the footage it was made from. Its
    inserted face (02) may fall on the other side of a split; grouping by both actors would chain the 28
    actors, paired many ways, into a handful of groups, too few to split."""
    root = Path(root).resolve()
    need_dir(root, "FaceForensics++ root (for DeepFakeDetection)")
    compressions = checked_choices(compressions, FFPP_COMPRESSIONS, "FF++ compression")
    rows = []
    for c in compressions:
        for method, folder in (("original", root / "original_sequences/actors" / c / "videos"),
                               ("DeepFakeDetection", root / "manipulated_sequences/DeepFakeDetection" / c / "videos")):
            for path, problem in videos_in(need_dir(folder, f"DFD {method} videos at {c}")):
                parts = path.stem.split("__")
                actors = parts[0].split("_")
                if method == "original" and len(parts) == 2 and len(actors) == 1 and all(parts):
                    label, target, source = REAL, actors[0], ""
                elif method != "original" and len(parts) == 3 and len(actors) == 2 and all(parts + actors):
                    label, (target, source) = FAKE, actors
                else:
                    raise DatasetError(f"{path}: DFD videos are named 01__scene (originals) and "
                                       f"01_02__scene__XXXXXXXX (fakes)")
                rows.append([path.stem, str(path), label, "unsplit", "dfd", method, c, target, source,
                             f"dfd/{c}/{method}/{path.stem}", f"dfd-{target}", problem])
    if not rows:
        raise DatasetError(f"DFD at {root}: no video files for compression {compressions}")
    return manifest_table(rows)
