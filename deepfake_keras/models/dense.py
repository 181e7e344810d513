"""The same dense network as the triplet head, trained as a plain classifier (binary
cross-entropy): the paper's "without triplet network" comparison (Fig. 6b)."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .triplet import BATCH_SIZE, DROPOUT, EPOCHS, LEARNING_RATE, PATIENCE, build_triplet_head


def train_dense_classifier(x_train, y_train, x_val, y_val, epochs: int = EPOCHS, batch_size: int = BATCH_SIZE,
                           patience: int = PATIENCE, learning_rate: float = LEARNING_RATE, seed: int = 0,
                           dropout: float = DROPOUT) -> tuple:
    """Train ``build_triplet_head`` + a sigmoid unit with binary cross-entropy (class-balanced
    weights), early stopping on the validation loss with the best weights kept.

    Returns ``(classifier, trunk, history)``: the classifier outputs P(fake); the trunk
    gives its 64-d (unit length) penultimate embeddings, for t-SNE.
    """
    x_train, x_val = np.asarray(x_train, np.float32), np.asarray(x_val, np.float32)
    y_train, y_val = np.asarray(y_train, np.float32), np.asarray(y_val, np.float32)
    if len(np.unique(y_train)) < 2 or len(np.unique(y_val)) < 2:
        raise ValueError("train_dense_classifier needs both classes in the training and the validation split")
    tf.keras.utils.set_random_seed(int(seed))
    trunk = build_triplet_head(x_train.shape[1], dropout=dropout, name="dense_trunk")
    output = tf.keras.layers.Dense(1, activation="sigmoid", name="p_fake")(trunk.output)
    model = tf.keras.Model(trunk.input, output, name="dense_classifier")
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), loss="binary_crossentropy")
    n_fake = float(y_train.sum())
    n_real = float(len(y_train) - n_fake)
    weights = {0: len(y_train) / (2 * n_real), 1: len(y_train) / (2 * n_fake)}
    stopper = tf.keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(patience), restore_best_weights=True)
    fit = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=int(epochs), batch_size=int(batch_size),
                    class_weight=weights, callbacks=[stopper], verbose=0, shuffle=True)
    if stopper.best_weights is not None:
        model.set_weights(stopper.best_weights)
    return model, trunk, {k: [float(v) for v in vals] for k, vals in fit.history.items()}
