"""`deepfake-keras evaluate`: a bundle on a labelled dataset gives the same video scores as `predict`, metrics
that agree with its predictions, a second run that extracts nothing, and `report --cross` side by side."""
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from deepfake_keras import cli
from deepfake_keras.config import ExtractConfig

pytestmark = pytest.mark.slow
CONFIG = ExtractConfig(frames_per_video=3)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A triplet bundle (its scores mean nothing; the plumbing is what is tested)."""
    from deepfake_keras.inference.bundle import load_bundle, save_bundle
    from deepfake_keras.models.triplet import embed
    from deepfake_keras.training.classifiers import fit_classifier
    from deepfake_keras.training.triplet import train_triplet_head
    from deepfake_keras.weights import WeightsError

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 24)
    x = rng.normal(size=(48, 128)).astype(np.float32)
    head, record = train_triplet_head(x, y, x, y, epochs=1, batch_size=16, seed=0)
    path = save_bundle(tmp_path_factory.mktemp("model") / "bundle", "triplet", extract_config=CONFIG, head=head,
                       head_record=record, classifier=fit_classifier("sgd", embed(head, x), y),
                       facenet="facenet-msceleb-128", source={"model": "triplet_sgd", "description": "test model"})
    try:
        load_bundle(path).facenet()
    except WeightsError as e:
        pytest.skip(f"FaceNet weights unavailable: {e}")
    return path


@pytest.fixture(scope="module")
def evaluated(bundle, ffpp_mini, ffpp_splits, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluate")
    args = ["evaluate", "--model", str(bundle), "--dataset", "ffpp", "--root", str(ffpp_mini), "--splits",
            str(ffpp_splits), "--compression", "c23", "--split", "all", "--store", str(tmp / "store"), "--quiet"]
    assert cli.main([*args, "--out", str(tmp / "run")]) == 0
    return tmp, args


def test_every_video_is_listed_and_scored_as_predict_scores_it(evaluated, bundle, ffpp_mini, tmp_path):
    tmp, _ = evaluated
    predictions = pd.read_csv(tmp / "run" / "predictions.csv", dtype={"video_id": str})
    assert len(predictions) == 7 and (predictions["status"] == "scored").all() and set(predictions["faces"]) == {3}
    one = predictions[predictions["video_id"] == "519_515"].iloc[0]
    path = ffpp_mini / "manipulated_sequences" / "Deepfakes" / "c23" / "videos" / "519_515.mp4"
    assert cli.main(["predict", str(path), "--model", str(bundle), "--out", str(tmp_path / "p"), "--no-video",
                     "--quiet"]) == 0
    report = json.loads((tmp_path / "p" / "519_515.json").read_text())
    assert report["video_score"] == pytest.approx(one["score"], abs=1e-4) and report["verdict"] == one["verdict"]


def test_metrics_agree_with_the_predictions(evaluated):
    tmp, _ = evaluated
    predictions = pd.read_csv(tmp / "run" / "predictions.csv")
    metrics = json.loads((tmp / "run" / "metrics.json").read_text())
    assert metrics["counts"]["scored"] == 7 and metrics["counts"]["fake"] == 4 and metrics["counts"]["real"] == 3
    assert metrics["video"]["auc"] == pytest.approx(roc_auc_score(predictions["label"], predictions["score"]))
    called = predictions["verdict"] == "fake"
    assert metrics["video"]["accuracy"] == pytest.approx((called == (predictions["label"] == 1)).mean())
    fakes = predictions[predictions["label"] == 1]
    for method, rows in fakes.groupby("method"):
        assert metrics["per_method"][method] == pytest.approx((rows["verdict"] == "fake").mean())
    table = (tmp / "run" / "table.md").read_text()
    assert "Evaluation on ffpp" in table and "7 of 7 videos scored" in table
    assert (tmp / "run" / "roc.png").is_file() and json.loads((tmp / "run" / "config.json").read_text())["bundle"]


def test_a_second_run_extracts_nothing_and_cross_table_puts_runs_side_by_side(evaluated, capsys):
    tmp, args = evaluated
    before = sorted(p.name for p in (tmp / "store").rglob("*.png"))
    assert cli.main([*args, "--out", str(tmp / "again")]) == 0
    assert "0 extracted, 7 already in the store" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp / "store").rglob("*.png")) == before
    assert cli.main(["report", "--cross", str(tmp / "run"), str(tmp / "again"), "--out", str(tmp / "cross")]) == 0
    table = pd.read_csv(tmp / "cross" / "cross.csv")
    auc = json.loads((tmp / "run" / "metrics.json").read_text())["video"]["auc"]
    assert list(table.columns)[0] == "Model" and len(table) == 1  # one model, one dataset: one cell
    assert table.iloc[0, 1] == pytest.approx(round(100 * auc, 2))


def test_unlabelled_or_unknown_datasets_are_refused(bundle, tmp_path, capsys):
    (tmp_path / "videos").mkdir()
    assert cli.main(["evaluate", "--model", str(bundle), "--dataset", "labelled", "--root",
                     str(tmp_path / "videos"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "videos" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
