"""A tiny face store written the way the extractor writes it, for the Xception and bagging tests."""
from __future__ import annotations

import numpy as np

from deepfake_keras.config import ExtractConfig
from deepfake_keras.data.datasets import MANIFEST_COLUMNS
from deepfake_keras.data.store import FACE_COLUMNS, FaceStore


def make_store(root, videos: dict, crop_size: int = 32, data_root=None) -> FaceStore:
    """``videos``: {store_key: (label, split, [RGB uint8 crops])}; returns the store, index rebuilt.
    ``data_root``: the videos were ``<data_root>/<store_key>.mp4`` (recorded as the extractor does; by
    default no path is recorded)."""
    store = FaceStore(root, ExtractConfig(frames_per_video=8, crop_size=crop_size))
    for key, (label, split, crops) in videos.items():
        rows = [{**{c: 0 for c in FACE_COLUMNS if c != "crop"}, "frame": f, "confidence": 1.0, "n_faces": 1}
                for f in range(len(crops))]
        meta = {c: "" for c in MANIFEST_COLUMNS}
        meta.update(path="" if data_root is None else str(data_root / f"{key}.mp4"))
        meta.update(video_id=key.split("/")[-1], store_key=key, label=int(label), split=split, status="ok",
                    reason="", frames_sampled=len(crops), frames_with_face=len(crops))
        store.write_video(key, list(enumerate(crops)), rows, meta)
    store.rebuild_index()
    return store


def noise_crops(n: int, seed: int, size: int = 32, brightness: int = 0) -> list:
    """``n`` random RGB crops; ``brightness`` shifts them (a learnable real/fake cue)."""
    rng = np.random.default_rng(seed)
    return [np.clip(rng.integers(0, 160, (size, size, 3)) + brightness, 0, 255).astype(np.uint8) for _ in range(n)]


def celebdf_like(root, n_fake: int, n_real: int, frames: int = 2, n_test: int = 1, size: int = 32) -> FaceStore:
    """A Celeb-DF-like store: ``n_fake`` fake and ``n_real`` real train videos (fakes brighter), and
    ``n_test`` test videos of each class."""
    videos = {}
    for i in range(n_fake):
        videos[f"celebdf/Celeb-synthesis/id{i}_id9_{i:04d}"] = (1, "train", noise_crops(frames, 100 + i, size, 80))
    for i in range(n_real):
        videos[f"celebdf/Celeb-real/id{i}_{i:04d}"] = (0, "train", noise_crops(frames, 200 + i, size))
    for i in range(n_test):
        videos[f"celebdf/Celeb-synthesis/id{i}_id8_{i:04d}"] = (1, "test", noise_crops(frames, 300 + i, size, 80))
        videos[f"celebdf/YouTube-real/{i:05d}"] = (0, "test", noise_crops(frames, 400 + i, size))
    return make_store(root, videos, crop_size=size)
