"""The bottom layer: atomic writes, JSON, file hashes, printable names, the log line and library
versions. It imports nothing of the package, so every module may import it.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import uuid
from pathlib import Path


def write_atomic(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file beside it and a rename, so that a reader
    (or a run killed half-way) never sees a partial file under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


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
