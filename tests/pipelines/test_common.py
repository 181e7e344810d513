"""Steps the pipelines share."""
import numpy as np
import pandas as pd
import pytest

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
    manifest = manifest_of(again, tmp_path)
    relabelled = manifest["store_key"] == "ffpp/c/real"  # the new manifest also corrects a label and a method
    manifest.loc[relabelled, ["label", "method"]] = [1, "y"]
    faces, summary = extract_faces(manifest, tmp_path / "data", store.root, store_config, workers=0, progress=False)
    assert summary.skipped == 3 and summary.done == 0  # nothing re-extracted
    by_video = faces.groupby("store_key")["split"].agg(set).to_dict()
    assert by_video == {k: {s} for k, s in again.items()}
    expected = faces["store_key"].map(manifest.set_index("store_key")["label"])
    assert np.array_equal(faces["label"].to_numpy(), expected.to_numpy())
    assert set(faces.loc[faces["store_key"] == "ffpp/c/real", "label"]) == {1}  # the store says 0
    assert set(faces.loc[faces["store_key"] == "ffpp/c/real", "method"]) == {"y"}


# ---------------------------------------------------------------- K-fold summary (issue 13: every metric, mean ± sd)

def video_metrics(auc, accuracy, acc_real):
    from deepfake_keras.pipelines.common import CV_METRICS

    return {**{name: 0.5 for name in CV_METRICS}, "auc": auc, "accuracy": accuracy, "acc_real": acc_real, "n": 4}


def test_fold_summary_gives_mean_and_sd_of_video_frame_and_per_method_metrics():
    """Three hand-made folds: video AUC 0.6/0.8/1.0 (mean 0.8, sd 0.2), frame AUC 0.5/0.7/0.6 (0.6, 0.1),
    Deepfakes accuracy 1/0.5/0.75 (0.75, 0.25), pristine (acc_real) 0.5/1/0.75 (0.75, 0.25); Face2Face is
    missing from the third fold, so it has no mean; a video-level model has no frame summary."""
    from deepfake_keras.pipelines.common import CV_METRICS, fold_summary

    folds = []
    for auc, frame_auc, deepfakes, pristine, face2face in ((0.6, 0.5, 1.0, 0.5, {"Face2Face": 0.0}),
                                                           (0.8, 0.7, 0.5, 1.0, {"Face2Face": 1.0}),
                                                           (1.0, 0.6, 0.75, 0.75, {})):
        folds.append({"rf": {"video": video_metrics(auc, 0.5, pristine), "frame": video_metrics(frame_auc, 0.6, 0.2),
                             "per_method": {"Deepfakes": deepfakes, **face2face}},
                      "clip": {"video": video_metrics(auc - 0.1, 0.4, 0.5)}})
    cv = fold_summary(folds, 3, "pair")
    # the keys that reporting and the tests read are as before
    assert cv["k"] == 3 and cv["by"] == "pair" and cv["per_fold"] == [{m: f[m]["video"] for m in f} for f in folds]
    assert set(cv["mean"]) == set(cv["sd"]) == {"rf", "clip"} and set(cv["mean"]["rf"]) == set(CV_METRICS)
    assert cv["mean"]["rf"]["auc"] == pytest.approx(0.8) and cv["sd"]["rf"]["auc"] == pytest.approx(0.2)
    assert cv["mean"]["clip"]["auc"] == pytest.approx(0.7) and cv["sd"]["clip"]["accuracy"] == pytest.approx(0.0)
    # frame level: only the model that scores frames
    assert set(cv["frame"]["mean"]) == {"rf"} and cv["frame"]["per_fold"][1]["rf"]["auc"] == 0.7
    frame_mean, frame_sd = cv["frame"]["mean"]["rf"], cv["frame"]["sd"]["rf"]
    assert frame_mean["auc"] == pytest.approx(0.6) and frame_sd["auc"] == pytest.approx(0.1)
    assert frame_mean["acc_real"] == pytest.approx(0.2)
    # per method (Table IV's columns), with pristine
    assert set(cv["per_method"]["mean"]) == {"rf"}
    assert cv["per_method"]["per_fold"][0]["rf"] == {"Deepfakes": 1.0, "Face2Face": 0.0, "pristine": 0.5}
    mean, sd = cv["per_method"]["mean"]["rf"], cv["per_method"]["sd"]["rf"]
    assert mean["Deepfakes"] == pytest.approx(0.75) and sd["Deepfakes"] == pytest.approx(0.25)
    assert mean["pristine"] == pytest.approx(0.75) and sd["pristine"] == pytest.approx(0.25)
    assert mean["Face2Face"] is None and sd["Face2Face"] is None


def test_test_metrics_carry_each_folds_per_method_accuracy():
    """What the pipelines hand fold_summary: each model's accuracy on each method's fake test videos."""
    from deepfake_keras.pipelines.common import test_metrics

    videos = pd.DataFrame({"split": ["test"] * 6 + ["train"], "label": [0, 0, 1, 1, 1, 1, 1],
                           "method": ["original", "original", "Deepfakes", "Deepfakes", "FaceSwap", "FaceSwap",
                                      "FaceSwap"],
                           "m": [0.1, 0.6, 0.9, 0.4, 0.8, 0.7, 0.9], "m_decision": [0, 1, 1, 0, 1, 1, 0]})
    frames = pd.DataFrame({"split": ["test"] * 4, "label": [0, 1, 1, 0], "m": [0.2, 0.7, 0.6, 0.1]})
    out = test_metrics(frames, videos, ["m"])["m"]
    assert out["per_method"] == {"Deepfakes": 0.5, "FaceSwap": 1.0}  # the train video is not counted
    assert out["video"]["acc_real"] == pytest.approx(0.5) and out["frame"]["auc"] == pytest.approx(1.0)
