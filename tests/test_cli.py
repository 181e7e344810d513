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


def test_experiment_options_are_checked_too(tmp_path, capsys):
    code = cli.main(["ffpp-triplet", "--out", str(tmp_path / "r"), "--no-face-score", "2"])
    assert code == 2 and "no_face_score must be a probability" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
