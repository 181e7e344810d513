"""``deepfake-keras predict`` on real clips: the JSON report agrees with a face store extracted with
the same settings, the annotated video holds every frame, bad inputs are reported one by one while
the others are scored, and a bundle that does not match stops the command before anything is
written.

Bundles are tiny: a triplet head trained for one epoch on random 128-d vectors (the scores mean
nothing; the pipeline and its bookkeeping are what is tested), and two Xception bags at 71 pixels
with random weights.
"""
import errno
import hashlib
import json
import os
import re
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from deepfake_keras import cli
from deepfake_keras.inference import annotate, predict
from deepfake_keras.inference.base import Bundle, seal_of
from deepfake_keras.inference.bundle import load_bundle, save_bundle
from deepfake_keras.config import ExtractConfig
from deepfake_keras.data.datasets import folder_manifest
from deepfake_keras.data.extract import extract
from deepfake_keras.data.store import FaceStore

from .. import corpus
from ..tiny_bundle import make_triplet_bundle
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
    return make_triplet_bundle(tmp_path_factory.mktemp("model") / "bundle", CONFIG)


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
    assert printed["demo_model"] is False and printed["videos"][0]["demo_model"] is False
    assert printed["videos"][0]["threshold_source"].startswith("fixed")


def test_a_demo_model_says_its_verdicts_mean_nothing(triplet_bundle, tmp_path, capsys):
    """A bundle trained on the DEMO data says so: in the JSON, on stderr and below the table."""
    import shutil

    demo = shutil.copytree(triplet_bundle, tmp_path / "demo_bundle")
    meta = json.loads((demo / "bundle.json").read_text())
    meta["demo_model"] = True
    meta["seal"] = seal_of(meta)  # as one who edits it on purpose
    (demo / "bundle.json").write_text(json.dumps(meta))
    inputs = tmp_path / "in"
    inputs.mkdir()
    clip = corpus.one_frame(inputs)
    capsys.readouterr()
    assert cli.main(["predict", str(clip), "--model", str(demo), "--out", str(tmp_path / "out"), "--no-video"]) == 0
    captured = capsys.readouterr()
    assert "trained on the DEMO data" in captured.err and "mean nothing on real footage" in captured.out
    assert json.loads((tmp_path / "out" / "one_frame.json").read_text())["demo_model"] is True


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


# ---------------------------------------------------------------- inputs, outputs and failures (issue 17)

class StubBundle(Bundle):
    """A bundle that calls every face 0.75 (no model): what is tested is predict's bookkeeping."""

    kind = "stub"

    def __init__(self, path, source=None):
        super().__init__(path, {"extract": ExtractConfig(frames_per_video=2, crop_size=64).to_dict(),
                                "threshold": 0.5, "aggregation": "mean", "decision": "score", "created": "today",
                                "source": source or {}})

    def score_faces(self, faces):
        return np.full(len(faces), 0.75), None


def run_in_thread(fn, timeout=60):
    """``fn()`` in a thread; fails (rather than hanging the suite) if it blocks, e.g. on a FIFO."""
    result = {}

    def target():
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: B036 - handed back to the test
            result["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "blocked (a FIFO was opened?)"
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_inputs_that_are_not_regular_files_say_what_they_are_and_are_never_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.mp4")
    (tmp_path / "gone.mp4").symlink_to(tmp_path / "deleted.mp4")
    (tmp_path / "loop_a.mp4").symlink_to(tmp_path / "loop_b.mp4")
    (tmp_path / "loop_b.mp4").symlink_to(tmp_path / "loop_a.mp4")
    folder = tmp_path / "videos"
    folder.mkdir()
    os.mkfifo(folder / "in_folder.mp4")
    os.mkfifo(folder / "notes.txt")  # not a video by its extension: left alone
    (folder / "dangling.mkv").symlink_to(tmp_path / "nowhere.mkv")
    names = ["pipe.mp4", "gone.mp4", "loop_a.mp4", "missing.mp4", "videos"]
    found = run_in_thread(lambda: predict.find_videos([tmp_path / n for n in names]))
    problems = {Path(shown).name: (path, problem) for shown, path, problem in found}
    assert all(path is None for path, _ in problems.values())
    assert problems["pipe.mp4"][1] == "not a regular file (FIFO)"
    assert problems["gone.mp4"][1] == f"dangling symbolic link (to {tmp_path / 'deleted.mp4'}, which does not exist)"
    assert problems["loop_a.mp4"][1] == "symbolic link loop (too many levels of symbolic links)"
    assert problems["missing.mp4"][1] == "file not found"
    assert problems["in_folder.mp4"][1] == "not a regular file (FIFO)"
    assert problems["dangling.mkv"][1].startswith("dangling symbolic link")
    assert "notes.txt" not in problems and len(found) == 6


def test_long_names_get_a_prefix_and_a_hash(tmp_path):
    long_a = "a" * 232 + ".mp4"  # 236 bytes
    assert len(long_a.encode()) == 236
    stem = predict.output_stem(tmp_path / long_a)
    assert len(stem.encode()) <= predict.MAX_STEM_BYTES
    assert re.fullmatch(r"a{100,}~[0-9a-f]{8}", stem)
    other = predict.output_stem(tmp_path / ("a" * 231 + "b.mp4"))
    assert other != stem and other.split("~")[0] == stem.split("~")[0]  # same prefix, other hash
    accents = predict.output_stem(tmp_path / ("é" * 118 + ".mp4"))  # 2 bytes each: never cut in two
    assert accents.encode("utf-8") and len(accents.encode()) <= predict.MAX_STEM_BYTES
    assert predict.output_stem(tmp_path / "004_982.mp4") == "004_982"
    taken = set()
    names = [predict.unique_stem(tmp_path, stem, taken) for _ in range(2)]
    assert names == [stem, f"{stem}-2"]
    for name in names:  # every output name and temporary name of it fits the file system
        for out in (f"{name}.json", f"{name}.annotated.mp4", f".{name}.annotated.mp4.0123abcd.part.mp4"):
            (tmp_path / out).write_bytes(b"")


def test_out_that_cannot_be_made_or_written_is_one_error(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(ValueError, match=r"^output folder .*file/sub: cannot write there \(.*file is a file, not a folder\)$"):
        predict.output_dir(tmp_path / "file" / "sub")
    with pytest.raises(ValueError, match=r"^output folder .*file is a file; give a folder$"):
        predict.output_dir(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "mine"
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if ".deepfake-keras-write-test" in str(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(ValueError, match=r"^output folder .*ro: cannot write there \(Read-only file system\)$"):
        predict.output_dir(tmp_path / "ro")
    assert list((tmp_path / "ro").iterdir()) == []


def test_the_cli_refuses_an_out_below_a_file_with_exit_2(triplet_bundle, tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    code = cli.main(["predict", str(tmp_path / "clip.mp4"), "--model", str(triplet_bundle), "--out",
                     str(tmp_path / "file" / "sub"), "--quiet"])
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 2 and len(err) == 1 and "file is a file, not a folder" in err[0]
    assert (tmp_path / "file").read_text() == "mine"


class FailingWriter:
    """A file object that writes half of what it is given, then fails as a full disk does."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        self.f.write(data[:len(data) // 2])
        self.f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_write_new_never_leaves_a_partial_file_nor_replaces_one(tmp_path, monkeypatch):
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: FailingWriter(real_fdopen(fd, *a, **k)))
    with pytest.raises(OSError) as e:
        predict.write_new(tmp_path / "b.json", b"{}" * 1000)
    assert e.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []  # neither b.json nor the temporary file
    monkeypatch.undo()
    (tmp_path / "b.json").write_text("mine")
    with pytest.raises(FileExistsError):
        predict.write_new(tmp_path / "b.json", b"new")
    assert (tmp_path / "b.json").read_text() == "mine" and len(list(tmp_path.iterdir())) == 1
    predict.write_new(tmp_path / "c.json", b"new")
    assert (tmp_path / "c.json").read_bytes() == b"new"


def test_predict_outputs_are_never_walked_as_inputs(tmp_path):
    folder = tmp_path / "videos"
    (folder / "scored").mkdir(parents=True)
    for name in ("a.mp4", "scored/a.mp4", "scored/a.annotated.mp4", "old.annotated.mp4", "mine.annotated.mp4"):
        (folder / name).write_bytes(b"")
    for name in ("scored/a.json", "old.json"):
        (folder / name).write_text("{}")
    found = predict.find_videos([folder], skip=[folder / "scored"])
    assert [Path(shown).relative_to(folder).as_posix() for shown, _, _ in found] == ["a.mp4", "mine.annotated.mp4"]
    found = predict.find_videos([folder], skip=[folder])  # --out is the input folder itself
    assert [Path(shown).relative_to(folder).as_posix() for shown, _, _ in found] == [
        "a.mp4", "mine.annotated.mp4", "scored/a.mp4"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two 3-frame clips of FF++ 004.mp4 (640x360), one under a 236-byte name."""
    folder = tmp_path_factory.mktemp("clips")
    long_name = corpus.spaces(folder, name="l" * 232 + ".mp4")
    return {"long": long_name, "a": corpus.spaces(folder, name="a.mp4"), "b": corpus.spaces(folder, name="b.mp4")}


def test_a_236_byte_name_and_a_fifo_do_not_stop_the_batch_and_reports_stay_small(clips, tmp_path):
    os.mkfifo(tmp_path / "pipe.mp4")
    huge_source = {"experiment": "x", "blob": "s" * 5_000_000, "many": {str(i): i for i in range(50_000)}}
    bundle = StubBundle(tmp_path, source=huge_source)
    out = tmp_path / "out"
    _, reports = run_in_thread(lambda: predict.predict([clips["long"], tmp_path / "pipe.mp4", clips["a"]], bundle,
                                                       out, progress=False), timeout=300)
    assert [r["status"] for r in reports] == ["scored", "failed", "scored"]
    assert reports[1]["error"] == "not a regular file (FIFO)"
    assert reports[0]["input"].endswith("l" * 232 + ".mp4") and reports[0]["name"].endswith(
        "~" + hashlib.sha256(("l" * 232 + ".mp4").encode()).hexdigest()[:8])
    for r in reports:
        path = out / r["outputs"]["json"]
        assert json.loads(path.read_text())["status"] == r["status"]
        assert path.stat().st_size < 30_000  # the bundle's 5 MB source is not copied into every report
    assert (out / f"{reports[0]['name']}.annotated.mp4").is_file()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_full_or_read_only_disk_leaves_no_partial_output_and_the_batch_goes_on(clips, tmp_path, monkeypatch, code):
    def annotate(path, out_path, report, max_side):  # writes part of the video, then the disk fails
        Path(out_path).write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(1000))
        raise OSError(code, os.strerror(code), str(out_path))

    real_write = predict.write_new

    def write(path, data):
        if Path(path).name == "b.json":
            raise OSError(code, os.strerror(code), str(path))
        return real_write(path, data)

    monkeypatch.setattr(predict, "annotate_video", annotate)
    monkeypatch.setattr(predict, "write_new", write)
    out = tmp_path / "out"
    _, reports = predict.predict([clips["a"], clips["b"]], StubBundle(tmp_path), out, progress=False)
    assert [r["status"] for r in reports] == ["scored", "scored"]  # both scored: the batch went on
    why = os.strerror(code)
    assert reports[0]["errors"] == [f"annotated video not written (a.annotated.mp4: {why})"]
    assert reports[1]["errors"] == [f"annotated video not written (b.annotated.mp4: {why})",
                                    f"report not written (b.json: {why})"]
    assert "json" not in reports[1]["outputs"] and not predict.ok(reports[0])
    assert sorted(p.name for p in out.iterdir()) == ["a.json"]  # no partial video, no temporary file
    assert json.loads((out / "a.json").read_text())["errors"] == reports[0]["errors"]
    print(predict.summary_table(reports))


def test_out_inside_the_input_folder_is_skipped_on_the_next_run(clips, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copyfile(clips["a"], folder / "a.mp4")
    bundle = StubBundle(tmp_path)
    for run in range(2):
        _, reports = predict.predict([folder], bundle, folder / "scored", progress=False, gradcam=False)
        assert [r["input"] for r in reports] == [str(folder / "a.mp4")], run
    assert (folder / "scored" / "a.annotated.mp4").is_file() and (folder / "scored" / "a-2.annotated.mp4").is_file()
    _, reports = predict.predict([folder], bundle, folder, progress=False, gradcam=False, video=False)
    assert [r["input"] for r in reports] == [str(folder / "a.mp4")]


def test_the_cli_reports_a_full_disk_in_one_line_per_video_and_exits_1(triplet_bundle, clips, tmp_path, monkeypatch,
                                                                        capsys):
    def annotate(path, out_path, report, max_side):
        Path(out_path).write_bytes(bytes(100))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out_path))

    monkeypatch.setattr(predict, "annotate_video", annotate)
    out = tmp_path / "out"
    code = cli.main(["predict", str(clips["a"]), str(clips["b"]), "--model", str(triplet_bundle), "--out", str(out),
                     "--quiet"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("deepfake-keras predict:")]
    assert code == 1
    assert err == [f"deepfake-keras predict: {clips[n]}: scored: annotated video not written ({n}.annotated.mp4: "
                   f"No space left on device)" for n in ("a", "b")]
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.json"]


def test_the_banner_of_a_demo_model_says_so():
    from deepfake_keras.inference.annotate import banner_text

    report = {"verdict": "fake", "status": "scored", "video_score": 0.8, "threshold": 0.6}
    plain, colour = banner_text(report)
    demo, demo_colour = banner_text({**report, "demo_model": True})
    assert plain.startswith("FAKE") and "0.80" in plain and "0.60" in plain
    assert demo == f"DEMO MODEL, its verdicts mean nothing on real footage: {plain}" and demo_colour == colour


# ---------------------------------------------------------------- DEMO models say their verdicts mean nothing

@pytest.fixture(scope="module")
def xception_bundles(tmp_path_factory):
    """``{demo_model: bundle}``: one random Xception bag at 71 px, saved as a DEMO run's bundle (as the
    experiments save it when trained on the DEMO data: ``demo_model=True``) and as a real-data run's."""
    import tensorflow as tf

    from deepfake_keras.models.xception import build_xception

    tmp = tmp_path_factory.mktemp("xception")
    tf.keras.utils.set_random_seed(0)
    build_xception(71, weights="none", fc_units=8).save_weights(tmp / "bag.weights.h5")
    return {demo: save_bundle(tmp / f"bundle_{demo}", "xception", extract_config=ExtractConfig(frames_per_video=1),
                              bag_weights=[tmp / "bag.weights.h5"], image_size=71, fc_units=8, demo_model=demo)
            for demo in (False, True)}


@pytest.mark.parametrize("demo", [False, True])
def test_predict_json_says_whether_the_model_is_a_demo_model(demo, xception_bundles, tmp_path, capsys):
    """``--json`` and each video's JSON carry ``demo_model``: true for a bundle trained on the DEMO data."""
    (tmp_path / "in").mkdir()
    clip = corpus.one_frame(tmp_path / "in")
    capsys.readouterr()
    assert cli.main(["predict", str(clip), "--model", str(xception_bundles[demo]), "--out", str(tmp_path / "out"),
                     "--json", "--no-gradcam", "--no-video"]) == 0
    printed = json.loads(capsys.readouterr().out)
    report = printed["videos"][0]
    assert printed["demo_model"] is demo and report["demo_model"] is demo and report["status"] == "scored"
    assert json.loads((tmp_path / "out" / "one_frame.json").read_text())["demo_model"] is demo


def test_the_annotated_banner_of_a_demo_model_says_its_verdicts_mean_nothing(tmp_path, monkeypatch):
    """The banner :func:`annotate.annotate_video` draws on every frame (seen through the text cv2 draws)
    says that a DEMO model's verdicts mean nothing on real footage; another model's says nothing of the kind."""
    drawn = []
    put_text = cv2.putText

    def record(img, text, *args, **kwargs):
        drawn.append(text)
        return put_text(img, text, *args, **kwargs)

    monkeypatch.setattr(cv2, "putText", record)
    clip = corpus.one_frame(tmp_path)
    report = {"status": "scored", "verdict": "fake", "video_score": 0.8, "threshold": 0.5, "sampled_frames": [0],
              "frames": [{"frame": 0, "box": [10.0, 10.0, 60.0, 60.0], "score": 0.8}], "video": {"fps": 25.0}}
    banners = {}
    for demo in (False, True):
        drawn.clear()
        written = annotate.annotate_video(clip, tmp_path / f"{demo}.mp4", {**report, "demo_model": demo})
        assert written["frames"] == 1 and (tmp_path / f"{demo}.mp4").is_file()
        banners[demo] = [t for t in drawn if "FAKE" in t]
        assert len(banners[demo]) == 1  # one banner per frame
    assert "DEMO" not in banners[False][0] and "mean nothing" not in banners[False][0]
    assert "DEMO" in banners[True][0] and "mean nothing on real footage" in banners[True][0]
