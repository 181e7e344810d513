"""Hostile media files: playlists and concat lists that point outside the input folder, names that
read as FFmpeg URLs, a header that lies about the length, an hour-long input. Each is refused with
its reason, or read as the plain file it is, by every reader: the sampled-frame reader (extract and
predict), the annotated copy (``annotate_video``) and the OpenCV fallback; memory stays bounded by
the sampled frames. Every input is made here (ffmpeg, or bytes written by the test)."""
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from deepfake_keras import cli
from deepfake_keras.config import ExtractConfig
from deepfake_keras.data import decode, video
from deepfake_keras.data.decode import NOT_A_VIDEO, NOT_PLAIN
from deepfake_keras.data.video import VideoError, iter_frames, read_frames, sample_indices, video_info
from deepfake_keras.inference.annotate import annotate_video

from .. import corpus
from ..tiny_bundle import make_triplet_bundle
from .test_extract_bad_inputs import listing

REFUSED = ["hls_playlist", "ffconcat_list", "hls_m3u8"]
MEMORY_MB = 400  # peak resident memory allowed for reading 25 frames (Python, numpy, PyAV, OpenCV: ~100 MB)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """An input folder with the hostile files and good clips, and the folder beside it they point into."""
    root = tmp_path_factory.mktemp("hostile") / "input"
    root.mkdir()
    paths = {name: corpus.BUILDERS[name](root) for name in
             ("hls_playlist", "ffconcat_list", "concat_url_name", "pipe_url_name", "av1", "huge_duration")}
    paths["hls_m3u8"] = root / "playlist.m3u8"
    paths["hls_m3u8"].write_text(paths["hls_playlist"].read_text())
    paths["good"] = corpus.spaces(root, "one_frame.mp4")  # the name concat:one_frame.mp4 points at
    outside = root.parent / corpus.OUTSIDE
    return SimpleNamespace(root=root, outside=outside, paths=paths, before=listing(root),
                           outside_before=listing(outside))


def untouched(hostile) -> bool:
    return listing(hostile.root) == hostile.before and listing(hostile.outside) == hostile.outside_before


@pytest.mark.parametrize("name", REFUSED)
def test_every_reader_refuses_a_playlist(hostile, tmp_path, name):
    path = hostile.paths[name]
    for decoder in ("auto", "pyav", "opencv"):
        with pytest.raises(VideoError) as e:
            read_frames(path, 3, decoder=decoder)
        assert e.value.problem == NOT_PLAIN and str(path) in str(e.value)
    for reader in (video_info, video.open_video, lambda p: next(iter_frames(p))):
        with pytest.raises(VideoError, match="not a plain media file"):
            reader(path)
    report = {"frames": [], "sampled_frames": [], "status": "failed", "video": {}}
    with pytest.raises(VideoError, match="not a plain media file"):
        annotate_video(path, tmp_path / "a.annotated.mp4", report)
    assert list(tmp_path.iterdir()) == []  # no annotated copy, not even a temporary one
    assert untouched(hostile)


def test_the_opencv_fallback_alone_refuses_playlists(hostile, monkeypatch):
    """Without the first-bytes check and with PyAV pretending it cannot read the file, OpenCV still
    refuses: it opens ``file:`` URLs under the same protocol and demuxer whitelists."""
    hls = hostile.paths["hls_playlist"]
    cap = cv2.VideoCapture(str(hls))  # the premise: plain OpenCV follows the playlist out of the folder
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (360, 640, 3)
    local = hostile.root.parent / "local_list"
    local.mkdir(exist_ok=True)
    corpus.one_frame(local, "target.mp4")
    concat = local / "list.mp4"
    concat.write_text("ffconcat version 1.0\nfile target.mp4\n")  # a name FFmpeg's concat calls safe
    cap = cv2.VideoCapture(str(concat))
    assert cap.read()[0]
    cap.release()

    def cannot(path):
        raise decode.CannotOpen("pretend PyAV cannot read it")

    monkeypatch.setattr(decode, "looks_like_playlist", lambda path: False)
    monkeypatch.setattr(video, "open_container", cannot)
    for path in (hls, hostile.paths["hls_m3u8"], concat):
        with pytest.raises(VideoError) as e:
            read_frames(path, 3)  # PyAV "cannot", so OpenCV is asked
        assert e.value.problem == NOT_A_VIDEO, path
    assert "OPENCV_FFMPEG_CAPTURE_OPTIONS" not in os.environ  # set for the call only
    assert read_frames(hostile.paths["good"], 3).decoder == "opencv"  # plain files still open
    assert untouched(hostile)


def test_names_that_read_as_ffmpeg_urls_are_plain_files(hostile, monkeypatch, tmp_path):
    monkeypatch.chdir(hostile.root)  # as URLs, concat:one_frame.mp4 would read ./one_frame.mp4
    for decoder in ("auto", "opencv"):
        with pytest.raises(VideoError) as e:
            read_frames("concat:one_frame.mp4", 3, decoder=decoder)
        assert e.value.problem == NOT_A_VIDEO
        got = read_frames("pipe:clip.mp4", 3, decoder=decoder)  # as a URL: standard input, waiting
        assert got.indices == [0, 1, 2] and got.decoder == decoder.replace("auto", "pyav")
    written = annotate_video("pipe:clip.mp4", tmp_path / "clip.annotated.mp4",
                             {"frames": [], "sampled_frames": [0], "status": "scored", "video": {"fps": 25}})
    assert written["frames"] == 3
    assert untouched(hostile)


def test_av1_is_decoded_and_opencv_says_its_build_cannot(hostile):
    path = hostile.paths["av1"]
    frames = read_frames(path, 3)
    assert (frames.decoder, frames.indices, frames.images[0].shape) == ("pyav", [0, 1, 2], (360, 640, 3))
    reference = cv2.cvtColor(corpus.ffpp_frames(1, corpus.SMALL)[0], cv2.COLOR_BGR2RGB).astype(int)
    assert np.abs(frames.images[0] - reference).mean() < 12  # the picture (AV1 at CRF 40), not noise
    with pytest.raises(VideoError) as e:
        read_frames(path, 3, decoder="opencv")
    assert e.value.problem == "codec av1 not supported by this build of OpenCV"


# ---------------------------------------------------------------- memory and time bounded by the sampled frames

def read_in_subprocess(path, **kwargs) -> dict:
    """``read_frames(path, **kwargs)`` in a fresh Python: its indices and peak resident memory (MB; the
    process's own high-water mark, VmHWM: ``ru_maxrss`` would include this process's size at the fork)."""
    code = ("import json, re, sys; from deepfake_keras.data.video import read_frames; "
            f"f = read_frames(sys.argv[1], **{kwargs!r}); "
            "hwm = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); "
            "print(json.dumps({'indices': f.indices, 'mb': hwm / 1024}))")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_header_claiming_30000_years_is_not_used_for_sampling(hostile):
    path = hostile.paths["huge_duration"]
    cap = cv2.VideoCapture(str(path))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) > 1e13  # the premise: the header's claim, 2.5e13 frames
    cap.release()
    assert video_info(path).reported_frames > 10 ** 13
    got = read_in_subprocess(path, frames_per_video=25, consecutive=True)
    assert got["indices"] == list(range(12, 37)) == sample_indices(50, 25, consecutive=True)
    assert got["mb"] < MEMORY_MB


@pytest.fixture(scope="module")
def hour_long(tmp_path_factory) -> Path:
    """One hour of 256x144 video at 25 fps (90,000 frames, a key frame every 10 s): ten seconds of
    ffmpeg's test pattern encoded once, then 360 copies joined without re-encoding."""
    folder = tmp_path_factory.mktemp("hour")
    ffmpeg = corpus.ffmpeg_exe()
    piece = folder / "piece.mp4"
    subprocess.run([ffmpeg, "-y", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=256x144:rate=25",
                    "-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-g", "250", "-pix_fmt", "yuv420p",
                    str(piece)], check=True, capture_output=True)
    listed = folder / "pieces.txt"
    listed.write_text("ffconcat version 1.0\n" + "file piece.mp4\n" * 360)
    path = folder / "hour.mp4"
    subprocess.run([ffmpeg, "-y", "-nostdin", "-v", "error", "-f", "concat", "-i", str(listed), "-c", "copy",
                    str(path)], check=True, capture_output=True)
    return path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_an_hour_long_video_reads_25_frames_in_bounded_memory(hour_long):
    assert video_info(hour_long).reported_frames == 90_000
    for kwargs in ({}, {"consecutive": True}, {"rate": 1}):
        got = read_in_subprocess(hour_long, frames_per_video=25, **kwargs)
        assert got["indices"] == sample_indices(90_000, 25, 25.0, kwargs.get("rate"), kwargs.get("consecutive", False))
        assert got["mb"] < MEMORY_MB, kwargs


# ---------------------------------------------------------------- predict, end to end

@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A tiny triplet bundle (one epoch on random 128-d vectors: the scores mean nothing)."""
    return make_triplet_bundle(tmp_path_factory.mktemp("model") / "bundle", ExtractConfig(frames_per_video=3, detect_size=320))


def test_predict_refuses_playlists_and_scores_the_rest(hostile, bundle, tmp_path, monkeypatch):
    monkeypatch.chdir(hostile.root)
    names = ["playlist.mp4", "concat_list.mp4", "playlist.m3u8", "concat:one_frame.mp4", "pipe:clip.mp4",
             "one_frame.mp4"]
    out = tmp_path / "predictions"
    code = cli.main(["predict", *names, "--model", str(bundle), "--out", str(out), "--quiet"])
    assert code == 1  # something failed
    reports = {json.loads(p.read_text())["input"]: json.loads(p.read_text()) for p in out.glob("*.json")}
    for name in ("playlist.mp4", "concat_list.mp4", "playlist.m3u8"):
        report = next(r for shown, r in reports.items() if shown.endswith(name))
        assert (report["status"], report["error"]) == ("failed", NOT_PLAIN), name
        assert "annotated_video" not in report["outputs"], name
    junk = next(r for shown, r in reports.items() if shown.endswith("concat:one_frame.mp4"))
    assert (junk["status"], junk["error"]) == ("failed", NOT_A_VIDEO)
    for name in ("pipe:clip.mp4", "one_frame.mp4"):  # the rest of the batch: scored, with an annotated copy
        report = next(r for shown, r in reports.items() if shown.endswith(name) and "concat:" not in shown)
        assert report["status"] == "scored" and report["faces_found"] == 3, name
        annotated = out / report["outputs"]["annotated_video"]
        assert len(list(iter_frames(annotated))) == 3
    annotated = sorted(p.name for p in out.glob("*.annotated.mp4"))
    assert len(annotated) == 2 and not any("playlist" in n or "concat" in n for n in annotated)
    assert untouched(hostile)
