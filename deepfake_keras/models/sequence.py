"""The paper's recurrent baseline (III.C, IV.B.2): Xception features + LSTM / GRU.

The paper: "From the trained XceptionNet on FF++ dataset, we generate embeddings
from the first fc layer of feature vector dimension 512 [...] Generating features
from trained end-to-end Xception was crucial, otherwise, the LSTM network
overfits"; "a single layer LSTM of 32 units and then a prediction layer"; "a
sequence of 16 and 32 frames per video" (25 in IV.B.2). :func:`build_recurrent`
is that model: ``LSTM(32)`` or ``GRU(32)`` over the sequence of 512-d features
(masked, see :mod:`deepfake_keras.data.sequences`), then ``Dense(1, sigmoid)``.
"""
from __future__ import annotations

# --------------------------------------------------------------------------- hyperparameters

FEATURE_DIM = 512  # the paper's fc1 of the Xception
UNITS = 32  # the paper: "a single layer LSTM of 32 units"
DROPOUT = 0.0  # ours: none (the paper gives none)


# --------------------------------------------------------------------------- the model

def build_recurrent(kind: str = "lstm", seq_len: int = 25, feature_dim: int = FEATURE_DIM, units: int = UNITS,
                    dropout: float = DROPOUT, name: str | None = None):
    """The paper's sequence classifier: one ``LSTM`` or ``GRU`` layer of ``units`` units over the
    per-frame features, then the prediction layer ``Dense(1, sigmoid)``.

    Inputs (a dict, as :func:`deepfake_keras.data.sequences.feature_sequences` gives): ``features`` float32
    ``(batch, seq_len, feature_dim)`` and ``mask`` bool ``(batch, seq_len)``
    (``True`` = a real frame; padded steps are skipped). Output: P(fake)
    ``(batch, 1)``. ``dropout`` (ours, default 0) is applied to the recurrent
    layer's output. Returns an uncompiled Functional model.
    """
    import tensorflow as tf

    kind = str(kind).lower()
    layers = {"lstm": tf.keras.layers.LSTM, "gru": tf.keras.layers.GRU}
    if kind not in layers:
        raise ValueError(f"kind must be one of {sorted(layers)}, got {kind!r}")
    for label, value in (("seq_len", seq_len), ("feature_dim", feature_dim), ("units", units)):
        if int(value) < 1:
            raise ValueError(f"{label} must be >= 1, got {value}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    features = tf.keras.Input((int(seq_len), int(feature_dim)), name="features")
    mask = tf.keras.Input((int(seq_len),), dtype=tf.bool, name="mask")
    x = layers[kind](int(units), name=kind)(features, mask=mask)
    if dropout > 0:
        x = tf.keras.layers.Dropout(float(dropout), name=f"{kind}_dropout")(x)
    outputs = tf.keras.layers.Dense(1, activation="sigmoid", name="p_fake", dtype="float32")(x)
    return tf.keras.Model({"features": features, "mask": mask}, outputs, name=name or f"{kind}_{int(seq_len)}")


