"""Classifiers on the triplet embeddings (paper IV.C, Table III): Random Forest and SGD.

Each frame's embedding gets a probability of fake from a scikit-learn
classifier; :func:`deepfake_keras.evaluation.video_scores` averages a video's
frames (the paper: video score = mean of its frame scores).

Choices (the paper names the classifiers only; the authors' code,
``train_triplets_semi_hard.py`` of AKASH2907/deepfakes_video_classification, fits
``SGDClassifier(max_iter=50, tol=None, loss="log")`` (line 394) and ``RandomForestClassifier(n_estimators=100)``
(line 403) on the head's embeddings):

- ``"rf"``: ``RandomForestClassifier`` (100 trees, scikit-learn's defaults, the authors');
  its probability is the mean of the trees' leaf frequencies.
- ``"sgd"``: ``SGDClassifier(loss="log_loss", max_iter=50, tol=None)`` (the authors'; ``"log"``
  is ``"log_loss"`` in scikit-learn >= 1.1; ``alpha=1e-4``, scikit-learn's default): logistic
  regression fitted by 50 epochs of SGD, whose ``predict_proba`` is a smooth sigmoid. ``loss="modified_huber"`` also has a
  ``predict_proba``, but it clips to exactly 0 and 1 over whole regions, which
  ties many scores and blunts the AUC and EER (seen on a toy two-Gaussian
  problem: AUC 0.92 against 0.94). No feature scaling by default (the authors'
  had none; a ``StandardScaler`` blew up the near-constant coordinates of a
  normalised head's output on a toy problem: AUC 0.89 with it, 0.94 without);
  ``scale=True`` adds one, for features of very different scales.
- ``class_weight="balanced"`` for both (ours), so that a 7:1 fake:real imbalance
  (Celeb-DF) does not push every probability above 0.5; on balanced data
  (FF++ NeuralTextures vs pristine, where the authors used it) it changes nothing.
  Pass ``None`` for unweighted fits.

Labels: 1 = fake, 0 = real; :func:`frame_scores` returns the probability of
class 1.
"""
from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["CLASSIFIERS", "GEOMETRY", "face_geometry", "fit_classifier", "frame_scores", "video_features"]


def _random_forest(seed, class_weight, **params):
    params = {"n_estimators": 100, "n_jobs": None, **params}
    return RandomForestClassifier(random_state=seed, class_weight=class_weight, **params)


def _sgd(seed, class_weight, **params):
    params = {"loss": "log_loss", "max_iter": 50, "tol": None, **params}
    return SGDClassifier(random_state=seed, class_weight=class_weight, **params)


#: kind -> builder(seed, class_weight, **params) of an unfitted estimator with ``predict_proba``
def _logistic(seed, class_weight, **params):
    from sklearn.linear_model import LogisticRegression

    params = {"max_iter": 1000, **params}
    return LogisticRegression(random_state=seed, class_weight=class_weight, **params)


CLASSIFIERS = {"rf": _random_forest, "sgd": _sgd, "logistic": _logistic}


GEOMETRY = ("confidence", "nose_offset", "mouth_width")


def face_geometry(faces) -> np.ndarray:
    """Per face row of a face store's table (``faces.csv``: MTCNN's confidence and five landmarks), three
    numbers that do not depend on the face's size or place: the detector's confidence, the nose's sideways
    offset from the eyes' midpoint and the mouth's width, both in inter-ocular distances. ``(rows, 3)``."""
    iod = np.hypot(faces["right_eye_x"] - faces["left_eye_x"], faces["right_eye_y"] - faces["left_eye_y"])
    iod = np.maximum(iod.to_numpy(dtype=float), 1e-6)
    nose = (faces["nose_x"] - (faces["left_eye_x"] + faces["right_eye_x"]) / 2).to_numpy(dtype=float) / iod
    mouth = np.hypot(faces["mouth_right_x"] - faces["mouth_left_x"],
                     faces["mouth_right_y"] - faces["mouth_left_y"]).to_numpy(dtype=float) / iod
    return np.stack([faces["confidence"].to_numpy(dtype=float), nose, mouth], axis=1).astype(np.float32)


def video_features(x, keys) -> tuple:
    """Per video, the mean and the standard deviation of its frames' feature rows ``x`` (``keys``: each row's
    video): ``(video keys in first-seen order, features (n_videos, 2 * dim))``. A video-level summary that
    the paper does not use (ours: it sees how much a face changes from frame to frame)."""
    x = np.asarray(x, dtype=np.float32)
    keys = np.asarray(keys)
    order = list(dict.fromkeys(keys.tolist()))
    rows = [x[keys == k] for k in order]
    return order, np.stack([np.concatenate([r.mean(axis=0), r.std(axis=0)]) for r in rows])


def fit_classifier(kind: str, x, y, seed: int = 0, class_weight="balanced", scale: bool = False, **params):
    """A fitted scikit-learn classifier (``"rf"`` or ``"sgd"``) of embeddings ``x`` with labels ``y``.

    ``params`` go to the estimator (e.g. ``n_estimators=300``, ``n_jobs=-1``
    for RF; ``alpha=1e-3`` for SGD); ``seed`` is its ``random_state``;
    ``scale=True`` puts a ``StandardScaler`` in front (a ``Pipeline``). The
    result has ``predict_proba``; use :func:`frame_scores` for P(fake).
    """
    if kind not in CLASSIFIERS:
        raise ValueError(f"unknown classifier kind {kind!r}; choose one of {sorted(CLASSIFIERS)}")
    if kind == "sgd" and params.get("loss", "log_loss") not in ("log_loss", "modified_huber"):
        raise ValueError(f"SGD loss {params['loss']!r} has no predict_proba; use 'log_loss' or 'modified_huber'")
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"x must be (n, d) and y (n,), got shapes {x.shape} and {y.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x holds NaN or infinite values")
    if len(np.unique(y)) < 2:
        raise ValueError(f"a classifier needs both classes; y holds only {np.unique(y).tolist()}")
    clf = CLASSIFIERS[kind](seed, class_weight, **params)
    if scale:
        clf = make_pipeline(StandardScaler(), clf)
    return clf.fit(x, y)


def frame_scores(clf, x) -> np.ndarray:
    """P(fake) = the ``predict_proba`` column of class 1, one float per row of ``x``."""
    classes = list(getattr(clf, "classes_", []))
    if 1 not in classes:
        raise ValueError(f"the classifier was not fitted with class 1 (fake); its classes are {classes}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (samples, features), got shape {x.shape}")
    return clf.predict_proba(x)[:, classes.index(1)].astype(float)
