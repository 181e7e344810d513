"""The DFDC as distributed (metadata.json per part folder, the test set's labels.csv) -> the manifest."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ...io import printable
from .common import (FAKE, REAL, UNLISTABLE, VIDEO_EXTENSIONS, DatasetError, listed_problems, manifest_table,
                     need_dir, read_labels, relative_name, store_key_for, walk)

# ---------------------------------------------------------------- DFDC

def dfdc_manifest(root, labels=None, missing: str = "error") -> pd.DataFrame:
    """The DFDC as distributed, under ``root``: folders (``dfdc_train_part_N/``) holding a ``metadata.json``
    (``{"x.mp4": {"label": "FAKE"|"REAL", "split": "train", "original": "y.mp4"}}``) and its videos, and
    folders holding the public test set's ``labels.csv`` (``filename,label``, 1 = fake; split ``test``)
    beside its videos; ``labels``: one more such CSV, anywhere, its file names relative to ``root``.
    A video nothing lists but a listed fake names as its ``original`` is real (the fake's split).
    A listed video that is not there raises (``missing="error"``) or is a row with that problem
    (``missing="record"``); a video under ``root`` that nothing labels raises."""
    listed_problems([], "", missing)
    root = Path(root).resolve()
    need_dir(root, "DFDC root")
    entries = dict(walk(root))
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
        for _, name, label, _ in read_labels(table, "filename"):
            listed[Path(os.path.normpath(base / name))] = (label, "test", "", table)
    by_name = {p.name: p for p, problem in entries.items() if p.suffix.lower() in VIDEO_EXTENSIONS}
    for label, split, original, source in list(listed.values()):
        found = by_name.get(original)
        if label == FAKE and found is not None and found not in listed:
            listed[found] = (REAL, split, "", source)
    problem_of = {}
    for source in sorted({v[3] for v in listed.values()}):  # raises for the first file listing absent videos
        paths = [p for p, v in listed.items() if v[3] == source]
        problem_of.update(zip(paths, listed_problems(paths, source, missing, entries)))
    rows = []
    for path, (label, split, original, source) in listed.items():
        group = printable(Path(original).stem if label == FAKE and original else path.stem)
        rows.append([printable(path.stem), str(path), label, split, "dfdc",
                     "" if path.parent == root else relative_name(root, path.parent), "", group, "",
                     store_key_for("dfdc", root, path, suffix=False), f"dfdc-{group}", problem_of[path]])
    unlabelled = sorted(p for p, problem in entries.items() if p not in listed
                        and (p.suffix.lower() in VIDEO_EXTENSIONS or problem.startswith(UNLISTABLE)))
    if unlabelled:
        raise DatasetError(f"DFDC at {root}: {len(unlabelled)} video(s) or unreadable folder(s) in no metadata.json "
                           f"or labels.csv, e.g. {', '.join(relative_name(root, p) for p in unlabelled[:5])}; give their "
                           f"labels in a CSV (filename,label; 1 = fake) with labels=")
    return manifest_table(rows)
