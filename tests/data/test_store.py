"""The face store: a killed and resumed run gives the same store as an uninterrupted one."""
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from deepfake_keras.config import ExtractConfig
from deepfake_keras.data.datasets import ffpp_manifest
from deepfake_keras.data.extract import extract
from deepfake_keras.data.store import FaceStore, StoreError

CONFIG = ExtractConfig(frames_per_video=3, detect_size=320)
CLI_ARGS = ["--frames", "3", "--detect-size", "320", "--compression", "c23", "--quiet"]


def snapshot(root: Path) -> dict:
    """Every file of a store (outside .tmp) -> sha256 of its bytes."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".tmp" not in p.relative_to(root).parts}


@pytest.fixture(scope="module")
def manifest(ffpp_mini, ffpp_splits):
    return ffpp_manifest(ffpp_mini, "c23", ["Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"], ffpp_splits)


@pytest.fixture(scope="module")
def reference(manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "store"
    summary = extract(manifest, out, CONFIG, progress=False)
    assert (summary.done, summary.failed, summary.faces) == (7, 0, 21)
    return out


def test_store_layout_and_index(reference, manifest):
    store = FaceStore.open(reference)
    faces = store.faces()
    assert len(faces) == 21 and set(faces["store_key"]) == set(manifest["store_key"])
    for row in faces.itertuples():
        crop = store.load_crop(row.crop)
        assert crop.shape == (CONFIG.crop_size, CONFIG.crop_size, 3)
        assert row.crop == f"{row.store_key}/{row.frame:06d}.png"
        assert row.x2 > row.x1 and row.y2 > row.y1 and 0 < row.confidence <= 1
        # landmarks sit inside their box
        assert row.x1 <= row.nose_x <= row.x2 and row.y1 <= row.nose_y <= row.y2
    assert pd.read_csv(reference / "failures.csv").empty
    videos = pd.read_csv(reference / "videos.csv")
    assert list(videos["frames_with_face"]) == [3] * 7


def test_rerun_skips_everything(reference, manifest):
    before = snapshot(reference)
    summary = extract(manifest, reference, CONFIG, progress=False)
    assert (summary.skipped, summary.done) == (7, 0)
    assert snapshot(reference) == before


def run_cli(root, splits, out):
    return subprocess.Popen([sys.executable, "-m", "deepfake_keras.cli", "extract", "--dataset", "ffpp", "--root",
                             str(root), "--splits", str(splits), "--out", str(out), "--workers", "0", *CLI_ARGS],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_killed_and_resumed_run_equals_uninterrupted(reference, ffpp_mini, ffpp_splits, tmp_path):
    out = tmp_path / "store"
    proc = run_cli(ffpp_mini, ffpp_splits, out)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:  # kill it once some videos are done
        if len(list(out.rglob("video.json"))) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(out.rglob("video.json")))
    assert 2 <= done < 7, "the run should have been killed part-way"
    # nothing partial: every video folder holds its complete set of files
    for meta in out.rglob("video.json"):
        assert (meta.parent / "faces.csv").is_file() and len(list(meta.parent.glob("*.png"))) == 3
    proc = run_cli(ffpp_mini, ffpp_splits, out)
    assert proc.wait(timeout=600) == 0
    assert not any((out / ".tmp").iterdir()) if (out / ".tmp").exists() else True
    assert snapshot(out) == snapshot(reference)


def test_crash_inside_a_write_leaves_no_partial_video(manifest, tmp_path, monkeypatch):
    out = tmp_path / "store"
    one = manifest.iloc[:2]
    real_rename = os.rename
    calls = {"n": 0}

    def failing_rename(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:  # the second video's final rename: the "crash"
            raise KeyboardInterrupt
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(KeyboardInterrupt):
        extract(one, out, CONFIG, progress=False)
    monkeypatch.setattr(os, "rename", real_rename)
    keys = list(one["store_key"])
    assert (out / keys[0] / "video.json").is_file()
    assert not (out / keys[1]).exists()
    summary = extract(one, out, CONFIG, progress=False)
    assert (summary.skipped, summary.done) == (1, 1)


def test_store_refuses_other_settings_and_foreign_folders(reference, tmp_path):
    with pytest.raises(StoreError, match="crop_size"):
        FaceStore(reference, ExtractConfig(frames_per_video=3, detect_size=320, crop_size=160))
    FaceStore(reference, ExtractConfig(frames_per_video=3, detect_size=320, batch_size=4))  # batch size changes nothing
    foreign = tmp_path / "my_photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(StoreError, match="not a face store"):
        FaceStore(foreign, CONFIG)
    assert (foreign / "holiday.jpg").read_bytes() == b"x" and len(list(foreign.iterdir())) == 1
