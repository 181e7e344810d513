"""The FF++ baselines experiment end to end on the real FF++ clips (c23, all four methods; far too few
videos for a meaningful number: this proves the pipeline and its bookkeeping), at tiny sizes."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepfake_keras import cli, reporting
from deepfake_keras.pipelines import ffpp_baselines as fb

pytestmark = pytest.mark.slow

METHODS = ["Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"]
RECURRENT = ["lstm_2", "gru_2", "lstm_4", "gru_4"]


def stub_triplet_run(path, data_root, accuracy=0.75, compression="c23"):
    """The two files of a finished ffpp_triplet run that the baselines read."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({
        "experiment": "ffpp_triplet", "demo": False, "data_root": str(data_root), "compression": compression,
        "methods": METHODS}))
    (path / "metrics.json").write_text(json.dumps({"test": {  # the RF is Table II's row, not the SGD
        "triplet_rf": {"video": {"accuracy": accuracy, "auc": 1.0, "n": 2}},
        "triplet_sgd": {"video": {"accuracy": 1 - accuracy, "auc": 0.0, "n": 2}}}}))
    return path


@pytest.fixture(scope="module")
def run_dir(ffpp_mini, ffpp_splits, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ffpp_baselines")
    triplet = stub_triplet_run(tmp / "triplet_run", ffpp_mini.resolve())
    assert cli.main(["ffpp-baselines", "--data-root", str(ffpp_mini), "--splits", str(ffpp_splits), "--compression", "c23",
             "--methods", *METHODS, "--frames", "4", "--seq-lens", "2", "4", "--clip-frames", "4",
             "--clip-size", "16", "--image-size", "71", "--epochs", "1", "--batch-size", "4",
             "--xception-frames", "2", "--seq-epochs", "2", "--conv-epochs", "1", "--conv-batch-size", "2",
             "--weights", "none", "--triplet-run", str(triplet), "--out", str(tmp / "run"),
             "--store", str(tmp / "store"), "--quiet"]) == 0
    return tmp / "run"


def test_predictions_and_metrics_agree(run_dir):
    p = pd.read_csv(run_dir / "predictions.csv", dtype={"video_id": str})
    assert len(p) == 7 and p["store_key"].is_unique
    assert sorted(p.loc[p["split"] == "test", "video_id"]) == ["634", "634_660"]
    models = ["frames_only", *RECURRENT, "lstm_gru", "conv3d", "convlstm"]
    assert p[models].notna().all().all() and ((p[models] >= 0) & (p[models] <= 1)).all().all()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    test = p[p["split"] == "test"]
    for key in models:
        video = metrics["test"][key]["video"]
        assert video["n"] == 2
        assert video["accuracy"] == pytest.approx(((test[key] >= 0.5) == test["label"]).mean())
    # frames only: video = mean of its frames (all 4 stored frames, one pass with the features)
    frames = pd.read_csv(run_dir / "frame_predictions.csv")
    assert frames.groupby("store_key").size().tolist() == [4] * 7
    mean = frames.groupby("store_key")["frames_only"].mean()
    assert p.set_index("store_key")["frames_only"].to_dict() == pytest.approx(mean.to_dict())
    assert metrics["test"]["frames_only"]["frame"]["n"] == 8
    # the LSTM/GRU row is the variant with the best validation accuracy, copied
    selected = metrics["selected_recurrent"]
    assert selected in RECURRENT and np.allclose(p["lstm_gru"], p[selected])
    best = max(metrics["training"][k]["best_val_accuracy"] for k in RECURRENT)
    # the rule for ties: the best validation accuracy (within fb.TIE_TOLERANCE), then the shorter sequence,
    # then LSTM before GRU (RECURRENT is in that order), never a float that rounds differently on another machine
    assert selected == next(k for k in RECURRENT
                            if metrics["training"][k]["best_val_accuracy"] >= best - fb.TIE_TOLERANCE)
    # every sequence: exactly N frames of one video; nothing padded or dropped here
    for name, seq in metrics["sequences"].items():
        assert seq["videos"] == 7 and seq["padded_videos"] == seq["dropped_videos"] == 0, name
    assert metrics["triplet"]["source"] == "given" and metrics["triplet"]["accuracy"] == 0.75


def test_models_features_and_config_are_saved(run_dir, ffpp_mini):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["experiment"] == "ffpp_baselines" and config["demo"] is False
    assert config["data_root"] == str(ffpp_mini.resolve())
    assert config["extract"]["consecutive"] is True and config["extract"]["frames_per_video"] == 4
    assert config["extract"]["fps"] == 5.0  # the paper's rate on real data
    assert config["xception_weights"]["used"] == "none" and config["seq_lens"] == [2, 4]
    for key in ["frames_only", *RECURRENT, "conv3d", "convlstm"]:
        assert (run_dir / "models" / key / "model.weights.h5").is_file(), key
        assert not (run_dir / "models" / key / "checkpoints").exists()
    assert json.loads((run_dir / "models" / "frames_only" / "bag.json").read_text())["batch_norm_batches"] >= 1
    [cache] = (run_dir / "features").glob("xception-fc1-s71-*.npz")
    with np.load(cache) as saved:
        assert saved["features"].shape == (28, 512) and len(saved["crops"]) == 28
    # consecutive frames at 5 fps of 25 / 30 fps videos: steps of 5 (6 for the 30 fps Face2Face clip)
    faces = pd.read_csv(run_dir.parent / "store" / "faces.csv")
    steps = faces.groupby("store_key")["frame"].apply(lambda f: sorted(set(np.diff(sorted(f)))))
    assert all(s in ([5], [6]) for s in steps), steps.to_dict()


def test_table_2_beside_the_paper_and_redrawn_from_saved_results(run_dir):
    text = (run_dir / "table_2.md").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    acc = {k: 100 * v["video"]["accuracy"] for k, v in metrics["test"].items()}
    assert "DEMO" not in text
    assert f"| Frames only | 49.82 | {acc['frames_only']:.2f} | paper row |" in text
    assert f"| 3d Convolution | 43.47 | {acc['conv3d']:.2f} | paper row |" in text
    assert f"| Frames + LSTM/GRU | 55.80 | {acc['lstm_gru']:.2f} | paper row |" in text
    assert "| Triplets (Semi-hard) | 86.74 | 75.00 | paper row |" in text
    assert f"| ConvLSTM (ours, not in the paper) |  | {acc['convlstm']:.2f} | ours (not in the paper) |" in text
    for key in RECURRENT:
        kind, n = key.split("_")
        mark = " (selected)" if key == metrics["selected_recurrent"] else ""
        assert f"| Frames + {kind.upper()}, {n} frames{mark} |  | {acc[key]:.2f} | variant of Frames + LSTM/GRU |" in text
    table = pd.read_csv(run_dir / "table_2.csv")
    assert table["Model"].tolist()[:5] == ["Frames only", "3d Convolution", "Frames + LSTM/GRU",
                                           "Triplets (Semi-hard)", "ConvLSTM (ours, not in the paper)"]
    assert len(table) == 5 + len(RECURRENT)
    (run_dir / "table_2.md").unlink()
    written = reporting.report(run_dir)
    assert {p.name for p in written} == {"table_2.md", "fig_roc_baselines.png"}
    assert (run_dir / "table_2.md").read_text() == text


def test_triplet_row_is_run_with_this_runs_data_when_not_given(tmp_path, monkeypatch):
    from deepfake_keras.config import BaselinesExperiment
    from deepfake_keras.pipelines import ffpp_triplet

    seen = {}

    def fake_run(config, out, workers=1, progress=True):
        seen.update(config.to_dict(), out=str(out), workers=workers)
        stub_triplet_run(Path(out), "/data/ff", accuracy=0.6, compression=config.compression)

    monkeypatch.setattr(ffpp_triplet, "run", fake_run)
    config = BaselinesExperiment.paper(compression="c23", methods=tuple(METHODS), seed=4, data_root="/data/ff",
                                       splits="/data/splits")
    row = fb.triplet_row_for(config, tmp_path, "/data/ff", False, workers=1, progress=False)
    assert row["source"] == "ran" and row["accuracy"] == 0.6 and row["mismatch"] == {}
    assert seen["out"] == str(tmp_path / "triplet") and seen["compression"] == "c23" and seen["seed"] == 4
    assert list(seen["methods"]) == METHODS and seen["frames_per_video"] == 25  # the triplet experiment's own
    assert seen["data_root"] == "/data/ff" and seen["splits"] == "/data/splits"
    seen.clear()
    assert fb.triplet_row_for(config, tmp_path, "/data/ff", False, 1, False)["accuracy"] == 0.6 and not seen  # done
    config = config.override(triplet_run="none")
    assert fb.triplet_row_for(config, tmp_path, "/data/ff", False, 1, False) == {"source": "skipped"}


def test_a_given_triplet_run_is_checked(tmp_path, capsys):
    other = stub_triplet_run(tmp_path / "t", "/data/ff", compression="c40")
    row = fb.triplet_row(other, {"data_root": "/data/ff", "compression": "c23"})
    assert row["mismatch"] == {"compression": {"triplet_run": "c40", "this_run": "c23"}}
    assert "WARNING" in capsys.readouterr().err
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "config.json").write_text(json.dumps({"experiment": "celebdf_xception_bagging"}))
    (tmp_path / "x" / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match="not ffpp_triplet"):
        fb.triplet_row(tmp_path / "x")
    with pytest.raises(ValueError, match="no config.json"):
        fb.triplet_row(tmp_path / "nothing")


def test_sequences_longer_than_the_store_are_refused(tmp_path, ffpp_mini, capsys):
    code = cli.main(["ffpp-baselines", "--data-root", str(ffpp_mini), "--frames", "4", "--seq-lens", "2",
                     "--out", str(tmp_path / "r")])
    assert code == 2 and "needs frames_per_video >= 32" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before anything was written


# ---------------------------------------------------------------- K-fold cross-validation by pair (real clips)

def stub_cv_triplet_run(path, data_root, folds):
    """A finished K-fold ffpp_triplet run: its RF row over the folds."""
    stub_triplet_run(path, data_root, accuracy=0.7)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "methods": ["Deepfakes"], "folds": folds}))
    metrics = json.loads((path / "metrics.json").read_text())
    metrics["cv"] = {"k": folds, "mean": {"triplet_rf": {"accuracy": 0.7, "auc": 0.8}},
                     "sd": {"triplet_rf": {"accuracy": 0.05, "auc": 0.1}}}
    (path / "metrics.json").write_text(json.dumps(metrics))
    return path


@pytest.fixture(scope="module")
def cv_run(tmp_path_factory):
    """Two folds by pair of the real FF++ c23 Deepfakes and their originals, tiny models; the face store
    in the package cache (made once, reused by later runs)."""
    from ..conftest import shared

    subset = shared("ffpp_c23_subset").resolve()
    tmp = tmp_path_factory.mktemp("ffpp_baselines_cv")
    triplet = stub_cv_triplet_run(tmp / "triplet_run", subset, folds=2)
    assert cli.main(["ffpp-baselines", "--data-root", str(subset), "--compression", "c23", "--methods", "Deepfakes",
                     "--folds", "2", "--frames", "4", "--seq-lens", "2", "4", "--clip-frames", "4",
                     "--clip-size", "16", "--image-size", "71", "--epochs", "1", "--batch-size", "8",
                     "--xception-frames", "2", "--seq-epochs", "2", "--conv-epochs", "1", "--conv-batch-size", "4",
                     "--weights", "none", "--triplet-run", str(triplet), "--out", str(tmp / "run"), "--quiet"]) == 0
    return tmp / "run"


def test_folds_test_every_video_once_and_keep_pairs_together(cv_run):
    p = pd.read_csv(cv_run / "predictions.csv", dtype={"video_id": str})
    assert len(p) == 60 and p["store_key"].is_unique and (p["split"] == "test").all()
    assert sorted(p["fold"].unique()) == [0, 1]
    target = p["video_id"].str.split("_").str[0]
    assert p.groupby(target)["fold"].nunique().max() == 1  # a pair's videos are tested in one fold
    assert p.groupby("fold")["label"].nunique().min() == 2  # both classes in every fold
    models = ["frames_only", *RECURRENT, "lstm_gru", "conv3d", "convlstm"]
    assert p[models].notna().all().all()
    frames = pd.read_csv(cv_run / "frame_predictions.csv")
    assert set(frames["store_key"]) == set(p["store_key"])  # only test frames, each in its fold
    assert frames.groupby("store_key")["fold"].first().to_dict() == p.set_index("store_key")["fold"].to_dict()


def test_fold_metrics_are_each_folds_own_and_summarised(cv_run):
    metrics = json.loads((cv_run / "metrics.json").read_text())
    p = pd.read_csv(cv_run / "predictions.csv")
    cv = metrics["cv"]
    assert cv["k"] == 2 and cv["by"] == "pair" and len(cv["per_fold"]) == 2
    for key in ("frames_only", "conv3d", "lstm_gru"):
        accuracy = [((rows[key] >= 0.5) == rows["label"]).mean() for _, rows in p.groupby("fold")]
        assert [fold[key]["accuracy"] for fold in cv["per_fold"]] == pytest.approx(accuracy)
        assert cv["mean"][key]["accuracy"] == pytest.approx(np.mean(accuracy))
        assert cv["sd"][key]["accuracy"] == pytest.approx(np.std(accuracy, ddof=1))
        # Table IV's columns per fold: the Deepfakes called fake, the pristine called real
        called = [(rows.loc[rows["label"] == 1, key] >= 0.5).mean() for _, rows in p.groupby("fold")]
        pristine = [(rows.loc[rows["label"] == 0, key] < 0.5).mean() for _, rows in p.groupby("fold")]
        per_fold = cv["per_method"]["per_fold"]
        assert [fold[key]["Deepfakes"] for fold in per_fold] == pytest.approx(called)
        assert [fold[key]["pristine"] for fold in per_fold] == pytest.approx(pristine)
        assert cv["per_method"]["mean"][key]["Deepfakes"] == pytest.approx(np.mean(called))
    # each fold picks its own LSTM/GRU variant by its validation accuracy; the row copies it
    assert len(metrics["selected_per_fold"]) == 2
    for fold, chosen in enumerate(metrics["selected_per_fold"]):
        rows = p[p["fold"] == fold]
        assert np.allclose(rows["lstm_gru"], rows[chosen])
        record = metrics["training"][f"fold_{fold}"]
        best = max(record[k]["best_val_accuracy"] for k in RECURRENT)
        assert chosen == next(k for k in RECURRENT if record[k]["best_val_accuracy"] >= best - fb.TIE_TOLERANCE)
    for fold in (0, 1):  # separate models per fold
        assert (cv_run / "models" / f"fold_{fold}" / "frames_only" / "model.weights.h5").is_file()
    assert metrics["triplet"]["cv"] == {"k": 2, "accuracy": [0.7, 0.05], "auc": [0.8, 0.1]}
    assert metrics["triplet"]["mismatch"] == {}


def test_fold_table_says_how_it_was_measured(cv_run):
    metrics = json.loads((cv_run / "metrics.json").read_text())
    text = (cv_run / "table_2.md").read_text()
    assert "2-fold CV by pair" in text
    m, sd = metrics["cv"]["mean"]["frames_only"]["accuracy"], metrics["cv"]["sd"]["frames_only"]["accuracy"]
    assert f"| Frames only | 49.82 | {100 * m:.2f} ± {100 * sd:.2f} | paper row |" in text
    assert "| Triplets (Semi-hard) | 86.74 | 70.00 ± 5.00 | paper row |" in text
