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
(the sha256 of every other file of the folder); ``seal`` (the sha256 of every field of ``bundle.json`` but
``created``, ``source`` and ``config``: :func:`seal_of`).

Loading (:func:`load_bundle`) refuses, with a :class:`BundleError` (a ValueError) that names the file:

- a ``bundle.json`` larger than :data:`~.schema.MAX_META_BYTES`, not JSON, nested too deeply, of another
  format version or made by another version of deepfake_keras, scikit-learn (the classifier's
  internals) or TensorFlow/Keras (major.minor);
- any field of it that does not fit the format (:data:`COMMON_FIELDS`, the kind's ``Bundle.fields``):
  a missing or unknown field, a wrong type, a value out of range or not one of the known ones, a
  file the model is built from that the checksums do not cover; as ``bundle.json: <field>: <problem>``;
- a symbolic link, FIFO, socket or device anywhere in the folder (nothing outside the folder is ever
  followed, read or hashed), more than :data:`~.schema.MAX_FILES` files, a file over
  :data:`~.schema.MAX_FILE_BYTES`, a folder over :data:`~.schema.MAX_BUNDLE_BYTES`;
- a ``bundle.json`` whose fields no longer match its ``seal`` (an edited setting), a file whose sha256
  differs from ``files``, a missing file, a file the map does not list, or a file
  name that leaves the folder;
- a classifier holding any type outside :data:`TRUSTED_TYPES` (checked in the skops file's schema
  before skops loads it, and again by skops itself with only those types trusted), or one that
  inflates past :data:`~.schema.MAX_CLASSIFIER_BYTES`; a weights file with links to other files or
  datasets larger than the file; FaceNet weights that are not the ones named.

The hashes catch corruption, a swapped or edited weights file and mixed-up
bundles; they are not a signature (whoever can edit ``bundle.json`` can edit
the hashes too), which is why no bundle file is ever loaded in a way that can
run code, and why every value that shapes the model or the run is checked.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import time
import uuid
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ..config import ExtractConfig, frame_memory_problem
from ..evaluation import AGGREGATIONS
from ..io import json_bytes, printable, save_json, sha256_of, versions
from . import schema as sc
from .schema import (Boolean, BundleError, Choice, Const, FileName, Free, Integer, MapOf, Number, Record,
                     SchemaError, Sha256, Text, check_weights_file, read_regular, scan_folder,
                     size_text)


#: what predict and evaluate say of a bundle trained on the DEMO data
DEMO_WARNING = ("WARNING: this model was trained on the DEMO data (5 people in synthetic clips): its verdicts mean "
                "nothing on real footage")


__all__ = ["BAGS_DIR", "BUNDLE_FILE", "CLASSIFIER_FILE", "CLASSIFIER_TYPES", "COMMON_FIELDS", "DECISIONS", "DEMO_WARNING",
           "EXTRACT_FIELDS", "FORMAT", "FORMAT_VERSION", "TRUSTED_TYPES", "Bundle", "BundleError", "bundle_bytes",
           "check_classifier_types", "check_weights_file", "listing", "new_bundle_dir", "read_bundle_meta",
           "safe_name", "seal_of", "skops_types", "source_summary", "type_name", "validate_meta"]

FORMAT = "deepfake_keras-bundle"
FORMAT_VERSION = 2  # 2: bundle.json is sealed (``seal``)
#: fields of bundle.json outside its seal: they describe where the model came from, not how it scores
UNSEALED = ("seal", "created", "source", "config")
BUNDLE_FILE = "bundle.json"
DECISIONS = ("score", "vote")
CALIBRATION_RULES = ("eer",)  # the equal-error point of the validation videos' scores
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


def _extract_rule(e: dict):
    if e["detect_size"] != 0 and e["detect_size"] < 64:
        return f"detect_size must be 0 (full resolution) or >= 64 pixels, got {e['detect_size']}"
    return frame_memory_problem(e["frames_per_video"], e["max_frame_side"], e["crop_size"])  # extraction's bound


#: ``extract``: every field of :class:`~deepfake_keras.config.ExtractConfig` (a field added there is
#: added here), with the range a bundle may use
EXTRACT_FIELDS = {
    "frames_per_video": Integer(1, 256),  # the paper: 10-25; the sequence models: 32
    "fps": Number(0.01, 240, nullable=True),
    "consecutive": Boolean(),
    "crop_size": Integer(16, 512),  # Xception's 299, FaceNet's 160
    "margin": Number(0, 2),
    "detect_size": Integer(0, 7680),
    "min_face": Number(0, 0.9),
    "max_frame_side": Integer(64, 7680),
    "batch_size": Integer(1, 256),
}

#: the fields of every ``bundle.json`` (each kind adds its own, ``Bundle.fields``): a new field of the
#: format is one line here (``required=False`` where bundles written before it must still load)
COMMON_FIELDS = {
    "format": Const(FORMAT),
    "format_version": Const(FORMAT_VERSION),
    "kind": Text(32),
    "created": Text(64),
    "versions": MapOf(Text(64), Text(128), max_len=64),
    "extract": Record(EXTRACT_FIELDS, rule=_extract_rule),
    "threshold": Number(0, 1, open_=True),  # 0 or 1 would call every video fake (or real)
    "aggregation": Choice(AGGREGATIONS),
    "decision": Choice(DECISIONS),
    "demo_model": Boolean(required=False),  # trained on the DEMO data: its verdicts mean nothing on real footage
    # the threshold chosen on the training run's validation videos, used instead of ``threshold`` by default
    "calibration": Record({"threshold": Number(0, 1, open_=True), "rule": Choice(CALIBRATION_RULES),
                           "videos": Number(1, 10 ** 9, integer=True)}, required=False),
    "source": Free(required=False),  # which run the model came from; reports copy a bounded summary
    "config": Free(required=False),  # the run's resolved config.json
    "files": MapOf(FileName(), Sha256(), min_len=1, max_len=sc.MAX_FILES),
    "seal": Sha256(),  # of every other field but the descriptive ones (UNSEALED): see seal_of
}


def seal_of(meta: dict) -> str:
    """The sha256 of ``bundle.json``'s fields that shape the model's scores (all but :data:`UNSEALED`:
    the settings, threshold, FaceNet, head and Xception records, the versions and the file checksums),
    as canonical JSON. The files' checksums cover the model files; the seal covers ``bundle.json``
    itself, so an edited setting (an input size, a FaceNet margin, a threshold) is refused like an
    edited weights file. Like the checksums it catches accidents, not adversaries."""
    sealed = {key: value for key, value in meta.items() if key not in UNSEALED}
    return hashlib.sha256(json_bytes(sealed)).hexdigest()


def _major_minor(v: str) -> tuple:
    return tuple(str(v).split(".")[:2])


def type_name(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


# --------------------------------------------------------------------------- the classifier and weights files

def skops_types(data: bytes) -> set:
    """Every ``module.Class`` named in the schema of a skops file (its bytes), without loading it.
    Refuses (BundleError) a file that is not a zip, has more than :data:`~.schema.MAX_SKOPS_ENTRIES`
    entries, inflates past :data:`~.schema.MAX_CLASSIFIER_BYTES` or :data:`~.schema.MAX_INFLATION`
    times its size, or whose schema nests deeper than :data:`~.schema.MAX_SKOPS_DEPTH`."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            entries = z.infolist()
            inflated = sum(e.file_size for e in entries)
            if len(entries) > sc.MAX_SKOPS_ENTRIES:
                raise BundleError(f"{len(entries)} entries, more than {sc.MAX_SKOPS_ENTRIES}; refused")
            if inflated > min(sc.MAX_CLASSIFIER_BYTES, sc.MAX_INFLATION * len(data) + sc.MIB):
                raise BundleError(f"inflates to {size_text(inflated)} from {size_text(len(data))} (at most "
                                  f"{sc.MAX_INFLATION} times its size and {size_text(sc.MAX_CLASSIFIER_BYTES)}); "
                                  f"refused")
            info = z.getinfo("schema.json")
            if info.file_size > sc.MAX_SKOPS_SCHEMA_BYTES:
                raise BundleError(f"schema.json of {size_text(info.file_size)}; refused")
            raw = z.read(info)
    except BundleError:
        raise
    except Exception as e:  # zipfile raises many kinds on a crafted archive
        raise BundleError(f"not a skops file ({type(e).__name__}: {e})") from None
    schema = sc.parse_json(raw, "schema.json", sc.MAX_SKOPS_DEPTH)
    found, stack = set(), [schema]
    while stack:  # no recursion: any nesting is walked
        node = stack.pop()
        if isinstance(node, dict):
            if "__class__" in node and "__module__" in node:
                found.add(f"{node['__module__']}.{node['__class__']}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def check_classifier_types(data: bytes, where: str) -> None:
    try:
        types = skops_types(data)
    except BundleError as e:
        raise BundleError(f"{where}: {e}") from None
    bad = sorted(types - TRUSTED_TYPES)
    if bad:
        raise BundleError(f"{where}: holds types outside the trusted list ({', '.join(bad)}); refused. A bundle's "
                          f"classifier may only be {', '.join(sorted(CLASSIFIER_TYPES))} (see "
                          f"deepfake_keras.inference.base.TRUSTED_TYPES)")


# --------------------------------------------------------------------------- the folder

def safe_name(name: str, root: Path) -> Path:
    """``root / name`` for a relative POSIX file name that stays inside ``root``, else BundleError."""
    problem = sc.file_name_problem(name)
    if problem:
        raise BundleError(f"{root / BUNDLE_FILE}: {problem}")
    return root.joinpath(*PurePosixPath(name).parts)


def bundle_bytes(root: Path, meta: dict, name: str, cap: int) -> bytes:
    """The bytes of the bundle file ``name`` (listed in ``files``), checked against its sha256 as read
    (so the bytes used are the bytes checked)."""
    path = safe_name(name, root)
    data = read_regular(path, cap)
    if hashlib.sha256(data).hexdigest() != meta["files"].get(name):
        raise BundleError(f"{printable(path)}: changed since the bundle was made; refused")
    return data


def listing(root: Path) -> list:
    """Every file under ``root`` but bundle.json, as POSIX names relative to ``root``."""
    return sorted(name for name in scan_folder(root) if name != BUNDLE_FILE)


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
    #: the kind's own fields of bundle.json (beside :data:`COMMON_FIELDS`), see :mod:`.schema`
    fields: dict = {}

    def __init__(self, path, meta: dict):
        self.path = Path(path)
        self.meta = meta
        try:
            self.extract_config = ExtractConfig.from_dict(meta["extract"])
        except (TypeError, ValueError) as e:
            raise BundleError(f"{self.path / BUNDLE_FILE}: bad 'extract' settings ({e})") from None

    #: "calibrated" (the default): the threshold chosen on the validation videos where the bundle has one;
    #: "fixed": bundle.json's ``threshold`` (0.5 for the experiments' bundles)
    threshold_choice = "calibrated"

    @property
    def _calibration(self) -> dict | None:
        """The calibration in use: the bundle's, unless the fixed threshold was chosen or it has none."""
        return self.meta.get("calibration") if self.threshold_choice == "calibrated" else None

    @property
    def threshold(self) -> float:
        calibration = self._calibration
        return float(calibration["threshold"] if calibration else self.meta["threshold"])

    @property
    def threshold_source(self) -> str:
        """Which threshold :attr:`threshold` is, in words (predict and evaluate say it)."""
        calibration = self._calibration
        if calibration:
            return (f"calibrated: the equal-error point of the training run's {calibration['videos']} validation "
                    f"videos")
        return "fixed" + ("" if self.meta.get("calibration") else " (the bundle holds no calibrated threshold)")

    @property
    def demo_model(self) -> bool:
        return bool(self.meta.get("demo_model", False))

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
              source, config, fill, calibration: dict | None = None, demo_model: bool = False) -> Path:
        """Write a bundle of this kind to ``out_dir`` (a new or empty folder; nothing existing is
        overwritten): ``fill(folder) -> dict`` writes the kind's files into a temporary folder and
        returns its part of ``bundle.json``; the common part, the checksums and ``bundle.json`` are
        added here, and the folder is renamed into place in one step, so a killed save leaves no
        partial bundle. Returns ``out_dir``."""
        out = Path(out_dir)
        if not isinstance(extract_config, ExtractConfig):
            raise BundleError(f"extract_config must be an ExtractConfig, got {type(extract_config).__name__}")
        common = {"extract": extract_config.to_dict(), "threshold": threshold, "aggregation": aggregation,
                  "decision": decision}
        try:
            for key, value in common.items():
                COMMON_FIELDS[key].check(value, key)
        except SchemaError as e:
            raise BundleError(f"cannot save a bundle: {e}") from None
        if decision not in cls.decisions:
            raise BundleError(f"decision of a {cls.kind} bundle must be one of {cls.decisions}, got {decision!r}")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise BundleError(f"{out} exists and is not an empty folder; a bundle is never written over anything: "
                              f"choose a new folder")
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": cls.kind,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": versions(),
                "extract": extract_config.to_dict(), "threshold": float(threshold), "aggregation": aggregation,
                "decision": decision, "demo_model": bool(demo_model), "source": source or {}, "config": config or {}}
        if calibration is not None:
            meta["calibration"] = calibration
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            meta.update(fill(tmp))
            meta["files"] = {name: sha256_of(tmp / name) for name in listing(tmp)}
            meta["seal"] = seal_of(meta)
            validate_meta(meta, cls, tmp / BUNDLE_FILE)  # what is saved is what loads
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

def validate_meta(meta: dict, kind_class, where) -> None:
    """Check ``bundle.json``'s content against :data:`COMMON_FIELDS` and ``kind_class.fields``, and its
    decision against the kind's; BundleError ``<where>: <field>: <what is wrong>``."""
    try:
        sc.validate(meta, {**COMMON_FIELDS, **kind_class.fields})
    except SchemaError as e:
        raise BundleError(f"{printable(where)}: {e}") from None
    if meta["decision"] not in kind_class.decisions:
        raise BundleError(f"{printable(where)}: decision: a {kind_class.kind} bundle decides by "
                          f"{' or '.join(kind_class.decisions)}, got {meta['decision']!r}")


def read_bundle_meta(path, kinds: dict) -> dict:
    """``bundle.json`` of the bundle at ``path``, checked (size, format, versions, every field against
    the schema of its kind, one of ``kinds`` {name: Bundle subclass}; the folder holds only regular
    files, exactly those listed, each of the sha256 listed), without loading any model. Raises
    :class:`BundleError`."""
    root = Path(path)
    meta_path = root / BUNDLE_FILE
    if not root.is_dir():
        raise BundleError(f"{root}: {'not a folder' if os.path.lexists(root) else 'no such folder'}; a model is given as "
                          f"a bundle folder (an experiment writes one to <run_dir>/bundle)")
    if not os.path.lexists(meta_path):
        hint = next((f"; did you mean {c.parent}?" for c in sorted(root.glob(f"bundle*/{BUNDLE_FILE}"))), "")
        raise BundleError(f"{root}: not a model bundle (no {BUNDLE_FILE}){hint}")
    try:
        meta = sc.parse_json(read_regular(meta_path, sc.MAX_META_BYTES), str(meta_path))
    except SchemaError as e:
        raise BundleError(str(e)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = sc.shown(meta.get("format")) if isinstance(meta, dict) else f"a JSON {type(meta).__name__}"
        raise BundleError(f"{meta_path}: not a deepfake_keras bundle (format {found})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{meta_path}: bundle format version {sc.shown(meta.get('format_version'))}, this "
                          f"deepfake_keras reads version {FORMAT_VERSION}; use the deepfake_keras that made it")
    if not isinstance(meta.get("versions"), dict):
        raise BundleError(f"{meta_path}: versions: missing or not an object")
    _check_versions(meta, meta_path)
    kind = meta.get("kind")
    if not isinstance(kind, str) or kind not in kinds:
        raise BundleError(f"{root}: unknown bundle kind {sc.shown(kind)}; one of {sorted(kinds)}")
    validate_meta(meta, kinds[kind], meta_path)
    if seal_of(meta) != meta["seal"]:
        raise BundleError(f"{meta_path}: edited since the bundle was made (its seal, the sha256 of its settings, "
                          f"no longer matches); refused. Use the bundle as the experiment wrote it, or re-run it")
    _check_files(meta, root)
    return meta


def source_summary(meta: dict):
    """A bounded copy of the bundle's ``source`` (which run and model it came from, its test metrics),
    for every report (:func:`~.schema.bounded_copy`)."""
    return sc.bounded_copy(meta.get("source") or {})


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
    files = meta["files"]  # names checked by the schema
    if BUNDLE_FILE in files:
        raise BundleError(f"{root / BUNDLE_FILE}: files: lists {BUNDLE_FILE} itself; refused")
    found = scan_folder(root)  # refuses links and special files before anything is opened
    missing = sorted(n for n in files if n not in found)
    if missing:
        raise BundleError(f"{root}: file {missing[0]} is missing from the bundle"
                          + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    extra = sorted(set(found) - set(files) - {BUNDLE_FILE})
    if extra:
        raise BundleError(f"{root}: file {printable(extra[0])} is not part of the bundle (not in {BUNDLE_FILE}'s "
                          f"file list); refused. Remove it, or use the bundle as the experiment wrote it")
    big = sorted(n for n in files if found[n] > sc.MAX_FILE_BYTES)
    if big:
        raise BundleError(f"{root / big[0]}: {size_text(found[big[0]])}, more than the "
                          f"{size_text(sc.MAX_FILE_BYTES)} a bundle file may have; refused")
    total = sum(found[n] for n in files)
    if total > sc.MAX_BUNDLE_BYTES:
        raise BundleError(f"{root}: its files hold {size_text(total)}, more than the "
                          f"{size_text(sc.MAX_BUNDLE_BYTES)} a bundle may have; refused")
    for name, digest in sorted(files.items()):
        got = sc.hash_regular(safe_name(name, root), sc.MAX_FILE_BYTES)
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


