"""Model bundles: a trained detector in one folder, checked file by file when loaded; what every
kind of bundle shares (the kinds: :mod:`.triplet`, :mod:`.xception`; the registry: :mod:`.bundle`).

A bundle holds everything ``deepfake-keras predict`` needs to score a video as
the model was trained: the face-extraction settings, the models (weights only:
no file in a bundle can run code when loaded), the decision threshold, how
frame scores become a video score, the versions it was made with and the
sha256 of every file. Both experiments save the best model of their run as
``<run_dir>/bundle/``.

Layout::

    bundle/
      bundle.json                 what the bundle is (below); written last
      # kind "triplet" (FaceNet -> triplet head -> scikit-learn classifier)
      triplet_head.weights.h5     the head's Keras weights (weights only)
      triplet_head.json           its settings (rebuilt from them) and training record
      classifier.skops            the SGD / RF classifier, in skops' format (not a pickle)
      # kind "xception" (the Xception bags of the Celeb-DF experiment)
      bags/bag_0.weights.h5 ...   one Keras weights file per bag

``bundle.json``: ``format`` and ``format_version``; ``kind``; ``created``;
``versions`` (deepfake_keras, Python, TensorFlow, Keras, scikit-learn, skops,
numpy, ...); ``extract`` (the :class:`~deepfake_keras.config.ExtractConfig` of
training, used unchanged when predicting); ``threshold`` (a score ``>=`` it
is fake); ``aggregation`` (frame scores -> video score, a key of
:data:`deepfake_keras.evaluation.AGGREGATIONS`; the paper's ``mean``);
``decision`` (``score``: the video is fake when its score ``>= threshold``;
``vote``, Xception bags: when more than half of the bags call it fake, each
bag thresholding the mean of its own frame probabilities, ties decided by the
mean probability, as in :func:`deepfake_keras.evaluation.aggregate_bags`); for
triplet bundles ``facenet`` (the registry weights by name and sha256, not a
copy of the 90 MB file; embedding size, input standardisation, input size and
the margin of the face crop FaceNet sees), ``triplet_head`` and
``classifier``; for Xception bundles ``xception`` (input size, ``fc1`` width,
dropout, the bag files); ``source`` (which run and model it came from, its
test metrics) and ``config`` (the run's resolved ``config.json``); ``files``
(the sha256 of every other file of the folder).

Loading (:func:`load_bundle`) refuses, with a :class:`BundleError` that names
the file: a ``bundle.json`` of another format version or made by another
version of deepfake_keras, scikit-learn (the classifier's internals) or
TensorFlow/Keras (major.minor); a file whose sha256 differs from ``files``, a
missing file, a file the map does not list, or a file name that leaves the
folder; a classifier holding any type outside :data:`TRUSTED_TYPES` (checked
in the skops file's schema before skops loads it, and again by skops itself
with only those types trusted); FaceNet weights that are not the ones named.
The hashes catch corruption, a swapped or edited weights file and mixed-up
bundles; they are not a signature (whoever can edit ``bundle.json`` can edit
the hashes too), which is why no bundle file is ever loaded in a way that can
run code.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import time
import uuid
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ..config import ExtractConfig
from ..evaluation import AGGREGATIONS
from ..io import save_json, sha256_of, versions

FORMAT = "deepfake_keras-bundle"
FORMAT_VERSION = 1
BUNDLE_FILE = "bundle.json"
DECISIONS = ("score", "vote")
CLASSIFIER_FILE = "classifier.skops"
BAGS_DIR = "bags"

#: every type a bundled classifier may hold (``module.Class`` as skops' schema names it):
#: the RF and SGD classifiers of :mod:`deepfake_keras.training.classifiers`, with or without
#: their optional ``StandardScaler`` pipeline, and the plain containers and NumPy arrays
#: that make them up. Anything else is refused before any of it is loaded.
TRUSTED_TYPES = frozenset({
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "sklearn.linear_model._stochastic_gradient.SGDClassifier",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn.linear_model._sgd_fast.ModifiedHuber",
    "sklearn._loss._loss.CyHalfMultinomialLoss",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.str", "builtins.int", "builtins.float",
    "builtins.bool", "builtins.NoneType", "builtins.slice",
    "numpy.ndarray", "numpy.dtype", "numpy.float64", "numpy.float32", "numpy.int64", "numpy.int32",
    "numpy.intp", "numpy.uint8", "numpy.bool_",
})
#: the classifier at the top of a bundle must be one of these (and have ``predict_proba``)
CLASSIFIER_TYPES = frozenset({
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.linear_model._stochastic_gradient.SGDClassifier",
    "sklearn.pipeline.Pipeline",
})
#: libraries whose version must match for a bundle to load: exactly, or in (major, minor)
EXACT_VERSIONS = ("deepfake_keras", "scikit-learn")
MINOR_VERSIONS = ("tensorflow", "keras")


class BundleError(ValueError):
    """A bundle that cannot be saved or loaded as asked; the message names the folder, the file and
    the problem."""


def _major_minor(v: str) -> tuple:
    return tuple(str(v).split(".")[:2])


def type_name(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def skops_types(data: bytes) -> set:
    """Every ``module.Class`` named in the schema of a skops file (its bytes), without loading it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            schema = json.loads(z.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise BundleError(f"not a skops file ({type(e).__name__}: {e})") from None
    found = set()

    def walk(node):
        if isinstance(node, dict):
            if "__class__" in node and "__module__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return found


def check_classifier_types(data: bytes, where: str) -> None:
    types = skops_types(data)
    bad = sorted(types - TRUSTED_TYPES)
    if bad:
        raise BundleError(f"{where}: holds types outside the trusted list ({', '.join(bad)}); refused. A bundle's "
                          f"classifier may only be {', '.join(sorted(CLASSIFIER_TYPES))} (see "
                          f"deepfake_keras.inference.base.TRUSTED_TYPES)")


def safe_name(name: str, root: Path) -> Path:
    """``root / name`` for a relative POSIX file name that stays inside ``root``, else BundleError."""
    p = PurePosixPath(str(name))
    if not str(name) or p.is_absolute() or ".." in p.parts or "\\" in str(name) or str(name).startswith("~"):
        raise BundleError(f"{root / BUNDLE_FILE}: file name {name!r} leaves the bundle folder; refused")
    return root.joinpath(*p.parts)


def listing(root: Path) -> list:
    """Every file under ``root`` but bundle.json, as POSIX names relative to ``root``."""
    return sorted(name for name in (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
                  if name != BUNDLE_FILE)



# --------------------------------------------------------------------------- the base of every kind

class Bundle:
    """A loaded, verified bundle of one kind (a subclass registered in :data:`.bundle.KINDS`).

    What predict needs of every kind: :attr:`extract_config` (faces are extracted exactly as for
    training), :meth:`preload` (load what scoring needs up front), :meth:`score_faces` (P(fake) per
    face crop), :meth:`video_decision` (frame scores -> video score and verdict) and
    :meth:`gradcam` (heat maps of the faces, where the kind has them).
    """

    kind = ""
    decisions = ("score",)

    def __init__(self, path, meta: dict):
        self.path = Path(path)
        self.meta = meta
        try:
            self.extract_config = ExtractConfig.from_dict(meta["extract"])
        except (TypeError, ValueError) as e:
            raise BundleError(f"{self.path / BUNDLE_FILE}: bad 'extract' settings ({e})") from None

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])

    @property
    def aggregation(self) -> str:
        return self.meta["aggregation"]

    @property
    def decision(self) -> str:
        return self.meta["decision"]

    def preload(self) -> None:
        """Load what scoring needs (models kept for the process), so that no video's timing holds it."""

    def score_faces(self, faces) -> tuple:
        """``(scores, per_model)``: P(fake) of each face crop (RGB uint8, made with
        :attr:`extract_config`), and where the score is a mean over several models their
        ``(n, n_models)`` probabilities (else None)."""
        raise NotImplementedError

    def gradcam(self, faces, scores=None):
        """``(maps (n, h, w) in [0, 1], the class each map explains)`` of the face crops (``scores``: their
        P(fake), if known), or None for a kind that has none."""
        return None

    def video_decision(self, scores, per_model=None) -> dict:
        """The video score (the bundle's aggregation of the frame ``scores``) and the verdict: ``fake``
        when the score is at least the threshold."""
        score = AGGREGATIONS[self.aggregation](pd.Series(np.asarray(scores, dtype=float)), self.threshold)
        return {"video_score": float(score), "verdict": "fake" if score >= self.threshold else "real"}

    @classmethod
    def load(cls, root: Path, meta: dict, **options) -> "Bundle":
        raise NotImplementedError

    # ------------------------------------------------------------- writing
    @classmethod
    def write(cls, out_dir, *, extract_config: ExtractConfig, threshold: float, aggregation: str, decision: str,
              source, config, fill) -> Path:
        """Write a bundle of this kind to ``out_dir`` (a new or empty folder; nothing existing is
        overwritten): ``fill(folder) -> dict`` writes the kind's files into a temporary folder and
        returns its part of ``bundle.json``; the common part, the checksums and ``bundle.json`` are
        added here, and the folder is renamed into place in one step, so a killed save leaves no
        partial bundle. Returns ``out_dir``."""
        out = Path(out_dir)
        if not isinstance(extract_config, ExtractConfig):
            raise BundleError(f"extract_config must be an ExtractConfig, got {type(extract_config).__name__}")
        if not (isinstance(threshold, (int, float)) and np.isfinite(threshold) and 0 <= threshold <= 1):
            raise BundleError(f"threshold must be a number in [0, 1], got {threshold!r}")
        if aggregation not in AGGREGATIONS:
            raise BundleError(f"aggregation must be one of {sorted(AGGREGATIONS)}, got {aggregation!r}")
        if decision not in cls.decisions:
            raise BundleError(f"decision of a {cls.kind} bundle must be one of {cls.decisions}, got {decision!r}")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise BundleError(f"{out} exists and is not an empty folder; a bundle is never written over anything: "
                              f"choose a new folder")
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": cls.kind,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions(),
                "extract": extract_config.to_dict(), "threshold": float(threshold), "aggregation": aggregation,
                "decision": decision, "source": source or {}, "config": config or {}}
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            meta.update(fill(tmp))
            meta["files"] = {name: sha256_of(tmp / name) for name in listing(tmp)}
            save_json(tmp / BUNDLE_FILE, meta)
            if out.exists():
                out.rmdir()  # empty, checked above
            out.parent.mkdir(parents=True, exist_ok=True)
            os.rename(tmp, out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return out


# --------------------------------------------------------------------------- reading

def read_bundle_meta(path) -> dict:
    """``bundle.json`` of the bundle at ``path``, checked (format, versions, file hashes, names),
    without loading any model. Raises :class:`BundleError`."""
    root = Path(path)
    meta_path = root / BUNDLE_FILE
    if not root.is_dir():
        raise BundleError(f"{root}: no such folder; --model takes a bundle folder (an experiment writes one "
                          f"to <run_dir>/bundle)")
    if not meta_path.is_file():
        hint = next((f"; did you mean {c.parent}?" for c in sorted(root.glob(f"bundle*/{BUNDLE_FILE}"))), "")
        raise BundleError(f"{root}: not a model bundle (no {BUNDLE_FILE}){hint}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise BundleError(f"{meta_path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"{meta_path}: not a deepfake_keras bundle (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{meta_path}: bundle format version {meta.get('format_version')!r}, this deepfake_keras "
                          f"reads version {FORMAT_VERSION}; use the deepfake_keras that made it")
    _check_versions(meta, meta_path)
    for key in ("extract", "threshold", "aggregation", "decision"):
        if key not in meta:
            raise BundleError(f"{meta_path}: no {key!r}")
    _check_files(meta, root)
    return meta


def _check_versions(meta: dict, meta_path: Path) -> None:
    have, want = meta.get("versions") or {}, versions()
    problems = []
    for name in EXACT_VERSIONS:
        if name in want and have.get(name) != want[name]:
            problems.append(f"{name} {have.get(name)} (installed: {want[name]})")
    for name in MINOR_VERSIONS:
        if name in want and (name not in have or _major_minor(have[name]) != _major_minor(want[name])):
            problems.append(f"{name} {have.get(name)} (installed: {want[name]})")
    if problems:
        raise BundleError(f"{meta_path}: made with {', '.join(problems)}; a bundle loads only with the versions "
                          f"it was made with (deepfake_keras and scikit-learn exactly, TensorFlow and Keras to the "
                          f"minor version). Install those, or re-run the experiment to make a new bundle")


def _check_files(meta: dict, root: Path) -> None:
    files = meta.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{root / BUNDLE_FILE}: no 'files' map of sha256 checksums")
    for name in files:
        safe_name(name, root)
    missing = sorted(n for n in files if not safe_name(n, root).is_file())
    if missing:
        raise BundleError(f"{root}: file {missing[0]} is missing from the bundle"
                          + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    extra = sorted(set(listing(root)) - set(files))
    if extra:
        raise BundleError(f"{root}: file {extra[0]} is not part of the bundle (not in {BUNDLE_FILE}'s file list); "
                          f"refused. Remove it, or use the bundle as the experiment wrote it")
    for name, digest in sorted(files.items()):
        got = sha256_of(safe_name(name, root))
        if got != digest:
            raise BundleError(f"{root / name}: changed since the bundle was made (sha256 {got}, bundle.json says "
                              f"{digest}); refused")


def new_bundle_dir(run_dir, name: str = "bundle") -> Path:
    """``<run_dir>/bundle``, or ``bundle-2``, ``bundle-3``... where a resumed run already wrote one
    (nothing is overwritten)."""
    run_dir = Path(run_dir)
    path, k = run_dir / name, 1
    while path.exists() and (not path.is_dir() or any(path.iterdir())):
        k += 1
        path = run_dir / f"{name}-{k}"
    return path


