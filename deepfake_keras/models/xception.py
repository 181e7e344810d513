"""The frame classifier of the paper (III.B, IV.B.1, IV.C): Xception on face crops, sigmoid output.

Model (:func:`build_xception`): ``tf.keras.applications.Xception`` without its
top (ImageNet weights by default), every layer trainable ("we allowed the
gradients to flow through all the layers of Xception"), then
``GlobalAveragePooling2D -> Dense(512, relu, name="fc1") -> Dropout ->
Dense(1, sigmoid, name="p_fake")``. ``fc1`` is the paper's "first fc layer of
feature vector dimension 512" whose outputs feed the LSTM/GRU baseline
(:func:`feature_model`). The Xception layers are part of the one Functional
model (built on its input tensor, not nested), so Grad-CAM can reach
``block14_sepconv2_act`` by name. Batch normalisation layers train in training
mode like every other layer (the paper fine-tunes everything).

Inputs (:func:`face_dataset`): face crops of the face store, read through
``tf.data`` (read file -> decode -> resize -> Xception preprocessing, i.e.
``x / 127.5 - 1``; shuffle of the file names; parallel map; batch; prefetch),
so that decoding overlaps training.

Optimizer (:func:`paper_optimizer`): Nadam, learning rate 0.002, schedule
decay 0.004 -- the defaults of Keras 2's Nadam, which the paper used. How that
maps to TF 2.15 is in the docstring of :func:`paper_optimizer`; in short,
TF 2.15's ``tf.keras.optimizers.Nadam`` has *no* schedule decay (its momentum
warm-up is 250 times faster), so the legacy ``tf.keras.optimizers.legacy.Nadam``,
which keeps Keras 2's rule exactly, is used.

Saved models are weights only (``.weights.h5``); :func:`load_classifier`
rebuilds the architecture and loads them.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from ..explain import gradcam as _gradcam

# --------------------------------------------------------------------------- hyperparameters

IMAGE_SIZE = 299  # Xception's native size and the face store's crop size (the paper's)
MIN_IMAGE_SIZE = 71  # the smallest input tf.keras.applications.Xception accepts
FC_UNITS = 512  # the paper's "first fc layer of feature vector dimension 512"
DROPOUT = 0.5  # ours (the paper gives none)
LEARNING_RATE = 0.002  # the paper (Nadam)
SCHEDULE_DECAY = 0.004  # the paper (Keras 2 Nadam's schedule_decay)
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7  # Keras 2's Nadam defaults (epsilon = K.epsilon())
BATCH_SIZE = 32
SHUFFLE_BUFFER = 2048  # decoded images held for shuffling when the dataset is cached (else file names)
WEIGHTS = "imagenet"
GRADCAM_LAYER = _gradcam.GRADCAM_LAYER  # Xception's last convolutional activation (7x7 at 299 px)
FEATURE_LAYER = "fc1"
OUTPUT_LAYER = "p_fake"


# --------------------------------------------------------------------------- optimizer

def momentum_cache(step, beta_1: float = BETA_1, schedule_decay: float = SCHEDULE_DECAY):
    """Keras 2 Nadam's momentum coefficient at (1-based) ``step``:
    ``beta_1 * (1 - 0.5 * 0.96 ** (step * schedule_decay))`` (NumPy, any shape)."""
    return beta_1 * (1.0 - 0.5 * np.power(0.96, np.asarray(step, dtype=np.float64) * schedule_decay))


def paper_optimizer(learning_rate: float = LEARNING_RATE, schedule_decay: float = SCHEDULE_DECAY,
                    beta_1: float = BETA_1, beta_2: float = BETA_2, epsilon: float = EPSILON):
    """Nadam as the paper ran it: Keras 2's ``Nadam(lr=0.002, schedule_decay=0.004)``.

    What ``schedule_decay`` did in Keras 2 (``keras/optimizers.py``, ``Nadam.get_updates``
    of Keras 2.0-2.3; kept verbatim in Keras 2.15 as
    ``keras/src/optimizers/optimizer_v1.py``): with ``t = iterations + 1``,

    .. code-block:: text

        mu_t      = beta_1 * (1 - 0.5 * 0.96 ** (t * schedule_decay))       # momentum schedule
        mu_{t+1}  = beta_1 * (1 - 0.5 * 0.96 ** ((t + 1) * schedule_decay))
        M_t       = mu_1 * mu_2 * ... * mu_t                               # "m_schedule"
        g'        = g / (1 - M_t)
        m_t       = beta_1 * m_{t-1} + (1 - beta_1) * g ;  m' = m_t / (1 - M_t * mu_{t+1})
        v_t       = beta_2 * v_{t-1} + (1 - beta_2) * g**2 ;  v' = v_t / (1 - beta_2 ** t)
        m_bar     = (1 - mu_t) * g' + mu_{t+1} * m'
        theta_t   = theta_{t-1} - lr * m_bar / (sqrt(v') + epsilon)

    ``schedule_decay`` only sets how fast the momentum coefficient ``mu_t`` warms up
    from ``beta_1 / 2`` towards ``beta_1`` (Dozat's warming schedule); the learning
    rate stays 0.002 throughout. With 0.004, ``mu_t`` is 0.450 at step 1, 0.518 at
    step 1,000, 0.812 at step 10,000 and 0.897 at step 30,000 (the paper's 30-50
    epochs of ~19K frames are some 18,000-30,000 steps of 32).

    TF 2.15 (Keras 2.15): the default ``tf.keras.optimizers.Nadam`` (the "new"
    optimizer since TF 2.11, ``keras/src/optimizers/nadam.py``) computes
    ``u_t = beta_1 * (1 - 0.5 * 0.96 ** t)``: it has no ``schedule_decay``
    argument and its exponent has *no* 0.004 factor, i.e. it is Keras 2's Nadam
    with ``schedule_decay = 1``, whose momentum is at 0.89 after 100 steps. So
    0.004 is *not* TF 2.15's built-in constant; using that optimizer would not be
    the paper's. ``tf.keras.optimizers.legacy.Nadam`` (TF 2.0-2.10's
    ``tf.keras.optimizers.Nadam``, ``keras/src/optimizers/legacy/nadam.py``) keeps
    Keras 2's rule line for line: it takes ``schedule_decay`` (default 0.004),
    computes ``0.96 ** (schedule_decay * t)``, keeps the product ``M_t`` in its
    ``momentum_cache`` variable, and leaves the learning rate constant (it stores
    ``schedule_decay`` as its ``decay`` hyperparameter, but its
    ``_prepare_local`` never applies the ``lr / (1 + decay * t)`` decay of the
    other legacy optimizers). This function returns that optimizer.
    ``tests/test_xception.py`` checks it step by step against a NumPy transcription
    of the formulas above, and checks that the new Nadam follows them with
    ``schedule_decay = 1`` instead.

    Its checkpoints (``tf.train.Checkpoint``) hold its step count, ``momentum_cache``
    and the slots ``m`` and ``v``, so a resumed run continues the schedule where it
    stopped. (Keras' ``from_config`` of this class resets ``schedule_decay`` to
    0.004 -- it pops ``schedule_decay`` and ignores the saved ``decay`` -- which
    matters only for full-model saving, which this package never does.)
    """
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if not schedule_decay >= 0:
        raise ValueError(f"schedule_decay must be >= 0, got {schedule_decay}")
    for name, value in (("beta_1", beta_1), ("beta_2", beta_2)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    return tf.keras.optimizers.legacy.Nadam(learning_rate=float(learning_rate), beta_1=float(beta_1),
                                            beta_2=float(beta_2), epsilon=float(epsilon),
                                            schedule_decay=float(schedule_decay))


def compile_classifier(model: tf.keras.Model, learning_rate: float = LEARNING_RATE,
                       schedule_decay: float = SCHEDULE_DECAY) -> tf.keras.Model:
    """Compile ``model`` (sigmoid output) with :func:`paper_optimizer`, binary cross-entropy,
    accuracy and AUC; returns it. The metrics honour sample weights where a dataset gives them
    (the class-balanced validation of :mod:`deepfake_keras.training`: balanced accuracy)."""
    model.compile(optimizer=paper_optimizer(learning_rate, schedule_decay), loss="binary_crossentropy",
                  weighted_metrics=[tf.keras.metrics.BinaryAccuracy(name="accuracy"),
                                    tf.keras.metrics.AUC(name="auc")])
    return model


# --------------------------------------------------------------------------- model

def resolve_weights(weights):
    """What to pass as ``Xception(weights=...)`` for ``--weights imagenet|none|PATH``.

    - ``"imagenet"`` (the default): the verified local copy of Keras' ImageNet
      no-top weights from the registry (``weights_path("xception-imagenet-notop")``;
      :class:`deepfake_keras.weights.WeightsError` says how to get it where it
      cannot be fetched).
    - ``None``, ``"none"``: random initialisation.
    - a path: an Xception no-top weights file in Keras' layout (e.g. that same file
      downloaded by hand), loaded by Keras in layer order.

    Returns ``None`` or the file path as a string.
    """
    if weights is None or (isinstance(weights, str) and weights.strip().lower() in ("none", "")):
        return None
    if isinstance(weights, str) and weights.strip().lower() == "imagenet":
        from ..weights import weights_path

        return str(weights_path("xception-imagenet-notop"))
    path = Path(weights)
    if not path.is_file():
        raise ValueError(f"weights {str(weights)!r}: expected 'imagenet', 'none' or an existing Xception no-top "
                         f"weights file")
    return str(path)


def build_xception(image_size: int = IMAGE_SIZE, weights=WEIGHTS, fc_units: int = FC_UNITS,
                   dropout: float = DROPOUT, name: str = "xception_classifier") -> tf.keras.Model:
    """The paper's frame classifier: Xception (every layer trainable) -> GAP -> ``fc1`` -> dropout -> P(fake).

    Args:
        image_size: input side in pixels (>= 71; the paper's 299). Inputs are
            Xception-preprocessed images, ``x / 127.5 - 1`` (:func:`preprocess`).
        weights: ``"imagenet"`` (default), ``"none"``/``None`` or a path, see
            :func:`resolve_weights`.
        fc_units: width of ``fc1`` (the 512-d features of :func:`feature_model`).
        dropout: dropout rate after ``fc1`` (0 disables).

    Returns an uncompiled Functional model ``(None, s, s, 3) -> (None, 1)``
    (compile with :func:`compile_classifier`).
    """
    image_size = int(image_size)
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE} pixels for Xception, got {image_size}")
    if int(fc_units) < 1:
        raise ValueError(f"fc_units must be >= 1, got {fc_units}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    resolved = resolve_weights(weights)
    inputs = tf.keras.Input(shape=(image_size, image_size, 3), name="face")
    base = tf.keras.applications.Xception(include_top=False, weights=resolved, input_tensor=inputs)
    base.trainable = True
    x = tf.keras.layers.GlobalAveragePooling2D(name="avg_pool")(base.output)
    x = tf.keras.layers.Dense(int(fc_units), activation="relu", name=FEATURE_LAYER)(x)
    if dropout > 0:
        x = tf.keras.layers.Dropout(float(dropout), name="fc1_dropout")(x)
    outputs = tf.keras.layers.Dense(1, activation="sigmoid", name=OUTPUT_LAYER)(x)
    model = tf.keras.Model(inputs, outputs, name=name)
    for layer in model.layers:
        layer.trainable = True
    return model


def feature_model(model: tf.keras.Model, layer: str = FEATURE_LAYER) -> tf.keras.Model:
    """A model from ``model``'s input to its ``fc1`` output (512-d ReLU features, the paper's
    features for the LSTM/GRU baseline); it shares ``model``'s weights."""
    try:
        target = model.get_layer(layer)
    except ValueError:
        raise ValueError(f"model {model.name!r} has no layer {layer!r}; build it with build_xception") from None
    return tf.keras.Model(model.inputs, target.output, name=f"{model.name}_{layer}")


def load_classifier(weights_file, image_size: int = IMAGE_SIZE, fc_units: int = FC_UNITS,
                    dropout: float = DROPOUT) -> tf.keras.Model:
    """:func:`build_xception` (random init) with the weights of ``weights_file`` (a ``.weights.h5``
    saved by this package, e.g. a bag's ``model.weights.h5``) loaded into it."""
    path = Path(weights_file)
    if not path.is_file():
        raise ValueError(f"{path}: no such weights file")
    model = build_xception(image_size, weights=None, fc_units=fc_units, dropout=dropout)
    model.load_weights(str(path))
    return model


# --------------------------------------------------------------------------- inputs

def preprocess(images) -> np.ndarray:
    """Xception preprocessing of RGB images in [0, 255]: ``x / 127.5 - 1`` (float32)."""
    return tf.keras.applications.xception.preprocess_input(np.asarray(images, dtype=np.float32).copy())


def resize_face(image, image_size):
    """One RGB face crop (or a batch) resized as in training: cast to float32, antialiased bilinear
    resize to ``image_size`` (an int for a square, or ``(height, width)``), clipped to [0, 255]."""
    size = tuple(image_size) if isinstance(image_size, (tuple, list)) else (image_size, image_size)
    image = tf.image.resize(tf.cast(image, tf.float32), size, antialias=True)
    return tf.clip_by_value(image, 0.0, 255.0)


def preprocess_faces(faces, image_size) -> np.ndarray:
    """Face crops (RGB uint8, any sizes) -> Xception inputs as in training: each crop through
    :func:`resize_face`, then ``x / 127.5 - 1``; float32 ``(n, h, w, 3)``."""
    faces = [np.asarray(f) for f in faces]
    size = tuple(image_size) if isinstance(image_size, (tuple, list)) else (image_size, image_size)
    if not faces:
        return np.zeros((0, *size, 3), np.float32)
    out = np.stack([resize_face(f, size).numpy() for f in faces])
    return tf.keras.applications.xception.preprocess_input(out).astype(np.float32)


def _load_image(path, image_size: int):
    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    return resize_face(image, image_size)


def face_dataset(table: pd.DataFrame, store_root, image_size: int = IMAGE_SIZE, batch_size: int = BATCH_SIZE,
                 shuffle: bool = False, seed: int = 0, augment: bool = False, cache=False, labels: bool = True,
                 weights=None) -> tf.data.Dataset:
    """A ``tf.data`` pipeline of Xception-ready batches from rows of the face store's ``faces.csv``.

    Each element is ``(images, labels)`` (or ``images`` with ``labels=False``, or
    ``(images, labels, weights)`` when ``weights`` is given): images float32
    ``(batch, image_size, image_size, 3)`` scaled to [-1, 1] by
    ``tf.keras.applications.xception.preprocess_input``; labels float32 (1 = fake).

    Args:
        table: rows with a ``crop`` column (path relative to ``store_root``) and,
            with ``labels=True``, a ``label`` column of 0/1.
        store_root: the face store folder.
        image_size: crops are resized to this square size (antialiased).
        batch_size: images per batch (the last batch may be smaller).
        shuffle: reshuffle every epoch (seeded by ``seed``); the file names are
            shuffled before decoding, so the whole table is mixed at no memory
            cost. Without shuffling, the order is the table's, always.
        augment: random horizontal flips (seeded); off by default (the paper
            mentions no augmentation).
        cache: ``False``; ``True`` keeps the decoded, resized crops (uint8) in
            memory after the first epoch; a string caches them to that file
            prefix. When cached, shuffling happens after the cache with a buffer
            of :data:`SHUFFLE_BUFFER` images.
        labels: include the labels.
        weights: optional per-row sample weights (sequence of the table's length).

    Crops are read with ``tf.io`` in parallel (``num_parallel_calls=AUTOTUNE``,
    order kept) and batches are prefetched (``AUTOTUNE``). Raises ValueError for
    an empty table, missing columns, bad labels or crops that do not exist.
    """
    if not isinstance(table, pd.DataFrame) or len(table) == 0:
        raise ValueError("face_dataset needs a non-empty table of face rows (faces.csv)")
    if "crop" not in table.columns:
        raise ValueError(f"the table has no 'crop' column (columns: {list(table.columns)})")
    image_size, batch_size = int(image_size), int(batch_size)
    if image_size < 1 or batch_size < 1:
        raise ValueError(f"image_size and batch_size must be >= 1, got {image_size} and {batch_size}")
    root = Path(store_root)
    paths = [str(root / c) for c in table["crop"].astype(str)]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ValueError(f"{len(missing)} of {len(paths)} crops do not exist under {root}, e.g. {missing[0]}")
    columns = [tf.constant(paths)]
    if labels:
        if "label" not in table.columns:
            raise ValueError("the table has no 'label' column; pass labels=False to read images only")
        y = pd.to_numeric(table["label"], errors="coerce").to_numpy()
        if not np.all(np.isin(y, (0, 1))):
            raise ValueError(f"labels must be 0 (real) or 1 (fake); got {sorted(set(map(str, pd.unique(y))))}")
        columns.append(tf.constant(y.astype(np.float32)))
    if weights is not None:
        w = np.asarray(weights, dtype=np.float32)
        if w.shape != (len(table),) or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"weights must be {len(table)} finite non-negative numbers, got shape {w.shape}")
        columns.append(tf.constant(w))
    ds = tf.data.Dataset.from_tensor_slices(tuple(columns))
    n = len(paths)

    def load(path, *rest):
        image = _load_image(path, image_size)
        if cache is not False:
            image = tf.cast(tf.round(image), tf.uint8)
        return (image, *rest)

    if shuffle and cache is False:
        ds = ds.shuffle(n, seed=int(seed), reshuffle_each_iteration=True)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache is not False:
        ds = ds.cache("" if cache is True else str(cache))
        if shuffle:
            ds = ds.shuffle(min(n, SHUFFLE_BUFFER), seed=int(seed), reshuffle_each_iteration=True)

    def finish(image, *rest):
        image = tf.cast(image, tf.float32)
        if augment:
            image = tf.image.random_flip_left_right(image, seed=int(seed))
        image = tf.keras.applications.xception.preprocess_input(image)
        return (image, *rest) if rest else image

    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

