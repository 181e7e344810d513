"""The triplet experiment end to end on the real FF++ clips (too few videos for a meaningful number:
this proves the pipeline and its bookkeeping, not the paper's result)."""
import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from deepfake_keras import cli, reporting
from deepfake_keras.pipelines import common, ffpp_triplet
from deepfake_keras.weights import WeightsError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_dir(ffpp_mini, ffpp_splits, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ffpp_triplet")
    assert cli.main(["ffpp-triplet", "--data-root", str(ffpp_mini), "--splits", str(ffpp_splits), "--compression",
                     "c23", "--methods", "Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "--frames", "4",
                     "--facenet", "facenet-msceleb-128", "--epochs", "3", "--out", str(tmp / "run"),
                     "--store", str(tmp / "store"), "--quiet"]) == 0
    return tmp / "run"


def test_predictions_and_metrics_agree(run_dir):
    predictions = pd.read_csv(run_dir / "predictions.csv", dtype={"video_id": str})
    assert len(predictions) == 7 and predictions["store_key"].is_unique
    assert set(predictions["n_frames"]) == {4}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    test = predictions[predictions["split"] == "test"]
    assert sorted(test["video_id"]) == ["634", "634_660"]
    for key in ffpp_triplet.MODELS:
        assert metrics["test"][key]["video"]["n"] == 2
        assert metrics["test"][key]["video"]["auc"] == pytest.approx(roc_auc_score(test["label"], test[key]))
        assert metrics["test"][key]["frame"]["n"] == 8
    # video score = mean of its frame scores
    frames = pd.read_csv(run_dir / "frame_predictions.csv")
    mean = frames.groupby("store_key")["triplet_sgd"].mean()
    assert predictions.set_index("store_key")["triplet_sgd"].to_dict() == pytest.approx(mean.to_dict())


def test_config_records_data_weights_and_versions(run_dir, ffpp_mini):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["demo"] is False and config["data_root"] == str(ffpp_mini.resolve())
    assert config["facenet"] == {"requested": "facenet-msceleb-128", "used": "facenet-msceleb-128", "fallback_reason": ""}
    assert config["extract"]["frames_per_video"] == 4
    assert config["versions"]["tensorflow-addons"] == "0.23.0"


def test_tables_and_figures_redraw_from_saved_results(run_dir):
    before = {p: (run_dir / p).read_text() for p in ("table_2.md", "table_3.md", "table_4.md")}
    assert "| Triplets + SGD | reported by the paper | 90.55 | 82.74 | 86.47 | 92.90 | 10.07 |" in before["table_3.md"]
    assert "DEMO" not in before["table_2.md"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    acc = {k: 100 * metrics["test"][k]["video"]["accuracy"] for k in ("triplet_rf", "triplet_sgd")}
    assert f"| Triplets (Semi-hard) | 86.74 | {acc['triplet_rf']:.2f} | paper row |" in before["table_2.md"]  # RF
    assert f"| Triplets (Semi-hard) + SGD |  | {acc['triplet_sgd']:.2f} |" in before["table_2.md"]
    # Table III: pristine positive, from the videos' calls (the majority of their frames)
    predictions = pd.read_csv(run_dir / "predictions.csv")
    test = predictions[predictions["split"] == "test"]
    called_real = test["triplet_rf_decision"] == 0
    precision = (called_real & (test["label"] == 0)).sum() / max(called_real.sum(), 1)
    recall = (called_real & (test["label"] == 0)).sum() / (test["label"] == 0).sum()
    assert f"| Triplets + RF | measured (this run) | {100 * precision:.2f} | {100 * recall:.2f} |" in before["table_3.md"]
    assert "pristine as the positive class" in before["table_3.md"] and "had a face" in before["table_3.md"]
    for p in before:
        (run_dir / p).unlink()
    written = reporting.report(run_dir)
    assert {p.name for p in written} >= {"table_2.md", "table_3.md", "table_4.md", "fig_6_tsne.png", "fig_7_roc.png"}
    assert {p: (run_dir / p).read_text() for p in before} == before
    tsne = pd.read_csv(run_dir / "tsne.csv")
    assert tsne.groupby("panel").size().tolist() == [8, 8, 8, 8]
    assert any("untrained head" in p for p in tsne["panel"].unique())  # Fig. 6(b) as the authors draw it


def test_facenet_fallback_is_loud_and_recorded(monkeypatch, capsys):
    def offline(name, download=True):
        raise WeightsError(f"could not fetch {name}")

    monkeypatch.setattr("deepfake_keras.weights.weights_path", offline)
    record = common.choose_facenet("facenet-vggface2-512", "facenet-msceleb-128")
    assert record["used"] == "facenet-msceleb-128" and "could not fetch" in record["fallback_reason"]
    assert "WARNING" in capsys.readouterr().err
    with pytest.raises(WeightsError):
        common.choose_facenet("facenet-vggface2-512", "none")


def test_run_refuses_a_folder_that_holds_something_else(tmp_path, ffpp_mini, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert cli.main(["ffpp-triplet", "--data-root", str(ffpp_mini), "--out", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_run_saves_a_bundle_of_its_best_model(run_dir):
    """``bundle/`` holds triplets + SGD; loaded, it gives the run's frame scores from the store's
    cached embeddings (the same head, the same classifier)."""
    import numpy as np

    from deepfake_keras.inference.bundle import load_bundle
    from deepfake_keras.embeddings import embed_store

    bundle = load_bundle(run_dir / "bundle")
    config = json.loads((run_dir / "config.json").read_text())
    assert (bundle.kind, bundle.meta["source"]["model"], bundle.facenet_spec.name) == (
        "triplet", "triplet_sgd", "facenet-msceleb-128")
    assert bundle.extract_config.to_dict() == config["extract"] and bundle.meta["config"] == config
    # FaceNet saw the box's square, scaled (x - 127.5) / 128: the experiment's defaults, recorded in the bundle
    assert (config["facenet_margin"], config["facenet_standardization"]) == (0.0, "fixed")
    assert (bundle.facenet_margin, bundle.facenet_spec.standardization) == (0.0, "fixed")
    table, x = embed_store(config["store"], "facenet-msceleb-128", progress=False, margin=0.0,
                           standardization="fixed")  # cached: no FaceNet loaded
    frames = pd.read_csv(run_dir / "frame_predictions.csv", dtype={"video_id": str})
    index = {(k, f): i for i, (k, f) in enumerate(zip(table["store_key"], table["frame"]))}
    rows = [index[k, f] for k, f in zip(frames["store_key"], frames["frame"])]
    np.testing.assert_allclose(bundle.score_embeddings(x[rows]), frames["triplet_sgd"], rtol=0, atol=1e-6)
    # the threshold calibrated on the validation videos: the equal-error point of their mean scores
    from deepfake_keras.evaluation import eer_point, video_scores

    val = video_scores(frames[frames["split"] == "val"], "triplet_sgd")
    assert bundle.meta["calibration"]["videos"] == len(val) and bundle.meta["demo_model"] is False
    assert bundle.threshold == pytest.approx(np.clip(eer_point(val["label"], val["triplet_sgd"])[1], 1e-6, 1 - 1e-6))


def test_splits_without_test_videos_train_the_final_model_and_write_its_bundle(run_dir, ffpp_mini, ffpp_splits,
                                                                               tmp_path):
    """Train on the train and test pairs, choose on the val pairs, test nothing: the final model of all one's
    data (what is then checked elsewhere with ``evaluate``). The bundle is written; there are no test metrics."""
    from deepfake_keras.inference.bundle import load_bundle

    splits = tmp_path / "splits"
    splits.mkdir()
    official = {name: json.loads((ffpp_splits / f"{name}.json").read_text()) for name in ("train", "val", "test")}
    (splits / "train.json").write_text(json.dumps(official["train"] + official["test"]))
    (splits / "val.json").write_text(json.dumps(official["val"]))
    (splits / "test.json").write_text("[]")
    store = json.loads((run_dir / "config.json").read_text())["store"]  # the crops and embeddings of run_dir
    assert cli.main(["ffpp-triplet", "--data-root", str(ffpp_mini), "--splits", str(splits), "--compression", "c23",
                     "--methods", "Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "--frames", "4",
                     "--facenet", "facenet-msceleb-128", "--facenet-margin", "0.1", "--facenet-standardization",
                     "prewhiten", "--epochs", "3", "--out", str(tmp_path / "final"), "--store", store, "--quiet"]) == 0
    metrics = json.loads((tmp_path / "final" / "metrics.json").read_text())
    assert metrics["test"] is None and "deepfake-keras evaluate" in metrics["note"]
    assert metrics["counts"]["test_videos"] == 0 and metrics["counts"]["videos"] == 7
    assert not (tmp_path / "final" / "predictions.csv").exists()
    bundle = load_bundle(tmp_path / "final" / "bundle")
    val = pd.read_csv(run_dir / "predictions.csv", dtype={"video_id": str}).query("split == 'val'")
    assert bundle.meta["calibration"]["videos"] == len(val) and bundle.meta["source"]["test"] is None
    # --facenet-margin, --facenet-standardization: FaceNet saw the crops cut to 0.1 and prewhitened, recorded in
    # config.json and the bundle (predict cuts and scales so), from another embedding cache than the defaults'
    config = json.loads((tmp_path / "final" / "config.json").read_text())
    assert (config["facenet_margin"], config["facenet_standardization"]) == (0.1, "prewhiten")
    assert (bundle.facenet_margin, bundle.facenet_spec.standardization) == (0.1, "prewhiten")
    cache = [p.name for p in (Path(store) / "embeddings").iterdir()]
    assert any(name.endswith("-prewhiten-s160-c299-m0.3-fm0.1") for name in cache)
    assert any(name.endswith("-fixed-s160-c299-m0.3-fm0") for name in cache)


def test_the_demo_seed_builds_the_data_and_the_seed_runs_the_experiment(monkeypatch, tmp_path):
    """--seed no longer rebuilds the DEMO dataset: the data comes from --demo-seed (default 0)."""
    from deepfake_keras.config import TripletExperiment

    seen = {}

    class Stop(Exception):
        pass

    def resolve(data_root, kind, seed=0):
        seen.update(data_root=data_root, kind=kind, seed=seed)
        raise Stop

    from deepfake_keras.pipelines import common

    monkeypatch.setattr(common, "resolve_data_root", resolve)
    with pytest.raises(Stop):
        ffpp_triplet.run(TripletExperiment.demo(seed=5), tmp_path / "r", progress=False)
    assert seen == {"data_root": None, "kind": "ffpp", "seed": 0}
    with pytest.raises(Stop):
        ffpp_triplet.run(TripletExperiment.demo(seed=5, demo_seed=2), tmp_path / "r", progress=False)
    assert seen["seed"] == 2
