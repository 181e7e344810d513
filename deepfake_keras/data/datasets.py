"""Datasets as users hold them -> one manifest table.

Every loader (:data:`LOADERS`) returns a :class:`pandas.DataFrame` with the columns of
:data:`MANIFEST_COLUMNS`, one row per video, then ``problem``:

=========== =================================================================
video_id    the file name without extension (``004_982``, ``id0_0000``)
path        absolute path of the video file
label       1 = fake, 0 = real, -1 = unknown (plain folders). Celeb-DF's own test list uses the opposite
split       ``train`` / ``val`` / ``test`` where the dataset says (DFDC: its metadata's; its test set's
            ``labels.csv``: ``test``); FF++ outside the official splits, DFD, labelled folders without a
            ``split`` column: ``unsplit``; plain folders: ``predict``
dataset     ``celebdf`` / ``ffpp`` / ``dfd`` / ``dfdc`` / ``labelled`` / ``folder``
method      FF++, DFD: ``original`` or the manipulation (``NeuralTextures``, ``DeepFakeDetection``);
            Celeb-DF: its folder (``Celeb-real``...); DFDC: the video's folder (``dfdc_train_part_0``)
compression FF++, DFD: ``raw`` / ``c23`` / ``c40``; others ``""``
target_id   whose video it is (FF++ ``TTT`` of ``TTT_SSS``; Celeb-DF ``id1`` of ``id1_id0_0007``; DFD
            actor ``01`` of ``01_02__scene__XXXX``; DFDC the real video it is, or was made from)
source_id   whose face was put in (FF++ ``SSS``; Celeb-DF ``id0``; DFD ``02``); ``""`` for reals, unknowns
store_key   where the video's faces live in the face store, relative and unique
group       videos that must stay on one side of any split (grouped splits and cross-validation):
            FF++ ``ffpp-TTT_SSS``, the official pair ``[TTT, SSS]`` (the split file's order) shared by
            originals TTT, SSS and fakes TTT_SSS, SSS_TTT; outside the split files a fake's two ids
            sorted, an original's with the one partner its fakes in the manifest name (else its own
            id). Celeb-DF ``celebdf-<clip>`` (:func:`celebdf_clip`). DFDC ``dfdc-<original>``. DFD
            ``dfd-<actor>`` whose scene it is: a fake ``01_02__...`` joins actor 01's originals (the
            face is 02's, but grouping by both actors would chain nearly all actors into one group).
            Labelled folder: its CSV's ``group``, else the store key; plain folder: the store key
=========== =================================================================

``problem`` (not stored): ``""``, or why the entry cannot be read as a video (:func:`path_problem`, ``listed
in ... but not found``); the extractor records such a row as failed with that reason, without opening it.
"""
from __future__ import annotations

import csv
import errno
import json
import os
import stat
from pathlib import Path

import pandas as pd

from ..io import printable

MANIFEST_COLUMNS = ["video_id", "path", "label", "split", "dataset", "method", "compression",
                    "target_id", "source_id", "store_key", "group"]
PROBLEM = "problem"
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
FAKE, REAL, UNKNOWN = 1, 0, -1

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
FFPP_COMPRESSIONS = ("raw", "c23", "c40")
FFPP_SPLITS = ("train", "val", "test")
CELEBDF_FOLDERS = {"Celeb-real": REAL, "YouTube-real": REAL, "Celeb-synthesis": FAKE}
CELEBDF_TEST_LIST = "List_of_testing_videos.txt"
MISSING = ("error", "record")  # what a loader does with a listed video whose file is not there
IS_FOLDER, _UNLISTABLE = "folder", "cannot list this folder"  # path_problem of a folder
_NOT_REGULAR = {stat.S_ISFIFO: "FIFO", stat.S_ISSOCK: "socket", stat.S_ISCHR: "character device",
                stat.S_ISBLK: "block device"}


class DatasetError(ValueError):
    """A dataset that is not as expected; the message says what is missing and where it looked."""


# ---------------------------------------------------------------- entries on disk

def path_problem(path) -> str:
    """Why ``path`` cannot be read as a video file: ``""`` for a regular file (or a link to one), ``"folder"``
    (:data:`IS_FOLDER`), ``file not found``, ``dangling symbolic link``, ``symbolic link loop``, ``not a regular
    file (FIFO)`` (socket, device) or ``cannot be read (<error>)``. Only ``stat``: a FIFO is never opened."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        try:
            return f"dangling symbolic link (to {printable(os.readlink(path))}, which does not exist)"
        except OSError:  # not a link: nothing there
            return "file not found"
    except OSError as e:
        return ("symbolic link loop (too many levels of symbolic links)" if e.errno == errno.ELOOP
                else f"cannot be read ({e.strerror})")
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return "" if stat.S_ISREG(mode) else IS_FOLDER
    kind = next((name for test, name in _NOT_REGULAR.items() if test(mode)), "special file")
    return f"not a regular file ({kind})"


def scan_videos(root, skip=()) -> list:
    """``[(path, problem)]``, sorted: every entry under the folder ``root`` whose name has a video
    extension, at any depth, with ``""`` or why it cannot be read (:func:`path_problem`); a sub-folder
    that cannot be listed is an entry too. Links to folders are followed, each folder once (so a link
    loop ends); the folders ``skip`` are not entered. ``root`` that is not a folder gives itself:
    ``[(root, its problem)]``."""
    root = Path(root)
    problem = path_problem(root)
    if problem != IS_FOLDER:
        return [(root, problem)]
    return sorted((p, q) for p, q in _walk(root, skip)
                  if q.startswith(_UNLISTABLE) or p.suffix.lower() in VIDEO_EXTENSIONS)


def _walk(root: Path, skip=()):
    """``(path, problem)`` of every entry but folders under the folder ``root`` (:func:`scan_videos`)."""
    seen = {(st.st_dev, st.st_ino) for st in (os.stat(s) for s in skip if path_problem(s) == IS_FOLDER)}
    todo = [root]
    while todo:
        folder = todo.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            names = sorted(os.listdir(folder))
        except OSError as e:
            yield folder, f"{_UNLISTABLE} ({e.strerror})"
            continue
        for name in names:
            problem = path_problem(folder / name)
            if problem == IS_FOLDER:
                todo.append(folder / name)
            else:
                yield folder / name, problem


def _videos_in(folder: Path) -> list:
    """``[(path, problem)]`` of the video entries directly in ``folder`` (not in sub-folders)."""
    return [(p, problem) for p in sorted(folder.iterdir()) if p.suffix.lower() in VIDEO_EXTENSIONS
            for problem in [path_problem(p)] if problem != IS_FOLDER]


def _table(rows: list) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=MANIFEST_COLUMNS + [PROBLEM])
    df["label"] = df["label"].astype(int)
    twice = df.loc[df["store_key"].duplicated(), "store_key"].tolist()[:1]
    if twice:
        paths = ", ".join(map(printable, df.loc[df["store_key"] == twice[0], "path"]))
        raise DatasetError(f"two videos would share the store key {twice[0]!r} (the same name twice?): {paths}")
    return df.sort_values("store_key").reset_index(drop=True)


def _need_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{what} not found: expected the folder {path}")
    return path


def _choices(values, allowed: tuple, what: str) -> list:
    values = [values] if isinstance(values, str) else list(values)
    for value in values:
        if value not in allowed:
            raise DatasetError(f"unknown {what} {value!r}; expected one of {allowed}")
    return values


def _rel(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` (``_abs/<path>`` outside it), never with ``..``, printable."""
    path = Path(os.path.normpath(path))
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path("_abs", *path.parts[1:])
    return printable(rel.as_posix())


def _key(prefix: str, root: Path, path: Path, suffix: bool = True) -> str:
    """The store key ``<prefix>/<path relative to root>``; ``suffix=False`` drops the extension."""
    return f"{prefix}/{_rel(root, path if suffix else Path(path).with_suffix(''))}"


def _read_labels(path: Path, name_column: str, extra=()) -> list:
    """``[(line, name, label, {column: value})]`` of a label CSV (``label``: real/fake or 0/1, any case)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            if name_column not in columns or "label" not in columns:
                raise DatasetError(f"{path}: expected a header with the columns {name_column},label, got {columns}")
            rows = [(reader.line_num, r) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"{path}: cannot be read as a CSV label file ({e})") from e
    out = []
    for line, r in rows:
        label = {"fake": FAKE, "1": FAKE, "real": REAL, "0": REAL}.get((r["label"] or "").strip().lower())
        if label is None:
            raise DatasetError(f"{path} line {line}: unknown label {r['label']!r} (expected real, fake, 0 or 1)")
        if not (r[name_column] or "").strip():
            raise DatasetError(f"{path} line {line}: empty {name_column}")
        out.append((line, r[name_column].strip(), label, {c: (r.get(c) or "").strip() for c in extra}))
    return out


def _listed_problems(paths: list, source, missing: str, known=None) -> list:
    """The ``problem`` of each path a label file ``source`` lists (``known``: ``{path: problem}`` found
    by a walk); a listed file that is not there raises with ``missing="error"``, a folder raises."""
    if missing not in MISSING:
        raise DatasetError(f"missing={missing!r}: expected one of {MISSING}")
    problems = [known[p] if known and p in known else path_problem(p) for p in paths]
    for path, problem in zip(paths, problems):
        if problem == IS_FOLDER:
            raise DatasetError(f"{source}: lists {printable(path)}, a folder, not a video file")
    absent = [printable(p) for p, problem in zip(paths, problems) if problem == "file not found"]
    if absent and missing == "error":
        raise DatasetError(f"{source} lists {len(absent)} video(s) not found: {', '.join(absent[:5])}"
                           f"{' ...' if len(absent) > 5 else ''}")
    return [f"listed in {printable(source)} but not found" if q == "file not found" else q for q in problems]


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
        for path, problem in _videos_in(root / folder):
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
    _need_dir(root, "FaceForensics++ root")
    compressions = _choices(compressions, FFPP_COMPRESSIONS, "FF++ compression")
    methods = _choices(methods, FFPP_METHODS, "FF++ method")
    pair_of = ffpp_pairs(find_ffpp_splits(root, splits))
    rows = []
    for c in compressions:
        folders = [("original", _need_dir(root / "original_sequences" / "youtube" / c / "videos",
                                          f"FF++ originals at {c}"))]
        folders += [(m, _need_dir(root / "manipulated_sequences" / m / c / "videos", f"FF++ {m} at {c}"))
                    for m in methods]
        for method, folder in folders:
            for path, problem in _videos_in(folder):
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
    return _table(rows)


# ---------------------------------------------------------------- DFD (FF++ DeepFakeDetection)

def dfd_manifest(root, compressions=("c40",)) -> pd.DataFrame:
    """FF++'s DeepFakeDetection (the actors' subset) at the FF++ ``root``: ``original_sequences/actors/<c>/
    videos/01__scene.mp4`` (real, actor 01), ``manipulated_sequences/DeepFakeDetection/<c>/videos/01_02__scene__
    XXXXXXXX.mp4`` (02's face in 01's scene). No official split (``unsplit``); grouped by actor (``dfd-01``)."""
    root = Path(root).resolve()
    _need_dir(root, "FaceForensics++ root (for DeepFakeDetection)")
    compressions = _choices(compressions, FFPP_COMPRESSIONS, "FF++ compression")
    rows = []
    for c in compressions:
        for method, folder in (("original", root / "original_sequences/actors" / c / "videos"),
                               ("DeepFakeDetection", root / "manipulated_sequences/DeepFakeDetection" / c / "videos")):
            for path, problem in _videos_in(_need_dir(folder, f"DFD {method} videos at {c}")):
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
    return _table(rows)


# ---------------------------------------------------------------- DFDC

def dfdc_manifest(root, labels=None, missing: str = "error") -> pd.DataFrame:
    """The DFDC as distributed, under ``root``: folders (``dfdc_train_part_N/``) holding a ``metadata.json``
    (``{"x.mp4": {"label": "FAKE"|"REAL", "split": "train", "original": "y.mp4"}}``) and its videos, and
    folders holding the public test set's ``labels.csv`` (``filename,label``, 1 = fake; split ``test``)
    beside its videos; ``labels``: one more such CSV, anywhere, its file names relative to ``root``.
    A video nothing lists but a listed fake names as its ``original`` is real (the fake's split).
    A listed video that is not there raises (``missing="error"``) or is a row with that problem
    (``missing="record"``); a video under ``root`` that nothing labels raises."""
    _listed_problems([], "", missing)
    root = Path(root).resolve()
    _need_dir(root, "DFDC root")
    entries = dict(_walk(root))
    metadata = sorted(p for p in entries if p.name == "metadata.json")
    tables = [(p, p.parent) for p in sorted(entries) if p.name == "labels.csv"]
    tables += [(Path(labels), root)] if labels else []
    if not metadata and not tables:
        raise DatasetError(f"DFDC at {root}: no metadata.json (a dfdc_train_part_N folder) nor labels.csv (the "
                           f"test set) found; is this the DFDC as distributed?")
    listed = {}  # path -> (label, split, original's file name, the file listing it)
    for meta in metadata:
        try:
            items = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DatasetError(f"{meta}: not a DFDC metadata.json ({e})") from e
        if not isinstance(items, dict):
            raise DatasetError(f"{meta}: not a DFDC metadata.json (expected an object of file names)")
        for name, item in sorted(items.items()):
            label = str(item.get("label", "")).upper() if isinstance(item, dict) else ""
            if label not in ("FAKE", "REAL"):
                raise DatasetError(f"{meta}: {name!r} has no label FAKE or REAL (got {item!r})")
            listed[Path(os.path.normpath(meta.parent / name))] = (FAKE if label == "FAKE" else REAL, str(
                item.get("split") or "train"), str(item.get("original") or ""), meta)
    for table, base in tables:
        for _, name, label, _ in _read_labels(table, "filename"):
            listed[Path(os.path.normpath(base / name))] = (label, "test", "", table)
    by_name = {p.name: p for p, problem in entries.items() if p.suffix.lower() in VIDEO_EXTENSIONS}
    for label, split, original, source in list(listed.values()):
        found = by_name.get(original)
        if label == FAKE and found is not None and found not in listed:
            listed[found] = (REAL, split, "", source)
    problem_of = {}
    for source in sorted({v[3] for v in listed.values()}):  # raises for the first file listing absent videos
        paths = [p for p, v in listed.items() if v[3] == source]
        problem_of.update(zip(paths, _listed_problems(paths, source, missing, entries)))
    rows = []
    for path, (label, split, original, source) in listed.items():
        group = printable(Path(original).stem if label == FAKE and original else path.stem)
        rows.append([printable(path.stem), str(path), label, split, "dfdc",
                     "" if path.parent == root else _rel(root, path.parent), "", group, "",
                     _key("dfdc", root, path, suffix=False), f"dfdc-{group}", problem_of[path]])
    unlabelled = sorted(p for p, problem in entries.items() if p not in listed
                        and (p.suffix.lower() in VIDEO_EXTENSIONS or problem.startswith(_UNLISTABLE)))
    if unlabelled:
        raise DatasetError(f"DFDC at {root}: {len(unlabelled)} video(s) or unreadable folder(s) in no metadata.json "
                           f"or labels.csv, e.g. {', '.join(_rel(root, p) for p in unlabelled[:5])}; give their "
                           f"labels in a CSV (filename,label; 1 = fake) with labels=")
    return _table(rows)


# ---------------------------------------------------------------- a labelled folder

def labelled_manifest(root, labels=None, missing: str = "error") -> pd.DataFrame:
    """Videos labelled by folder, ``<root>/real/**`` and ``<root>/fake/**`` (any depth), or by a CSV
    ``labels`` with the columns ``path,label`` (label ``real``/``fake`` or ``0``/``1``; paths relative to
    ``root`` or absolute) and optionally ``group`` (for grouped splits; default: the video itself) and
    ``split`` (default ``unsplit``). A listed file that is not there raises (``missing="error"``) or is
    a row with that problem (``missing="record"``)."""
    root = Path(root).resolve()
    _need_dir(root, "labelled video folder")
    if labels is not None:
        if not Path(labels).is_file():
            raise DatasetError(f"label file not found: {labels}")
        entries = [(Path(os.path.normpath(root / name)), label, extra)
                   for _, name, label, extra in _read_labels(Path(labels), "path", extra=("group", "split"))]
        if not entries:
            raise DatasetError(f"{labels}: lists no video")
        problems = _listed_problems([path for path, _, _ in entries], labels, missing)
        found = [(path, label, extra["group"], extra["split"] or "unsplit", problem)
                 for (path, label, extra), problem in zip(entries, problems)]
    else:
        folders = {name: root / name for name in ("fake", "real") if (root / name).is_dir()}
        if not folders:
            raise DatasetError(f"{root}: neither a real/ nor a fake/ folder (a labelled folder holds real/ and "
                               f"fake/, or give a CSV path,label with labels=)")
        _listed_problems([], "", missing)
        found = [(path, FAKE if name == "fake" else REAL, "", "unsplit", problem)
                 for name, folder in sorted(folders.items()) for path, problem in scan_videos(folder)]
        if not found:
            raise DatasetError(f"{root}: no video files ({', '.join(sorted(VIDEO_EXTENSIONS))}) in "
                               f"{' or '.join(f.name + '/' for f in folders.values())}")
    keys = [_key("labelled", root, path) for path, *_ in found]
    return _table([[printable(path.stem), str(path), label, split, "labelled", "", "", "", "", key, group or key,
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
        key = _key("folder", base, path)  # keeps the extension: a.mp4 and a.avi stay apart
        rows.append([printable(path.stem), str(path), UNKNOWN, "predict", "folder", "", "", "", "", key, key, problem])
    return _table(rows)


LOADERS = {"celebdf": celebdf_manifest, "ffpp": ffpp_manifest, "dfd": dfd_manifest, "dfdc": dfdc_manifest,
           "labelled": labelled_manifest, "folder": folder_manifest}
