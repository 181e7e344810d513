"""The command line refuses impossible options with one line, before anything is written."""
import pytest

from deepfake_keras import cli


@pytest.mark.parametrize("option, value, says", [
    ("--fps", "1e12", "fps must be"), ("--fps", "inf", "fps must be"), ("--fps", "nan", "fps must be"),
    ("--batch-size", "0", "batch_size must be"), ("--frames", "1000000000", "frames_per_video must be"),
    ("--crop-size", "4000", "crop_size must be")])
def test_extract_refuses_impossible_options(tmp_path, capsys, option, value, says):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(b"not read")
    code = cli.main(["extract", "--dataset", "folder", "--root", str(tmp_path / "videos"), "--out",
                     str(tmp_path / "store"), option, value, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and says in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "store").exists()


def test_extract_refuses_settings_whose_frames_would_not_fit_in_memory(tmp_path, capsys):
    """``--frames 10000`` is in range, but its sampled frames (each held at up to 1920 px with its crop)
    would take 105 GiB: refused before anything is written, naming the setting and the memory."""
    from deepfake_keras.config import MAX_FRAME_BYTES, ExtractConfig, frame_memory

    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(b"not read")
    code = cli.main(["extract", "--dataset", "folder", "--root", str(tmp_path / "videos"), "--out",
                     str(tmp_path / "store"), "--frames", "10000", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "error: frames_per_video 10000 at max_frame_side 1920 and crop_size 299 would hold up to 105.5 GiB" in err
    assert "more than 2 GiB" in err
    assert not (tmp_path / "store").exists()
    # the bound: the paper's settings fit with room to spare; the largest count that fits at the defaults is taken
    d = ExtractConfig()
    assert frame_memory(25, d.max_frame_side, d.crop_size) < MAX_FRAME_BYTES / 7
    most = MAX_FRAME_BYTES // frame_memory(1, d.max_frame_side, d.crop_size)
    assert ExtractConfig(frames_per_video=most).frames_per_video == most == 189
    with pytest.raises(ValueError, match="^frames_per_video 190 at max_frame_side 1920"):
        ExtractConfig(frames_per_video=most + 1)
    # the crops count too: 200 frames of 64 px take 2.5 MB, their 2,048 px crops 2.3 GiB
    with pytest.raises(ValueError, match=r"^frames_per_video 200 at max_frame_side 64 and crop_size 2048 .* 2\.3 GiB"):
        ExtractConfig(max_frame_side=64, crop_size=2048, frames_per_video=200)


def test_experiment_options_are_checked_too(tmp_path, capsys):
    code = cli.main(["ffpp-triplet", "--out", str(tmp_path / "r"), "--no-face-score", "2"])
    assert code == 2 and "no_face_score must be a probability" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_full_disk_is_one_line_and_the_rerun_goes_on(tmp_path, capsys, monkeypatch):
    """The disk fills while the second video is written: one line naming the file and the reason, exit 2,
    the first video kept whole; the same command run again extracts the rest."""
    import errno
    import os

    import pandas as pd

    from deepfake_keras.data.store import FaceStore

    from .conftest import shared

    root = shared("face_videos")
    argv = ["extract", "--dataset", "folder", "--root", str(root), "--out", str(tmp_path / "store"), "--frames", "2",
            "--workers", "0", "--quiet"]  # in this process, where the disk is made to fill
    real_write = FaceStore.write_video
    calls = []

    def full_disk(self, store_key, *args, **kwargs):
        calls.append(store_key)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.root / store_key / "video.json"))
        return real_write(self, store_key, *args, **kwargs)

    monkeypatch.setattr(FaceStore, "write_video", full_disk)
    assert cli.main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "No space left on device" in err[0] and calls[1] in err[0]
    videos = pd.read_csv(tmp_path / "store" / "videos.csv")
    assert videos["store_key"].tolist() == [calls[0]] and videos["status"].tolist() == ["ok"]
    monkeypatch.setattr(FaceStore, "write_video", real_write)
    assert cli.main(argv) == 0
    assert len(pd.read_csv(tmp_path / "store" / "videos.csv")) == 2


def test_a_disk_full_for_the_index_too_still_reports_the_first_error(tmp_path, capsys, monkeypatch):
    """When the index cannot be written either, the error that stopped the run is the one reported."""
    import errno
    import os

    from deepfake_keras.data.store import FaceStore

    from .conftest import shared

    root = shared("face_videos")
    argv = ["extract", "--dataset", "folder", "--root", str(root), "--out", str(tmp_path / "store"), "--frames", "2",
            "--workers", "0", "--quiet"]

    def full(path):
        def fail(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.root / path))
        return fail

    monkeypatch.setattr(FaceStore, "write_video", full("a/video.json"))
    monkeypatch.setattr(FaceStore, "rebuild_index", full("videos.csv"))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    [line] = [line for line in err.splitlines() if "error" in line]
    assert "a/video.json" in line and "No space left on device" in line
    assert "could not be rebuilt" in err and "videos.csv" not in line
