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


# ---------------------------------------------------------------- Xception bundles: the bags' vote, as predict

XCEPTION_CONFIG = ExtractConfig(frames_per_video=2, crop_size=96)
BAGS = (0.6, 0.6, 0.05)  # each bag's P(fake) of every face
CLIPS = {"real": ("original_sequences/youtube/c23/videos/519.mp4", "original_sequences/youtube/c23/videos/634.mp4"),
         "fake": ("manipulated_sequences/Deepfakes/c23/videos/519_515.mp4",
                  "manipulated_sequences/FaceSwap/c23/videos/634_660.mp4")}


def constant_bags(folder, probabilities, image_size: int = 71) -> list:
    """Xception bags (random convolutions, 8 units in fc1) whose output layer gives ``p`` on every face."""
    from deepfake_keras.models.xception import OUTPUT_LAYER, build_xception

    files = []
    for i, p in enumerate(probabilities):
        model = build_xception(image_size, weights="none", fc_units=8, dropout=0)
        out = model.get_layer(OUTPUT_LAYER)
        kernel, bias = out.get_weights()
        out.set_weights([np.zeros_like(kernel), np.full_like(bias, np.log(p / (1 - p)))])
        files.append(folder / f"bag_{i}.weights.h5")
        model.save_weights(files[-1])
    return files


@pytest.fixture(scope="module")
def xception_bundles(tmp_path_factory):
    """``{demo_model: bundle}``: the same three bags (P(fake) 0.6, 0.6 and 0.05 on every face) saved as a
    bundle of a DEMO run and of a real-data run. Their vote calls every video fake (2 of 3 bags); the mean
    of their probabilities (0.417) would call it real."""
    from deepfake_keras.inference.bundle import save_bundle

    tmp = tmp_path_factory.mktemp("xception")
    files = constant_bags(tmp, BAGS)
    return {demo: save_bundle(tmp / f"bundle_{demo}", "xception", extract_config=XCEPTION_CONFIG, bag_weights=files,
                              image_size=71, fc_units=8, dropout=0, demo_model=demo,
                              source={"description": "constant bags"}) for demo in (False, True)}


@pytest.fixture(scope="module")
def real_fake_folder(ffpp_mini, tmp_path_factory):
    """A labelled folder (real/, fake/) of four FF++ clips, and a face store for the Xception bundles."""
    root = tmp_path_factory.mktemp("labelled")
    for label, paths in CLIPS.items():
        (root / label).mkdir()
        for path in paths:
            (root / label / path.rsplit("/", 1)[1]).symlink_to(ffpp_mini / path)
    return root, root.parent / f"{root.name}_store"


def evaluate_folder(bundle, folder, out, dataset="folder") -> int:
    root, store = folder
    return cli.main(["evaluate", "--model", str(bundle), "--dataset", dataset, "--root", str(root), "--split", "all",
                     "--store", str(store), "--out", str(out), "--quiet"])


def test_xception_bundles_are_called_by_the_vote_of_their_bags_as_predict_calls_them(
        xception_bundles, real_fake_folder, tmp_path, capsys):
    bundle = xception_bundles[False]
    assert evaluate_folder(bundle, real_fake_folder, tmp_path / "run") == 0
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv", dtype={"video_id": str}).set_index("video_id")
    assert len(predictions) == 4 and (predictions["status"] == "scored").all()
    assert (predictions["verdict"] == "fake").all() and (predictions["votes_fake"] == 2).all()
    assert (predictions["n_bags"] == 3).all() and predictions["score"].to_numpy() == pytest.approx(np.mean(BAGS))
    root = real_fake_folder[0]
    capsys.readouterr()
    assert cli.main(["predict", str(root), "--model", str(bundle), "--out", str(tmp_path / "p"), "--no-video",
                     "--no-gradcam", "--json", "--quiet"]) == 0
    reports = {r["name"]: r for r in json.loads(capsys.readouterr().out)["videos"]}
    assert sorted(reports) == sorted(predictions.index)
    for name, report in reports.items():
        assert report["verdict"] == predictions.loc[name, "verdict"]
        assert report["votes_fake"] == predictions.loc[name, "votes_fake"]
        assert report["video_score"] == pytest.approx(predictions.loc[name, "score"], abs=1e-6)
    table = (tmp_path / "run" / "table.md").read_text()
    assert "vote decision" in table and "DEMO" not in table
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["demo_model"] is False and metrics["video"]["accuracy"] == 0.5  # every video called fake
    assert json.loads((tmp_path / "run" / "config.json").read_text())["dataset"] == "folder"


def test_a_demo_bundle_says_its_verdicts_mean_nothing_in_metrics_and_table(xception_bundles, real_fake_folder,
                                                                             tmp_path, capsys):
    """``labelled``, the older name of ``folder``, still works; the store of the run above is reused."""
    assert evaluate_folder(xception_bundles[True], real_fake_folder, tmp_path / "run", dataset="labelled") == 0
    err = capsys.readouterr().err
    assert "trained on the DEMO data" in err and "mean nothing on real footage" in err
    assert "0 extracted, 4 already in the store" in err
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["demo_model"] is True
    assert json.loads((tmp_path / "run" / "config.json").read_text())["bundle"]["demo_model"] is True
    assert "its verdicts mean nothing on real footage" in (tmp_path / "run" / "table.md").read_text()


# ---------------------------------------------------------------- videos a label file lists but that are not there

def test_a_label_file_listing_missing_videos_stops_before_anything_is_written(xception_bundles, tmp_path, capsys):
    """dfdc_mini's dfdc_train_part_1/metadata.json lists two fakes whose files are not there."""
    from ..conftest import shared

    root = shared("dfdc_mini", "dfdc_train_part_1")
    code = cli.main(["evaluate", "--model", str(xception_bundles[False]), "--dataset", "dfdc", "--root", str(root),
                     "--split", "all", "--store", str(tmp_path / "store"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(root / "metadata.json") in err and "vtfpbtmgfh.mp4" in err and "zvqinhzeah.mp4" in err
    assert "--allow-missing" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "store").exists()
    # a labelled folder's CSV too
    (tmp_path / "clips").mkdir()
    (tmp_path / "labels.csv").write_text("path,label\nreal/gone.mp4,real\n")
    code = cli.main(["evaluate", "--model", str(xception_bundles[False]), "--dataset", "folder", "--root",
                     str(tmp_path / "clips"), "--labels", str(tmp_path / "labels.csv"), "--split", "all",
                     "--store", str(tmp_path / "store"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "labels.csv lists 1 video(s) not found" in err
    assert "gone.mp4" in err and not (tmp_path / "run").exists() and not (tmp_path / "store").exists()


def test_allow_missing_lists_them_as_failed_and_exits_1(xception_bundles, tmp_path, capsys):
    from ..conftest import shared

    root = shared("dfdc_mini", "dfdc_train_part_1")
    code = cli.main(["evaluate", "--model", str(xception_bundles[False]), "--dataset", "dfdc", "--root", str(root),
                     "--split", "all", "--allow-missing", "--store", str(tmp_path / "store"), "--out",
                     str(tmp_path / "run"), "--quiet"])
    assert code == 1
    assert "2 of 2 videos not scored (2 unreadable or missing, 0 with no face)" in capsys.readouterr().err
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert sorted(predictions["video_id"]) == ["vtfpbtmgfh", "zvqinhzeah"]
    assert (predictions["status"] == "failed").all() and predictions["reason"].str.contains("not found").all()
    counts = json.loads((tmp_path / "run" / "metrics.json").read_text())["counts"]
    assert counts["failed"] == 2 and counts["scored"] == 0
    assert (tmp_path / "run" / "table.md").is_file()


def test_an_unreadable_video_is_listed_and_the_exit_status_is_1(xception_bundles, tmp_path):
    """As extract and predict: 0 only when every video was scored."""
    from .. import corpus

    for label in ("real", "fake"):
        (tmp_path / "clips" / label).mkdir(parents=True)
    corpus.one_frame(tmp_path / "clips" / "real")
    corpus.not_a_video(tmp_path / "clips" / "fake")
    code = cli.main(["evaluate", "--model", str(xception_bundles[False]), "--dataset", "folder", "--root",
                     str(tmp_path / "clips"), "--split", "all", "--store", str(tmp_path / "store"), "--out",
                     str(tmp_path / "run"), "--quiet"])
    assert code == 1
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv").set_index("video_id")
    assert predictions.loc["one_frame", "status"] == "scored" and predictions.loc["not_a_video", "status"] == "failed"
    counts = json.loads((tmp_path / "run" / "metrics.json").read_text())["counts"]
    assert counts["failed"] == 1 and counts["scored"] == 1
