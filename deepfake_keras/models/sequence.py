"""Sequences of faces per video, and the paper's recurrent baseline (III.C, IV.B.2): Xception
features + LSTM / GRU.

The paper: "From the trained XceptionNet on FF++ dataset, we generate embeddings
from the first fc layer of feature vector dimension 512 [...] Generating features
from trained end-to-end Xception was crucial, otherwise, the LSTM network
overfits"; "a single layer LSTM of 32 units and then a prediction layer"; "a
sequence of 16 and 32 frames per video" (25 in IV.B.2). So:

- :func:`sequence_index` cuts every video of a face table (the face store's
  ``faces.csv``) into exactly one sequence of ``seq_len`` *consecutive stored
  frames, in frame order*, from the middle of what the store holds for it. A
  sequence never mixes videos. (With a store made with
  ``ExtractConfig(consecutive=True)``, consecutive stored frames are
  consecutive frames of the video -- or of its ``fps`` sampling -- except where
  MTCNN found no face in a frame; ``gaps`` in the index counts those.)
- Videos with fewer stored frames than ``seq_len`` follow an explicit policy,
  ``short=``:

  ``"pad"`` (default)
      the sequence is completed at its *end* by repeating the last stored frame,
      and a boolean ``mask`` marks the real frames (``True``) and the padding
      (``False``). The recurrent models take the mask (Keras skips masked steps:
      the state is carried over unchanged, so repeat-last + mask is exactly the
      shorter sequence). The convolutional models (:mod:`.conv3d`) have no mask:
      they see the last frame repeated, i.e. a still tail.
  ``"drop"``
      the video gets no sequence; it is listed in ``index.dropped`` with the
      reason, and its models' predictions are missing (not guessed).

- :func:`feature_sequences` gathers per-frame features (e.g. Xception ``fc1``)
  into ``(videos, seq_len, dim)`` arrays with the mask; :func:`image_sequence_dataset`
  streams sequences of face crops through ``tf.data`` for Conv3D / ConvLSTM.
- :func:`build_recurrent` is the paper's model: ``LSTM(32)`` or ``GRU(32)`` over
  the sequence of 512-d features (masked), then ``Dense(1, sigmoid)``.
- :func:`cached_features` keeps the per-frame features of a face table on disk,
  ``<run>/features/<key>.npz``, keyed by the Xception weights file's sha256 (and
  the image size and layer), so a re-run or another sequence length computes
  nothing.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..assets import sha256_of

# --------------------------------------------------------------------------- hyperparameters

SEQ_LENS = (16, 25, 32)  # the paper: 16 and 32 (III.C), 25 (IV.B.2)
KINDS = ("lstm", "gru")
FEATURE_DIM = 512  # the paper's fc1 of the Xception
UNITS = 32  # the paper: "a single layer LSTM of 32 units"
DROPOUT = 0.0  # ours: none (the paper gives none)
SHORT_POLICIES = ("pad", "drop")
SHORT = "pad"
FEATURES_DIR = "features"


# --------------------------------------------------------------------------- which frames

@dataclass
class SequenceIndex:
    """Which stored frames make each video's sequence (see :func:`sequence_index`).

    Attributes:
        videos: one row per kept video, in ``rows`` order: ``store_key``, the
            kept columns (``label``, ``split``...), ``n_stored`` (frames the store
            holds), ``n_real`` (of them in the sequence), ``n_padded``
            (``seq_len - n_real``), ``first_frame``, ``last_frame``,
            ``max_step`` (largest step between successive frame numbers in the
            sequence) and ``gaps`` (steps longer than 1.5 times the video's
            median step: frames of the sampling where no face was found).
        rows: int ``(videos, seq_len)`` positions (``iloc``) in the face table;
            padded steps repeat the last real position.
        mask: bool ``(videos, seq_len)``: ``True`` for real frames.
        dropped: videos left out (``short="drop"``): ``store_key``, ``n_stored``, ``reason``.
        seq_len, short: the settings.
    """

    videos: pd.DataFrame
    rows: np.ndarray
    mask: np.ndarray
    dropped: pd.DataFrame
    seq_len: int
    short: str

    def __len__(self) -> int:
        return len(self.videos)

    def subset(self, keep) -> "SequenceIndex":
        """The videos where boolean ``keep`` (one per video) is true, e.g. ``index.videos["split"] == "train"``."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (len(self),):
            raise ValueError(f"keep must be {len(self)} booleans, got shape {keep.shape}")
        return SequenceIndex(self.videos[keep].reset_index(drop=True), self.rows[keep], self.mask[keep],
                             self.dropped, self.seq_len, self.short)

    def split(self, name: str) -> "SequenceIndex":
        """The videos of one split (``train``, ``val``, ``test``)."""
        return self.subset((self.videos["split"] == name).to_numpy())

    @property
    def labels(self) -> np.ndarray:
        return self.videos["label"].to_numpy().astype(np.float32)


def sequence_index(faces: pd.DataFrame, seq_len: int, short: str = SHORT,
                   keep=("label", "split", "method", "video_id")) -> SequenceIndex:
    """One sequence of ``seq_len`` consecutive stored frames per video, in frame order.

    Args:
        faces: rows of a face store's ``faces.csv`` (columns ``store_key`` and
            ``frame``; a video's rows may come in any order). Positions in
            ``rows`` refer to this table's order (``iloc``).
        seq_len: frames per sequence (the paper: 16, 25, 32).
        short: what happens to a video with fewer than ``seq_len`` stored
            frames: ``"pad"`` (repeat its last frame at the end, ``mask`` False
            there) or ``"drop"`` (leave it out, listed in ``dropped``). See the
            module docstring.
        keep: per-video columns to carry into ``videos`` (those present; each
            must be constant within a video).

    A video with more stored frames than ``seq_len`` contributes the middle
    ``seq_len`` of them (the first of the two middles when the surplus is odd),
    like ``ExtractConfig(consecutive=True)`` picks frames from the middle of the
    video. Videos come out sorted by ``store_key``.

    Raises ValueError for a bad ``seq_len`` or ``short``, missing columns, a
    video with the same frame twice, or a kept column that varies in a video.
    """
    seq_len = int(seq_len)
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if short not in SHORT_POLICIES:
        raise ValueError(f"short must be one of {SHORT_POLICIES} (what to do with videos that have fewer than "
                         f"seq_len stored frames), got {short!r}")
    if not isinstance(faces, pd.DataFrame):
        raise ValueError("faces must be a pandas DataFrame (the face store's faces.csv)")
    for col in ("store_key", "frame"):
        if col not in faces.columns:
            raise ValueError(f"the face table has no {col!r} column (columns: {list(faces.columns)})")
    if len(faces) == 0:
        raise ValueError("the face table is empty")
    keep = [c for c in keep if c in faces.columns and c != "store_key"]
    table = pd.DataFrame({"store_key": faces["store_key"].to_numpy(),
                          "frame": pd.to_numeric(faces["frame"], errors="coerce").to_numpy(),
                          "pos": np.arange(len(faces))})
    if table["frame"].isna().any():
        raise ValueError(f"{int(table['frame'].isna().sum())} rows have no numeric frame number")
    duplicated = table.duplicated(["store_key", "frame"])
    if duplicated.any():
        first = table[duplicated].iloc[0]
        raise ValueError(f"video {first['store_key']!r} has frame {int(first['frame'])} more than once; "
                         f"a face table holds one row per stored frame")
    for col in keep:
        varying = faces.groupby("store_key")[col].nunique(dropna=False)
        if (varying > 1).any():
            raise ValueError(f"column {col!r} varies within video {varying[varying > 1].index[0]!r}")
    table = table.sort_values(["store_key", "frame"], kind="stable")
    videos, rows, masks, dropped = [], [], [], []
    first_rows = faces.iloc[table.drop_duplicates("store_key")["pos"].to_numpy()]
    per_video = {k: r for k, r in zip(first_rows["store_key"], first_rows.to_dict("records"))}
    for key, group in table.groupby("store_key", sort=True):
        pos, frames = group["pos"].to_numpy(), group["frame"].to_numpy().astype(int)
        n = len(pos)
        if n < seq_len and short == "drop":
            dropped.append({"store_key": key, "n_stored": n,
                            "reason": f"{n} stored frame(s) < {seq_len} (short='drop')"})
            continue
        start = max(0, (n - seq_len) // 2)
        take = slice(start, start + seq_len)
        pos, frames = pos[take], frames[take]
        n_real = len(pos)
        row = np.concatenate([pos, np.full(seq_len - n_real, pos[-1])]).astype(np.int64)
        rows.append(row)
        masks.append(np.arange(seq_len) < n_real)
        steps = np.diff(frames)
        videos.append({"store_key": key, **{c: per_video[key][c] for c in keep}, "n_stored": n, "n_real": n_real,
                       "n_padded": seq_len - n_real, "first_frame": int(frames[0]), "last_frame": int(frames[-1]),
                       "max_step": int(steps.max()) if len(steps) else 0,
                       "gaps": int(np.sum(steps > 1.5 * np.median(steps))) if len(steps) else 0})
    columns = ["store_key", *keep, "n_stored", "n_real", "n_padded", "first_frame", "last_frame", "max_step", "gaps"]
    return SequenceIndex(
        videos=pd.DataFrame(videos, columns=columns),
        rows=np.array(rows, dtype=np.int64).reshape(len(rows), seq_len),
        mask=np.array(masks, dtype=bool).reshape(len(masks), seq_len),
        dropped=pd.DataFrame(dropped, columns=["store_key", "n_stored", "reason"]),
        seq_len=seq_len, short=short)


def describe(index: SequenceIndex) -> dict:
    """Counts for ``metrics.json``: videos, how many were padded (and by how much) or dropped."""
    padded = index.videos["n_padded"] > 0
    return {"seq_len": index.seq_len, "short": index.short, "videos": int(len(index)),
            "padded_videos": int(padded.sum()), "padded_frames": int(index.videos["n_padded"].sum()),
            "dropped_videos": int(len(index.dropped)), "dropped": index.dropped["store_key"].tolist(),
            "videos_with_gaps": int((index.videos["gaps"] > 0).sum())}


# --------------------------------------------------------------------------- inputs

def feature_sequences(index: SequenceIndex, features) -> dict:
    """``{"features": float32 (videos, seq_len, dim), "mask": bool (videos, seq_len)}``: the rows of
    ``features`` (one per row of the face table the index was made from) in each video's sequence."""
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D (face rows, dim), got shape {x.shape}")
    if len(index) and index.rows.max() >= len(x):
        raise ValueError(f"the index points at face row {int(index.rows.max())} but features has {len(x)} rows; "
                         f"use the features of the table the index was made from")
    return {"features": x[index.rows], "mask": index.mask.copy()}


def image_sequence_dataset(index: SequenceIndex, faces: pd.DataFrame, store_root, image_size: int,
                           batch_size: int = 4, shuffle: bool = False, seed: int = 0, labels: bool = True,
                           cache: bool = False, weights=None):
    """A ``tf.data`` pipeline of face-crop sequences for the convolutional sequence models.

    Each element is ``(clips, labels)`` (``clips`` only with ``labels=False``;
    ``(clips, labels, weights)`` with per-video ``weights``): ``clips`` float32
    ``(batch, seq_len, image_size, image_size, 3)`` scaled to [-1, 1]
    (``x / 127.5 - 1``, as for Xception), the frames of one video in frame order
    (padding repeats the last frame, see the module docstring); ``labels``
    float32 (1 = fake). Videos come in the index's order unless ``shuffle``
    (seeded; whole videos are shuffled, never frames). ``cache=True`` keeps the
    decoded, resized clips (uint8) in memory after the first pass.
    """
    import tensorflow as tf

    from .xception import _load_image

    image_size, batch_size = int(image_size), int(batch_size)
    if image_size < 1 or batch_size < 1:
        raise ValueError(f"image_size and batch_size must be >= 1, got {image_size} and {batch_size}")
    if len(index) == 0:
        raise ValueError("the sequence index holds no video")
    if "crop" not in faces.columns:
        raise ValueError(f"the face table has no 'crop' column (columns: {list(faces.columns)})")
    root = Path(store_root)
    crops = faces["crop"].astype(str).to_numpy()
    paths = np.vectorize(lambda c: str(root / c), otypes=[object])(crops[index.rows]).astype(str)
    missing = [p for p in np.unique(paths) if not Path(p).is_file()]
    if missing:
        raise ValueError(f"{len(missing)} crops do not exist under {root}, e.g. {missing[0]}")
    columns = [tf.constant(paths)]
    if labels:
        columns.append(tf.constant(index.labels))
    if weights is not None:
        w = np.asarray(weights, np.float32)
        if w.shape != (len(index),):
            raise ValueError(f"weights must hold one number per video ({len(index)}), got shape {w.shape}")
        columns.append(tf.constant(w))
    ds = tf.data.Dataset.from_tensor_slices(tuple(columns))

    def load(clip_paths, *rest):
        clip = tf.map_fn(lambda p: _load_image(p, image_size), clip_paths, fn_output_signature=tf.float32)
        clip = tf.ensure_shape(clip, (index.seq_len, image_size, image_size, 3))
        return (tf.cast(tf.round(clip), tf.uint8), *rest)

    def finish(clip, *rest):
        clip = tf.cast(clip, tf.float32) / 127.5 - 1.0
        return (clip, *rest) if rest else clip

    if shuffle and not cache:
        ds = ds.shuffle(len(index), seed=int(seed), reshuffle_each_iteration=True)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache()
        if shuffle:
            ds = ds.shuffle(len(index), seed=int(seed), reshuffle_each_iteration=True)
    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------- the model

def build_recurrent(kind: str = "lstm", seq_len: int = 25, feature_dim: int = FEATURE_DIM, units: int = UNITS,
                    dropout: float = DROPOUT, name: str | None = None):
    """The paper's sequence classifier: one ``LSTM`` or ``GRU`` layer of ``units`` units over the
    per-frame features, then the prediction layer ``Dense(1, sigmoid)``.

    Inputs (a dict, as :func:`feature_sequences` gives): ``features`` float32
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
    outputs = tf.keras.layers.Dense(1, activation="sigmoid", name="p_fake")(x)
    return tf.keras.Model({"features": features, "mask": mask}, outputs, name=name or f"{kind}_{int(seq_len)}")


# --------------------------------------------------------------------------- feature cache

def feature_key(weights_file, image_size: int, layer: str = "fc1", sha: str | None = None) -> str:
    """The cache name of the features of one Xception weights file: ``xception-<layer>-s<size>-<sha256[:16]>``
    (``sha``: the file's sha256 if already known)."""
    sha = sha or sha256_of(weights_file)
    return f"xception-{layer}-s{int(image_size)}-{sha[:16]}"


def cached_features(faces: pd.DataFrame, store_root, weights_file, run_dir, image_size: int,
                    batch_size: int = 64, layer: str = "fc1", build_model=None, progress: bool = True) -> tuple:
    """``(features, p_fake)`` of every row of ``faces`` from the Xception in ``weights_file``:
    float32 ``(rows, dim)`` from its ``layer`` (``fc1``, the paper's 512-d features) and its P(fake)
    ``(rows,)``, both from one pass.

    Cached in ``<run_dir>/features/<feature_key>.npz`` (crop paths, features,
    p_fake, and a JSON of how they were made). A cache holding every crop of
    ``faces`` is reused without running the model; otherwise all rows are
    computed and the file rewritten (atomically).
    ``build_model(image_size=..., weights=None)`` rebuilds the architecture
    (default :func:`deepfake_keras.models.xception.build_xception`).
    """
    from ..data.store import write_atomic
    from ..runs import log
    from . import xception as xc

    weights_file = Path(weights_file)
    if not weights_file.is_file():
        raise ValueError(f"{weights_file}: no such weights file")
    sha = sha256_of(weights_file)
    key = feature_key(weights_file, image_size, layer, sha=sha)
    path = Path(run_dir) / FEATURES_DIR / f"{key}.npz"
    crops = faces["crop"].astype(str).to_numpy()
    if path.is_file():
        with np.load(path, allow_pickle=False) as saved:
            position = pd.Series(np.arange(len(saved["crops"])), index=saved["crops"])
            if position.index.is_unique and set(crops) <= set(position.index):
                at = position.loc[crops].to_numpy()
                log(f"features: {len(crops)} faces from the cache {path.name}")
                return saved["features"][at], saved["p_fake"][at]
    import tensorflow as tf

    build = build_model or xc.build_xception
    model = build(image_size=int(image_size), weights=None)
    model.load_weights(str(weights_file))
    both = tf.keras.Model(model.inputs, [model.get_layer(layer).output, model.output], name="features_and_p_fake")
    log(f"features: {len(crops)} faces through {weights_file.name} ({layer}, {image_size} px)")
    ds = xc.face_dataset(faces, store_root, int(image_size), int(batch_size), shuffle=False, labels=False)
    features, p_fake = both.predict(ds, verbose=1 if progress else 0)
    features, p_fake = features.astype(np.float32), p_fake.reshape(-1).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, crops=crops.astype(str), features=features, p_fake=p_fake,
             info=np.array(json.dumps({"weights_file": weights_file.name, "sha256": sha,
                                       "image_size": int(image_size), "layer": layer})))
    write_atomic(path, buf.getvalue())
    return features, p_fake
