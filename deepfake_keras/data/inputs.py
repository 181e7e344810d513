"""Face crops of the store -> model inputs: ``tf.data`` pipelines of frames (Xception) and of clips
(Conv3D, ConvLSTM), and the one Xception input preparation (resize, then ``x / 127.5 - 1``).

Crops are read with ``tf.io`` in parallel (``num_parallel_calls=AUTOTUNE``, order kept), scaled to
[-1, 1] a batch at a time, and batches are prefetched, so that decoding overlaps training. A crop that
already has the asked size is not resized (the antialiased resize to the same size is the identity, to
the bit, so nothing changes but the time).

Where the crops are read from (``face_dataset(storage=...)``):

* ``"png"`` (default): the store's own PNG files.
* ``"raw"``: a copy of the decoded crops, uint8 RGB, one file per crop, written once (atomically) beside
  the store, in ``<store>.raw/`` (:func:`raw_cache_root`; ``raw_root`` puts it elsewhere; nothing is ever
  written into the store). Each file is named after its crop and the crop file's size and modification
  time (``000012.png.<bytes>-<mtime_ns>.raw``), so a crop extracted again gets a new copy and a stale
  one is never read (the quick check of make and rsync: a crop swapped for a file of the same size and
  the same time, which the store never does, would go unnoticed). It holds the same pixels as the PNG
  (decoded by the same op), so the batches are the same, bit for bit; reading it costs a file read
  instead of a PNG decode (2-3 ms of CPU per 299-px crop), for more disk space (268 kB per 299-px crop;
  2.2 times the PNGs of the real FF++ c23 crops). File layout: 8 bytes ``DFKRAW01``, height and width
  (little-endian uint32), the ``height x width x 3`` bytes. Delete the folder to reclaim the space; it
  is written again when asked for. The folder holds a marker file (``DEEPFAKE_KERAS_RAW_COPY.txt``); a
  folder of that name that holds anything else is the user's and is never written into.

The order is the table's, or with ``shuffle`` a permutation of all rows drawn anew each epoch from the
seed: the same for every storage and for ``cache=True`` (not for a file cache, ``cache="prefix"``), and
so are the augmentation draws (one seed per position, :mod:`deepfake_keras.data.augment`).
``benchmarks/input_pipeline.py`` measures the formats.
"""
from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from ..config import INPUT_STORAGES, XceptionConfig
from ..io import log, write_atomic
from .augment import augment_dataset
from .sequences import SequenceIndex

SHUFFLE_BUFFER = 2048  # decoded images held for shuffling when the dataset is cached in a file (cache="prefix")
STORAGES = INPUT_STORAGES  # where face_dataset reads the crops from (see the module docstring)
RAW_MAGIC = b"DFKRAW01"
RAW_HEADER = len(RAW_MAGIC) + 8  # magic, height and width (uint32, little-endian)
RAW_SUFFIX = ".raw"
RAW_KEY = re.compile(r"\d+-\d+" + re.escape(RAW_SUFFIX))  # "<bytes>-<mtime_ns>.raw" after the crop's name
RAW_MARKER = "DEEPFAKE_KERAS_RAW_COPY.txt"  # written first into a raw copy's folder: the folder is ours


def preprocess(images) -> np.ndarray:
    """Xception preprocessing of RGB images in [0, 255]: ``x / 127.5 - 1`` (float32)."""
    return tf.keras.applications.xception.preprocess_input(np.asarray(images, dtype=np.float32).copy())


def resize_face(image, image_size):
    """One RGB face crop (or a batch) resized as in training: cast to float32, antialiased bilinear
    resize to ``image_size`` (an int for a square, or ``(height, width)``), clipped to [0, 255]. A crop
    that already has that size is only cast (the resize would give it back unchanged, bit for bit)."""
    size = tuple(image_size) if isinstance(image_size, (tuple, list)) else (image_size, image_size)
    size = tuple(int(s) for s in size)
    image = tf.cast(image, tf.float32)

    def resize():
        return tf.clip_by_value(tf.image.resize(image, size, antialias=True), 0.0, 255.0)

    known = image.shape[-3:-1]
    if known.is_fully_defined():
        return image if tuple(known) == size else resize()
    same = tf.reduce_all(tf.equal(tf.shape(image)[-3:-1], tf.constant(size, tf.int32)))
    return tf.cond(same, lambda: image, resize)


def preprocess_faces(faces, image_size) -> np.ndarray:
    """Face crops (RGB uint8, any sizes) -> Xception inputs as in training: each crop through
    :func:`resize_face`, then ``x / 127.5 - 1``; float32 ``(n, h, w, 3)``."""
    faces = [np.asarray(f) for f in faces]
    size = tuple(image_size) if isinstance(image_size, (tuple, list)) else (image_size, image_size)
    if not faces:
        return np.zeros((0, *size, 3), np.float32)
    out = np.stack([resize_face(f, size).numpy() for f in faces])
    return tf.keras.applications.xception.preprocess_input(out).astype(np.float32)


def decode_crop(path):
    """Read and decode (RGB uint8) one crop file of the store (a string tensor)."""
    return tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)


def load_image(path, image_size: int):
    """Read, decode (RGB) and :func:`resize_face` one crop file (a string tensor)."""
    return resize_face(decode_crop(path), image_size)


# --------------------------------------------------------------------------- the raw copy of the crops

def raw_cache_root(store_root) -> Path:
    """Where ``storage="raw"`` keeps its copy of a store's crops by default: ``<store>.raw`` beside it."""
    root = Path(store_root).resolve()
    return root.with_name(root.name + RAW_SUFFIX)


def raw_bytes(image) -> bytes:
    """One RGB uint8 crop ``(h, w, 3)`` in the raw file layout (see the module docstring)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"a raw crop is (height, width, 3) uint8, got shape {image.shape}")
    return RAW_MAGIC + struct.pack("<II", image.shape[0], image.shape[1]) + image.tobytes()


def read_raw(path):
    """Read one raw crop file (a string tensor) -> RGB uint8 ``(h, w, 3)``; an error naming the file if
    it is not one."""
    data = tf.io.read_file(path)
    check = tf.debugging.Assert(tf.equal(tf.strings.substr(data, 0, len(RAW_MAGIC)), RAW_MAGIC),
                                ["not a raw crop file of deepfake_keras:", path])
    with tf.control_dependencies([check]):
        height_width = tf.io.decode_raw(tf.strings.substr(data, len(RAW_MAGIC), 8), tf.int32, little_endian=True)
    pixels = tf.io.decode_raw(tf.strings.substr(data, RAW_HEADER, tf.strings.length(data) - RAW_HEADER), tf.uint8)
    return tf.reshape(pixels, [height_width[0], height_width[1], 3])


def raw_crop_files(crops, store_root, raw_root=None, batch_size: int = 64) -> list:
    """The raw copies (paths, one per crop) of the store's crops ``crops`` (paths relative to
    ``store_root``), written first where missing or stale: each decoded as ``storage="png"`` decodes it
    and written atomically (:func:`deepfake_keras.io.write_atomic`) under ``raw_root`` (default
    :func:`raw_cache_root`); the older copies of a crop written again are removed. Raises ValueError for
    a crop path outside the store, a crop that does not exist, a cache folder inside the store (or the
    store itself), or one that cannot be written."""
    root = Path(store_root)
    out = Path(raw_root) if raw_root is not None else raw_cache_root(root)
    if out.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"the raw copy of the crops cannot go inside the face store ({out} is in {root}); "
                         f"pass raw_root outside it")
    claim_raw_folder(out, root)
    files, todo, listed = [], {}, {}
    for crop in crops:
        rel = Path(str(crop))
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"crop path {crop!r} is not inside the store {root}; the raw copy needs relative paths")
        try:
            stat = os.stat(root / rel)
        except OSError:
            raise ValueError(f"crop {root / rel} does not exist or cannot be read") from None
        target = out / rel.parent / f"{rel.name}.{stat.st_size}-{stat.st_mtime_ns}{RAW_SUFFIX}"
        files.append(str(target))
        if target.parent not in listed:  # one listing per folder, not one lookup per crop
            listed[target.parent] = set(os.listdir(target.parent)) if target.parent.is_dir() else set()
        if target.name not in listed[target.parent]:
            todo[str(target)] = str(root / rel)
    if todo:
        log(f"raw copy of the crops: writing {len(todo)} of {len(files)} to {out} (once)")
        targets, sources = list(todo), list(todo.values())
        ds = tf.data.Dataset.from_tensor_slices(sources).map(decode_crop, num_parallel_calls=tf.data.AUTOTUNE)
        images = ds.prefetch(batch_size).as_numpy_iterator()
        try:
            for i, target in enumerate(map(Path, targets)):
                try:
                    image = next(images)
                except tf.errors.OpError as e:
                    raise ValueError(f"crop {sources[i]} cannot be decoded ({e.message.splitlines()[0]})") from None
                write_atomic(target, raw_bytes(image))
            for target in map(Path, targets):  # the older copies of the crops written again
                prefix = target.name.rsplit(".", 2)[0] + "."  # "<crop name>."
                for old in listed.get(target.parent, ()):
                    if old.startswith(prefix) and RAW_KEY.fullmatch(old[len(prefix):]) and old != target.name:
                        (target.parent / old).unlink(missing_ok=True)
        except OSError as e:
            raise _unwritable(out, e) from None
    return files


def _unwritable(out: Path, error: OSError) -> ValueError:
    return ValueError(f"cannot write the raw copy of the crops under {out} ({error}); pass raw_root (a writable "
                      f"folder) or use storage='png'")


def claim_raw_folder(out: Path, store_root: Path) -> None:
    """Make ``out`` a raw copy's folder (its marker file written first), or a ValueError if it is not
    one: a file, or a folder holding files other than raw copies (the user's; nothing is written there).
    A folder of raw copies without the marker (written before there was one) is taken as it is."""
    marker = out / RAW_MARKER
    if marker.is_file():
        return
    if out.exists():
        other = next((p for p in out.rglob("*") if not p.is_dir() and not p.name.endswith(RAW_SUFFIX)), None) \
            if out.is_dir() else out
        if other is not None:
            raise ValueError(f"cannot write the raw copy of the crops under {out}: it holds files that are not "
                             f"raw copies of deepfake_keras (for example {other}), and is left alone; pass "
                             f"raw_root (another folder) or use storage='png'")
    try:
        write_atomic(marker, (f"A copy of the decoded face crops of the face store {Path(store_root).resolve()}, "
                              f"written by deepfake_keras (storage='raw'). Safe to delete: it is written again "
                              f"when needed.\n").encode())
    except OSError as e:
        raise _unwritable(out, e) from None


def load_uint8(read, source, image_size: int):
    """One crop read with ``read``, :func:`resize_face`\\ d and rounded back to uint8 (what caches hold)."""
    return tf.cast(tf.round(resize_face(read(source), image_size)), tf.uint8)


def decoded_crops(sources, read, image_size: int, batch_size: int = 64) -> tf.Tensor:
    """Every crop of ``sources`` (file paths, read with ``read``) decoded, :func:`resize_face`\\ d and
    rounded to uint8, in order: one tensor ``(n, image_size, image_size, 3)`` held in memory."""
    ds = tf.data.Dataset.from_tensor_slices(sources).map(lambda source: load_uint8(read, source, image_size),
                                                         num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    out = np.empty((len(sources), image_size, image_size, 3), np.uint8)
    start = 0
    for batch in ds.batch(batch_size).prefetch(2).as_numpy_iterator():
        out[start:start + len(batch)] = batch
        start += len(batch)
    return tf.convert_to_tensor(out)


# --------------------------------------------------------------------------- frames (Xception)

def face_dataset(table: pd.DataFrame, store_root, image_size: int = XceptionConfig.image_size,
                 batch_size: int = XceptionConfig.batch_size,
                 shuffle: bool = False, seed: int = 0, augment: bool = False, cache=False, labels: bool = True,
                 weights=None, storage: str = "png", raw_root=None) -> tf.data.Dataset:
    """A ``tf.data`` pipeline of Xception-ready batches from rows of the face store's ``faces.csv``.

    Each element is ``(images, labels)`` (or ``images`` with ``labels=False``, or
    ``(images, labels, weights)`` when ``weights`` is given): images float32
    ``(batch, image_size, image_size, 3)`` scaled to [-1, 1] by
    ``tf.keras.applications.xception.preprocess_input``; labels float32 (1 = fake).

    Args:
        table: rows with a ``crop`` column (path relative to ``store_root``) and,
            with ``labels=True``, a ``label`` column of 0/1.
        store_root: the face store folder.
        image_size: crops are resized to this square size (antialiased; not at all when
            they already have it).
        batch_size: images per batch (the last batch may be smaller).
        shuffle: reshuffle every epoch (seeded by ``seed``): each epoch is a permutation
            of all rows, drawn before anything is read, so the whole table is mixed at no
            memory cost. Without shuffling, the order is the table's, always. The orders
            (and the augmentation) are the same whatever ``storage``, and with ``cache=True``.
        augment: the authors' augmentation (rotation, shifts, shear, zoom, horizontal flip,
            :mod:`deepfake_keras.data.augment`), seeded, drawn anew every epoch; for training.
        cache: ``False``; ``True`` decodes and resizes every crop once, when the dataset is
            made, and keeps them in memory (uint8, rounded: ``n * image_size**2 * 3`` bytes);
            the batches are those of ``cache=False`` (bit for bit when the crops already have
            ``image_size``, else within the rounding, 0.5 / 127.5). A string caches them to
            that file prefix after the first epoch (``tf.data``'s file cache); then shuffling
            happens after the cache, with a buffer of :data:`SHUFFLE_BUFFER` images, in
            another order.
        labels: include the labels.
        weights: optional per-row sample weights (sequence of the table's length).
        storage: ``"png"``, the store's crop files; ``"raw"``, a copy of the decoded crops
            written once beside the store (see the module docstring and
            :func:`raw_crop_files`): the same batches, less CPU per crop.
        raw_root: where ``storage="raw"`` keeps its copy (default :func:`raw_cache_root`).

    Crops are read with ``tf.io`` in parallel (``num_parallel_calls=AUTOTUNE``,
    order kept) and batches are prefetched (``AUTOTUNE``). Raises ValueError for
    an empty table, missing columns, bad labels or crops that do not exist.
    """
    if not isinstance(table, pd.DataFrame) or len(table) == 0:
        raise ValueError("face_dataset needs a non-empty table of face rows (faces.csv)")
    if "crop" not in table.columns:
        raise ValueError(f"the table has no 'crop' column (columns: {list(table.columns)})")
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    image_size, batch_size = int(image_size), int(batch_size)
    if image_size < 1 or batch_size < 1:
        raise ValueError(f"image_size and batch_size must be >= 1, got {image_size} and {batch_size}")
    root = Path(store_root)
    paths = [str(root / c) for c in table["crop"].astype(str)]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ValueError(f"{len(missing)} of {len(paths)} crops do not exist under {root}, e.g. {missing[0]}")
    columns = []
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
    read = decode_crop
    if storage == "raw":
        paths, read = raw_crop_files(table["crop"].astype(str), root, raw_root), read_raw
    n, seed = len(paths), int(seed)
    parallel = {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": True}

    if cache is True:  # row numbers, shuffled as the paths would be, then the rows of the decoded crops
        images = decoded_crops(paths, read, image_size)
        ds = tf.data.Dataset.from_tensor_slices((tf.range(n, dtype=tf.int64), *columns))
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(lambda row, *rest: (tf.gather(images, row), *rest), **parallel)
    elif cache is False:
        ds = tf.data.Dataset.from_tensor_slices((tf.constant(paths), *columns))
        if shuffle:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(lambda path, *rest: (resize_face(read(path), image_size), *rest), **parallel)
    else:  # tf.data's file cache: sequential, so shuffled after it through a buffer
        ds = tf.data.Dataset.from_tensor_slices((tf.constant(paths), *columns))
        ds = ds.map(lambda path, *rest: (load_uint8(read, path, image_size), *rest), **parallel)
        ds = ds.cache(str(cache))
        if shuffle:
            ds = ds.shuffle(min(n, SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)

    if augment:
        ds = augment_dataset(ds, seed)

    def finish(images, *rest):  # a batch at a time: the same numbers as image by image, fewer ops
        images = tf.keras.applications.xception.preprocess_input(tf.cast(images, tf.float32))
        return (images, *rest) if rest else images

    return ds.batch(batch_size).map(finish, **parallel).prefetch(tf.data.AUTOTUNE)


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
