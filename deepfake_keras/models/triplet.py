"""The triplet network (paper III.E-F): a small dense head on FaceNet embeddings, and its losses.

FaceNet's face embeddings cluster by identity, not by real/fake. A small dense
head is trained with a triplet loss (:mod:`deepfake_keras.training.triplet`) so
that real faces and fake faces form separate clusters; Random Forest or SGD
(:mod:`deepfake_keras.training.classifiers`) then classify its embeddings.

The head is the authors' (``create_base_network``, lines 267-281 of ``train_triplets_semi_hard.py``
(09.py) of AKASH2907/deepfakes_video_classification; the paper gives no architecture):
``Dense(256, relu, he_uniform) -> Dropout(0.1) -> Dense(256, relu, he_uniform) ->
Dropout(0.1) -> Dense(128, relu, he_uniform) -> Dropout(0.1) -> Dense(64)``, a
**linear** 64-d output with **no** L2 normalisation (their released
``triplets_semi_hard_sacred_model.hdf5`` has no normalisation layer either).
``normalize=True`` adds a unit-length output (this package's earlier default).

Two ways to pick triplets, the paper's comparison:

- ``mining="semi-hard"`` (the paper's method): online semi-hard mining inside
  each batch, ``tfa.losses.TripletSemiHardLoss`` (:func:`semi_hard_loss`).
- ``mining="random"``: triplets (anchor, positive of its class, negative of the
  other class) drawn at random, with the plain triplet loss of Eq. 1
  (:func:`triplet_loss`, :class:`RandomTripletLoss`).

Distances, squared or not (``distance``). Eq. 1 of the paper squares the
Euclidean distances, and so does the authors' loss (``triplet_loss_adapted_from_tf``,
their copy of TF's semi-hard loss, lines 155-228, with ``pairwise_distance(embeddings,
squared=True)`` at line 173 and ``margin = 1.`` at line 157): the default ``distance="squared-L2"`` is that loss
(``tests/training/test_triplet.py`` checks it against a NumPy transcription of
theirs). ``tfa.losses.TripletSemiHardLoss`` itself defaults to the plain Euclidean
distance (``"L2"``) from TFA 0.11 on (tensorflow/addons#2095), this package's
earlier default.

Builders and losses only: nothing here trains or touches the disk.
"""
from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from ..config import HeadConfig

with warnings.catch_warnings():  # TFA prints an end-of-life notice on import; the pin is deliberate
    warnings.simplefilter("ignore", UserWarning)
    import tensorflow_addons as tfa

MINING = ("semi-hard", "random")
DISTANCES = ("L2", "squared-L2")


# --------------------------------------------------------------------------- model

def build_triplet_head(input_dim: int, units=HeadConfig.units, embedding_dim: int = HeadConfig.embedding_dim,
                       dropout: float = HeadConfig.dropout, normalize: bool = HeadConfig.normalize,
                       initializer: str = HeadConfig.initializer, name: str = "triplet_head") -> tf.keras.Model:
    """The dense head: ``input_dim`` -> ``units`` (ReLU, ``initializer``, dropout) -> ``embedding_dim``
    (linear), then, with ``normalize``, unit length (``tf.keras.layers.UnitNormalization``; no Lambda
    layer). The defaults are the authors' (see the module docstring)."""
    if int(input_dim) < 1 or int(embedding_dim) < 1:
        raise ValueError(f"input_dim and embedding_dim must be >= 1, got {input_dim} and {embedding_dim}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    units = tuple(int(u) for u in units)
    if any(u < 1 for u in units):
        raise ValueError(f"units must all be >= 1, got {units}")
    inputs = tf.keras.Input(shape=(int(input_dim),), name="embedding_in")
    x = inputs
    for i, u in enumerate(units):
        x = tf.keras.layers.Dense(u, activation="relu", kernel_initializer=initializer, name=f"dense_{i}")(x)
        if dropout > 0:
            x = tf.keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    outputs = tf.keras.layers.Dense(int(embedding_dim), name="embedding", dtype="float32")(x)
    if normalize:
        outputs = tf.keras.layers.UnitNormalization(axis=-1, name="l2_normalize", dtype="float32")(outputs)
    return tf.keras.Model(inputs, outputs, name=name)


def triplet_model(head: tf.keras.Model) -> tf.keras.Model:
    """Wrap ``head`` for random-pick training: input ``(batch, 3, d)`` -> output ``(batch, 3, embedding_dim)``.

    Row ``[:, 0]`` is the anchor, ``[:, 1]`` the positive, ``[:, 2]`` the
    negative; the three share the head's weights (``TimeDistributed``), so
    training this model trains ``head``.
    """
    input_dim = head.input_shape[-1]
    inputs = tf.keras.Input(shape=(3, input_dim), name="triplets")
    outputs = tf.keras.layers.TimeDistributed(head, name="shared_head")(inputs)
    return tf.keras.Model(inputs, outputs, name=f"{head.name}_triplets")


def embed(model: tf.keras.Model, x, batch_size: int = 1024) -> np.ndarray:
    """The head's embeddings of ``x`` (rows), as a float32 array ``(n, embedding_dim)``; inference mode."""
    x = as_features(x, "x")
    if len(x) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    out = [model(x[i:i + batch_size], training=False).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype(np.float32)


# --------------------------------------------------------------------------- losses

def pairwise_distance(a, b, distance: str = HeadConfig.distance) -> tf.Tensor:
    """Row-wise distance between ``a`` and ``b`` (same shape ``(n, d)``): Euclidean or squared Euclidean.

    The plain distance is ``sqrt(max(squared, 1e-12))``: identical rows get
    1e-6 instead of 0 so that the gradient stays finite.
    """
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; choose one of {DISTANCES}")
    squared = tf.reduce_sum(tf.square(a - b), axis=-1)
    return squared if distance == "squared-L2" else tf.sqrt(tf.maximum(squared, 1e-12))


def triplet_loss(anchor, positive, negative, margin: float = HeadConfig.margin, distance: str = HeadConfig.distance) -> tf.Tensor:
    """Eq. 1 per triplet: ``max(d(a, p) - d(a, n) + margin, 0)``, shape ``(n,)``.

    A pure function of three ``(n, d)`` tensors; ``distance="squared-L2"``
    is Eq. 1 as printed, ``"L2"`` the plain Euclidean distance.
    """
    d_ap = pairwise_distance(anchor, positive, distance)
    d_an = pairwise_distance(anchor, negative, distance)
    return tf.maximum(d_ap - d_an + margin, 0.0)


@tf.keras.utils.register_keras_serializable(package="deepfake_keras")
class RandomTripletLoss(tf.keras.losses.Loss):
    """Thin Keras class over :func:`triplet_loss` for pre-picked triplets.

    ``y_pred`` has shape ``(batch, 3, embedding_dim)`` (anchor, positive,
    negative; see :func:`triplet_model`); ``y_true`` is ignored. The batch
    loss is the mean over its triplets, zero-loss (easy) triplets included.
    """

    def __init__(self, margin: float = HeadConfig.margin, distance: str = HeadConfig.distance, name: str = "random_triplet_loss",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        if distance not in DISTANCES:
            raise ValueError(f"unknown distance {distance!r}; choose one of {DISTANCES}")
        self.margin = float(margin)
        self.distance = distance

    def call(self, y_true, y_pred):
        return triplet_loss(y_pred[:, 0], y_pred[:, 1], y_pred[:, 2], self.margin, self.distance)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "distance": self.distance}


def semi_hard_loss(margin: float = HeadConfig.margin, distance: str = HeadConfig.distance) -> tf.keras.losses.Loss:
    """The paper's loss: ``tfa.losses.TripletSemiHardLoss(margin, distance_metric=distance)``.

    What it computes, per batch (labels ``y``, distances ``D`` of
    ``distance``): for every ordered positive pair ``(a, p)``, ``a != p``,
    ``y_a == y_p``, the negative distance is the smallest ``D[a, n]`` with
    ``D[a, n] > D[a, p]`` (strictly; the semi-hard negative of the paper when
    it is also within the margin, else an easy one whose loss is 0), or, if no
    negative is that far, the largest ``D[a, n]``; the loss is the mean over
    all such pairs of ``max(margin + D[a, p] - D[a, n], 0)`` (zeros included).
    An anchor with no negative in the batch counts ``D[a, n] = 0``; a batch
    with no positive pair gives NaN, which the balanced batches of this module
    rule out. ``tests/training/test_triplet.py`` holds a NumPy reference of this rule.
    """
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; choose one of {DISTANCES}")
    return tfa.losses.TripletSemiHardLoss(margin=float(margin), distance_metric=distance)


# --------------------------------------------------------------------------- inputs

def as_labels(y, name="y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D integer labels, got shape {y.shape}")
    if y.dtype.kind not in "biu":
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer labels, got dtype {y.dtype}")
    return y.astype(np.int64)


def as_features(x, name="x") -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, features), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


def head_from_record(record: dict) -> tf.keras.Model:
    """A head rebuilt (random weights) from the ``settings`` of its record (``triplet_head.json``). Records
    written before ``normalize`` and ``initializer`` were settings describe normalised heads."""
    s = record["settings"]
    return build_triplet_head(s["input_dim"], s["units"], s["embedding_dim"], s["dropout"],
                              normalize=s.get("normalize", True), initializer=s.get("initializer", "glorot_uniform"))
