"""Xception bundles: the Xception bags of the Celeb-DF experiment (``bags/bag_N.weights.h5``, one Keras
weights file per bag, weights only). The verdict is the majority vote of the bags
(:func:`deepfake_keras.evaluation.aggregate_bags`), each bag on the mean of its own frame
probabilities; the score is the mean probability; Grad-CAM is the mean of the bags' maps."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ExtractConfig, XceptionConfig
from .base import BAGS_DIR, BUNDLE_FILE, Bundle, BundleError, safe_name
from .schema import MAX_BAGS, FileRef, Integer, ListOf, Number, Record, check_weights_file

#: the xception kind's fields of bundle.json (see :data:`.base.COMMON_FIELDS`); image_size is also
#: checked against Keras' smallest Xception input (``models.xception.MIN_IMAGE_SIZE``) when loading
XCEPTION_FIELDS = {
    "xception": Record({"image_size": Integer(1, 512), "fc_units": Integer(1, 8192), "dropout": Number(0, 0.99),
                        "bags": ListOf(FileRef(), 1, MAX_BAGS, unique=True)}),
}


class XceptionBundle(Bundle):
    """A loaded Xception bundle: ``bags`` (one Keras model per bag) and ``image_size``."""

    kind = "xception"
    decisions = ("vote", "score")
    fields = XCEPTION_FIELDS

    def __init__(self, path, meta: dict):
        super().__init__(path, meta)
        self.bags = []

    @property
    def image_size(self) -> int:
        return int(self.meta["xception"]["image_size"])

    @classmethod
    def save(cls, out_dir, *, extract_config: ExtractConfig, bag_weights, image_size: int | None = None,
             fc_units: int | None = None, dropout: float | None = None, threshold: float = 0.5,
             aggregation: str = "mean", decision: str = "vote", source: dict | None = None,
             config: dict | None = None, calibration: dict | None = None, demo_model: bool = False) -> Path:
        """Write an Xception bundle (see :meth:`Bundle.write`): ``bag_weights``, one ``.weights.h5``
        file per bag (copied into ``bags/``); ``image_size``, ``fc_units``, ``dropout``: how each
        bag's model is rebuilt (:func:`~deepfake_keras.models.xception.build_xception`)."""
        def fill(folder: Path) -> dict:
            return _write_bags(folder, bag_weights, image_size, fc_units, dropout)

        return cls.write(out_dir, extract_config=extract_config, threshold=threshold, aggregation=aggregation,
                         decision=decision, source=source, config=config, fill=fill, calibration=calibration,
                         demo_model=demo_model)

    @classmethod
    def load(cls, root: Path, meta: dict, **options) -> "XceptionBundle":
        from ..models import xception as xc
        from ..training.fit import load_weights

        self = cls(root, meta)
        x = meta["xception"]  # every field checked by read_bundle_meta
        image_size, fc_units, dropout = x["image_size"], x["fc_units"], float(x["dropout"])
        if image_size < xc.MIN_IMAGE_SIZE:
            raise BundleError(f"{root / BUNDLE_FILE}: xception.image_size: must be at least {xc.MIN_IMAGE_SIZE} "
                              f"(Keras' smallest Xception input), got {image_size}")
        for name in x["bags"]:
            path = safe_name(name, root)
            check_weights_file(path)
            try:
                model = load_weights(xc.build_xception(image_size, weights=None, fc_units=fc_units,
                                                       dropout=dropout), path)
            except Exception as e:
                raise BundleError(f"{path}: cannot be loaded into an Xception of {image_size} px "
                                  f"({type(e).__name__}: {e})") from None
            self.bags.append(model)
        return self

    def bag_probabilities(self, faces, batch_size: int = 16) -> np.ndarray:
        """P(fake) of each face crop by each bag: float ``(n_faces, n_bags)``. Crops are prepared as
        in training (:func:`deepfake_keras.data.inputs.preprocess_faces`)."""
        from ..data.inputs import preprocess_faces

        x = preprocess_faces(faces, self.image_size)
        out = np.zeros((len(x), len(self.bags)), np.float64)
        if len(x):
            for i, model in enumerate(self.bags):
                out[:, i] = np.concatenate([model(x[s:s + batch_size], training=False).numpy().reshape(-1)
                                            for s in range(0, len(x), batch_size)])
        return out

    def score_faces(self, faces) -> tuple:
        per_bag = self.bag_probabilities(faces)
        return per_bag.mean(axis=1), per_bag

    def video_decision(self, scores, per_model=None) -> dict:
        """With ``decision="vote"``: fake when more than half of the bags call it fake, each bag on the
        mean of its own frame probabilities (ties: the mean probability), as in training."""
        from ..evaluation import AGGREGATIONS, aggregate_bags

        out = super().video_decision(scores)
        if self.decision == "vote" and per_model is not None:
            bag_scores = np.array([[AGGREGATIONS[self.aggregation](pd.Series(col), self.threshold)
                                    for col in np.asarray(per_model).T]])
            vote, _ = aggregate_bags(bag_scores, self.threshold)
            out.update(verdict="fake" if int(vote[0]) else "real",
                       votes_fake=int((bag_scores >= self.threshold).sum()), n_bags=int(bag_scores.shape[1]),
                       bag_video_scores=[float(v) for v in bag_scores[0]])
        return out

    def gradcam(self, faces, scores=None) -> tuple:
        """``(maps, targets)``: the mean of the bags' Grad-CAM maps
        (:func:`deepfake_keras.explain.gradcam.gradcam`) of the face crops, at the bags' input size, each
        explaining the class the bundle predicts for that face (``scores``, the faces' P(fake), or computed
        here: fake at the threshold and above)."""
        from ..explain.gradcam import face_inputs, gradcam

        if scores is None:
            scores = self.score_faces(faces)[0]
        targets = np.where(np.asarray(scores) >= self.threshold, "fake", "real")
        _, x = face_inputs(self.bags[0], np.stack(faces))  # the bags share one input size
        return np.mean([gradcam(model, x, target=targets) for model in self.bags], axis=0), targets


def _write_bags(folder: Path, bag_weights, image_size, fc_units, dropout) -> dict:
    from ..models import xception as xc

    paths = [Path(p) for p in bag_weights]
    if not paths:
        raise BundleError("an xception bundle needs bag_weights: one .weights.h5 file per bag")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise BundleError(f"bag weights not found: {', '.join(missing)}")
    names = []
    (folder / BAGS_DIR).mkdir()
    for i, path in enumerate(paths):
        name = f"{BAGS_DIR}/bag_{i}.weights.h5"
        shutil.copyfile(path, folder / name)
        names.append(name)
    image_size = int(image_size or XceptionConfig.image_size)
    if image_size < xc.MIN_IMAGE_SIZE:
        raise BundleError(f"image_size must be >= {xc.MIN_IMAGE_SIZE}, got {image_size}")
    return {"xception": {"image_size": image_size, "fc_units": int(fc_units or xc.FC_UNITS),
                         "dropout": float(xc.DROPOUT if dropout is None else dropout), "bags": names}}
