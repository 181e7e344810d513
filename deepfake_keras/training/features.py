"""Per-frame features of a trained Xception (``fc1``, the paper's 512-d features for the LSTM/GRU
baseline), cached on disk: ``<run>/features/<key>.npz``, keyed by the weights file's sha256 (and the
image size and layer), so a re-run or another sequence length computes nothing."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import XceptionConfig
from ..io import log, sha256_of, write_atomic
from .fit import load_weights

FEATURES_DIR = "features"


def feature_key(weights_file, image_size: int, layer: str = "fc1", sha: str | None = None) -> str:
    """The cache name of the features of one Xception weights file: ``xception-<layer>-s<size>-<sha256[:16]>``
    (``sha``: the file's sha256 if already known)."""
    sha = sha or sha256_of(weights_file)
    return f"xception-{layer}-s{int(image_size)}-{sha[:16]}"


def cached_features(faces: pd.DataFrame, store_root, weights_file, run_dir, image_size: int,
                    batch_size: int = 64, layer: str = "fc1", build_model=None, progress: bool = True,
                    input_storage: str = XceptionConfig.input_storage) -> tuple:
    """``(features, p_fake)`` of every row of ``faces`` from the Xception in ``weights_file``:
    float32 ``(rows, dim)`` from its ``layer`` (``fc1``, the paper's 512-d features) and its P(fake)
    ``(rows,)``, both from one pass.

    Cached in ``<run_dir>/features/<feature_key>.npz`` (crop paths, features,
    p_fake, and a JSON of how they were made). A cache holding every crop of
    ``faces`` is reused without running the model; otherwise all rows are
    computed and the file rewritten (atomically).
    ``build_model(image_size=..., weights=None)`` rebuilds the architecture
    (default :func:`~deepfake_keras.models.xception.build_xception`). ``input_storage``: where the
    crops are read from (``face_dataset``'s ``storage``: the same pixels either way, so not in the key).
    """
    import tensorflow as tf

    from ..data.inputs import face_dataset
    from ..models.xception import build_xception

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
    build = build_model or build_xception
    model = load_weights(build(image_size=int(image_size), weights=None), weights_file)
    both = tf.keras.Model(model.inputs, [model.get_layer(layer).output, model.output], name="features_and_p_fake")
    log(f"features: {len(crops)} faces through {weights_file.name} ({layer}, {image_size} px)")
    ds = face_dataset(faces, store_root, int(image_size), int(batch_size), shuffle=False, labels=False,
                      storage=input_storage)
    features, p_fake = both.predict(ds, verbose=1 if progress else 0)
    features, p_fake = features.astype(np.float32), p_fake.reshape(-1).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, crops=crops.astype(str), features=features, p_fake=p_fake,
             info=np.array(json.dumps({"weights_file": weights_file.name, "sha256": sha,
                                       "image_size": int(image_size), "layer": layer})))
    write_atomic(path, buf.getvalue())
    return features, p_fake
