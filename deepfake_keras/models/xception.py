"""The frame classifier of the paper (III.B, IV.B.1, IV.C): Xception on face crops, sigmoid output.

Model (:func:`build_xception`): ``tf.keras.applications.Xception`` without its
top (ImageNet weights by default), every layer trainable ("we allowed the
gradients to flow through all the layers of Xception"), then
``GlobalAveragePooling2D -> Dense(512, relu, name="fc1") -> Dropout(0.7) ->
Dense(1, sigmoid, name="p_fake")``, both Dense layers ``he_uniform``: the authors' head
(``cnn_model`` in ``01.train_CNN.py`` lines 72-88 of AKASH2907/deepfakes_video_classification: their
``Dropout(0.4)`` then ``Dropout(0.5)`` is one ``Dropout(0.7)``, and their two-way softmax is one sigmoid). ``fc1`` is the paper's "first fc layer of
feature vector dimension 512" whose outputs feed the LSTM/GRU baseline
(:func:`feature_model`). The Xception layers are part of the one Functional
model (built on its input tensor, not nested), so Grad-CAM can reach
``block14_sepconv2_act`` by name. Batch normalisation layers train in training
mode like every other layer (the paper fine-tunes everything).

Inputs: Xception-preprocessed face crops, ``x / 127.5 - 1``
(:func:`deepfake_keras.data.inputs.face_dataset` and
:func:`~deepfake_keras.data.inputs.preprocess_faces`).

Optimizer (:func:`paper_optimizer`): Nadam, learning rate 0.002, schedule
decay 0.004 -- the defaults of Keras 2's Nadam, which the paper used. How that
maps to TF 2.15 is in the docstring of :func:`paper_optimizer`; in short,
TF 2.15's ``tf.keras.optimizers.Nadam`` has *no* schedule decay (its momentum
warm-up is 250 times faster), so the legacy ``tf.keras.optimizers.legacy.Nadam``,
which keeps Keras 2's rule exactly, is used.

Builders only: training (:mod:`deepfake_keras.training`) saves weights only
(``.weights.h5``), and loading rebuilds the architecture here and loads them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from ..config import XceptionConfig

# --------------------------------------------------------------------------- hyperparameters

IMAGE_SIZE = XceptionConfig.image_size
MIN_IMAGE_SIZE = 71  # the smallest input tf.keras.applications.Xception accepts
FC_UNITS = 512  # the paper's "first fc layer of feature vector dimension 512"
# the authors' (the paper gives none): Dropout(0.4) then Dropout(0.5) after fc1 in 01.train_CNN.py (cnn_model,
# lines 77 and 82 of AKASH2907/deepfakes_video_classification): a unit survives both with probability 0.6 x 0.5 =
# 0.3 and is scaled by 1 / 0.3, exactly one Dropout(0.7)
DROPOUT = 0.7
INITIALIZER = "he_uniform"  # the authors' fc1 and output layers (01.train_CNN.py lines 74 and 86)
LEARNING_RATE = XceptionConfig.learning_rate
SCHEDULE_DECAY = XceptionConfig.schedule_decay
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7  # Keras 2's Nadam defaults (epsilon = K.epsilon())
GRADCAM_LAYER = "block14_sepconv2_act"  # Xception's last convolutional activation (7x7 at 299 px)
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


def build_xception(image_size: int = IMAGE_SIZE, weights=XceptionConfig.weights, fc_units: int = FC_UNITS,
                   dropout: float = DROPOUT, name: str = "xception_classifier") -> tf.keras.Model:
    """The paper's frame classifier: Xception (every layer trainable) -> GAP -> ``fc1`` -> dropout -> P(fake).

    Args:
        image_size: input side in pixels (>= 71; the paper's 299). Inputs are
            Xception-preprocessed images, ``x / 127.5 - 1``
            (:func:`deepfake_keras.data.inputs.preprocess`).
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
    x = tf.keras.layers.Dense(int(fc_units), activation="relu", kernel_initializer=INITIALIZER, name=FEATURE_LAYER)(x)
    if dropout > 0:
        x = tf.keras.layers.Dropout(float(dropout), name="fc1_dropout")(x)
    outputs = tf.keras.layers.Dense(1, activation="sigmoid", kernel_initializer=INITIALIZER, name=OUTPUT_LAYER,
                                    dtype="float32")(x)
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
