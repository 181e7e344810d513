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


# ---------------------------------------------------------------- CSV injection (issue 17)

FORMULA_NAMES = ["=cmd|' -C calc'!A0", "@SUM(1+1)", '=HYPERLINK("evil.example","click")', "+x", "-x", "\tx=1",
                 "\r=1+2", "'quoted"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cells(path: Path) -> list:
    """Every cell of a CSV file as the raw text a spreadsheet would get (header excluded)."""
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return [cell for row in list(csv.reader(f))[1:] for cell in row]


def is_plain_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return cell.strip() == cell and not any(c.isalpha() for c in cell)


def assert_neutralised(path: Path) -> None:
    for cell in csv_cells(path):
        assert not cell.startswith(FORMULA_STARTS) or is_plain_number(cell), (path.name, cell)


def test_csv_text_neutralises_formulas_keeps_numbers_and_round_trips(tmp_path):
    from io import StringIO

    from deepfake_keras.io import csv_text, csv_unescape

    table = pd.DataFrame({"name": FORMULA_NAMES, "n": range(-4, 4), "x": [-0.5 * i for i in range(8)],
                          "numberish": ["-5", "+3", "-2.5e-05", ".5", "-", "-1-1", "004", "plain"]})
    text = csv_text(table)
    escaped = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)
    for cell in escaped["name"]:
        assert cell.startswith("'")  # every formula-like name, and the one starting with a quote itself
    assert list(escaped["n"]) == [str(i) for i in range(-4, 4)]  # negative numbers are numbers
    assert escaped["numberish"].tolist() == ["-5", "+3", "-2.5e-05", ".5", "'-", "'-1-1", "004", "plain"]
    back = csv_unescape(pd.read_csv(StringIO(text), dtype={"name": str, "numberish": str}, keep_default_na=False))
    assert back["name"].tolist() == FORMULA_NAMES and back["numberish"].tolist() == table["numberish"].tolist()
    assert back["x"].tolist() == table["x"].tolist()
    ordinary = table[["n", "x"]].assign(key=[f"ffpp/c23/original/{i:03d}" for i in range(8)])
    assert csv_text(ordinary) == ordinary.to_csv(index=False)  # nothing to escape: pandas' own bytes
    # a carriage return inside a name must not start a new row with a formula
    inside = pd.DataFrame({"name": ["a\r=cmd|' -C calc'!A0", "b\n@SUM(1+1)", "c"], "n": [1, -2, 3]})
    path = tmp_path / "inside.csv"
    path.write_text(csv_text(inside), encoding="utf-8", newline="")
    assert_neutralised(path)
    assert csv_cells(path) == ["a\r=cmd|' -C calc'!A0", "1", "b\n@SUM(1+1)", "-2", "c", "3"]


def test_store_csvs_neutralise_formula_names_and_the_store_still_works(tmp_path):
    from deepfake_keras.data.datasets import MANIFEST_COLUMNS
    from deepfake_keras.io import write_csv

    from ..tiny_store import make_store, noise_crops

    keys = [f"folder/{name}.mp4" for name in FORMULA_NAMES]
    store = make_store(tmp_path / "store", {k: (i % 2, "=train" if i == 0 else "train", noise_crops(2, i))
                                            for i, k in enumerate(keys)})
    meta = {c: "" for c in MANIFEST_COLUMNS}
    meta.update(video_id="-failed", store_key="folder/-failed.mp4", path="@/not/a/path", label=-1, status="failed",
                reason="=broken", frames_sampled=0, frames_with_face=0, group="+group")
    store.write_video("folder/-failed.mp4", [], [], meta)
    store.rebuild_index()
    for name in ("faces.csv", "videos.csv", "failures.csv"):
        assert_neutralised(store.root / name)
    for key in keys:
        assert_neutralised(store.root / key / "faces.csv")
    raw = pd.read_csv(store.root / "videos.csv", dtype=str, keep_default_na=False).set_index("store_key")
    assert raw.loc["folder/@SUM(1+1).mp4", "video_id"] == "'@SUM(1+1).mp4"  # neutralised the OWASP way
    assert set(raw.index) == set(keys) | {"folder/-failed.mp4"}  # store keys start with the dataset: never escaped
    failures = pd.read_csv(store.root / "failures.csv", dtype=str, keep_default_na=False)
    assert failures[["video_id", "path", "reason"]].values.tolist() == [["'-failed", "'@/not/a/path", "'=broken"]]
    # the store gives the real names back and works
    faces = FaceStore.open(store.root).faces()
    assert sorted(faces["store_key"].unique()) == sorted(keys)
    assert sorted(faces["video_id"].unique()) == sorted(f"{n}.mp4" for n in FORMULA_NAMES)
    assert set(faces.loc[faces["store_key"] == keys[0], "split"]) == {"=train"}
    for crop in faces["crop"]:
        assert store.load_crop(crop).shape == (32, 32, 3)
    before = (store.root / "faces.csv").read_bytes()
    store.rebuild_index()  # reading back and writing again escapes once, not twice
    assert (store.root / "faces.csv").read_bytes() == before
    write_csv(tmp_path / "out" / "x.csv", faces)
    assert_neutralised(tmp_path / "out" / "x.csv")


def tiny_video(path: Path) -> None:
    import subprocess

    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    "color=c=gray:s=64x64:r=5:d=0.6", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)], check=True)


def test_extract_of_formula_named_videos_writes_neutral_csvs(tmp_path):
    """Tiny face-less clips named like formulas: each fails (no face) and lands in failures.csv
    neutralised; a second run skips them all and rewrites the same bytes."""
    from deepfake_keras.data.datasets import folder_manifest

    root = tmp_path / "videos"
    root.mkdir()
    tiny_video(tmp_path / "clip.mp4")
    data = (tmp_path / "clip.mp4").read_bytes()
    names = ["=cmd|' -C calc'!A0.mp4", "@SUM(1+1).mp4", "+x.mp4", "-x.mp4", "-5.mp4"]
    for name in names:
        (root / name).write_bytes(data)
    manifest = folder_manifest(root)
    out = tmp_path / "store"
    summary = extract(manifest, out, ExtractConfig(frames_per_video=2, detect_size=320), progress=False)
    assert (summary.videos, summary.failed) == (5, 5)
    for name in ("videos.csv", "failures.csv", "faces.csv"):
        assert_neutralised(out / name)
    failures = pd.read_csv(out / "failures.csv", dtype=str, keep_default_na=False).set_index("store_key")
    assert failures.loc["folder/=cmd|' -C calc'!A0.mp4", "video_id"] == "'=cmd|' -C calc'!A0"
    assert failures.loc["folder/-5.mp4", "video_id"] == "-5"  # a number, not a formula
    assert set(failures["reason"]) == {"no face found in 2 sampled frame(s)"}
    store = FaceStore.open(out)
    assert sorted(store.status(k)["video_id"] for k in manifest["store_key"]) == sorted(n[:-4] for n in names)
    before = snapshot(out)
    again = extract(manifest, out, ExtractConfig(frames_per_video=2, detect_size=320), progress=False)
    assert again.skipped == 5 and snapshot(out) == before


# ---------------------------------------------------------------- stores written before the group column

def test_a_store_without_group_loads_and_rebuilds_its_index(tmp_path):
    import json

    from deepfake_keras.data.datasets import MANIFEST_COLUMNS
    from deepfake_keras.data.store import VIDEO_COLUMNS

    from ..tiny_store import make_store, noise_crops

    videos = {"ffpp/c23/original/001": (0, "train", noise_crops(2, 1)),
              "ffpp/c23/Deepfakes/001_002": (1, "test", noise_crops(3, 2))}
    store = make_store(tmp_path / "store", videos)
    for path in store.video_jsons():  # as the previous version wrote them: no group
        meta = json.loads(path.read_text())
        del meta["group"]
        path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    for name in ("faces.csv", "videos.csv", "failures.csv"):
        (store.root / name).unlink()
    per_video = {k: v for k, v in snapshot(store.root).items() if "/" in k}
    config = ExtractConfig(frames_per_video=8, crop_size=32)  # the tiny store's settings
    manifest = pd.DataFrame([{**{c: "" for c in MANIFEST_COLUMNS}, "store_key": k, "label": v[0], "split": v[1],
                              "group": "g"} for k, v in videos.items()])
    summary = extract(manifest, store.root, config, progress=False)  # everything is there: skipped
    assert (summary.skipped, summary.done) == (2, 0)
    faces = FaceStore.open(store.root).faces()
    assert len(faces) == 5 and set(faces["group"]) == {""}  # the old store's empty group
    assert faces.groupby("store_key")["split"].first().to_dict() == {k: v[1] for k, v in videos.items()}
    listed = pd.read_csv(store.root / "videos.csv", keep_default_na=False)
    assert list(listed.columns) == VIDEO_COLUMNS and set(listed["group"]) == {""}
    assert {k: v for k, v in snapshot(store.root).items() if "/" in k} == per_video  # stored videos untouched
