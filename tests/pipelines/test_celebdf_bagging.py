"""The Celeb-DF bagging experiment end to end on a Celeb-DF-format folder of real clips
(symlinks to ../shared/data; far too few videos for a meaningful AUC: this proves the pipeline)."""
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from deepfake_keras import cli

from ..conftest import shared

pytestmark = pytest.mark.slow

CLIPS = {  # Celeb-DF name -> real clip under ../shared/data
    "Celeb-real/id0_0000.mp4": "ffpp_mini/original_sequences/youtube/c23/videos/004.mp4",
    "Celeb-real/id1_0000.mp4": "ffpp_mini/original_sequences/youtube/c23/videos/519.mp4",
    "Celeb-real/id2_0000.mp4": "ffpp_mini/original_sequences/youtube/c23/videos/634.mp4",
    "Celeb-real/id3_0000.mp4": "face_videos/conan_obrien.mp4",
    "YouTube-real/00000.mp4": "face_videos/short_hamilton_clip.mp4",
    "Celeb-synthesis/id0_id5_0000.mp4": "ffpp_mini/manipulated_sequences/NeuralTextures/c23/videos/004_982.mp4",
    "Celeb-synthesis/id1_id5_0000.mp4": "ffpp_mini/manipulated_sequences/Deepfakes/c23/videos/519_515.mp4",
    "Celeb-synthesis/id2_id6_0000.mp4": "ffpp_mini/manipulated_sequences/FaceSwap/c23/videos/634_660.mp4",
    "Celeb-synthesis/id4_id7_0000.mp4": "ffpp_mini/manipulated_sequences/Face2Face/c23/videos/750_743.mp4",
    "Celeb-synthesis/id8_id9_0000.mp4": "dfdc_mini/dfdc_train_part_0/brtujopkby.mp4",
    "Celeb-synthesis/id8_id9_0001.mp4": "dfdc_mini/dfdc_train_part_10/widuwuoiur.mp4",
}
TEST = ["1 Celeb-real/id2_0000.mp4", "0 Celeb-synthesis/id2_id6_0000.mp4", "1 YouTube-real/00000.mp4",
        "0 Celeb-synthesis/id8_id9_0001.mp4"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("celebdf")
    root = tmp / "Celeb-DF-v2"
    for name, source in CLIPS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(shared(source))
    (root / "List_of_testing_videos.txt").write_text("\n".join(TEST) + "\n")
    assert cli.main(["celebdf-bagging", "--data-root", str(root), "--out", str(tmp / "run"), "--store", str(tmp / "store"),
                          "--frames", "2", "--image-size", "71", "--epochs", "1", "--batch-size", "4", "--bags", "2",
                          "--weights", "none", "--facenet", "facenet-msceleb-128", "--triplet-epochs", "3",
                          "--quiet"]) == 0
    return tmp / "run"


def test_bag_votes_and_mean_probabilities(run_dir):
    p = pd.read_csv(run_dir / "predictions.csv")
    assert sorted(p["video_id"]) == ["00000", "id2_0000", "id2_id6_0000", "id8_id9_0001"]
    bags = p[["bag_0", "bag_1"]].to_numpy()
    assert np.allclose(p["mean_prob"], bags.mean(axis=1))
    assert (p["votes_fake"] == (bags >= 0.5).sum(axis=1)).all()
    # two bags: a 1-1 tie goes by the mean probability
    expected = np.where(p["votes_fake"] == 1, p["mean_prob"] >= 0.5, p["votes_fake"] == 2).astype(int)
    assert (p["vote"] == expected).all()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    frames_only = metrics["test"]["mean_prob"]["video"]
    assert frames_only["auc"] == pytest.approx(roc_auc_score(p["label"], p["mean_prob"]))
    assert frames_only["vote_accuracy"] == pytest.approx((p["vote"] == p["label"]).mean())
    assert metrics["test"]["triplet_sgd"]["video"]["auc"] == pytest.approx(roc_auc_score(p["label"], p["triplet_sgd"]))
    # bagging: every bag holds all real training videos and its own share of the fakes; validation apart
    plan = json.loads((run_dir / "bags" / "bagging.json").read_text())
    bags = [set(b) for b in plan["bags"]]
    reals = [{k for k in b if "/Celeb-synthesis/" not in k} for b in bags]
    fakes = [b - r for b, r in zip(bags, reals)]
    assert reals[0] == reals[1] and len(reals[0]) == 2 and not fakes[0] & fakes[1]
    train_fakes = {f"celebdf/{n[:-4]}" for n in CLIPS if n.startswith("Celeb-synthesis")} - {
        "celebdf/Celeb-synthesis/id2_id6_0000", "celebdf/Celeb-synthesis/id8_id9_0001"} - set(plan["val_videos"])
    assert fakes[0] | fakes[1] == train_fakes
    assert not set(plan["val_videos"]) & (bags[0] | bags[1])


def test_table_1_and_figures(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["xception_weights"]["used"] == "none" and config["image_size"] == 71 and config["bags"] == 2
    text = (run_dir / "table_1.md").read_text()
    assert "| Xception | 65.50 | reported by the paper |" in text and "| Ours (Triplets) | 99.70 |" in text
    auc = json.loads((run_dir / "metrics.json").read_text())["test"]["mean_prob"]["video"]["auc"]
    assert f"| Ours (Frames only) [this run] | {100 * auc:.2f} | measured (this run) |" in text
    with np.load(run_dir / "gradcam.npz") as g:
        assert g["heats"].shape[0] == g["faces"].shape[0] == len(g["labels"]) >= 2
        assert set(g["labels"]) == {0, 1}
        # each map explains the class bag 0 itself predicts (the model drawn), from bag 0's own probability
        from deepfake_keras.explain.gradcam import face_inputs
        from deepfake_keras.models import xception as xc
        from deepfake_keras.training.fit import WEIGHTS_FILE, load_weights
        bag0 = load_weights(xc.build_xception(71, weights=None), run_dir / "bags" / "bag_0" / WEIGHTS_FILE)
        own = bag0.predict(face_inputs(bag0, g["faces"])[1], verbose=0)[:, 0]
        np.testing.assert_allclose(g["bag0_scores"], own, atol=1e-5)
        clear = np.abs(own - 0.5) > 1e-4  # a probability within float noise of 0.5 may go either way
        assert (g["targets"][clear] == np.where(own >= 0.5, "fake", "real")[clear]).all()
    assert set(pd.read_csv(run_dir / "tsne.csv")["panel"]) == {"before training (Xception features)",
                                                               "after training (fc1, bag 0)"}
    assert (run_dir / "fig_4_gradcam.png").stat().st_size > 10_000


def test_run_saves_a_bundle_of_its_bags(run_dir):
    """``bundle/`` holds the bags; loaded, they give the run's per-frame mean probabilities from the
    stored crops (same weights, same resizing as the training input pipeline)."""
    from deepfake_keras.inference.bundle import load_bundle
    from deepfake_keras.data.store import FaceStore

    bundle = load_bundle(run_dir / "bundle")
    assert (bundle.kind, bundle.decision, bundle.image_size, len(bundle.bags)) == ("xception", "vote", 71, 2)
    config = json.loads((run_dir / "config.json").read_text())
    assert bundle.extract_config.to_dict() == config["extract"]
    store = FaceStore.open(config["store"])
    frames = pd.read_csv(run_dir / "frame_predictions.csv").merge(
        store.faces()[["store_key", "frame", "crop"]], on=["store_key", "frame"], how="left")
    scores, per_bag = bundle.score_faces([store.load_crop(c) for c in frames["crop"]])
    np.testing.assert_allclose(scores, frames["frames_only"], rtol=0, atol=1e-5)
    assert per_bag.shape == (len(frames), 2)
