"""The same dense network as the triplet head, as a plain classifier (a sigmoid unit on top): the
paper's "without triplet network" comparison (Fig. 6b), trained with cross-entropy by
:func:`deepfake_keras.training.triplet.train_dense_classifier`."""
from __future__ import annotations

import tensorflow as tf

from ..config import HeadConfig
from .triplet import build_triplet_head


def build_dense_classifier(input_dim: int, dropout: float = HeadConfig.dropout,
                           normalize: bool = HeadConfig.normalize) -> tuple:
    """``(classifier, trunk)``: :func:`~deepfake_keras.models.triplet.build_triplet_head` (the trunk,
    64-d embeddings) with ``Dense(1, sigmoid)`` on top (P(fake)); uncompiled."""
    trunk = build_triplet_head(input_dim, dropout=dropout, normalize=normalize, name="dense_trunk")
    output = tf.keras.layers.Dense(1, activation="sigmoid", name="p_fake", dtype="float32")(trunk.output)
    return tf.keras.Model(trunk.input, output, name="dense_classifier"), trunk
