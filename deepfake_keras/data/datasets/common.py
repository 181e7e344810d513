"""What every dataset loader shares: the manifest's columns, entries on disk and the table helpers."""
from __future__ import annotations

import csv
import errno
import os
import stat
from pathlib import Path

import pandas as pd

from ...io import printable

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
IS_FOLDER, UNLISTABLE = "folder", "cannot list this folder"  # path_problem of a folder
_NOT_REGULAR = {stat.S_ISFIFO: "FIFO", stat.S_ISSOCK: "socket", stat.S_ISCHR: "character device",
                stat.S_ISBLK: "block device"}


class DatasetError(ValueError):
    """A dataset that is not as expected; the message says what is missing and where it looked."""


class MissingVideos(DatasetError):
    """A label file lists videos that are not there (raised with ``missing="error"``)."""


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
    return sorted((p, q) for p, q in walk(root, skip)
                  if q.startswith(UNLISTABLE) or p.suffix.lower() in VIDEO_EXTENSIONS)


def walk(root: Path, skip=()):
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
            yield folder, f"{UNLISTABLE} ({e.strerror})"
            continue
        for name in names:
            problem = path_problem(folder / name)
            if problem == IS_FOLDER:
                todo.append(folder / name)
            else:
                yield folder / name, problem


def videos_in(folder: Path) -> list:
    """``[(path, problem)]`` of the video entries directly in ``folder`` (not in sub-folders)."""
    return [(p, problem) for p in sorted(folder.iterdir()) if p.suffix.lower() in VIDEO_EXTENSIONS
            for problem in [path_problem(p)] if problem != IS_FOLDER]


def manifest_table(rows: list) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=MANIFEST_COLUMNS + [PROBLEM])
    df["label"] = df["label"].astype(int)
    twice = df.loc[df["store_key"].duplicated(), "store_key"].tolist()[:1]
    if twice:
        paths = ", ".join(map(printable, df.loc[df["store_key"] == twice[0], "path"]))
        raise DatasetError(f"two videos would share the store key {twice[0]!r} (the same name twice?): {paths}")
    return df.sort_values("store_key").reset_index(drop=True)


def need_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{what} not found: expected the folder {path}")
    return path


def checked_choices(values, allowed: tuple, what: str) -> list:
    values = [values] if isinstance(values, str) else list(values)
    for value in values:
        if value not in allowed:
            raise DatasetError(f"unknown {what} {value!r}; expected one of {allowed}")
    return values


def relative_name(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` (``_abs/<path>`` outside it), never with ``..``, printable."""
    path = Path(os.path.normpath(path))
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path("_abs", *path.parts[1:])
    return printable(rel.as_posix())


def store_key_for(prefix: str, root: Path, path: Path, suffix: bool = True) -> str:
    """The store key ``<prefix>/<path relative to root>``; ``suffix=False`` drops the extension."""
    return f"{prefix}/{relative_name(root, path if suffix else Path(path).with_suffix(''))}"


def read_labels(path: Path, name_column: str, extra=()) -> list:
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


def listed_problems(paths: list, source, missing: str, known=None) -> list:
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
        raise MissingVideos(f"{source} lists {len(absent)} video(s) not found: {', '.join(absent[:5])}"
                            f"{' ...' if len(absent) > 5 else ''}")
    return [f"listed in {printable(source)} but not found" if q == "file not found" else q for q in problems]
