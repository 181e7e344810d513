"""Extraction across processes and machines (issue 15 item 4): ``--shard K/N`` (a job array into one
store, then ``--merge``) and ``--scheduler local:N`` / ``dask://HOST:PORT`` (Dask workers).

On the real FF++ clips of the shared data (7 videos, 4 frames each, detect size 320), a ``local:2``
Dask run and two shards run at the same time into one store (then ``--merge``) each give a store
byte-identical to the single-process run: every file under the store is compared by its bytes,
none is left out. No file of the store holds a timing, and the only absolute paths in it are the
videos' ``path`` (in ``video.json`` and the ``videos.csv``/``faces.csv``/``failures.csv`` index),
which are the same in every run because every run reads the same dataset root, so they compare
byte for byte too. Only ``<store>/.tmp`` (the scratch folder of writes in progress) is not part of
the store.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from deepfake_keras import cli
from deepfake_keras.config import ExtractConfig
from deepfake_keras.data import extract as extract_module
from deepfake_keras.data.extract import (SchedulerError, extract_on_dask_worker, parse_scheduler, parse_shard,
                                         select_shard, shard_of)
from deepfake_keras.data.store import HOST, OTHER_HOST_STALE_S, FaceStore

SETTINGS = ["--frames", "4", "--detect-size", "320", "--compression", "c23", "--quiet"]
CONFIG = ExtractConfig(frames_per_video=4, detect_size=320)


def store_files(root: Path) -> dict:
    """Every file of a store (outside its scratch folder .tmp) -> its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and ".tmp" not in p.relative_to(root).parts}


def assert_same_store(got: Path, want: Path) -> None:
    a, b = store_files(got), store_files(want)
    assert sorted(a) == sorted(b), f"other files: {sorted(set(a) ^ set(b))}"
    differ = [name for name in a if a[name] != b[name]]
    assert not differ, f"files whose bytes differ: {differ}"


def dataset_args(ffpp_mini, ffpp_splits):
    return ["--dataset", "ffpp", "--root", str(ffpp_mini), "--splits", str(ffpp_splits), *SETTINGS]


def extract_cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "deepfake_keras.cli", "extract", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)


# ---------------------------------------------------------------- the partition (no TensorFlow)

KEYS = [f"ffpp/c23/{m}/{i:03d}_{(i * 7) % 1000:03d}" for m in ("Deepfakes", "original") for i in range(500)] + [
    "celebdf/Celeb-real/id0_0000", "folder/clip 1.mp4", "folder/vidéo é.mp4", "folder/\udcff.mp4"]


def test_the_partition_is_sha256_of_the_store_key_and_covers_every_video_once():
    for n in (1, 2, 3, 7, 64):
        shards = [shard_of(key, n) for key in KEYS]
        assert all(1 <= s <= n for s in shards)
        for key, s in zip(KEYS[:50], shards):  # the documented rule, computed here independently
            assert s == int(hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16], 16) % n + 1
    manifest = pd.DataFrame({"store_key": KEYS, "label": [k % 2 for k in range(len(KEYS))]})
    for n in (1, 2, 5):
        parts = [select_shard(manifest, k, n) for k in range(1, n + 1)]
        together = [key for part in parts for key in part["store_key"]]
        assert sorted(together) == sorted(KEYS) and len(set(together)) == len(KEYS)  # each exactly once
        for part in parts:  # the manifest's order kept, its columns too
            assert list(part.columns) == list(manifest.columns)
            assert list(part["store_key"]) == [k for k in KEYS if k in set(part["store_key"])]
    sizes = pd.Series([shard_of(k, 4) for k in KEYS]).value_counts()
    assert sizes.min() > 0.8 * len(KEYS) / 4  # about even


def test_every_machine_agrees_on_the_partition(tmp_path):
    """Another Python process with another hash seed (another machine) computes the same shards."""
    code = ("import json, sys; from deepfake_keras.data.extract import shard_of; "
            "print(json.dumps([shard_of(k, 5) for k in json.load(sys.stdin)]))")
    here = [shard_of(k, 5) for k in KEYS[:200]]
    for seed in ("0", "12345"):
        out = subprocess.run([sys.executable, "-c", code], input=json.dumps(KEYS[:200]), capture_output=True,
                             text=True, env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
        assert json.loads(out) == here


def test_a_video_keeps_its_shard_when_the_dataset_grows():
    before = {k: shard_of(k, 4) for k in KEYS[:300]}
    grown = select_shard(pd.DataFrame({"store_key": KEYS}), 2, 4)  # the whole list: more videos
    assert {k for k in grown["store_key"] if k in before} == {k for k, s in before.items() if s == 2}


@pytest.mark.parametrize("value, says", [
    ("0/2", "K must be from 1 to 2"), ("3/2", "K must be from 1 to 2"), ("-1/2", "K must be from 1 to 2"),
    ("1/0", "N (the number of shards) must be at least 1"), ("1/-3", "must be at least 1"),
    ("2", "is not K/N"), ("a/b", "is not K/N"), ("1/2/3", "is not K/N"), ("", "is not K/N"), ("1.5/2", "is not K/N")])
def test_bad_shard_values_are_refused_in_one_line(tmp_path, capsys, value, says):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(b"never read")
    code = cli.main(["extract", "--dataset", "folder", "--root", str(tmp_path / "videos"), "--out",
                     str(tmp_path / "store"), f"--shard={value}", "--quiet"])  # = : "-1/2" is a value
    err = capsys.readouterr().err
    assert code == 2 and says in err and "shard" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "store").exists()


def test_good_shard_values_parse():
    assert parse_shard("1/1") == (1, 1) and parse_shard(" 3 / 4 ") == (3, 4) and parse_shard("10/10") == (10, 10)


@pytest.mark.parametrize("value", ["local:0", "local:-1", "local:x", "local", "dask://", "dask://host",
                                   "dask://host:99999", "tcp://host:8786", "http://host:8786/x"])
def test_bad_scheduler_values_are_refused_in_one_line(tmp_path, capsys, value):
    with pytest.raises(SchedulerError, match="neither dask://HOST:PORT"):
        parse_scheduler(value)
    (tmp_path / "videos").mkdir()
    code = cli.main(["extract", "--dataset", "folder", "--root", str(tmp_path / "videos"), "--out",
                     str(tmp_path / "store"), "--scheduler", value, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "store").exists()


def test_good_scheduler_values_parse():
    assert parse_scheduler("local:2") == ("local", 2)
    assert parse_scheduler("dask://head-node.cluster:8786") == ("address", "tcp://head-node.cluster:8786")
    assert parse_scheduler("dask://10.0.0.5:8786") == ("address", "tcp://10.0.0.5:8786")


def test_scheduler_without_dask_names_the_install_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # `import dask.distributed` fails as if absent
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(b"never read")
    for value in ("local:2", "dask://localhost:8786"):
        code = cli.main(["extract", "--dataset", "folder", "--root", str(tmp_path / "videos"), "--out",
                         str(tmp_path / "store"), "--scheduler", value, "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert "pip install -e .[distributed]" in err and "not installed" in err
        assert not (tmp_path / "store").exists()


def test_merge_and_dataset_options_go_together_as_documented(tmp_path, capsys):
    for argv in (["--merge", "--shard", "1/2"], ["--merge", "--scheduler", "local:2"], [],
                 ["--dataset", "folder"], ["--root", str(tmp_path)]):
        code = cli.main(["extract", "--out", str(tmp_path / "store"), *argv])
        err = capsys.readouterr().err
        assert code == 2 and "--merge --out STORE" in err and len(err.strip().splitlines()) == 1
    code = cli.main(["extract", "--merge", "--out", str(tmp_path / "nothing")])
    assert code == 2 and "not a face store" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists() and not (tmp_path / "store").exists()


# ---------------------------------------------------------------- one store, several writers (no TensorFlow)

def test_a_store_being_created_by_another_process_is_joined_not_refused(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    # another shard is writing the config right now: only its temporary file is there
    (root / f".extract_config.json.{os.getpid() + 1}.abcd1234.tmp").write_bytes(b"{")
    FaceStore(root, CONFIG)
    assert (root / "extract_config.json").is_file()
    other = ExtractConfig(frames_per_video=4, detect_size=320, crop_size=160)
    with pytest.raises(ValueError, match="other settings"):  # the first config wins; the others check it
        FaceStore(root, other)


def test_scratch_folders_of_other_machines_are_left_to_them(tmp_path):
    root = tmp_path / "store"
    FaceStore(root, CONFIG)
    tmp = root / ".tmp"
    tmp.mkdir(exist_ok=True)
    dead_here = tmp / f"999999999-{HOST}-{uuid.uuid4().hex}"  # no such process on this machine
    old_format = tmp / f"999999999-{uuid.uuid4().hex}"  # written before machines were named: this machine's
    elsewhere = tmp / f"4242-h0badcafe-{uuid.uuid4().hex}"  # a live write on another machine
    stale = tmp / f"4243-h0badcafe-{uuid.uuid4().hex}-old"  # another machine's, untouched for too long
    for folder in (dead_here, old_format, elsewhere, stale):
        folder.mkdir()
        (folder / "000001.png").write_bytes(b"x")
    old = time.time() - OTHER_HOST_STALE_S - 60
    os.utime(stale, (old, old))
    FaceStore(root, CONFIG)
    assert sorted(p.name for p in tmp.iterdir()) == [elsewhere.name]


def test_a_video_stored_meanwhile_by_another_process_is_kept(tmp_path, monkeypatch):
    """Two writers of one video (a Dask task run again while the first still ran): the second keeps the
    first one's folder instead of failing."""
    store = FaceStore(tmp_path / "store", CONFIG)
    key = "folder/a.mp4"
    meta = {"store_key": key, "status": "failed", "reason": "first"}
    real_rename = os.rename

    def rename(src, dst):
        if Path(dst) == store.video_dir(key) and not Path(dst).exists():  # the other process is first
            other = store.root / ".tmp" / "other"
            other.mkdir(parents=True)
            (other / "video.json").write_text(json.dumps(meta))
            (other / "faces.csv").write_text("frame\n")
            real_rename(other, dst)
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    store.write_video(key, [], [], {"store_key": key, "status": "failed", "reason": "second"})
    assert json.loads((store.video_dir(key) / "video.json").read_text())["reason"] == "first"
    assert not [p for p in (store.root / ".tmp").iterdir() if p.name != "other"]


def test_a_worker_that_does_not_see_the_store_says_so(tmp_path):
    with pytest.raises(SchedulerError, match="must see the store's file system at the same path"):
        extract_on_dask_worker({"store_key": "folder/a.mp4"}, str(tmp_path / "elsewhere"), CONFIG.to_dict())


# ---------------------------------------------------------------- the real clips

@pytest.fixture(scope="module")
def reference(ffpp_mini, ffpp_splits, tmp_path_factory):
    """The single-process run (``--workers 0``)."""
    out = tmp_path_factory.mktemp("single") / "store"
    assert cli.main(["extract", *dataset_args(ffpp_mini, ffpp_splits), "--out", str(out), "--workers", "0"]) == 0
    assert len(list(out.rglob("video.json"))) == 7
    return out


def test_dask_local_cluster_gives_the_single_process_store(reference, ffpp_mini, ffpp_splits, tmp_path, capsys):
    out = tmp_path / "store"
    code = cli.main(["extract", *dataset_args(ffpp_mini, ffpp_splits), "--out", str(out), "--scheduler", "local:2"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "7 extracted, 0 already in the store (skipped), 0 failed; 28 face crop(s)" in captured.out
    assert "2 worker(s), 2 thread(s)" in captured.err
    assert_same_store(out, reference)


def test_shards_at_the_same_time_then_merge_give_the_single_process_store(reference, ffpp_mini, ffpp_splits,
                                                                         tmp_path, capsys):
    out = tmp_path / "store"  # created by the shards themselves, at the same moment
    args = [*dataset_args(ffpp_mini, ffpp_splits), "--out", str(out), "--workers", "0"]
    procs = [extract_cli(*args, "--shard", f"{k}/2") for k in (1, 2)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    counts = []
    for k, log in zip((1, 2), logs):
        line = next(x for x in log.splitlines() if x.startswith(f"shard {k}/2: "))
        counts.append(int(line.split()[2]))
        assert line.endswith("of the manifest's 7 video(s)") and "index not rebuilt (a shard)" in log
        assert f"--merge --out {out}" in log
    assert sum(counts) == 7 and 0 < counts[0] < 7  # both shards had work on this manifest
    assert not any((out / name).exists() for name in ("videos.csv", "faces.csv", "failures.csv"))

    assert cli.main(["extract", "--merge", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "7 video(s), 7 ok, 0 failed; 28 face crop(s)" in text
    assert_same_store(out, reference)


def test_merge_lists_the_videos_no_shard_has_stored(reference, ffpp_mini, ffpp_splits, tmp_path, capsys):
    out = tmp_path / "store"
    shutil.copytree(reference, out)
    missing = "ffpp/c23/Deepfakes/519_515"
    shutil.rmtree(out / missing)
    code = cli.main(["extract", "--merge", "--out", str(out), *dataset_args(ffpp_mini, ffpp_splits)])
    text = capsys.readouterr().out
    assert code == 1
    assert "6 video(s), 6 ok, 0 failed" in text and "6 of the manifest's 7 video(s) are in the store, 1 not" in text
    assert f"MISSING {missing}" in text
    assert missing not in set(pd.read_csv(out / "videos.csv")["store_key"])


def _workers_of(pid: int) -> list:
    """Pids of the multiprocessing (spawn) children of ``pid``: the Dask workers of a LocalCluster."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid and \
                    b"spawn_main" in (stat.parent / "cmdline").read_bytes():
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_dask_worker_killed_mid_run_loses_nothing(reference, ffpp_mini, ffpp_splits, tmp_path, capsys):
    """kill -9 of a worker while it extracts: Dask runs its video again on a worker, the store is whole."""
    out = tmp_path / "store"
    killed = []

    def kill_one():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            workers = _workers_of(os.getpid())
            if workers and any(out.rglob("video.json")):  # the workers are extracting
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one, daemon=True)
    killer.start()
    code = cli.main(["extract", *dataset_args(ffpp_mini, ffpp_splits), "--out", str(out), "--scheduler", "local:2"])
    killer.join(timeout=10)
    captured = capsys.readouterr()
    assert killed, "no worker was killed"
    done = len(list(out.rglob("video.json")))
    assert code == 0 and done == 7, captured.out + captured.err
    assert_same_store(out, reference)


def test_extract_function_takes_the_scheduler_and_leaves_the_index_to_merge(monkeypatch, tmp_path):
    """``extract(index=False)`` (a shard) does not write the index CSVs; the scheduler is parsed first."""
    with pytest.raises(SchedulerError):
        extract_module.extract(pd.DataFrame(columns=["store_key"]), tmp_path / "s", CONFIG, scheduler="local:0")
    assert not (tmp_path / "s").exists()
    summary = extract_module.extract(pd.DataFrame(columns=["store_key"]), tmp_path / "s", CONFIG, index=False,
                                     progress=False)
    assert summary.videos == 0 and sorted(p.name for p in (tmp_path / "s").iterdir()) == ["extract_config.json"]
