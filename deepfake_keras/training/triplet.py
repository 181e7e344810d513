"""Training the triplet head (paper III.E-F): class-balanced batches with online semi-hard
mining, or random-pick triplets; early stopping on the validation loss; the dense network with
cross-entropy (the paper's "without triplet network" comparison, Fig. 6b).

Semi-hard batches are class-balanced (:func:`balanced_batches`), so that every batch holds
anchors, positives and negatives of both classes even when fakes outnumber reals 7:1.
Random-pick triplets are drawn fresh every batch (:func:`random_triplets`).

Everything trained here saves weights only (``.weights.h5``) plus a JSON of its settings and
history; :func:`load_triplet_head` rebuilds the model from the JSON and loads the weights by
layer, so no saved file ever runs code.

The heads and the dense network train in seconds to minutes, so they keep no per-epoch checkpoint: a
rerun trains them again from the start (the same seed gives the same run) and writes their CSV log
anew. Under a ``multiworker`` strategy only the chief writes files (:func:`.distribute.write_dir`).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import tensorflow as tf

from ..config import HeadConfig
from ..io import versions, write_atomic
from ..models.dense import build_dense_classifier
from .distribute import describe, remove_write_dir, write_dir
from .fit import training_logs
from ..models.triplet import (DISTANCES, MINING, RandomTripletLoss, as_features, as_labels, build_triplet_head,
                              head_from_record, semi_hard_loss, triplet_model)

WEIGHTS_FILE = "triplet_head.weights.h5"
SETTINGS_FILE = "triplet_head.json"


# --------------------------------------------------------------------------- sampling

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
    y = as_labels(labels, "labels")
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
    2, so that every class has positive pairs), interleaved (one of each class,
    then again), so that the share of each replica of a distributed training
    holds every class too. Each class is drawn without
    replacement from a fresh random permutation, pass after pass, so the
    minority class repeats sooner than the majority (oversampling it).
    """
    y = as_labels(labels, "labels")
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
        yield np.stack(batch, axis=1).reshape(-1)  # classes interleaved: any contiguous share holds both


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

def train_triplet_head(x_train, y_train, x_val, y_val, mining: str = "semi-hard", epochs: int = HeadConfig.epochs,
                       batch_size: int = HeadConfig.batch_size, patience: int = HeadConfig.patience, seed: int = 0, out_dir=None,
                       margin: float = HeadConfig.margin, distance: str = HeadConfig.distance, units=HeadConfig.units,
                       embedding_dim: int = HeadConfig.embedding_dim, dropout: float = HeadConfig.dropout,
                       learning_rate: float = HeadConfig.learning_rate, normalize: bool = HeadConfig.normalize,
                       initializer: str = HeadConfig.initializer, steps_per_epoch: int | None = None,
                       verbose: int = 0, strategy=None, log_dir=None) -> tuple:
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
            without a lower validation loss (None, the authors': never stop
            early), and keep the weights of the best epoch (also when training
            runs all ``epochs``: Keras 2's ``restore_best_weights`` alone
            restores only when it stops early).
        batch_size: rows per batch (semi-hard: split evenly over the classes)
            or triplets per batch (random).
        steps_per_epoch: batches per epoch; default ``ceil(n_train / batch_size)``.
        seed: seeds Python, NumPy and TensorFlow (``tf.keras.utils.set_random_seed``,
            global state) and the batch samplers: the same seed gives the same
            run on the same machine.
        out_dir: if given, write ``triplet_head.weights.h5`` (weights only) and
            ``triplet_head.json`` (settings, history, versions) there.
        margin, distance, units, embedding_dim, dropout, learning_rate, normalize,
            initializer: see :class:`deepfake_keras.config.HeadConfig` (the authors').
        strategy: the ``tf.distribute`` strategy to train under (:mod:`.distribute`); ``batch_size`` is
            the global batch. Each batch interleaves the classes, so every replica's share holds both
            and mines its own semi-hard triplets.
        log_dir: Keras' CSVLogger and TensorBoard logs of the epochs there (``training.csv`` written anew:
            no checkpoint, so a rerun trains from the start).

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
    if patience is not None and int(patience) < 0:
        raise ValueError(f"patience must be >= 0 or None, got {patience}")
    x_train, x_val = as_features(x_train, "x_train"), as_features(x_val, "x_val")
    y_train, y_val = as_labels(y_train, "y_train"), as_labels(y_val, "y_val")
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
                    dropout=float(dropout), normalize=bool(normalize), initializer=str(initializer), mining=mining,
                    margin=float(margin), distance=distance, learning_rate=float(learning_rate), epochs=int(epochs),
                    batch_size=int(batch_size), patience=None if patience is None else int(patience), seed=int(seed),
                    steps_per_epoch=int(steps_per_epoch or max(1, math.ceil(len(x_train) / batch_size))),
                    n_train=int(len(x_train)), n_val=int(len(x_val)),
                    class_counts_train={str(c): int(n) for c, n in zip(*np.unique(y_train, return_counts=True))})

    strategy = strategy or tf.distribute.get_strategy()
    distribute = describe(strategy, settings["batch_size"], learning_rate)
    tf.keras.utils.set_random_seed(int(seed))
    with strategy.scope():
        head = build_triplet_head(settings["input_dim"], units, embedding_dim, dropout, normalize, initializer)
        if mining == "semi-hard":
            model, loss = head, semi_hard_loss(margin, distance)
        else:
            model, loss = triplet_model(head), RandomTripletLoss(margin, distance)
        model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), loss=loss)

    xv, yv, val_batch = _val_data(x_val, y_val, mining, settings["batch_size"], int(seed))
    initial_val_loss = float(model.evaluate(xv, yv, batch_size=val_batch, verbose=0))
    stopper = tf.keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True,
                                               patience=int(epochs if patience is None else patience))
    fit = model.fit(_train_dataset(x_train, y_train, mining, settings["batch_size"], int(seed)),
                    steps_per_epoch=settings["steps_per_epoch"], epochs=int(epochs),
                    validation_data=(xv, yv), validation_batch_size=val_batch,
                    callbacks=[stopper, *training_logs(log_dir, 0, strategy)], verbose=verbose)
    if stopper.best_weights is not None:
        model.set_weights(stopper.best_weights)

    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    best = int(np.argmin(history["val_loss"]))
    record = dict(settings=settings, history=history, initial_val_loss=initial_val_loss,
                  best_epoch=best + 1, best_val_loss=history["val_loss"][best],
                  epochs_run=len(history["val_loss"]), distribute=distribute,
                  versions=versions())
    if out_dir is not None:  # a multi-worker run's other workers save to a temporary folder, then drop it
        work = write_dir(out_dir, strategy)
        save_triplet_head(head, record, work)
        remove_write_dir(work, out_dir)
    return head, record


def save_triplet_head(head: tf.keras.Model, record: dict, out_dir) -> Path:
    """Write ``triplet_head.weights.h5`` (weights only) and ``triplet_head.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    head.save_weights(out / WEIGHTS_FILE)
    record = {**record, "weights": WEIGHTS_FILE}
    write_atomic(out / SETTINGS_FILE, (json.dumps(record, indent=2) + "\n").encode())
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


def train_dense_classifier(x_train, y_train, x_val, y_val, epochs: int = HeadConfig.epochs,
                           batch_size: int = HeadConfig.batch_size, patience: int | None = HeadConfig.patience,
                           learning_rate: float = HeadConfig.learning_rate, seed: int = 0,
                           dropout: float = HeadConfig.dropout, normalize: bool = HeadConfig.normalize,
                           strategy=None, log_dir=None) -> tuple:
    """Train :func:`~deepfake_keras.models.dense.build_dense_classifier` with binary cross-entropy
    (class-balanced weights), early stopping on the validation loss with the best weights kept.

    ``strategy``, ``log_dir``: as for :func:`train_triplet_head`.

    Returns ``(classifier, trunk, history)``: the classifier outputs P(fake); the trunk
    gives its 64-d penultimate embeddings, for t-SNE.
    """
    x_train, x_val = np.asarray(x_train, np.float32), np.asarray(x_val, np.float32)
    y_train, y_val = np.asarray(y_train, np.float32), np.asarray(y_val, np.float32)
    if len(np.unique(y_train)) < 2 or len(np.unique(y_val)) < 2:
        raise ValueError("train_dense_classifier needs both classes in the training and the validation split")
    tf.keras.utils.set_random_seed(int(seed))
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model, trunk = build_dense_classifier(x_train.shape[1], dropout=dropout, normalize=normalize)
        model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), loss="binary_crossentropy")
    n_fake = float(y_train.sum())
    n_real = float(len(y_train) - n_fake)
    weights = {0: len(y_train) / (2 * n_real), 1: len(y_train) / (2 * n_fake)}
    stopper = tf.keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True,
                                               patience=int(epochs if patience is None else patience))
    fit = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=int(epochs), batch_size=int(batch_size),
                    class_weight=weights, callbacks=[stopper, *training_logs(log_dir, 0, strategy)], verbose=0,
                    shuffle=True)
    if stopper.best_weights is not None:
        model.set_weights(stopper.best_weights)
    return model, trunk, {k: [float(v) for v in vals] for k, vals in fit.history.items()}
