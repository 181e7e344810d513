"""Steps the pipelines share."""
import numpy as np
import pandas as pd

from deepfake_keras.config import ExtractConfig
from deepfake_keras.data.datasets import MANIFEST_COLUMNS
from deepfake_keras.pipelines.common import extract_faces

from ..tiny_store import make_store, noise_crops


def manifest_of(splits: dict, root) -> pd.DataFrame:
    rows = []
    for key, split in splits.items():
        rows.append({"video_id": key.split("/")[-1], "path": str(root / f"{key}.mp4"), "label": int("fake" in key),
                     "split": split, "dataset": "ffpp", "method": "x", "compression": "c23", "target_id": "",
                     "source_id": "", "store_key": key})
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def test_a_reused_store_takes_labels_and_splits_from_the_current_manifest(tmp_path):
    """The store was filled when ``a/real`` was a training video; the new manifest holds it out for test:
    the faces handed to training must say test (the store's old record would leak it into training)."""
    first = {"ffpp/a/real": "train", "ffpp/b/fake": "train", "ffpp/c/real": "val"}
    store = make_store(tmp_path / "store", {k: (int("fake" in k), s, noise_crops(2, i))
                                            for i, (k, s) in enumerate(first.items())}, data_root=tmp_path)
    store_config = ExtractConfig(frames_per_video=8, crop_size=32)  # the tiny store's settings
    again = {"ffpp/a/real": "test", "ffpp/b/fake": "train", "ffpp/c/real": "train"}
    faces, summary = extract_faces(manifest_of(again, tmp_path), tmp_path / "data", store.root, store_config,
                                   workers=0, progress=False)
    assert summary.skipped == 3 and summary.done == 0  # nothing re-extracted
    by_video = faces.groupby("store_key")["split"].agg(set).to_dict()
    assert by_video == {k: {s} for k, s in again.items()}
    assert np.array_equal(faces["label"].to_numpy(), faces["store_key"].str.contains("fake").astype(int).to_numpy())
