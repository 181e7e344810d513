"""Triplet bundles: FaceNet embeddings -> triplet head -> scikit-learn classifier (the FF++ experiment's
model).

Files: ``triplet_head.weights.h5`` (the head's Keras weights, weights only), ``triplet_head.json`` (its
settings, rebuilt from them, and training record), ``classifier.skops`` (the SGD / RF classifier, in
skops' format, not a pickle, loaded with only :data:`~.base.TRUSTED_TYPES` trusted). ``bundle.json``
names the FaceNet by registry name and sha256 rather than holding a 90 MB copy.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..io import about
from ..config import ExtractConfig
from ..weights import STANDARDIZATIONS
from .base import (BUNDLE_FILE, CLASSIFIER_FILE, CLASSIFIER_TYPES, TRUSTED_TYPES, Bundle, BundleError,
                   bundle_bytes, check_classifier_types, safe_name, type_name)
from .schema import (MAX_CLASSIFIER_BYTES, MAX_HEAD_LAYERS, MAX_HEAD_PARAMS, MAX_RECORD_BYTES, Boolean, Choice,
                     FileRef, Integer, ListOf, Number, Record, SchemaError, Sha256, Text, check_weights_file,
                     parse_json, validate)


def _head_size(s: dict):
    dims = [s["input_dim"], *s["units"], s["embedding_dim"]]
    params = sum((a + 1) * b for a, b in zip(dims[:-1], dims[1:]))
    return None if params <= MAX_HEAD_PARAMS else f"a head of {params:,} parameters, more than {MAX_HEAD_PARAMS:,}"


#: ``triplet_head.json``: a training record (its other keys are not read) whose ``settings`` rebuild the
#: head; what shapes the model is checked here before anything is built
HEAD_RECORD_FIELDS = {
    "settings": Record({"input_dim": Integer(1, 4096), "units": ListOf(Integer(1, 8192), 0, MAX_HEAD_LAYERS),
                        "embedding_dim": Integer(1, 8192), "dropout": Number(0, 0.99),
                        "normalize": Boolean(required=False),  # absent in records before it: normalised
                        "initializer": Text(40, r"[A-Za-z_]+", required=False)},  # a Keras initializer's name
                       extra=True, rule=_head_size),
}
#: the triplet kind's fields of bundle.json (see :data:`.base.COMMON_FIELDS`)
TRIPLET_FIELDS = {
    "facenet": Record({"name": Text(64, r"[A-Za-z0-9._-]+"), "sha256": Sha256(), "dim": Integer(1, 4096),
                       "file": Text(255, nullable=True), "standardization": Choice(STANDARDIZATIONS),
                       "image_size": Integer(32, 1024), "margin": Number(0, 2)}),
    "triplet_head": Record({"weights": FileRef(), "settings": FileRef(), "input_dim": Integer(1, 4096),
                            "embedding_dim": Integer(1, 8192)}),
    "classifier": Record({"file": FileRef(), "type": Choice(CLASSIFIER_TYPES), "n_features": Integer(1, 8192)}),
}


class TripletBundle(Bundle):
    """A loaded triplet bundle: ``head``, ``classifier``, ``facenet_spec`` (the FaceNet model itself
    is loaded on first use, :meth:`facenet`)."""

    kind = "triplet"
    decisions = ("score",)
    fields = TRIPLET_FIELDS

    def __init__(self, path, meta: dict):
        super().__init__(path, meta)
        self.head = self.classifier = self.facenet_spec = self.facenet_file = None
        self._facenet_model = None

    @property
    def facenet_margin(self) -> float:
        return self.meta["facenet"]["margin"]

    # ------------------------------------------------------------- saving
    @classmethod
    def save(cls, out_dir, *, extract_config: ExtractConfig, head, head_record: dict, classifier, facenet,
             facenet_margin: float | None = None, threshold: float = 0.5, aggregation: str = "mean",
             source: dict | None = None, config: dict | None = None, calibration: dict | None = None,
             demo_model: bool = False) -> Path:
        """Write a triplet bundle (see :meth:`Bundle.write`).

        ``head``, ``head_record``: the trained head and its record (from
        :func:`~deepfake_keras.training.triplet.train_triplet_head`; its ``settings`` rebuild the head).
        ``classifier``: the fitted scikit-learn classifier of the head's embeddings (RF or SGD,
        :func:`~deepfake_keras.training.classifiers.fit_classifier`). ``facenet``: the FaceNet the
        embeddings came from (a registry name or a :class:`~deepfake_keras.weights.WeightSpec`).
        ``facenet_margin``: the margin of the face crop FaceNet saw
        (:func:`~deepfake_keras.embeddings.effective_margin` of the store's margin and
        :data:`~deepfake_keras.config.FACENET_MARGIN` by default).
        """
        def fill(folder: Path) -> dict:
            return _write_triplet(folder, head, head_record, classifier, facenet, facenet_margin, extract_config)

        return cls.write(out_dir, extract_config=extract_config, threshold=threshold, aggregation=aggregation,
                         decision="score", source=source, config=config, fill=fill, calibration=calibration,
                         demo_model=demo_model)

    # ------------------------------------------------------------- loading
    @classmethod
    def load(cls, root: Path, meta: dict, facenet=None, facenet_file=None) -> "TripletBundle":
        """``facenet``: optional ``(model, spec)`` of an already loaded FaceNet; its spec must name the
        bundle's weights and sha256. ``facenet_file``: for a bundle trained on a FaceNet weights file
        that is not in the registry, that file (its sha256 must be the bundle's)."""
        self = cls(root, meta)
        self._load(root, meta, facenet, facenet_file)
        return self

    def _load(self, root: Path, meta: dict, facenet, facenet_file) -> None:
        """Every field was checked by :func:`.base.read_bundle_meta`; here the parts are checked to fit
        one another and loaded, each file from the bytes whose sha256 is checked."""
        import skops.io as sio

        from ..models.triplet import head_from_record
        from ..weights import WEIGHTS, spec_for_file

        where = root / BUNDLE_FILE
        fn, th, cl = meta["facenet"], meta["triplet_head"], meta["classifier"]
        spec = WEIGHTS.get(fn["name"])
        if facenet_file is not None:
            if not Path(facenet_file).is_file():
                raise about(BundleError(f"FaceNet file {facenet_file}: no such file"), "facenet")
            spec = spec_for_file(facenet_file, fn["standardization"])
            self.facenet_file = Path(facenet_file)
        elif spec is None and facenet is None:
            raise about(BundleError(f"{where}: the model was trained on the FaceNet weights file {fn['file']!r} "
                                    f"(sha256 {fn['sha256']}), which is not in deepfake_keras' weights registry; "
                                    f"give that file"), "facenet")
        elif spec is None:
            spec = facenet[1]
        if spec.kind != "facenet":
            raise BundleError(f"{where}: {spec.name!r} is not a FaceNet")
        if spec.sha256 != fn["sha256"] or spec.dim != fn["dim"]:
            have = f"FaceNet file {facenet_file}" if facenet_file is not None else f"the registry's {spec.name}"
            raise BundleError(f"{where}: the model was trained on FaceNet {fn['name']} (sha256 {fn['sha256']}, "
                              f"{fn['dim']}-d); {have} is sha256 {spec.sha256} ({spec.dim}-d): not the weights the "
                              f"model was trained on")
        self.facenet_spec = replace(spec, standardization=fn["standardization"])
        if facenet is not None:
            model, given = facenet
            if given.sha256 != spec.sha256 or given.standardization != fn["standardization"]:
                raise BundleError(f"the FaceNet passed to load_bundle is {given.name} ({given.sha256[:12]}, "
                                  f"{given.standardization}); the bundle needs {spec.name} ({spec.sha256[:12]}, "
                                  f"{fn['standardization']})")
            self._facenet_model = model

        settings_path = safe_name(th["settings"], root)
        record = parse_json(bundle_bytes(root, meta, th["settings"], MAX_RECORD_BYTES), str(settings_path))
        try:
            validate(record, HEAD_RECORD_FIELDS, extra=True)
        except SchemaError as e:
            raise BundleError(f"{settings_path}: {e}") from None
        s = record["settings"]
        for name, got, want, what in (("triplet_head.input_dim", th["input_dim"], fn["dim"], "facenet.dim"),
                                      ("triplet_head.embedding_dim", th["embedding_dim"], cl["n_features"],
                                       "classifier.n_features")):
            if got != want:
                raise BundleError(f"{where}: {name}: {got}, but {what} is {want}")
        for name in ("input_dim", "embedding_dim"):
            if s[name] != th[name]:
                raise BundleError(f"{settings_path}: settings.{name}: {s[name]}, but {BUNDLE_FILE} says "
                                  f"triplet_head.{name} {th[name]}")
        try:
            head = head_from_record(record)
        except (KeyError, TypeError, ValueError) as e:
            raise BundleError(f"{settings_path}: cannot rebuild the head from its settings ({e})") from None
        weights_path = safe_name(th["weights"], root)
        check_weights_file(weights_path)
        try:
            head.load_weights(str(weights_path))
        except Exception as e:  # h5py / Keras errors of a file that does not fit
            raise BundleError(f"{weights_path}: cannot be loaded into the head ({type(e).__name__}: {e})") from None
        self.head = head

        clf_path = safe_name(cl["file"], root)
        data = bundle_bytes(root, meta, cl["file"], MAX_CLASSIFIER_BYTES)
        check_classifier_types(data, str(clf_path))
        try:
            untrusted = sio.get_untrusted_types(data=data)
            classifier = sio.loads(data, trusted=[t for t in untrusted if t in TRUSTED_TYPES])
        except Exception as e:  # skops refuses (UntrustedTypesFoundException) or the file is broken
            raise BundleError(f"{clf_path}: cannot be loaded safely ({type(e).__name__}: {e})") from None
        if type_name(classifier) != cl["type"] or not hasattr(classifier, "predict_proba"):
            raise BundleError(f"{clf_path}: holds a {type_name(classifier)}, {BUNDLE_FILE} says {cl['type']}")
        n_in = getattr(classifier, "n_features_in_", None)
        if n_in is not None and int(n_in) != cl["n_features"]:
            raise BundleError(f"{clf_path}: the classifier takes {n_in} features, the head gives {cl['n_features']}")
        self.classifier = classifier

    # ------------------------------------------------------------- scoring
    def facenet(self):
        """The FaceNet model (loaded once per process, by layer name, from the registry's verified file)."""
        if self._facenet_model is None:
            self._facenet_model = _cached_facenet(self.facenet_spec, self.facenet_file)
        return self._facenet_model

    def preload(self) -> None:
        self.facenet()

    def embed(self, faces) -> np.ndarray:
        """FaceNet embeddings of face crops (RGB uint8, made with the bundle's ExtractConfig): each
        crop is cut to the bundle's FaceNet margin first, as the training embeddings were."""
        from ..embeddings import center_margin, embed_faces

        faces = [center_margin(np.asarray(f), self.extract_config.margin, self.facenet_margin)
                 if self.facenet_margin < self.extract_config.margin else np.asarray(f) for f in faces]
        if not faces:
            return np.zeros((0, self.facenet_spec.dim), np.float32)
        return embed_faces(faces, self.facenet(), self.facenet_spec)

    def score_embeddings(self, x) -> np.ndarray:
        """P(fake) per row of FaceNet embeddings ``x``: head, then classifier."""
        from ..models.triplet import embed
        from ..training.classifiers import frame_scores

        x = np.asarray(x, np.float32)
        if len(x) == 0:
            return np.zeros(0)
        return frame_scores(self.classifier, embed(self.head, x))

    def score_faces(self, faces) -> tuple:
        return self.score_embeddings(self.embed(faces)), None


def _write_triplet(folder: Path, head, head_record, classifier, facenet, facenet_margin, extract_config) -> dict:
    import skops.io as sio

    from ..config import FACENET_MARGIN
    from ..embeddings import effective_margin, resolve_facenet
    from ..training.triplet import SETTINGS_FILE, WEIGHTS_FILE, save_triplet_head
    from ..weights import WeightSpec

    if head is None or head_record is None or classifier is None or facenet is None:
        raise BundleError("a triplet bundle needs head, head_record, classifier and facenet")
    spec = facenet if isinstance(facenet, WeightSpec) else resolve_facenet(facenet)
    try:  # as it will be read back from triplet_head.json
        validate(json.loads(json.dumps(head_record)), HEAD_RECORD_FIELDS, "head_record", extra=True)
    except SchemaError as e:
        raise BundleError(f"{e}; pass the record of train_triplet_head") from None
    settings = head_record["settings"]
    if int(settings["input_dim"]) != int(spec.dim) or int(head.input_shape[-1]) != int(spec.dim):
        raise BundleError(f"the head takes {head.input_shape[-1]}-d inputs but FaceNet {spec.name} gives "
                          f"{spec.dim}-d embeddings")
    n_in = getattr(classifier, "n_features_in_", None)
    if n_in is not None and int(n_in) != int(head.output_shape[-1]):
        raise BundleError(f"the classifier takes {n_in} features but the head gives {head.output_shape[-1]}")
    if not hasattr(classifier, "predict_proba") or 1 not in list(getattr(classifier, "classes_", [])):
        raise BundleError("the classifier must be fitted with class 1 (fake) and have predict_proba")
    if type_name(classifier) not in CLASSIFIER_TYPES:
        raise BundleError(f"classifier {type_name(classifier)} is not one a bundle may hold "
                          f"({', '.join(sorted(CLASSIFIER_TYPES))})")
    data = sio.dumps(classifier)
    check_classifier_types(data, "the classifier")
    (folder / CLASSIFIER_FILE).write_bytes(data)
    save_triplet_head(head, head_record, folder)
    margin = effective_margin(extract_config.margin, FACENET_MARGIN if facenet_margin is None else facenet_margin)
    return {"facenet": {"name": spec.name, "sha256": spec.sha256, "dim": int(spec.dim), "file": spec.filename,
                        "standardization": spec.standardization, "image_size": int(spec.image_size or 160),
                        "margin": float(margin)},
            "triplet_head": {"weights": WEIGHTS_FILE, "settings": SETTINGS_FILE,
                             "input_dim": int(settings["input_dim"]),
                             "embedding_dim": int(settings["embedding_dim"])},
            "classifier": {"file": CLASSIFIER_FILE, "type": type_name(classifier),
                           "n_features": int(head.output_shape[-1])}}


_FACENETS: dict = {}


def _cached_facenet(spec, path=None):
    """One FaceNet per (weights sha256, standardisation) per process: loading one costs seconds.
    ``path``: the weights file of a FaceNet that is not in the registry."""
    from ..weights import load_facenet

    key = (spec.sha256, spec.standardization)
    if key not in _FACENETS:
        model, _ = load_facenet(str(path) if path is not None else spec.name, standardization=spec.standardization)
        _FACENETS[key] = model
    return _FACENETS[key]
