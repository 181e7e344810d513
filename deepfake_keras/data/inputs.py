"""Face crops of the store -> model inputs: ``tf.data`` pipelines of frames (Xception) and of clips
(Conv3D, ConvLSTM), and the one Xception input preparation (resize, then ``x / 127.5 - 1``).

Crops are read with ``tf.io`` in parallel (``num_parallel_calls=AUTOTUNE``, order kept) and
batches are prefetched, so that decoding overlaps training.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from ..config import XceptionConfig
from .augment import augment_dataset
from .sequences import SequenceIndex

SHUFFLE_BUFFER = 2048  # decoded images held for shuffling when the dataset is cached (else file names)


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


def load_image(path, image_size: int):
    """Read, decode (RGB) and :func:`resize_face` one crop file (a string tensor)."""
    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    return resize_face(image, image_size)


def face_dataset(table: pd.DataFrame, store_root, image_size: int = XceptionConfig.image_size,
                 batch_size: int = XceptionConfig.batch_size,
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
        augment: the authors' augmentation (rotation, shifts, shear, zoom, horizontal flip,
            :mod:`deepfake_keras.data.augment`), seeded, drawn anew every epoch; for training.
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
        image = load_image(path, image_size)
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

    if augment:
        ds = augment_dataset(ds.map(lambda image, *rest: (tf.cast(image, tf.float32), *rest)), seed)

    def finish(image, *rest):
        image = tf.keras.applications.xception.preprocess_input(tf.cast(image, tf.float32))
        return (image, *rest) if rest else image

    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def image_sequence_dataset(index: SequenceIndex, faces: pd.DataFrame, store_root, image_size: int,
                           batch_size: int = 4, shuffle: bool = False, seed: int = 0, labels: bool = True,
                           cache: bool = False, weights=None):
    """A ``tf.data`` pipeline of face-crop sequences for the convolutional sequence models.

    Each element is ``(clips, labels)`` (``clips`` only with ``labels=False``;
    ``(clips, labels, weights)`` with per-video ``weights``): ``clips`` float32
    ``(batch, seq_len, image_size, image_size, 3)`` scaled to [-1, 1]
    (``x / 127.5 - 1``, as for Xception), the frames of one video in frame order
    (padding repeats the last frame); ``labels``
    float32 (1 = fake). Videos come in the index's order unless ``shuffle``
    (seeded; whole videos are shuffled, never frames). ``cache=True`` keeps the
    decoded, resized clips (uint8) in memory after the first pass (see
    :mod:`deepfake_keras.data.sequences` for how short videos are padded).
    """
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
        clip = tf.map_fn(lambda p: load_image(p, image_size), clip_paths, fn_output_signature=tf.float32)
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
