"""What every experiment run shares: where its data comes from, where its results go, and the
record of how it was made (nanoGPT's habit: the resolved config beside every result).

A run directory holds ``config.json`` (settings, data, weights used, library
versions), ``metrics.json``, ``predictions.csv`` (one row per video), tables
and figures. Nothing in an existing run directory is overwritten: a run
refuses a non-empty ``--out`` unless it is the same experiment being resumed.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

from .config import cache_dir


def printable(name) -> str:
    """A file name (str or path) with any bytes that are not UTF-8 (which Python keeps as lone
    surrogates) shown as ``\\xNN``, so that it can be printed and written to CSV and JSON files."""
    return os.fsencode(str(name)).decode("utf-8", "backslashreplace")


def log(message: str) -> None:
    print(f"[deepfake-keras] {message}", file=sys.stderr, flush=True)


def versions() -> dict:
    """Versions of Python and of the libraries that change results."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "deepfake_keras": __import__("deepfake_keras").__version__}
    for name in ("tensorflow-cpu", "tensorflow", "keras", "tensorflow-addons", "mtcnn", "keras-facenet", "numpy",
                 "opencv-python-headless", "scikit-learn", "pandas", "imageio-ffmpeg"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def resolve_data_root(data_root, kind: str, seed: int = 0) -> tuple:
    """``(root, is_demo)``: the user's dataset, or the built-in demo dataset (built on first use)
    when ``data_root`` is None, saying so."""
    if data_root:
        root = Path(data_root).expanduser().resolve()
        if not root.is_dir():
            raise ValueError(f"--data-root {root} is not a folder")
        return root, False
    from .data.demo import demo_root

    log(f"no --data-root given: using the built-in DEMO dataset ({kind} format, 5 real people; it shows the "
        f"pipeline working, not the paper's numbers)")
    root = demo_root(kind, seed=seed)
    log(f"DEMO dataset: {root}")
    return root, True


def default_store(root: Path, extract_config) -> Path:
    """The face store for a dataset root and extraction settings: a cache folder keyed by both,
    so that every experiment on the same data reuses the same crops."""
    key = json.dumps({"root": str(root), **extract_config.to_dict()}, sort_keys=True)
    return cache_dir() / "faces" / f"{root.name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def make_run_dir(out, experiment: str) -> Path:
    """``out`` or ``results/<experiment>/<timestamp>/``; refuses a folder holding another run."""
    path = Path(out) if out else Path("results") / experiment / time.strftime("%Y%m%d-%H%M%S")
    path = path.resolve()
    config = path / "config.json"
    if config.is_file():
        have = json.loads(config.read_text()).get("experiment")
        if have != experiment:
            raise ValueError(f"{path} holds a {have!r} run; choose another --out")
    elif path.exists() and any(path.iterdir()):
        raise ValueError(f"{path} is not empty and holds no run; choose another --out (nothing is overwritten)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_json(path, data) -> Path:
    from .data.store import write_atomic

    write_atomic(Path(path), (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode())
    return Path(path)
