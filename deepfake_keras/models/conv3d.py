"""Spatio-temporal baselines on clips of face crops: the paper's Conv3D (III.D) and a ConvLSTM (ours).

Conv3D, the paper: "we took 32 frames per video into consideration. The
architecture comprises of 3x3x3 filters in convolution layers and 2x2x2 pool
size in maxpooling layers. Number of filters in convolution layers are
respectively 64, 128, 256, 256, 512 and 512", trained "without prior knowledge
as in imagenet networks". :func:`build_conv3d` follows that; what the paper
leaves open is filled in the way of C3D (Tran et al. 2015), whose first layers
these are:

- where the pools go: C3D pools after conv1, conv2 and after each pair of
  convolutions, so here after the 64, the 128, the second 256 and the second
  512 (:data:`POOL_AFTER`): four 2x2x2 max-pools, 32 frames -> 2 and
  112 px -> 7;
- the input side: C3D's 112 px (:data:`IMAGE_SIZE`);
- the head (ours): global average pooling -> dropout -> ``Dense(1, sigmoid)``
  (C3D's two 4096-unit layers would dwarf the rest on this little data).

Small inputs (the DEMO data, tests): a 2x2x2 pool needs at least 2 steps on
each axis. Each pool halves an axis only while that axis is at least 2 long;
an axis already down to 1 is left alone (pool size 1 on that axis), so the model
builds for any clip of at least one frame and one pixel, and the paper's shapes
come out unchanged wherever they fit (every pool is 2x2x2 for 32 frames of 16 px
or more). :func:`pool_plan` gives the pool sizes for an input.

ConvLSTM (ours; asked for by name in the project brief, not a row of the
paper): :func:`build_convlstm`, a per-frame convolution (stride 2) and a 2x2
spatial max-pool, then one ``ConvLSTM2D`` layer of 32 filters (the paper's 32
recurrent units, made convolutional) over the frames, global average pooling
and the prediction layer.

Inputs of both: float32 ``(batch, frames, size, size, 3)`` scaled to [-1, 1]
(:func:`deepfake_keras.models.sequence.image_sequence_dataset`). Both are
uncompiled Functional models with one sigmoid output, P(fake).
"""
from __future__ import annotations

from ..config import BaselinesExperiment

# --------------------------------------------------------------------------- hyperparameters

SEQ_LEN = BaselinesExperiment.clip_frames  # the paper's 32
IMAGE_SIZE = BaselinesExperiment.clip_size  # C3D's input side, 112 (the paper gives none)
FILTERS = (64, 128, 256, 256, 512, 512)  # the paper
KERNEL = 3  # 3x3x3, the paper
POOL = 2  # 2x2x2, the paper
POOL_AFTER = (0, 1, 3, 5)  # after conv1, conv2, conv3b, conv4b, as C3D (the paper does not say)
DROPOUT = 0.5  # ours, before the prediction layer

CONVLSTM_FILTERS = 32  # ours: the paper's 32 recurrent units, as convolution filters
CONVLSTM_STEM = 16  # ours: filters of the per-frame stride-2 convolution before the ConvLSTM


def pool_plan(seq_len: int, image_size: int, n_pools: int = len(POOL_AFTER), pool: int = POOL) -> list:
    """The pool sizes ``[(t, h, w), ...]`` of ``n_pools`` max-pools on a ``seq_len x image_size x image_size``
    clip: ``pool`` on an axis while it is at least ``pool`` long, 1 once it is shorter (see the module
    docstring). Sizes shrink as Keras' ``MaxPooling3D(padding="valid")`` shrinks them (floor)."""
    t, s = int(seq_len), int(image_size)
    if t < 1 or s < 1:
        raise ValueError(f"seq_len and image_size must be >= 1, got {seq_len} and {image_size}")
    plan = []
    for _ in range(int(n_pools)):
        pt = pool if t >= pool else 1
        ps = pool if s >= pool else 1
        plan.append((pt, ps, ps))
        t, s = t // pt, s // ps
    return plan


def build_conv3d(seq_len: int = SEQ_LEN, image_size: int = IMAGE_SIZE, filters=FILTERS, pool_after=POOL_AFTER,
                 dropout: float = DROPOUT, name: str = "conv3d"):
    """The paper's 3D CNN: 3x3x3 convolutions (ReLU, 'same' padding) with ``filters`` filters, 2x2x2
    max-pooling after the convolutions listed in ``pool_after`` (0-based), global average pooling,
    dropout, ``Dense(1, sigmoid)``.

    Layer names: ``conv1 .. conv6`` and ``pool1 .. pool4``; pool sizes follow
    :func:`pool_plan` (smaller on an axis only where the input is too small for
    2x2x2, see the module docstring). Trained from scratch (random init).
    """
    import tensorflow as tf

    seq_len, image_size = int(seq_len), int(image_size)
    filters = tuple(int(f) for f in filters)
    if not filters or any(f < 1 for f in filters):
        raise ValueError(f"filters must be one or more positive counts, got {filters}")
    pool_after = tuple(sorted(int(i) for i in pool_after))
    if any(i < 0 or i >= len(filters) for i in pool_after) or len(set(pool_after)) != len(pool_after):
        raise ValueError(f"pool_after must list distinct convolution positions in 0..{len(filters) - 1}, "
                         f"got {pool_after}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    plan = iter(pool_plan(seq_len, image_size, len(pool_after)))
    inputs = tf.keras.Input((seq_len, image_size, image_size, 3), name="clip")
    x = inputs
    n_pool = 0
    for i, f in enumerate(filters):
        x = tf.keras.layers.Conv3D(f, KERNEL, padding="same", activation="relu", name=f"conv{i + 1}")(x)
        if i in pool_after:
            n_pool += 1
            x = tf.keras.layers.MaxPooling3D(next(plan), name=f"pool{n_pool}")(x)
    x = tf.keras.layers.GlobalAveragePooling3D(name="avg_pool")(x)
    if dropout > 0:
        x = tf.keras.layers.Dropout(float(dropout), name="dropout")(x)
    outputs = tf.keras.layers.Dense(1, activation="sigmoid", name="p_fake", dtype="float32")(x)
    return tf.keras.Model(inputs, outputs, name=name)


def build_convlstm(seq_len: int = SEQ_LEN, image_size: int = IMAGE_SIZE, filters: int = CONVLSTM_FILTERS,
                   stem_filters: int = CONVLSTM_STEM, dropout: float = DROPOUT, name: str = "convlstm"):
    """ConvLSTM baseline (ours): per frame ``Conv2D(stem_filters, 3, stride 2, ReLU)`` and a 2x2 max-pool
    (as ``Conv3D``/``MaxPooling3D`` with a temporal size of 1, layers ``stem`` and ``stem_pool``; the
    pool is skipped below 2 px), then ``ConvLSTM2D(filters, 3x3)`` over the frames (last state),
    global average pooling, dropout, ``Dense(1, sigmoid)``."""
    import tensorflow as tf

    seq_len, image_size = int(seq_len), int(image_size)
    if seq_len < 1 or image_size < 1:
        raise ValueError(f"seq_len and image_size must be >= 1, got {seq_len} and {image_size}")
    if int(filters) < 1 or int(stem_filters) < 1:
        raise ValueError(f"filters and stem_filters must be >= 1, got {filters} and {stem_filters}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    inputs = tf.keras.Input((seq_len, image_size, image_size, 3), name="clip")
    x = tf.keras.layers.Conv3D(int(stem_filters), (1, 3, 3), strides=(1, 2, 2), padding="same", activation="relu",
                               name="stem")(inputs)
    if (image_size + 1) // 2 >= 2:
        x = tf.keras.layers.MaxPooling3D((1, 2, 2), name="stem_pool")(x)
    x = tf.keras.layers.ConvLSTM2D(int(filters), 3, padding="same", name="convlstm")(x)
    x = tf.keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout > 0:
        x = tf.keras.layers.Dropout(float(dropout), name="dropout")(x)
    outputs = tf.keras.layers.Dense(1, activation="sigmoid", name="p_fake", dtype="float32")(x)
    return tf.keras.Model(inputs, outputs, name=name)
