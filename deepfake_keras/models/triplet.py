"""The triplet network (paper III.E-F): a small dense head on FaceNet embeddings.

FaceNet's 512-d face embeddings cluster by identity, not by real/fake. A small
dense head (the authors' code: 256-256-128 -> 64-d, L2-normalised) is trained
with a triplet loss so that real faces and fake faces form separate clusters;
Random Forest or SGD (:mod:`.classifiers`) then classify the 64-d embeddings.

Two ways to pick triplets, the paper's comparison:

- ``mining="semi-hard"`` (the paper's method): online semi-hard mining inside
  each batch, ``tfa.losses.TripletSemiHardLoss`` (margin 1.0). Batches are
  class-balanced (:func:`balanced_batches`), so that every batch holds anchors,
  positives and negatives of both classes even when fakes outnumber reals 7:1.
- ``mining="random"``: triplets (anchor, positive of its class, negative of the
  other class) drawn at random (:func:`random_triplets`), fresh every batch,
  with the plain triplet loss of Eq. 1 (:func:`triplet_loss`).

Distances, squared or not (``distance``). Eq. 1 of the paper squares the
Euclidean distances. ``tfa.losses.TripletSemiHardLoss`` squared them up to TFA
0.10 and uses the plain Euclidean distance (``distance_metric="L2"``) from TFA
0.11 on (tensorflow/addons#2095; the pinned 0.23 does too); which TFA the
authors' code ran is not known. The default here is TFA's default, ``"L2"``
(plain distance), for both mining modes, so that the two differ only in how
triplets are picked; ``distance="squared-L2"`` gives Eq. 1 exactly. On unit
vectors the plain distance lies in [0, 2] and the squared one in [0, 4], so the
margin of 1.0 means more with the plain distance.

Everything trained here saves weights only (``.weights.h5``) plus a JSON of its
settings and history; :func:`load_triplet_head` rebuilds the model from the JSON
and loads the weights by layer, so no saved file ever runs code.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

with warnings.catch_warnings():  # TFA prints an end-of-life notice on import; the pin is deliberate
    warnings.simplefilter("ignore", UserWarning)
    import tensorflow_addons as tfa

# --------------------------------------------------------------------------- hyperparameters

UNITS = (256, 256, 128)  # hidden Dense layers (ReLU), the authors' code
EMBEDDING_DIM = 64  # output, L2-normalised, the authors' code
DROPOUT = 0.2  # after each hidden layer; ours (the paper gives none), 0 disables
MARGIN = 1.0  # the authors' code (TFA's default)
DISTANCE = "L2"  # TFA >= 0.11 default: plain Euclidean; "squared-L2" = Eq. 1 of the paper
LEARNING_RATE = 1e-3  # Adam; ours (the paper gives none)
BATCH_SIZE = 128  # split evenly between the classes
EPOCHS = 50
PATIENCE = 5  # early stopping on the validation loss
MINING = ("semi-hard", "random")
DISTANCES = ("L2", "squared-L2")

WEIGHTS_FILE = "triplet_head.weights.h5"
SETTINGS_FILE = "triplet_head.json"


# --------------------------------------------------------------------------- model

def build_triplet_head(input_dim: int, units=UNITS, embedding_dim: int = EMBEDDING_DIM,
                       dropout: float = DROPOUT, name: str = "triplet_head") -> tf.keras.Model:
    """The dense head: ``input_dim`` -> ``units`` (ReLU, dropout) -> ``embedding_dim`` -> unit length.

    A Functional model whose last layer is ``tf.keras.layers.UnitNormalization``
    (no Lambda layer), so every output row has L2 norm 1, as
    ``TripletSemiHardLoss`` expects.
    """
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
        x = tf.keras.layers.Dense(u, activation="relu", name=f"dense_{i}")(x)
        if dropout > 0:
            x = tf.keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    x = tf.keras.layers.Dense(int(embedding_dim), name="embedding")(x)
    outputs = tf.keras.layers.UnitNormalization(axis=-1, name="l2_normalize")(x)
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
    x = _as_features(x, "x")
    if len(x) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    out = [model(x[i:i + batch_size], training=False).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype(np.float32)


# --------------------------------------------------------------------------- losses

def pairwise_distance(a, b, distance: str = DISTANCE) -> tf.Tensor:
    """Row-wise distance between ``a`` and ``b`` (same shape ``(n, d)``): Euclidean or squared Euclidean.

    The plain distance is ``sqrt(max(squared, 1e-12))``: identical rows get
    1e-6 instead of 0 so that the gradient stays finite.
    """
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; choose one of {DISTANCES}")
    squared = tf.reduce_sum(tf.square(a - b), axis=-1)
    return squared if distance == "squared-L2" else tf.sqrt(tf.maximum(squared, 1e-12))


def triplet_loss(anchor, positive, negative, margin: float = MARGIN, distance: str = DISTANCE) -> tf.Tensor:
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

    def __init__(self, margin: float = MARGIN, distance: str = DISTANCE, name: str = "random_triplet_loss",
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


def semi_hard_loss(margin: float = MARGIN, distance: str = DISTANCE) -> tf.keras.losses.Loss:
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
    rule out. ``tests/test_triplet.py`` holds a NumPy reference of this rule.
    """
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; choose one of {DISTANCES}")
    return tfa.losses.TripletSemiHardLoss(margin=float(margin), distance_metric=distance)


# --------------------------------------------------------------------------- sampling

def _as_labels(y, name="y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D integer labels, got shape {y.shape}")
    if y.dtype.kind not in "biu":
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer labels, got dtype {y.dtype}")
    return y.astype(np.int64)


def _as_features(x, name="x") -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, features), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


def _class_members(y: np.ndarray, what: str) -> dict:
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(f"{what} needs at least two classes, got only {classes.tolist()}")
    members = {int(c): np.flatnonzero(y == c) for c in classes}
    small = [c for c, idx in members.items() if len(idx) < 2]
    if small:
        raise ValueError(f"{what} needs at least 2 samples of every class; classes {small} have fewer")
    return members


def random_triplets(labels, n: int, rng: np.random.Generator, balanced: bool = True) -> np.ndarray:
    """``n`` random triplets of row indices, shape ``(n, 3)``: anchor, positive, negative.

    The positive has the anchor's label (and is another row); the negative has
    another label; both are uniform among the rows allowed. The anchor's class
    is uniform over the classes when ``balanced`` (the default, like the
    balanced batches of semi-hard mining, so that the two methods differ only
    in how triplets are picked), else the anchor is uniform over all rows.
    No mining: the triplets may be easy, semi-hard or hard (paper III.E).
    """
    y = _as_labels(labels, "labels")
    if int(n) < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    members = _class_members(y, "random_triplets")
    classes = np.array(sorted(members))
    n = int(n)
    if balanced:
        anchor_class = classes[rng.integers(0, len(classes), size=n)]
        anchors = np.empty(n, np.int64)
        for c in classes:
            pick = anchor_class == c
            anchors[pick] = rng.choice(members[int(c)], size=int(pick.sum()))
    else:
        anchors = rng.integers(0, len(y), size=n)
    out = np.empty((n, 3), np.int64)
    out[:, 0] = anchors
    for c in classes:
        pick = np.flatnonzero(y[anchors] == c)
        if len(pick) == 0:
            continue
        same = members[int(c)]
        # positive: uniform over the class without the anchor (shift past the anchor's own position)
        rank = np.searchsorted(same, anchors[pick])
        j = rng.integers(0, len(same) - 1, size=len(pick))
        out[pick, 1] = same[j + (j >= rank)]
        others = np.flatnonzero(y != c)
        out[pick, 2] = others[rng.integers(0, len(others), size=len(pick))]
    return out


def balanced_batches(labels, batch_size: int, rng: np.random.Generator):
    """Endless class-balanced batches of row indices (a generator of int arrays).

    Each batch holds ``batch_size // n_classes`` rows of every class (at least
    2, so that every class has positive pairs). Each class is drawn without
    replacement from a fresh random permutation, pass after pass, so the
    minority class repeats sooner than the majority (oversampling it).
    """
    y = _as_labels(labels, "labels")
    members = _class_members(y, "balanced_batches")
    per_class = int(batch_size) // len(members)
    if per_class < 2:
        raise ValueError(f"batch_size {batch_size} gives fewer than 2 rows per class for {len(members)} classes")
    queues = {c: np.zeros(0, np.int64) for c in members}
    while True:
        batch = []
        for c, idx in members.items():
            while len(queues[c]) < per_class:
                queues[c] = np.concatenate([queues[c], rng.permutation(idx)])
            batch.append(queues[c][:per_class])
            queues[c] = queues[c][per_class:]
        yield np.concatenate(batch)


def _train_dataset(x, y, mining, batch_size, seed) -> tf.data.Dataset:
    """Endless tf.data pipeline of training batches, the same sequence for the same seed."""
    d = x.shape[1]

    if mining == "semi-hard":
        def batches():
            for idx in balanced_batches(y, batch_size, np.random.default_rng(seed)):
                yield x[idx], y[idx]
        signature = (tf.TensorSpec((None, d), tf.float32), tf.TensorSpec((None,), tf.int64))
    else:
        def batches():
            rng = np.random.default_rng(seed)
            zeros = np.zeros(batch_size, np.float32)
            while True:
                yield x[random_triplets(y, batch_size, rng)], zeros
        signature = (tf.TensorSpec((None, 3, d), tf.float32), tf.TensorSpec((None,), tf.float32))
    return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(2)


def _val_data(x, y, mining, batch_size, seed) -> tuple:
    """A fixed validation set, the same every epoch: balanced batches or random triplets."""
    steps = max(1, math.ceil(len(x) / batch_size))
    rng = np.random.default_rng(seed + 1)
    if mining == "semi-hard":
        gen = balanced_batches(y, batch_size, rng)
        idx = np.concatenate([next(gen) for _ in range(steps)])
        return x[idx], y[idx], len(idx) // steps
    idx = random_triplets(y, steps * batch_size, rng)
    return x[idx], np.zeros(len(idx), np.float32), batch_size


# --------------------------------------------------------------------------- training

def train_triplet_head(x_train, y_train, x_val, y_val, mining: str = "semi-hard", epochs: int = EPOCHS,
                       batch_size: int = BATCH_SIZE, patience: int = PATIENCE, seed: int = 0, out_dir=None,
                       margin: float = MARGIN, distance: str = DISTANCE, units=UNITS,
                       embedding_dim: int = EMBEDDING_DIM, dropout: float = DROPOUT,
                       learning_rate: float = LEARNING_RATE, steps_per_epoch: int | None = None,
                       verbose: int = 0) -> tuple:
    """Train a triplet head on embeddings; early stopping on the validation loss.

    Args:
        x_train, y_train: embeddings ``(n, d)`` (e.g. 512-d FaceNet) and integer
            labels (1 = fake, 0 = real; any integer classes work).
        x_val, y_val: the validation split, scored every epoch with the same
            loss on a fixed set of batches (balanced batches for semi-hard,
            random triplets for random-pick, drawn once with ``seed + 1``), so
            the validation loss is comparable across epochs (not across the two
            mining modes: they are different losses).
        mining: ``"semi-hard"`` (the paper's method) or ``"random"``.
        epochs, patience: at most ``epochs``; stop after ``patience`` epochs
            without a lower validation loss, and keep the weights of the best
            epoch (also when training runs all ``epochs``: Keras 2's
            ``restore_best_weights`` alone restores only when it stops early).
        batch_size: rows per batch (semi-hard: split evenly over the classes)
            or triplets per batch (random).
        steps_per_epoch: batches per epoch; default ``ceil(n_train / batch_size)``.
        seed: seeds Python, NumPy and TensorFlow (``tf.keras.utils.set_random_seed``,
            global state) and the batch samplers: the same seed gives the same
            run on the same machine.
        out_dir: if given, write ``triplet_head.weights.h5`` (weights only) and
            ``triplet_head.json`` (settings, history, versions) there.
        margin, distance, units, embedding_dim, dropout, learning_rate: see the
            hyperparameters at the top of this module.

    Returns ``(head, record)``: the trained head (input ``d`` -> unit
    ``embedding_dim``-vectors) and the dict written to the JSON: ``settings``,
    ``history`` (per epoch ``loss``, ``val_loss``), ``initial_val_loss``
    (untrained head), ``best_epoch`` (1-based), ``best_val_loss``,
    ``epochs_run``, ``versions``.
    """
    if mining not in MINING:
        raise ValueError(f"unknown mining {mining!r}; choose one of {MINING}")
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; choose one of {DISTANCES}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if int(patience) < 0:
        raise ValueError(f"patience must be >= 0, got {patience}")
    x_train, x_val = _as_features(x_train, "x_train"), _as_features(x_val, "x_val")
    y_train, y_val = _as_labels(y_train, "y_train"), _as_labels(y_val, "y_val")
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise ValueError(f"x and y lengths differ: train {len(x_train)} vs {len(y_train)}, "
                         f"val {len(x_val)} vs {len(y_val)}")
    if x_train.shape[1] != x_val.shape[1]:
        raise ValueError(f"train and val features differ in width: {x_train.shape[1]} vs {x_val.shape[1]}")
    _class_members(y_train, "the training split")
    _class_members(y_val, "the validation split")
    if mining == "semi-hard" and batch_size // len(np.unique(y_train)) < 2:
        raise ValueError(f"batch_size {batch_size} is too small for semi-hard mining: it needs >= 2 rows per class")

    settings = dict(input_dim=int(x_train.shape[1]), units=[int(u) for u in units], embedding_dim=int(embedding_dim),
                    dropout=float(dropout), mining=mining, margin=float(margin), distance=distance,
                    learning_rate=float(learning_rate), epochs=int(epochs), batch_size=int(batch_size),
                    patience=int(patience), seed=int(seed),
                    steps_per_epoch=int(steps_per_epoch or max(1, math.ceil(len(x_train) / batch_size))),
                    n_train=int(len(x_train)), n_val=int(len(x_val)),
                    class_counts_train={str(c): int(n) for c, n in zip(*np.unique(y_train, return_counts=True))})

    tf.keras.utils.set_random_seed(int(seed))
    head = build_triplet_head(settings["input_dim"], units, embedding_dim, dropout)
    if mining == "semi-hard":
        model, loss = head, semi_hard_loss(margin, distance)
    else:
        model, loss = triplet_model(head), RandomTripletLoss(margin, distance)
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), loss=loss)

    xv, yv, val_batch = _val_data(x_val, y_val, mining, settings["batch_size"], int(seed))
    initial_val_loss = float(model.evaluate(xv, yv, batch_size=val_batch, verbose=0))
    stopper = tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(patience),
                                               restore_best_weights=True)
    fit = model.fit(_train_dataset(x_train, y_train, mining, settings["batch_size"], int(seed)),
                    steps_per_epoch=settings["steps_per_epoch"], epochs=int(epochs),
                    validation_data=(xv, yv), validation_batch_size=val_batch,
                    callbacks=[stopper], verbose=verbose)
    if stopper.best_weights is not None:
        model.set_weights(stopper.best_weights)

    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    best = int(np.argmin(history["val_loss"]))
    record = dict(settings=settings, history=history, initial_val_loss=initial_val_loss,
                  best_epoch=best + 1, best_val_loss=history["val_loss"][best],
                  epochs_run=len(history["val_loss"]),
                  versions={"tensorflow": tf.__version__, "tensorflow_addons": tfa.__version__,
                            "numpy": np.__version__})
    if out_dir is not None:
        save_triplet_head(head, record, out_dir)
    return head, record


def save_triplet_head(head: tf.keras.Model, record: dict, out_dir) -> Path:
    """Write ``triplet_head.weights.h5`` (weights only) and ``triplet_head.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    head.save_weights(out / WEIGHTS_FILE)
    record = {**record, "weights": WEIGHTS_FILE}
    (out / SETTINGS_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return out


def load_triplet_head(out_dir) -> tuple:
    """``(head, record)`` from a folder written by :func:`train_triplet_head`: rebuilt, then weights loaded."""
    out = Path(out_dir)
    path = out / SETTINGS_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {SETTINGS_FILE} in {out}: not a folder written by train_triplet_head")
    record = json.loads(path.read_text(encoding="utf-8"))
    head = head_from_record(record)
    head.load_weights(out / record.get("weights", WEIGHTS_FILE))
    return head, record


def head_from_record(record: dict) -> tf.keras.Model:
    """A head rebuilt (random weights) from the ``settings`` of its record (``triplet_head.json``)."""
    s = record["settings"]
    return build_triplet_head(s["input_dim"], s["units"], s["embedding_dim"], s["dropout"])
