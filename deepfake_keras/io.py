"""The bottom layer: atomic writes, JSON, file hashes, printable names, CSV text safe to open in a
spreadsheet, the log line and library versions. It imports nothing of the package, so every module
may import it.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
import uuid
from pathlib import Path


def write_atomic(path, data: bytes, exclusive: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file beside it (:func:`temp_path`) and a rename,
    so that a reader (or a run killed half-way) never sees a partial file under the final name.

    ``exclusive=True``: write only if ``path`` does not exist yet, by hard-linking the complete
    temporary file to the final name; of several processes writing at once one wins and the
    others leave the winner's file (a file system without hard links: a rename if still absent).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        tmp.write_bytes(data)
        if not exclusive:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            except OSError:
                if not path.exists():
                    os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def temp_path(path: Path) -> Path:
    """The temporary name :func:`write_atomic` writes ``path`` under first."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def is_temp_of(name: str, final_name: str) -> bool:
    """Whether the file name ``name`` is a :func:`temp_path` of a file called ``final_name``."""
    return name.startswith(f".{final_name}.") and name.endswith(".tmp")


def json_bytes(data) -> bytes:
    """``data`` as indented, key-sorted JSON text (anything not JSON-native written with ``str``)."""
    return (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode()


def save_json(path, data) -> Path:
    """:func:`json_bytes` of ``data`` written atomically to ``path``."""
    return write_atomic(path, json_bytes(data))


def load_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def file_hash(path, algorithm: str = "sha256") -> str:
    """Hex digest of a file (``algorithm``: any :mod:`hashlib` name), read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_of(path) -> str:
    return file_hash(path, "sha256")


def printable(name) -> str:
    """A file name (str or path) with any bytes that are not UTF-8 (which Python keeps as lone
    surrogates) shown as ``\\xNN``, so that it can be printed and written to CSV and JSON files."""
    return os.fsencode(str(name)).decode("utf-8", "backslashreplace")


#: first characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection"), and the
#: quote itself, so that escaping can be undone exactly
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_text(table, **to_csv) -> str:
    """``table`` (a pandas DataFrame) as CSV text (``index=False`` unless given) that is safe to open
    in a spreadsheet.

    A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (a formula to
    Excel, LibreOffice and Google Sheets: ``=HYPERLINK(...)``, ``=cmd|' -C calc'!A0``) gets a leading
    single quote, the OWASP way; so does a text cell that starts with a quote, so that
    :func:`csv_unescape` gives every value back exactly. Numbers are left alone: cells of a numeric
    column, and text cells that are a plain decimal number (``-1.5``, ``+3``, ``-2e-05``, which a
    spreadsheet reads as that number, not as a formula). A carriage return inside a cell would end
    the row for most readers (pandas quotes only cells holding the line terminator, ``\\n``), so that a
    name ``a\\r=cmd...`` would put a formula at the start of a new row: when a text cell holds one,
    every text cell is quoted (``csv.QUOTE_NONNUMERIC``). Lone surrogates (file names that are not
    UTF-8) are written as ``\\xNN``, so the text always encodes as UTF-8. Column names are written as
    they are (they are the program's, not the user's).
    """
    import csv

    safe, options = table.copy(deep=False), {"index": False}
    for column in safe.columns:
        if safe[column].dtype.kind not in "biufcmM":  # text or mixed: numbers and dates are never formulas
            safe[column] = safe[column].map(_csv_cell)
            if any(isinstance(v, str) and "\r" in v for v in safe[column]):
                options["quoting"] = csv.QUOTE_NONNUMERIC
    text = safe.to_csv(**{**options, **to_csv})
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _csv_cell(value):
    if isinstance(value, str) and value.startswith(CSV_FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def write_csv(path, table, **to_csv) -> Path:
    """:func:`csv_text` of ``table`` written atomically (UTF-8) to ``path``."""
    return write_atomic(path, csv_text(table, **to_csv).encode("utf-8"))


def csv_unescape(table):
    """Undo :func:`csv_text`'s escaping in a DataFrame read back from such a CSV (in place; returned):
    the one leading single quote of every text cell that has one is removed."""
    for column in table.columns:
        if table[column].dtype.kind not in "biufcmM":
            table[column] = table[column].map(lambda v: v[1:] if isinstance(v, str) and v.startswith("'") else v)
    return table


def about(error: BaseException, setting: str) -> BaseException:
    """``error``, marked as mended through the setting ``setting`` (such as ``"out"``, the output folder, or
    ``"allow_missing"``): the library states facts in its messages, and the command line names its own
    option for the setting (``--out``, ``--allow-missing``; ``deepfake_keras.cli``). Returns ``error``."""
    error.setting = setting
    return error


def log(message: str) -> None:
    """One line on stderr, prefixed ``[deepfake-keras]``."""
    print(f"[deepfake-keras] {message}", file=sys.stderr, flush=True)


#: the distributions whose versions change results or file formats (recorded in every config.json,
#: bundle and training record)
VERSIONED = ("tensorflow", "keras", "tensorflow-addons", "mtcnn", "keras-facenet", "numpy", "pandas",
             "opencv-python-headless", "scikit-learn", "skops", "h5py", "imageio-ffmpeg", "tf-keras-vis")


def versions() -> dict:
    """Versions of Python, deepfake_keras and :data:`VERSIONED`; ``tensorflow`` is whichever build
    is installed (``tensorflow`` or ``tensorflow-cpu``). Reads package metadata only: imports nothing."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    out = {"python": platform.python_version(), "deepfake_keras": __version__}
    for name in VERSIONED:
        candidates = ("tensorflow", "tensorflow-cpu") if name == "tensorflow" else (name,)
        for candidate in candidates:
            try:
                out[name] = version(candidate)
                break
            except PackageNotFoundError:
                continue
    return out
