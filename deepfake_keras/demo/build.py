"""Building the DEMO datasets: one locked, atomic build per folder, reused when complete, and the
package cache's copy that the experiments use (:func:`demo_root`)."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..config import cache_dir
from ..io import about, versions, write_atomic
from .card import demo_markdown
from .plan import DEMO_VERSION, FACE_SOURCES, SIZES, SPLITS, DemoError, DemoSizes, plan_demo
from .render import render_job
from .shortcut import SHORTCUT_LIMIT, shortcut_aucs, shortcut_table
from .sources import FACE_LOADERS, detect_landmarks, usable_photos

MARKER = ".demo_complete.json"
BUILDING = ".demo_building.json"
TMP_PREFIX = ".demo-build-"
OUTPUTS = ("ffpp", "celebdf", "DEMO.md", "demo.json")  # what a build puts in <out>


def _write_text(path: Path, text: str) -> None:
    write_atomic(path, text.encode())


@contextlib.contextmanager
def _locked(out: Path):
    """Hold an exclusive lock for building into ``out``: a lock file in the system's temporary
    folder named after ``out``'s absolute path, so that ``out`` is not touched before we know we
    may build there (POSIX ``fcntl``; no lock where it is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:24]
    lock = Path(tempfile.gettempdir()) / f"deepfake_keras-demo-locks-{os.getuid()}" / f"{key}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _settings(seed: int, faces: str, sizes: DemoSizes) -> dict:
    # through JSON, so that it compares equal to the copy read back from the marker
    return json.loads(json.dumps({"version": DEMO_VERSION, "seed": seed, "faces": faces, "sizes": asdict(sizes)}))


def _versions() -> dict:
    """The library versions (:func:`deepfake_keras.io.versions`) and the ffmpeg binary's, which
    encodes the clips."""
    import imageio_ffmpeg

    return {**versions(), "ffmpeg": imageio_ffmpeg.get_ffmpeg_version()}


def _check_args(seed, faces) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DemoError(f"seed must be an integer >= 0, got {seed!r}")
    if faces not in FACE_SOURCES:
        raise DemoError(f"unknown face source {faces!r}; expected one of {', '.join(FACE_SOURCES)}")


def _reuse(out: Path, settings: dict) -> dict | None:
    marker = out / MARKER
    if not marker.is_file():
        return None
    try:
        info = json.loads(marker.read_text())
    except ValueError as e:
        raise DemoError(f"{marker} is not valid JSON ({e}); delete {out} to build the demo again") from e
    if info.get("settings") != settings:
        got = info.get("settings", {})
        raise about(DemoError(f"{out} holds a demo build with other settings (version {got.get('version')}, seed "
                              f"{got.get('seed')}, faces {got.get('faces')}); choose another folder or delete it"),
                    "out")
    missing = [name for name in OUTPUTS if not (out / name).exists()]
    if missing:
        raise DemoError(f"{out}: the demo build is missing {', '.join(missing)}; delete {out} to build it again")
    return _with_paths(info, out, reused=True)


def _with_paths(info: dict, out: Path, reused: bool) -> dict:
    out = out.resolve()
    info = dict(info)
    info.update(root=str(out), ffpp=str(out / "ffpp"), celebdf=str(out / "celebdf"),
                ffpp_splits=str(out / "ffpp" / "splits"), demo_md=str(out / "DEMO.md"), reused=reused)
    return info


def _clean_leftovers(out: Path) -> None:
    """Remove what an interrupted build of ours left (only names this module writes)."""
    building = out / BUILDING
    if building.is_file():
        try:
            names = json.loads(building.read_text()).get("moving", [])
        except ValueError:
            names = []
        for name in names:
            if name in OUTPUTS:
                target = out / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
        building.unlink()
    for tmp in out.glob(TMP_PREFIX + "*"):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)


def build_demo(out, seed: int = 0, faces: str = "5celeb", progress: bool = True, *,
               sizes: DemoSizes | None = None, workers: int | None = None) -> dict:
    """Build the DEMO datasets under ``out`` (``out/ffpp``, ``out/celebdf``) and return what was
    built: paths (``root``, ``ffpp``, ``celebdf``, ``ffpp_splits``, ``demo_md``), ``settings``,
    ``counts``, ``identities``, ``shortcut_auc``, ``seconds``, ``reused``.

    A complete build with the same settings in ``out`` is reused as it is (nothing is
    rewritten). Nothing that this function did not make is ever deleted or overwritten:
    ``out`` may hold other files, but if it holds ``ffpp/``, ``celebdf/``, ``DEMO.md`` or
    ``demo.json`` without a complete demo build, it stops with :class:`DemoError`.

    ``faces``: ``"5celeb"`` (offline default: the photos in a verified PyPI sdist) or
    ``"lfw"`` (Labeled Faces in the Wild through scikit-learn; needs its server).
    ``sizes`` (default :data:`SIZES` of ``faces``) and ``workers`` (threads; default
    up to 2) are for tests and experiments with other sizes.
    """
    _check_args(seed, faces)
    seed = int(seed)
    sizes = sizes or SIZES[faces]
    settings = _settings(seed, faces, sizes)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise about(DemoError(f"{out} is a file; give a folder"), "out")
    found = _reuse(out, settings)
    if found:
        return found
    with _locked(out):
        found = _reuse(out, settings)  # another process may have finished it while we waited
        if found:
            return found
        if out.is_dir():
            _clean_leftovers(out)
        foreign = [name for name in OUTPUTS if (out / name).exists()]
        if foreign:
            raise DemoError(f"{out} already holds {', '.join(foreign)}, not from a complete demo build; refusing to "
                            f"overwrite. Choose another folder")
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=out))
        try:
            info = _build(tmp, seed, faces, sizes, settings, workers, progress)
            _write_text(out / BUILDING, json.dumps({"moving": list(OUTPUTS)}))
            for name in OUTPUTS:
                os.rename(tmp / name, out / name)
            _write_text(out / MARKER, json.dumps(info, indent=1, sort_keys=True))
            (out / BUILDING).unlink()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _with_paths(info, out, reused=False)


def _build(root: Path, seed: int, faces: str, sizes: DemoSizes, settings: dict, workers, progress: bool) -> dict:
    start = time.time()
    say = (lambda *a: print(*a, file=sys.stderr)) if progress else (lambda *a: None)
    say(f"demo: building the DEMO datasets (seed {seed}, faces {faces}) in {root.parent}")
    photos = FACE_LOADERS[faces](seed, sizes)
    marks = detect_landmarks(photos, faces, sizes, progress)
    usable, dropped = usable_photos(photos, marks, sizes.photo_filter)
    plan = plan_demo(usable, seed, sizes)

    workers = workers or max(1, min(2, os.cpu_count() or 1))
    features = {}
    bar = tqdm(total=len(plan.jobs), desc="demo: render + encode", unit="clip", disable=not progress)
    with ThreadPoolExecutor(workers) as pool:
        for result in pool.map(lambda job: render_job(job, photos.images, marks, sizes, root), plan.jobs):
            features.update(result)
            bar.update(1)
    bar.close()

    # split files, test list, per-video tables
    for split in SPLITS:
        _write_text(root / "ffpp" / "splits" / f"{split}.json", json.dumps(plan.ffpp_pairs[split]))
    _write_text(root / "celebdf" / "List_of_testing_videos.txt", "\n".join(plan.celebdf_test) + "\n")
    tables = []
    for dataset in ("ffpp", "celebdf"):
        recs = []
        for job in plan.jobs:
            for render in job.renders:
                if not render.outputs[0][0].startswith(dataset + "/"):
                    continue
                for rel, crf in render.outputs:
                    comp = rel.split("/")[-3] if dataset == "ffpp" else ""
                    recs.append({**render.row, "dataset": dataset, "compression": comp, "crf": crf,
                                 "file": rel[len(dataset) + 1:], **features[rel]})
        table = pd.DataFrame(recs).sort_values("file").reset_index(drop=True)
        cols = ["file", "video_id", "dataset", "method", "compression", "crf", "split", "label", "target_identity",
                "source_identity", "identity_celebdf", "target_photo", "source_photo", "blend"]
        _write_text(root / dataset / "demo_videos.csv", table[cols].to_csv(index=False))
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    aucs = shortcut_aucs(table)
    worst = max(v for row in aucs.values() for v in row.values())
    say("demo: can a model that never looks at the face tell fakes apart? (AUC, test split; must be <= "
        f"{SHORTCUT_LIMIT})\n" + shortcut_table(aucs))
    if worst > SHORTCUT_LIMIT:
        say(f"demo: WARNING: a face-blind model reaches AUC {worst:.3f} > {SHORTCUT_LIMIT}; see DEMO.md")

    counts = _counts(table)
    identities = {"groups": plan.groups, "shared_val": plan.shared_val, "celebdf_ids": plan.celebdf_ids,
                  "usable_photos": {x: len(v) for x, v in usable.items()}, "dropped_photos": dropped}
    info = {"settings": settings, "versions": _versions(), "faces_source": photos.source, "counts": counts,
            "identities": identities, "shortcut_auc": aucs, "shortcut_worst": worst, "shortcut_limit": SHORTCUT_LIMIT,
            "seconds": round(time.time() - start, 1), "videos": int(len(table))}
    text = demo_markdown(info)
    for path in (root / "DEMO.md", root / "ffpp" / "DEMO.md", root / "celebdf" / "DEMO.md"):
        _write_text(path, text)
    _write_text(root / "demo.json", json.dumps(info, indent=1, sort_keys=True))
    say(f"demo: {len(table)} videos in {info['seconds']:.0f} s")
    return info


def _counts(table: pd.DataFrame) -> dict:
    out = {}
    for dataset, part in table.groupby("dataset"):
        if dataset == "ffpp":
            part = part[part["compression"] == "c23"]  # c40 holds the same videos
        grouped = part.groupby(["split", "method"]).size()
        out[dataset] = {f"{s}/{m}": int(n) for (s, m), n in grouped.items()}
        out[dataset]["total"] = int(len(part))
    return out


def demo_cache_root(seed: int = 0, faces: str = "5celeb") -> Path:
    """Where :func:`demo_root` builds: ``<cache>/demo/v<version>-<faces>-seed<seed>``."""
    _check_args(seed, faces)
    return cache_dir() / "demo" / f"v{DEMO_VERSION}-{faces}-seed{int(seed)}"


DEMO_KINDS = ("ffpp", "celebdf")


def demo_root(kind: str, seed: int = 0, faces: str = "5celeb") -> Path:
    """The root of the DEMO dataset ``kind`` (``"ffpp"`` or ``"celebdf"``), built into the package
    cache on first use (see :func:`demo_cache_root`) and reused after. For FF++ the split files are
    in ``<root>/splits/``, where :func:`datasets.find_ffpp_splits` looks."""
    if kind not in DEMO_KINDS:
        raise DemoError(f"unknown demo dataset {kind!r}; expected one of {', '.join(DEMO_KINDS)}")
    root = demo_cache_root(seed, faces)
    build_demo(root, seed=seed, faces=faces, progress=True)
    return root / kind
