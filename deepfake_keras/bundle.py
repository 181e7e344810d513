"""Model bundles: a trained detector in one folder, checked file by file when loaded.

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
mean probability, as in :func:`deepfake_keras.training.aggregate_bags`); for
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
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from .assets import sha256_of
from .config import ExtractConfig
from .runs import save_json

FORMAT = "deepfake_keras-bundle"
FORMAT_VERSION = 1
BUNDLE_FILE = "bundle.json"
KINDS = ("triplet", "xception")
DECISIONS = ("score", "vote")
CLASSIFIER_FILE = "classifier.skops"
BAGS_DIR = "bags"

#: every type a bundled classifier may hold (``module.Class`` as skops' schema names it):
#: the RF and SGD classifiers of :mod:`deepfake_keras.models.classifiers`, with or without
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


# --------------------------------------------------------------------------- helpers

def bundle_versions() -> dict:
    """Versions recorded in (and checked against) a bundle: the package and the libraries whose
    files it holds. ``tensorflow`` is whichever build is installed (``tensorflow-cpu`` or not)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import deepfake_keras

    out = {"deepfake_keras": deepfake_keras.__version__, "python": platform.python_version()}
    for name in ("tensorflow", "keras", "scikit-learn", "skops", "numpy", "h5py", "mtcnn", "keras-facenet",
                 "opencv-python-headless"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    if "tensorflow" not in out:
        try:
            out["tensorflow"] = version("tensorflow-cpu")
        except PackageNotFoundError:
            pass
    return out


def _major_minor(v: str) -> tuple:
    return tuple(str(v).split(".")[:2])


def _type_name(obj) -> str:
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


def _check_classifier_types(data: bytes, where: str) -> None:
    types = skops_types(data)
    bad = sorted(types - TRUSTED_TYPES)
    if bad:
        raise BundleError(f"{where}: holds types outside the trusted list ({', '.join(bad)}); refused. A bundle's "
                          f"classifier may only be {', '.join(sorted(CLASSIFIER_TYPES))} (see "
                          f"deepfake_keras.bundle.TRUSTED_TYPES)")


def _safe_name(name: str, root: Path) -> Path:
    """``root / name`` for a relative POSIX file name that stays inside ``root``, else BundleError."""
    p = PurePosixPath(str(name))
    if not str(name) or p.is_absolute() or ".." in p.parts or "\\" in str(name) or str(name).startswith("~"):
        raise BundleError(f"{root / BUNDLE_FILE}: file name {name!r} leaves the bundle folder; refused")
    return root.joinpath(*p.parts)


def _listing(root: Path) -> list:
    """Every file under ``root`` but bundle.json, as POSIX names relative to ``root``."""
    return sorted(name for name in (p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
                  if name != BUNDLE_FILE)


# --------------------------------------------------------------------------- saving

def save_bundle(out_dir, kind: str = "triplet", *, extract_config: ExtractConfig, threshold: float = 0.5,
                aggregation: str = "mean", decision: str | None = None,
                head=None, head_record: dict | None = None, classifier=None, facenet=None,
                facenet_margin: float | None = None,
                bag_weights=(), image_size: int | None = None, fc_units: int | None = None,
                dropout: float | None = None,
                source: dict | None = None, config: dict | None = None) -> Path:
    """Write a model bundle to ``out_dir`` (a new or empty folder; nothing existing is overwritten).

    Common arguments:
        kind: ``"triplet"`` or ``"xception"``.
        extract_config: the :class:`~deepfake_keras.config.ExtractConfig` the training faces
            were extracted with (predict uses it unchanged).
        threshold: a video (or frame) whose score is ``>= threshold`` is called fake.
        aggregation: frame scores -> video score (:data:`deepfake_keras.evaluation.AGGREGATIONS`).
        decision: ``"score"`` (default for triplet bundles) or ``"vote"`` (default for
            Xception bundles: the majority vote of the bags, see the module docstring).
        source, config: free records kept in ``bundle.json`` (which run, which model, its
            metrics; the run's resolved config).

    Triplet bundles (FaceNet embeddings -> triplet head -> classifier):
        head, head_record: the trained head (a Keras model from
            :func:`~deepfake_keras.models.triplet.train_triplet_head`) and its record (its
            ``settings`` rebuild the head).
        classifier: the fitted scikit-learn classifier of the head's embeddings (RF or SGD,
            :func:`~deepfake_keras.models.classifiers.fit_classifier`).
        facenet: the FaceNet the embeddings came from: a registry name or a
            :class:`~deepfake_keras.weights.WeightSpec`. Recorded by name and sha256.
        facenet_margin: the margin of the face crop FaceNet saw
            (:func:`deepfake_keras.embeddings.effective_margin` of the store's margin and
            :data:`~deepfake_keras.embeddings.FACENET_MARGIN` by default).

    Xception bundles (the bags of the Celeb-DF experiment):
        bag_weights: one ``.weights.h5`` file per bag (copied into ``bags/``).
        image_size, fc_units, dropout: how each bag's model is rebuilt
            (:func:`~deepfake_keras.models.xception.build_xception`; defaults: that module's).

    The folder is written under a temporary name beside ``out_dir`` and renamed into place
    in one step, so a killed save leaves no partial bundle. Returns ``out_dir``. Raises
    :class:`BundleError` for missing or inconsistent parts.
    """
    from .evaluation import AGGREGATIONS

    out = Path(out_dir)
    if kind not in KINDS:
        raise BundleError(f"kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(extract_config, ExtractConfig):
        raise BundleError(f"extract_config must be an ExtractConfig, got {type(extract_config).__name__}")
    if not (isinstance(threshold, (int, float)) and np.isfinite(threshold) and 0 <= threshold <= 1):
        raise BundleError(f"threshold must be a number in [0, 1], got {threshold!r}")
    if aggregation not in AGGREGATIONS:
        raise BundleError(f"aggregation must be one of {sorted(AGGREGATIONS)}, got {aggregation!r}")
    decision = decision or ("score" if kind == "triplet" else "vote")
    if decision not in DECISIONS or (decision == "vote" and kind != "xception"):
        raise BundleError(f"decision must be 'score' (or 'vote' for xception bundles), got {decision!r}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BundleError(f"{out} exists and is not an empty folder; a bundle is never written over anything: "
                          f"choose a new folder")

    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": bundle_versions(),
            "extract": extract_config.to_dict(), "threshold": float(threshold), "aggregation": aggregation,
            "decision": decision, "source": source or {}, "config": config or {}}
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        if kind == "triplet":
            meta.update(_save_triplet(tmp, head, head_record, classifier, facenet, facenet_margin, extract_config))
        else:
            meta.update(_save_xception(tmp, bag_weights, image_size, fc_units, dropout))
        meta["files"] = {name: sha256_of(tmp / name) for name in _listing(tmp)}
        save_json(tmp / BUNDLE_FILE, meta)
        if out.exists():
            out.rmdir()  # empty, checked above
        out.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _save_triplet(tmp: Path, head, head_record, classifier, facenet, facenet_margin, extract_config) -> dict:
    import skops.io as sio

    from .embeddings import FACENET_MARGIN, effective_margin, resolve_facenet
    from .models.triplet import SETTINGS_FILE, WEIGHTS_FILE, save_triplet_head
    from .weights import WeightSpec

    if head is None or head_record is None or classifier is None or facenet is None:
        raise BundleError("a triplet bundle needs head, head_record, classifier and facenet")
    spec = facenet if isinstance(facenet, WeightSpec) else resolve_facenet(facenet)
    settings = head_record.get("settings", {})
    for key in ("input_dim", "units", "embedding_dim", "dropout"):
        if key not in settings:
            raise BundleError(f"head_record['settings'] has no {key!r}; pass the record of train_triplet_head")
    if int(settings["input_dim"]) != int(spec.dim) or int(head.input_shape[-1]) != int(spec.dim):
        raise BundleError(f"the head takes {head.input_shape[-1]}-d inputs but FaceNet {spec.name} gives "
                          f"{spec.dim}-d embeddings")
    n_in = getattr(classifier, "n_features_in_", None)
    if n_in is not None and int(n_in) != int(head.output_shape[-1]):
        raise BundleError(f"the classifier takes {n_in} features but the head gives {head.output_shape[-1]}")
    if not hasattr(classifier, "predict_proba") or 1 not in list(getattr(classifier, "classes_", [])):
        raise BundleError("the classifier must be fitted with class 1 (fake) and have predict_proba")
    if _type_name(classifier) not in CLASSIFIER_TYPES:
        raise BundleError(f"classifier {_type_name(classifier)} is not one a bundle may hold "
                          f"({', '.join(sorted(CLASSIFIER_TYPES))})")
    data = sio.dumps(classifier)
    _check_classifier_types(data, "the classifier")
    (tmp / CLASSIFIER_FILE).write_bytes(data)
    save_triplet_head(head, head_record, tmp)
    margin = effective_margin(extract_config.margin, FACENET_MARGIN if facenet_margin is None else facenet_margin)
    return {"facenet": {"name": spec.name, "sha256": spec.sha256, "dim": int(spec.dim), "file": spec.filename,
                        "standardization": spec.standardization, "image_size": int(spec.image_size or 160),
                        "margin": float(margin)},
            "triplet_head": {"weights": WEIGHTS_FILE, "settings": SETTINGS_FILE,
                             "input_dim": int(settings["input_dim"]),
                             "embedding_dim": int(settings["embedding_dim"])},
            "classifier": {"file": CLASSIFIER_FILE, "type": _type_name(classifier),
                           "n_features": int(head.output_shape[-1])}}


def _save_xception(tmp: Path, bag_weights, image_size, fc_units, dropout) -> dict:
    from .models import xception as xc

    paths = [Path(p) for p in bag_weights]
    if not paths:
        raise BundleError("an xception bundle needs bag_weights: one .weights.h5 file per bag")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise BundleError(f"bag weights not found: {', '.join(missing)}")
    names = []
    (tmp / BAGS_DIR).mkdir()
    for i, path in enumerate(paths):
        name = f"{BAGS_DIR}/bag_{i}.weights.h5"
        shutil.copyfile(path, tmp / name)
        names.append(name)
    image_size = int(image_size or xc.IMAGE_SIZE)
    if image_size < xc.MIN_IMAGE_SIZE:
        raise BundleError(f"image_size must be >= {xc.MIN_IMAGE_SIZE}, got {image_size}")
    return {"xception": {"image_size": image_size, "fc_units": int(fc_units or xc.FC_UNITS),
                         "dropout": float(xc.DROPOUT if dropout is None else dropout), "bags": names}}


# --------------------------------------------------------------------------- loading

@dataclass
class Bundle:
    """A loaded, verified bundle (see :func:`load_bundle`).

    ``meta`` is ``bundle.json``. Triplet bundles have ``head``, ``classifier``
    and ``facenet_spec`` (the FaceNet model itself is loaded on first use, :meth:`facenet`);
    Xception bundles have ``bags`` (one Keras model per bag) and ``image_size``.
    """

    path: Path
    meta: dict
    extract_config: ExtractConfig
    head: object = None
    classifier: object = None
    facenet_spec: object = None
    bags: list = field(default_factory=list)
    facenet_file: Path | None = None
    _facenet_model: object = None

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"])

    @property
    def aggregation(self) -> str:
        return self.meta["aggregation"]

    @property
    def decision(self) -> str:
        return self.meta["decision"]

    @property
    def image_size(self) -> int | None:
        return self.meta.get("xception", {}).get("image_size")

    @property
    def facenet_margin(self) -> float | None:
        return self.meta.get("facenet", {}).get("margin")

    def facenet(self):
        """The FaceNet model of a triplet bundle (loaded once, by layer name, from the registry's
        verified file)."""
        if self.kind != "triplet":
            raise BundleError(f"{self.path}: an {self.kind} bundle has no FaceNet")
        if self._facenet_model is None:
            self._facenet_model = _cached_facenet(self.facenet_spec, self.facenet_file)
        return self._facenet_model

    def embed(self, faces) -> np.ndarray:
        """FaceNet embeddings of face crops (RGB uint8, made with the bundle's ExtractConfig): each
        crop is cut to the bundle's FaceNet margin first, as the training embeddings were."""
        from .embeddings import center_margin, embed_faces

        faces = [center_margin(np.asarray(f), self.extract_config.margin, self.facenet_margin)
                 if self.facenet_margin < self.extract_config.margin else np.asarray(f) for f in faces]
        if not faces:
            return np.zeros((0, self.facenet_spec.dim), np.float32)
        return embed_faces(faces, self.facenet(), self.facenet_spec)

    def score_embeddings(self, x) -> np.ndarray:
        """P(fake) per row of FaceNet embeddings ``x`` (triplet bundles): head, then classifier."""
        from .models.classifiers import frame_scores
        from .models.triplet import embed

        if self.kind != "triplet":
            raise BundleError(f"{self.path}: score_embeddings is for triplet bundles, this one is {self.kind}")
        x = np.asarray(x, np.float32)
        if len(x) == 0:
            return np.zeros(0)
        return frame_scores(self.classifier, embed(self.head, x))

    def bag_probabilities(self, faces, batch_size: int = 16) -> np.ndarray:
        """P(fake) of each face crop by each bag (Xception bundles): float ``(n_faces, n_bags)``.

        Crops are resized to the bags' input size as in training (antialiased bilinear, the
        resize of :func:`~deepfake_keras.models.xception.face_dataset`) and Xception-preprocessed.
        """
        if self.kind != "xception":
            raise BundleError(f"{self.path}: bag_probabilities is for xception bundles, this one is {self.kind}")
        x = xception_inputs(faces, self.image_size)
        out = np.zeros((len(x), len(self.bags)), np.float64)
        if len(x):
            for i, model in enumerate(self.bags):
                out[:, i] = np.concatenate([model(x[s:s + batch_size], training=False).numpy().reshape(-1)
                                            for s in range(0, len(x), batch_size)])
        return out

    def score_faces(self, faces) -> tuple:
        """``(scores, per_bag)``: P(fake) of each face crop, and for Xception bundles the
        ``(n, n_bags)`` probabilities whose mean is that score (None for triplet bundles)."""
        if self.kind == "triplet":
            return self.score_embeddings(self.embed(faces)), None
        per_bag = self.bag_probabilities(faces)
        return per_bag.mean(axis=1), per_bag


def xception_inputs(faces, image_size: int) -> np.ndarray:
    """Face crops (RGB uint8) -> Xception inputs as in training: float resize with antialiasing
    to ``image_size``, clipped to [0, 255], then ``x / 127.5 - 1``
    (:func:`deepfake_keras.models.xception.preprocess_faces`)."""
    from .models.xception import preprocess_faces

    return preprocess_faces(faces, image_size)


_FACENETS: dict = {}


def _cached_facenet(spec, path=None):
    """One FaceNet per (weights sha256, standardisation) per process: loading one costs seconds.
    ``path``: the weights file of a FaceNet that is not in the registry."""
    from .weights import load_facenet

    key = (spec.sha256, spec.standardization)
    if key not in _FACENETS:
        model, _ = load_facenet(str(path) if path is not None else spec.name, standardization=spec.standardization)
        _FACENETS[key] = model
    return _FACENETS[key]


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
    if meta.get("kind") not in KINDS:
        raise BundleError(f"{meta_path}: unknown kind {meta.get('kind')!r}; one of {KINDS}")
    _check_versions(meta, meta_path)
    for key in ("extract", "threshold", "aggregation", "decision"):
        if key not in meta:
            raise BundleError(f"{meta_path}: no {key!r}")
    _check_files(meta, root)
    return meta


def _check_versions(meta: dict, meta_path: Path) -> None:
    have, want = meta.get("versions") or {}, bundle_versions()
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
        _safe_name(name, root)
    missing = sorted(n for n in files if not _safe_name(n, root).is_file())
    if missing:
        raise BundleError(f"{root}: file {missing[0]} is missing from the bundle"
                          + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    extra = sorted(set(_listing(root)) - set(files))
    if extra:
        raise BundleError(f"{root}: file {extra[0]} is not part of the bundle (not in {BUNDLE_FILE}'s file list); "
                          f"refused. Remove it, or use the bundle as the experiment wrote it")
    for name, digest in sorted(files.items()):
        got = sha256_of(_safe_name(name, root))
        if got != digest:
            raise BundleError(f"{root / name}: changed since the bundle was made (sha256 {got}, bundle.json says "
                              f"{digest}); refused")


def load_bundle(path, facenet=None, facenet_file=None) -> Bundle:
    """Load and verify the bundle at ``path`` (see the module docstring for what is refused).

    ``facenet``: optional ``(model, spec)`` of an already loaded FaceNet (e.g. from
    :func:`deepfake_keras.weights.load_facenet`); its spec must name the bundle's weights and
    sha256. Otherwise the registry's verified file is loaded on first use.
    ``facenet_file``: for a bundle trained on a FaceNet weights file that is not in the registry
    (``--facenet PATH`` in the experiment), that file; its sha256 must be the bundle's.
    Raises :class:`BundleError`.
    """
    root = Path(path)
    meta = read_bundle_meta(root)
    try:
        config = ExtractConfig.from_dict(meta["extract"])
    except (TypeError, ValueError) as e:
        raise BundleError(f"{root / BUNDLE_FILE}: bad 'extract' settings ({e})") from None
    bundle = Bundle(path=root, meta=meta, extract_config=config)
    if meta["kind"] == "triplet":
        _load_triplet(bundle, root, meta, facenet, facenet_file)
    else:
        _load_xception(bundle, root, meta)
    return bundle


def _load_triplet(bundle: Bundle, root: Path, meta: dict, facenet, facenet_file) -> None:
    import skops.io as sio

    from .models.triplet import head_from_record
    from .weights import WEIGHTS, spec_for_file

    where = root / BUNDLE_FILE
    for key in ("facenet", "triplet_head", "classifier"):
        if not isinstance(meta.get(key), dict):
            raise BundleError(f"{where}: a triplet bundle needs {key!r}")
    fn = meta["facenet"]
    spec = WEIGHTS.get(fn.get("name"))
    if facenet_file is not None:
        if not Path(facenet_file).is_file():
            raise BundleError(f"--facenet {facenet_file}: no such file")
        spec = spec_for_file(facenet_file, fn.get("standardization"))
        bundle.facenet_file = Path(facenet_file)
    elif spec is None and facenet is None:
        raise BundleError(f"{where}: the model was trained on the FaceNet weights file {fn.get('file')!r} (sha256 "
                          f"{fn.get('sha256')}), which is not in deepfake_keras' weights registry; give that file "
                          f"(--facenet PATH)")
    elif spec is None:
        spec = facenet[1]
    if spec.kind != "facenet":
        raise BundleError(f"{where}: {spec.name!r} is not a FaceNet")
    if spec.sha256 != fn.get("sha256") or spec.dim != fn.get("dim"):
        have = f"--facenet {facenet_file}" if facenet_file is not None else f"the registry's {spec.name}"
        raise BundleError(f"{where}: the model was trained on FaceNet {fn.get('name')} (sha256 {fn.get('sha256')}, "
                          f"{fn.get('dim')}-d); {have} is sha256 {spec.sha256} ({spec.dim}-d): not the weights the "
                          f"model was trained on")
    from dataclasses import replace

    bundle.facenet_spec = replace(spec, standardization=fn["standardization"])
    if facenet is not None:
        model, given = facenet
        if given.sha256 != spec.sha256 or given.standardization != fn["standardization"]:
            raise BundleError(f"the FaceNet passed to load_bundle is {given.name} ({given.sha256[:12]}, "
                              f"{given.standardization}); the bundle needs {spec.name} ({spec.sha256[:12]}, "
                              f"{fn['standardization']})")
        bundle._facenet_model = model

    th = meta["triplet_head"]
    settings_path = _safe_name(th["settings"], root)
    record = json.loads(settings_path.read_text(encoding="utf-8"))
    s = record.get("settings", {})
    try:
        head = head_from_record(record)
    except (KeyError, TypeError, ValueError) as e:
        raise BundleError(f"{settings_path}: cannot rebuild the head from its settings ({e})") from None
    if int(s["input_dim"]) != int(fn["dim"]):
        raise BundleError(f"{settings_path}: the head takes {s['input_dim']}-d inputs, FaceNet gives {fn['dim']}-d")
    weights_path = _safe_name(th["weights"], root)
    try:
        head.load_weights(str(weights_path))
    except Exception as e:  # h5py / Keras errors of a file that does not fit
        raise BundleError(f"{weights_path}: cannot be loaded into the head ({type(e).__name__}: {e})") from None
    bundle.head = head

    clf_path = _safe_name(meta["classifier"]["file"], root)
    data = clf_path.read_bytes()
    _check_classifier_types(data, str(clf_path))
    try:
        untrusted = sio.get_untrusted_types(data=data)
        classifier = sio.loads(data, trusted=[t for t in untrusted if t in TRUSTED_TYPES])
    except Exception as e:  # skops refuses (UntrustedTypesFoundException) or the file is broken
        raise BundleError(f"{clf_path}: cannot be loaded safely ({type(e).__name__}: {e})") from None
    if _type_name(classifier) not in CLASSIFIER_TYPES or not hasattr(classifier, "predict_proba"):
        raise BundleError(f"{clf_path}: holds a {_type_name(classifier)}, not one of {sorted(CLASSIFIER_TYPES)}")
    n_in = getattr(classifier, "n_features_in_", None)
    if n_in is not None and int(n_in) != int(s["embedding_dim"]):
        raise BundleError(f"{clf_path}: the classifier takes {n_in} features, the head gives {s['embedding_dim']}")
    bundle.classifier = classifier


def _load_xception(bundle: Bundle, root: Path, meta: dict) -> None:
    from .models import xception as xc

    where = root / BUNDLE_FILE
    x = meta.get("xception")
    if not isinstance(x, dict) or not x.get("bags"):
        raise BundleError(f"{where}: an xception bundle needs 'xception' with its 'bags'")
    for name in x["bags"]:
        path = _safe_name(name, root)
        image_size, fc_units, dropout = int(x["image_size"]), int(x["fc_units"]), float(x["dropout"])
        try:
            model = xc.load_classifier(path, image_size, fc_units=fc_units, dropout=dropout)
        except Exception as e:
            raise BundleError(f"{path}: cannot be loaded into an Xception of {x['image_size']} px "
                              f"({type(e).__name__}: {e})") from None
        bundle.bags.append(model)


# --------------------------------------------------------------------------- the experiments' bundles

def new_bundle_dir(run_dir, name: str = "bundle") -> Path:
    """``<run_dir>/bundle``, or ``bundle-2``, ``bundle-3``... where a resumed run already wrote one
    (nothing is overwritten)."""
    run_dir = Path(run_dir)
    path, k = run_dir / name, 1
    while path.exists() and (not path.is_dir() or any(path.iterdir())):
        k += 1
        path = run_dir / f"{name}-{k}"
    return path


def save_triplet_run_bundle(run_dir, head_dir, z_train, y_train, facenet, extract_config: ExtractConfig, seed: int,
                            classifier: str = "sgd", source: dict | None = None, config: dict | None = None,
                            check=None) -> Path:
    """The bundle of an experiment's triplet model: the head saved in ``head_dir`` (by
    :func:`~deepfake_keras.models.triplet.train_triplet_head`) and the ``classifier`` (``"sgd"`` or
    ``"rf"``) fitted on the head's embeddings ``z_train`` of the training faces as the experiment
    fits it (:func:`~deepfake_keras.models.classifiers.fit_classifier`, same seed: the same model).

    ``check``: optional ``(z, scores)``, the head's embeddings of some faces and the scores the
    experiment gave them; the refitted classifier must reproduce them (else RuntimeError).
    Writes :func:`new_bundle_dir` of ``run_dir`` and returns it.
    """
    from .models.classifiers import fit_classifier, frame_scores
    from .models.triplet import load_triplet_head

    head, record = load_triplet_head(head_dir)
    clf = fit_classifier(classifier, z_train, y_train, seed=seed)
    if check is not None:
        z, scores = check
        got = frame_scores(clf, z)
        if not np.allclose(got, scores, rtol=0, atol=1e-6):
            raise RuntimeError(f"the refitted {classifier} classifier does not reproduce the run's scores (largest "
                               f"difference {np.max(np.abs(got - scores)):.3g}); the bundle would not be the run's model")
    return save_bundle(new_bundle_dir(run_dir), "triplet", extract_config=extract_config, head=head,
                       head_record=record, classifier=clf, facenet=facenet, source=source, config=config)
