"""Bad inputs to the extraction stage: each is processed or recorded with its reason, the batch
goes on, the exit status says whether anything failed, and the dataset root is never written.
Hostile media files (playlists and concat lists pointing outside the input folder, names that
read as FFmpeg URLs, a header claiming 30,000 years) are refused or read as plain files, and
nothing outside the input folder is read.

The inputs are built at test time by ``tests/corpus.py`` from the shared real clips and photos.
One extraction of the whole corpus (in this process, ``workers=0``, run from inside the input
folder so that a name read as a URL would find its target) is shared by the tests.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd
import pytest

from deepfake_keras import cli
from deepfake_keras.config import ExtractConfig
from deepfake_keras.data.datasets import folder_manifest
from deepfake_keras.data.decode import NOT_A_VIDEO, NOT_PLAIN
from deepfake_keras.data.extract import extract
from deepfake_keras.data.faces import LANDMARKS, crop_face, iou, select_largest
from deepfake_keras.data.store import FaceStore
from deepfake_keras.data.video import sample_indices

from .. import corpus

CONFIG = ExtractConfig(frames_per_video=3, detect_size=320)
CLI_SETTINGS = ["--frames", "2", "--detect-size", "320", "--quiet"]

# what each input must give: "ok", or the reason recorded in failures.csv
EXPECTED = {
    "empty": "empty file (0 bytes)",
    "not_a_video": NOT_A_VIDEO,
    "photo_named_as_video": "ok",  # FFmpeg reads a JPEG by its content: a one-frame video
    "truncated_no_index": NOT_A_VIDEO,
    "truncated_after_header": "no frame could be decoded (truncated or corrupt video)",
    "truncated_partial": "ok",  # the frames that decode are used
    "corrupt_header": NOT_A_VIDEO,
    "corrupt_data": "no frame could be decoded (truncated or corrupt video)",
    "no_face": "no face found in 3 sampled frame(s)",
    "one_frame": "ok",
    "many_faces": "ok",
    "huge": "ok",
    "rotated": "ok",
    "spaces": "ok",
    "non_ascii": "ok",
    "non_utf8_name": "ok",  # PyAV opens the name's bytes as they are (OpenCV could not)
    "hls_playlist": NOT_PLAIN,  # its segment is ../secret/private.ts
    "ffconcat_list": NOT_PLAIN,  # it lists ../secret/private.mp4
    "concat_url_name": NOT_A_VIDEO,  # junk named concat:one_frame.mp4: a file, not the concat protocol
    "pipe_url_name": "ok",  # a clip named pipe:clip.mp4: read as a file, not standard input
    "av1": "ok",  # decoded with dav1d (OpenCV's FFmpeg cannot)
    "huge_duration": "ok",  # 50 frames; the header claims 30,000 years
}
FAILED = sorted(name for name, outcome in EXPECTED.items() if outcome != "ok")
PROCESSED = sorted(name for name, outcome in EXPECTED.items() if outcome == "ok")


def listing(root: Path) -> dict:
    """Every file and folder under ``root`` (and ``root`` itself): kind, size, modification time."""
    root = Path(root)
    out = {}
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        out[os.fsencode(path.relative_to(root).as_posix())] = (path.is_dir(), st.st_size, st.st_mtime_ns)
    return out


def read_index(out: Path, name: str) -> pd.DataFrame:
    # strict UTF-8: the store's CSVs must be readable as such even for odd file names
    return pd.read_csv(out / name, keep_default_na=False, encoding="utf-8")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The corpus in a folder (whose own name has a space), extracted once as a ``folder`` dataset."""
    root = tmp_path_factory.mktemp("dataset") / "my videos"
    paths = corpus.build_corpus(root)
    assert set(paths) == set(EXPECTED)
    paths = {name: path for name, path in paths.items() if path is not None}
    outside = root.parent / corpus.OUTSIDE
    before, outside_before = listing(root), listing(outside)
    manifest = folder_manifest(root)
    key = dict(zip(manifest["path"], manifest["store_key"]))
    out = tmp_path_factory.mktemp("faces") / "store"
    cwd = os.getcwd()
    os.chdir(root)  # a name read as an FFmpeg URL (concat:one_frame.mp4) would find its target here
    try:
        summary = extract(manifest, out, CONFIG, workers=0, dataset_roots=[root], progress=False)
    finally:
        os.chdir(cwd)
    return SimpleNamespace(
        outside=outside, outside_before=outside_before,
        root=root, out=out, paths=paths, manifest=manifest, summary=summary, before=before,
        after=listing(root), key={name: key[str(path)] for name, path in paths.items()},
        videos=read_index(out, "videos.csv").set_index("store_key"), faces=read_index(out, "faces.csv"),
        failures=read_index(out, "failures.csv"), store=FaceStore.open(out))


def present(run, name):
    if name not in run.paths:
        pytest.skip(f"this file system cannot hold the input {name!r}")
    return run.key[name]


def video_json(run, name) -> dict:
    return json.loads((run.out / present(run, name) / "video.json").read_text())


def faces_of(run, name) -> pd.DataFrame:
    return run.faces[run.faces["store_key"] == present(run, name)].sort_values("frame").reset_index(drop=True)


def box(row) -> list:
    return [row["x1"], row["y1"], row["x2"], row["y2"]]


def first_frame(path, orientation_auto=True) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    if not orientation_auto:
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    ok, frame = cap.read()
    cap.release()
    assert ok, path
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------- every input: processed or recorded

def test_every_input_is_processed_or_recorded(run):
    assert len(run.manifest) == len(run.paths)  # every file with a video extension is in the manifest
    assert sorted(run.videos.index) == sorted(run.key.values())  # ...and has a row in videos.csv
    for name, key in run.key.items():
        expected = EXPECTED[name]
        assert run.videos.loc[key, "status"] == ("ok" if expected == "ok" else "failed"), name
        assert run.videos.loc[key, "reason"] == ("" if expected == "ok" else expected), name
    failed = {run.key[n] for n in FAILED if n in run.paths}
    processed = {run.key[n] for n in PROCESSED}
    assert sorted(run.failures["store_key"]) == sorted(failed)
    assert list(run.failures.columns) == ["store_key", "video_id", "path", "reason"]
    s = run.summary
    assert (s.videos, s.done, s.failed, s.skipped) == (len(run.paths), len(processed), len(failed), 0)
    assert sorted(k for k, _ in s.failures) == sorted(failed)
    assert set(run.faces["store_key"]) == processed
    assert s.faces == len(run.faces) == run.videos.loc[sorted(processed), "frames_with_face"].sum()


@pytest.mark.parametrize("name", FAILED)
def test_failure_is_recorded_with_its_reason(run, name):
    key = present(run, name)
    row = run.failures.set_index("store_key").loc[key]
    assert row["reason"] == EXPECTED[name]
    assert row["path"] == os.fsencode(run.paths[name]).decode("utf-8", "backslashreplace")
    assert (key, EXPECTED[name]) in run.summary.failures
    meta = video_json(run, name)
    assert (meta["status"], meta["reason"], meta["frames_with_face"]) == ("failed", EXPECTED[name], 0)
    assert not list((run.out / key).glob("*.png"))  # no crop for a failed video
    assert f"FAILED {key}: {EXPECTED[name]}" in str(run.summary)


def test_the_batch_goes_on_past_failures(run):
    # workers=0 processes the manifest in order: good videos come after bad ones and were still done
    statuses = [run.videos.loc[k, "status"] for k in run.manifest["store_key"]]
    first_failure = statuses.index("failed")
    assert "ok" in statuses[first_failure + 1:]
    assert all((run.out / k / "video.json").is_file() for k in run.manifest["store_key"])


# ---------------------------------------------------------------- processed inputs: faces and boxes

@pytest.mark.parametrize("name", PROCESSED)
def test_processed_inputs_have_sensible_faces_and_crops(run, name):
    meta = video_json(run, name)
    faces = faces_of(run, name)
    assert meta["status"] == "ok" and meta["frames_with_face"] == len(faces) == meta["frames_sampled"] > 0
    w, h = meta["width"], meta["height"]
    for _, row in faces.iterrows():
        assert 0 <= row["x1"] < row["x2"] <= w and 0 <= row["y1"] < row["y2"] <= h, (name, box(row))
        assert row["confidence"] > 0.95 and row["n_faces"] >= 1
        for lm in LANDMARKS:  # landmarks on the face
            assert row["x1"] - 2 <= row[f"{lm}_x"] <= row["x2"] + 2 and row["y1"] - 2 <= row[f"{lm}_y"] <= row["y2"] + 2
        crop = run.store.load_crop(row["crop"])
        assert crop.shape == (CONFIG.crop_size, CONFIG.crop_size, 3)
        assert crop.mean() > 30  # an image, not black padding
    assert len(list((run.out / run.key[name]).glob("*.png"))) == len(faces)


def test_one_frame_video(run):
    meta = video_json(run, "one_frame")
    assert (meta["frames_sampled"], meta["reported_frames"], meta["width"], meta["height"]) == (1, 1, 640, 360)
    assert faces_of(run, "one_frame")["frame"].tolist() == [0]


def test_photo_named_as_video_is_read_as_one_frame(run):
    meta = video_json(run, "photo_named_as_video")
    assert (meta["frames_sampled"], meta["width"], meta["height"]) == (1, 561, 561)
    assert faces_of(run, "photo_named_as_video")["frame"].tolist() == [0]


def test_truncated_video_uses_the_frames_that_decode(run):
    path = run.paths["truncated_partial"]
    cap = cv2.VideoCapture(str(path))
    decodable = 0
    while cap.grab():
        decodable += 1
    cap.release()
    meta = video_json(run, "truncated_partial")
    assert meta["reported_frames"] == 10 and 3 <= decodable < 10  # the index promises more than decodes
    # sampled from the true count, not the reported one (which would ask for frame 9)
    assert faces_of(run, "truncated_partial")["frame"].tolist() == sample_indices(decodable, 3)


def test_many_faces_picks_the_largest_and_counts_them(run, detector):
    faces = faces_of(run, "many_faces")
    assert (faces["n_faces"] >= 5).all()  # seven people, some half hidden
    reference = detector.detect([first_frame(run.paths["many_faces"])])[0]
    assert len(reference) >= 5
    largest = select_largest(reference)
    most_confident = max(reference, key=lambda f: f["confidence"])
    assert iou(largest["box"], most_confident["box"]) < 0.1  # "largest" is not just "first" or "surest"
    chosen = box(faces.iloc[0])
    assert iou(chosen, largest["box"]) > 0.8
    for other in reference:  # every other face is clearly elsewhere
        assert other is largest or iou(chosen, other["box"]) < 0.2


def test_huge_resolution_boxes_are_in_the_videos_own_pixels(run):
    meta = video_json(run, "huge")
    assert (meta["width"], meta["height"]) == corpus.HUGE
    assert CONFIG.max_frame_side < corpus.HUGE[0]  # the frames were shrunk for detection
    k = corpus.HUGE[0] / corpus.SMALL[0]  # the same frame of 004.mp4 at 640x360 in one_frame.mp4
    small = faces_of(run, "one_frame").iloc[0]
    expected = [v * k for v in box(small)]
    for _, row in faces_of(run, "huge").iterrows():
        assert iou(box(row), expected) > 0.8, (box(row), expected)
        assert row["x1"] > CONFIG.max_frame_side  # not in the shrunk frame's coordinates
        tolerance = 0.1 * (expected[2] - expected[0])
        for lm in LANDMARKS:
            assert row[f"{lm}_x"] == pytest.approx(small[f"{lm}_x"] * k, abs=tolerance), lm
            assert row[f"{lm}_y"] == pytest.approx(small[f"{lm}_y"] * k, abs=tolerance), lm


def test_rotated_phone_video_gives_an_upright_face(run, detector):
    path = run.paths["rotated"]
    portrait = cv2.cvtColor(corpus.portrait_frame(), cv2.COLOR_BGR2RGB)
    # the file holds landscape pixels with a display rotation...
    stored = first_frame(path, orientation_auto=False)
    assert stored.shape[:2] == (406, 720)
    cap = cv2.VideoCapture(str(path))
    assert cap.get(cv2.CAP_PROP_ORIENTATION_META) in (90, 270)
    cap.release()
    assert detector.detect([stored])[0] == []  # MTCNN finds no sideways face...
    # ...and OpenCV applies the rotation by default: the decoded frame is the upright portrait
    upright = first_frame(path)
    assert upright.shape == portrait.shape == (720, 406, 3)
    assert np.abs(upright.astype(int) - portrait).mean() < 6
    meta = video_json(run, "rotated")
    assert (meta["width"], meta["height"]) == (406, 720)
    faces = faces_of(run, "rotated")
    assert len(faces) == 3
    # the portrait is columns 600..1006 of the 1280x720 frame that one_frame.mp4 holds at 640x360
    small = box(faces_of(run, "one_frame").iloc[0])
    expected = [small[0] * 2 - corpus.PORTRAIT_X[0], small[1] * 2, small[2] * 2 - corpus.PORTRAIT_X[0], small[3] * 2]
    for _, row in faces.iterrows():
        assert iou(box(row), expected) > 0.8, (box(row), expected)
        eyes_y = max(row["left_eye_y"], row["right_eye_y"])
        assert eyes_y < row["nose_y"] < min(row["mouth_left_y"], row["mouth_right_y"])  # eyes above mouth
        assert abs(row["left_eye_y"] - row["right_eye_y"]) < 0.5 * abs(row["right_eye_x"] - row["left_eye_x"])
        crop = run.store.load_crop(row["crop"]).astype(int)
        assert np.abs(crop - crop_face(portrait, box(row), CONFIG.crop_size, CONFIG.margin)).mean() < 8


@pytest.mark.parametrize("name,key", [("spaces", "folder/clip with spaces.mp4"),
                                      ("non_ascii", "folder/sous-dossier été/vidéo ünïcode 日本語.mp4")])
def test_names_with_spaces_and_non_ascii_letters(run, name, key):
    assert run.key[name] == key
    faces = faces_of(run, name)
    assert faces["frame"].tolist() == [0, 1, 2]
    assert faces["crop"].tolist() == [f"{key}/{i:06d}.png" for i in range(3)]
    assert all((run.out / crop).is_file() for crop in faces["crop"])
    assert iou(box(faces.iloc[0]), box(faces_of(run, "one_frame").iloc[0])) > 0.9  # frame 0 of 004.mp4 again


def test_non_utf8_file_name_is_read(run):
    key = present(run, "non_utf8_name")
    assert key == "folder/caf\\xe9 (Latin-1 name).mp4"  # printable, stored under that name
    assert str(run.summary).encode("utf-8")  # the summary prints
    row = run.videos.loc[key]
    assert row["path"].endswith("/caf\\xe9 (Latin-1 name).mp4")
    assert row["video_id"] == "caf\\xe9 (Latin-1 name)"
    faces = faces_of(run, "non_utf8_name")
    assert faces["frame"].tolist() == [0, 1]
    assert faces["crop"].tolist() == [f"{key}/{i:06d}.png" for i in range(2)]
    assert iou(box(faces.iloc[0]), box(faces_of(run, "one_frame").iloc[0])) > 0.9


# ---------------------------------------------------------------- hostile media files

@pytest.mark.parametrize("name", ["hls_playlist", "ffconcat_list"])
def test_playlists_are_refused_and_what_they_list_is_never_read(run, name):
    assert EXPECTED[name] == NOT_PLAIN  # recorded as such (test_failure_is_recorded_with_its_reason)
    assert faces_of(run, name).empty
    assert (run.outside / "private.mp4").is_file()  # the target exists, outside the input folder...
    assert not run.outside.is_relative_to(run.root)
    assert listing(run.outside) == run.outside_before  # ...and is untouched
    # no crop anywhere in the store is of the outside clip (004.mp4 mirrored: its face is on the other side)
    mirrored = box(faces_of(run, "one_frame").iloc[0])
    mirrored = [640 - mirrored[2], mirrored[1], 640 - mirrored[0], mirrored[3]]
    width = {k: json.loads((run.out / k / "video.json").read_text())["width"] for k in set(run.faces["store_key"])}
    small = run.faces[[width[k] == 640 for k in run.faces["store_key"]]]
    assert len(small) >= 10
    assert all(iou(box(row), mirrored) < 0.3 for _, row in small.iterrows())


def test_names_that_read_as_ffmpeg_urls_are_plain_files(run):
    # junk named concat:one_frame.mp4 is junk, not one_frame.mp4 read through the concat protocol
    assert video_json(run, "concat_url_name")["reason"] == NOT_A_VIDEO and faces_of(run, "concat_url_name").empty
    # a clip named pipe:clip.mp4 is that clip (not standard input, which would have hung)
    faces = faces_of(run, "pipe_url_name")
    assert faces["frame"].tolist() == [0, 1, 2]
    assert iou(box(faces.iloc[0]), box(faces_of(run, "one_frame").iloc[0])) > 0.9


def test_av1_video_is_decoded(run):
    meta = video_json(run, "av1")
    assert (meta["status"], meta["decoder"], meta["width"], meta["height"]) == ("ok", "pyav", 640, 360)
    faces = faces_of(run, "av1")
    assert faces["frame"].tolist() == [0, 1, 2]
    assert iou(box(faces.iloc[0]), box(faces_of(run, "one_frame").iloc[0])) > 0.8


def test_sampling_uses_the_frames_present_not_the_header(run):
    meta = video_json(run, "huge_duration")
    assert meta["reported_frames"] > 10 ** 13  # the header's claim (30,000 years at 25 fps)...
    assert meta["sampled_frames"] == sample_indices(50, 3) == [0, 24, 49]  # ...is not what sampling uses
    assert meta["sampled_times"] == [0.0, 0.96, 1.96]


def test_the_decoder_of_every_video_is_recorded(run):
    for name in PROCESSED:
        meta = video_json(run, name)
        assert meta["decoder"] == "pyav", name
        assert len(meta["sampled_times"]) == len(meta["sampled_frames"]) == meta["frames_sampled"], name
        assert meta["sampled_times"][0] == 0.0 and meta["sampled_times"] == sorted(meta["sampled_times"]), name


# ---------------------------------------------------------------- re-runs

def test_rerun_skips_everything_and_changes_nothing(run):
    store_before = listing(run.out)
    summary = extract(run.manifest, run.out, CONFIG, workers=0, dataset_roots=[run.root], progress=False)
    assert (summary.skipped, summary.done, summary.failed, summary.faces) == (len(run.paths), 0, 0, 0)
    after = listing(run.out)
    assert set(after) == set(store_before)
    index = {b".", b"videos.csv", b"faces.csv", b"failures.csv"}  # only the index CSVs are rewritten
    assert {k: v for k, v in after.items() if k not in index} == {k: v for k, v in store_before.items() if k not in index}
    assert read_index(run.out, "failures.csv").equals(run.failures)


def test_retry_failed_retries_only_the_failed(run):
    failed = [run.key[n] for n in FAILED if n in run.paths]
    ok = [run.key[n] for n in PROCESSED]
    stamp = {k: (run.out / k / "video.json").stat().st_mtime_ns for k in failed + ok}
    ids = {k: (run.out / k).stat().st_ino for k in failed + ok}
    summary = extract(run.manifest, run.out, CONFIG, workers=0, retry_failed=True, dataset_roots=[run.root],
                      progress=False)
    assert (summary.skipped, summary.done, summary.failed) == (len(ok), 0, len(failed))
    assert sorted(k for k, _ in summary.failures) == sorted(failed)
    for k in failed:  # written again (the folder is replaced in one step)
        assert (run.out / k).stat().st_ino != ids[k] or (run.out / k / "video.json").stat().st_mtime_ns != stamp[k]
    for k in ok:
        assert (run.out / k).stat().st_ino == ids[k] and (run.out / k / "video.json").stat().st_mtime_ns == stamp[k]
    assert read_index(run.out, "failures.csv").equals(run.failures)


# ---------------------------------------------------------------- the command line

@pytest.mark.parametrize("inside", [".", "faces", "sous-dossier été/faces"])
def test_cli_refuses_an_out_folder_inside_the_root(run, capsys, inside):
    out = run.root / inside
    code = cli.main(["extract", "--dataset", "folder", "--root", str(run.root), "--out", str(out), *CLI_SETTINGS])
    err = capsys.readouterr().err
    assert code == 2
    # the library states the fact, the command line names its option (io.about)
    assert "error:" in err and "is inside the dataset folder" in err and err.strip().endswith("(--out)")
    assert listing(run.root) == run.before


def test_cli_exit_status_retry_and_worker_process(tmp_path, capsys):
    root = tmp_path / "dataset"
    corpus.one_frame(root, "good.mp4")
    corpus.empty(root, "late download.mp4")
    out = tmp_path / "store"
    args = ["extract", "--dataset", "folder", "--root", str(root), "--out", str(out), *CLI_SETTINGS]
    before = listing(root)

    assert cli.main([*args, "--workers", "0"]) == 1  # something failed
    text = capsys.readouterr().out
    assert "1 extracted" in text and "1 failed" in text
    assert "FAILED folder/late download.mp4: empty file (0 bytes)" in text
    assert read_index(out, "failures.csv")["store_key"].tolist() == ["folder/late download.mp4"]
    assert listing(root) == before

    corpus.one_frame(root, "late download.mp4")  # the download is finished now
    # without --retry-failed the failure stays recorded, and the exit status still says so
    assert cli.main([*args, "--workers", "0"]) == 1
    text = capsys.readouterr().out
    assert "2 already in the store (skipped, 1 of them failed before)" in text
    assert "FAILED folder/late download.mp4: empty file (0 bytes) (in an earlier run; not retried unless asked)" in text
    assert "--retry-failed retries the videos that failed in an earlier run" in text
    assert read_index(out, "failures.csv")["store_key"].tolist() == ["folder/late download.mp4"]

    before = listing(root)
    assert cli.main([*args, "--workers", "1", "--retry-failed"]) == 0  # nothing failed; in a worker process
    text = capsys.readouterr().out
    assert "1 extracted, 1 already in the store (skipped), 0 failed" in text and "FAILED" not in text
    assert read_index(out, "failures.csv").empty
    videos = read_index(out, "videos.csv").set_index("store_key")
    assert videos["status"].tolist() == ["ok", "ok"] and videos["frames_with_face"].tolist() == [1, 1]
    assert listing(root) == before


def _children(pid: int) -> list:
    """``[(pid, state, command line)]`` of the processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out.append((int(stat.parent.name), fields[0], (stat.parent / "cmdline").read_bytes()))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_worker_processes_die_with_the_extract_process(tmp_path):
    """kill -9 of `extract` leaves no worker behind (nor writing to the store)."""
    root = tmp_path / "dataset"
    for k in range(8):
        corpus.spaces(root, f"clip {k}.mp4")
    out = tmp_path / "store"
    before = listing(root)
    main = "import sys; from deepfake_keras import cli; sys.exit(cli.main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", main, "extract", "--dataset", "folder", "--root", str(root),
                             "--out", str(out), "--workers", "1", *CLI_SETTINGS],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    workers = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            workers = [pid for pid, _, cmd in _children(proc.pid) if b"spawn_main" in cmd]
            if workers and any(out.rglob("video.json")):  # a worker is up and has written a video
                break
            time.sleep(0.1)
        assert proc.poll() is None and workers, "the extract run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), "a worker outlived the killed extract process"
        done = sorted(out.rglob("video.json"))
        time.sleep(1.0)
        assert sorted(out.rglob("video.json")) == done  # nothing is written any more
        assert len(done) < 8
        assert listing(root) == before
    finally:
        for pid in [proc.pid, *workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


# ---------------------------------------------------------------- last: the dataset root

def test_nothing_under_the_dataset_root_is_ever_written(run):
    assert run.after == run.before  # by the extraction
    assert listing(run.outside) == run.outside_before  # nor beside it
    assert listing(run.root) == run.before  # nor by the re-runs and the refused CLI runs above
    assert not run.out.is_relative_to(run.root) and not run.root.is_relative_to(run.out)


def test_a_video_the_scan_found_unreadable_is_recorded_without_being_opened(run, tmp_path):
    """The dataset scan's ``problem`` (a FIFO, a dead link...) fails the video with that reason, before any
    decoder touches it: here the file itself is a fine video, so opening it would have given faces."""
    name = PROCESSED[0]
    row = run.manifest[run.manifest["store_key"] == present(run, name)].copy()
    row["problem"] = "not a regular file (a FIFO)"
    summary = extract(row, tmp_path / "store", CONFIG, workers=0, progress=False)
    assert summary.failed == 1 and summary.done == 0
    video = read_index(tmp_path / "store", "videos.csv").iloc[0]
    assert video["status"] == "failed" and video["reason"] == "not a regular file (a FIFO)"
    assert video["frames_sampled"] == 0
