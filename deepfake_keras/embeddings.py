"""FaceNet embeddings of face crops, cached on disk beside the face store.

Layered: :func:`standardize` (FaceNet's own input scaling) -> :func:`embed_faces` (batches of
RGB crops -> L2-normalised embeddings) -> :func:`embed_store` (every crop of a face store, cached).

Cache layout, inside the face store (see :mod:`deepfake_keras.data.store`)::

    <store>/embeddings/<cache key>/
      settings.json     what the key stands for: weights (name, sha256), standardisation,
                        FaceNet input size, the store's crop settings, the FaceNet margin
      part-*.npz        ``crop`` (the faces.csv crop keys) and ``embeddings`` (float32, N x dim)

The cache key is ``<weights name>-<sha256 prefix>-<standardisation>-s<input size>-c<store crop
size>-m<store margin>[-fm<FaceNet margin>]``, so other weights or other crop settings get another
folder and never mix. Embeddings are computed in chunks, each written as one part in one atomic
step: a killed run keeps its finished chunks, a store that gained videos gets only its new crops
embedded, and a second run over an unchanged store computes nothing (it does not even load the
model). Crops are identified by their faces.csv ``crop`` key; the store never rewrites a finished
video's crops.
"""
from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import cv2
import numpy as np

from .config import FACENET_MARGIN
from .data.store import FaceStore
from .io import write_atomic
from .weights import STANDARDIZATIONS, WEIGHTS, WeightSpec, load_facenet, spec_for_file


class EmbeddingError(ValueError):
    """Embeddings that cannot be computed as asked; the message says why."""


def standardize(images, mode: str) -> np.ndarray:
    """FaceNet input scaling of RGB images ``(N, H, W, 3)`` in 0..255, as float32.

    ``"fixed"``: ``(x - 127.5) / 128`` (David Sandberg's ``fixed_image_standardization``, used by
    the VGGFace2 and CASIA models from 2018 on). ``"prewhiten"``: per image,
    ``(x - mean) / max(std, 1 / sqrt(n))`` over all its ``n`` values (Sandberg's ``prewhiten``,
    used with the 2017 models and by the users of Taniai's MS-Celeb-1M ``facenet_keras.h5``).
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"standardize needs RGB images (N, H, W, 3), got shape {x.shape}")
    if mode == "fixed":
        return (x - 127.5) / 128.0
    if mode == "prewhiten":
        axes = (1, 2, 3)
        mean = x.mean(axis=axes, keepdims=True)
        std = x.std(axis=axes, keepdims=True)
        n = np.prod(x.shape[1:])
        return (x - mean) / np.maximum(std, 1.0 / np.sqrt(n))
    raise ValueError(f"unknown standardization {mode!r}; one of {STANDARDIZATIONS}")


def center_margin(image: np.ndarray, from_margin: float, to_margin: float) -> np.ndarray:
    """The centre of a square face crop made with ``from_margin`` (see
    :func:`deepfake_keras.data.faces.crop_box`) that a crop with the smaller ``to_margin`` would
    have covered."""
    if to_margin > from_margin + 1e-9:
        raise ValueError(f"a crop made with margin {from_margin} cannot give margin {to_margin}: re-extract "
                         f"the faces with a crop margin of {to_margin} or more")
    side = image.shape[0]
    keep = int(round(side * (1 + to_margin) / (1 + from_margin)))
    start = (side - keep) // 2
    return image[start:start + keep, start:start + keep]


def resize_faces(images, size: int) -> np.ndarray:
    """RGB crops (a list or an array, any square sizes) -> uint8 array ``(N, size, size, 3)``."""
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for k, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"face {k}: need an RGB image (H, W, 3), got shape {image.shape}")
        if image.shape[:2] != (size, size):
            interp = cv2.INTER_AREA if max(image.shape[:2]) > size else cv2.INTER_CUBIC
            image = cv2.resize(image, (size, size), interpolation=interp)
        out[k] = image
    return out


def embed_faces(images, model, spec: WeightSpec, batch_size: int = 64) -> np.ndarray:
    """L2-normalised FaceNet embeddings ``(N, spec.dim)`` float32 of RGB face crops.

    ``images``: RGB uint8 crops (list or array), resized to the model's 160 pixels if needed and
    standardised as ``spec.standardization`` says; ``model``, ``spec`` from
    :func:`deepfake_keras.weights.load_facenet`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    size = spec.image_size or 160
    out = np.empty((len(images), spec.dim), dtype=np.float32)
    for start in range(0, len(images), batch_size):
        batch = standardize(resize_faces(images[start:start + batch_size], size), spec.standardization)
        out[start:start + len(batch)] = np.asarray(model.predict_on_batch(batch), dtype=np.float32)
    return out


def resolve_facenet(facenet, standardization: str | None = None) -> WeightSpec:
    """The :class:`WeightSpec` that ``--facenet`` (a registry name or an h5 path) stands for,
    without loading the model."""
    facenet = str(facenet)
    if facenet in WEIGHTS:
        spec = WEIGHTS[facenet]
        if spec.kind != "facenet":
            raise ValueError(f"{facenet!r} is not a FaceNet")
        if standardization:
            from dataclasses import replace

            spec = replace(spec, standardization=standardization)
        return spec
    return spec_for_file(facenet, standardization)


def effective_margin(store_margin: float, margin: float | None) -> float:
    """The margin FaceNet gets from crops stored with ``store_margin`` when ``margin`` is asked:
    ``margin`` if the crops hold that much, else (or if ``margin`` is None) the stored margin."""
    if margin is not None and margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    return store_margin if margin is None or margin >= store_margin else margin


def cache_key(spec: WeightSpec, store_config, margin: float) -> str:
    """The name of the embedding cache of ``spec`` over a store made with ``store_config``
    (an :class:`~deepfake_keras.config.ExtractConfig`), the crops re-cut to ``margin``."""
    return (f"{spec.key}-{spec.standardization}-s{spec.image_size or 160}"
            f"-c{store_config.crop_size}-m{store_config.margin:g}-fm{margin:g}")


def _read_parts(folder: Path, dim: int) -> dict:
    done = {}
    for part in sorted(folder.glob("part-*.npz")):
        with np.load(part, allow_pickle=False) as data:
            crops, emb = data["crop"], data["embeddings"]
        if emb.ndim != 2 or emb.shape[1] != dim or len(crops) != len(emb):
            raise EmbeddingError(f"{part}: embeddings of shape {emb.shape} for {len(crops)} crops, expected "
                                 f"{dim}-d; delete {folder} to recompute")
        done.update(zip(crops.tolist(), emb))
    return done


def _write_part(folder: Path, crops: list, emb: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, crop=np.array(crops, dtype=str), embeddings=emb.astype(np.float32))
    write_atomic(folder / f"part-{uuid.uuid4().hex[:12]}.npz", buf.getvalue())


def _merge_parts(folder: Path, done: dict) -> None:
    """Rewrite many parts as one (same content), so that loading stays quick."""
    parts = sorted(folder.glob("part-*.npz"))
    if len(parts) <= 1:
        return
    crops = sorted(done)
    _write_part(folder, crops, np.stack([done[c] for c in crops]))
    for part in parts:
        part.unlink(missing_ok=True)


def embed_store(store_root, facenet="facenet-vggface2-512", batch_size: int = 64, progress: bool = True,
                margin: float | None = FACENET_MARGIN, chunk_size: int = 2048, standardization: str | None = None,
                model=None, faces=None):
    """FaceNet embeddings of every crop of the face store at ``store_root``, cached in the store.

    ``facenet``: a registry name (``facenet-vggface2-512``, the paper's; ``facenet-msceleb-128``)
    or an h5 weights path. ``margin``: the centre of each stored crop that this margin covers is
    what FaceNet sees (:data:`FACENET_MARGIN` by default; None, or a margin at least the store's,
    uses the crops as stored). ``standardization`` overrides the weights' own.
    ``model``: an already loaded FaceNet for these weights (else it is loaded only if some crop
    still needs embedding). ``faces``: the rows of the store's ``faces.csv`` to embed (default:
    every row), e.g. those of one experiment's manifest in a store that several share.

    Returns ``(table, embeddings)``: the rows (``faces``, or the store's ``faces.csv``) and a
    float32 array ``(len(table), dim)`` in the same order. See the module docstring for the cache.
    """
    from tqdm.auto import tqdm

    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    store = FaceStore.open(store_root)
    table = store.faces() if faces is None else faces
    spec = resolve_facenet(facenet, standardization)
    margin = effective_margin(store.config.margin, margin)
    key = cache_key(spec, store.config, margin)
    folder = store.root / "embeddings" / key
    settings = {"key": key, "weights": spec.name, "weights_sha256": spec.sha256, "dim": spec.dim,
                "standardization": spec.standardization, "image_size": spec.image_size or 160,
                "store_crop_size": store.config.crop_size, "store_margin": store.config.margin,
                "facenet_margin": margin}
    if not (folder / "settings.json").is_file():
        write_atomic(folder / "settings.json", (json.dumps(settings, indent=2, sort_keys=True) + "\n").encode())
    done = _read_parts(folder, spec.dim)
    crops = table["crop"].astype(str).tolist()
    todo = list(dict.fromkeys(c for c in crops if c not in done))
    if todo:
        if model is None:
            model, _ = load_facenet(facenet, standardization=standardization)
        bar = tqdm(total=len(todo), desc=f"FaceNet {spec.name}", unit="face", disable=not progress)
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            emb = np.empty((len(chunk), spec.dim), dtype=np.float32)
            for b in range(0, len(chunk), batch_size):  # only one batch of crops in memory
                images = [store.load_crop(c) for c in chunk[b:b + batch_size]]
                if margin < store.config.margin:
                    images = [center_margin(im, store.config.margin, margin) for im in images]
                emb[b:b + len(images)] = embed_faces(images, model, spec, batch_size)
                bar.update(len(images))
            _write_part(folder, chunk, emb)
            done.update(zip(chunk, emb))
        bar.close()
        _merge_parts(folder, done)
    embeddings = np.stack([done[c] for c in crops]).astype(np.float32) if crops else \
        np.zeros((0, spec.dim), np.float32)
    return table, embeddings
