"""Hostile media files: playlists and concat lists that point outside the input folder, formats that
open the files beside them (a VobSub index, a Magic Lantern video), names that read as FFmpeg URLs, a
header that lies about the length, an hour-long input. Each is refused with its reason, or read as
the plain file it is, by every reader: the sampled-frame reader (extract and predict), the annotated
copy (``annotate_video``) and the OpenCV fallback; memory stays bounded by the sampled frames. Every
input is made here (ffmpeg, or bytes written by the test)."""
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from deepfake_keras import cli
from deepfake_keras.config import ExtractConfig
from deepfake_keras.data import decode, video
from deepfake_keras.data.decode import DENIED_DEMUXERS, NOT_A_VIDEO, NOT_PLAIN, allowed_demuxers, looks_like_playlist
from deepfake_keras.data.video import VideoError, iter_frames, read_frames, sample_indices, video_info
from deepfake_keras.inference.annotate import annotate_video

from .. import corpus
from ..tiny_bundle import make_triplet_bundle
from .test_extract_bad_inputs import listing, read_index

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


# ---------------------------------------------------------------- formats that open the files beside them

REPO = Path(__file__).resolve().parents[2]


def vobsub_index(folder, name="a.mp4") -> Path:
    """A VobSub index named ``.mp4``: FFmpeg's vobsub demuxer opens ``a.sub`` beside it (the name's last
    three letters replaced)."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# VobSub index file, v7 (do not modify this line!)\nsize: 720x576\nid: en, index: 0\n"
                    "timestamp: 00:00:00:000, filepos: 000000000\n")
    return path


def mlv_header(folder, name="raw.mov") -> Path:
    """The 52-byte file header of a Magic Lantern video announcing one raw video frame, named ``.mov``:
    FFmpeg's mlv demuxer opens ``raw.m00``, ``raw.m01``... beside it (the name's last two letters replaced)."""
    header = (b"MLVI" + struct.pack("<I", 52) + b"v2.0\0\0\0\0"  # block type, header size, version
              + struct.pack("<Q", 0x5EC2E7) + struct.pack("<HHI", 0, 1, 0)  # GUID; file number, count, flags
              + struct.pack("<HHII", 1, 0, 1, 0)  # video class (raw), audio class (none), video and audio frames
              + struct.pack("<II", 25, 1))  # frame rate
    assert len(header) == 52
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header)
    return path


def fifo_beside(folder, name, outside: Path) -> Path:
    """``folder/name``, a symbolic link to a FIFO in ``outside`` (a folder beside the input folder); the
    FIFO is returned. Opening it for reading waits for a writer: forever, unless :func:`run_watching`."""
    outside.mkdir(parents=True, exist_ok=True)
    fifo = outside / f"{name}.fifo"
    os.mkfifo(fifo)
    (Path(folder) / name).symlink_to(fifo)
    return fifo


def run_watching(fifos, code: str, *args, logs: Path, timeout: float = 120):
    """``python -c code *args`` in a fresh process while watching ``fifos``: returns its exit status, its
    standard output and the FIFOs it opened. A FIFO opened for reading is detected by a non-blocking open
    for writing, which succeeds only while a reader has it open (or waits in ``open``); that open also
    lets the reader go on, so a reader that opens one fails the test instead of hanging it."""
    logs.mkdir(parents=True, exist_ok=True)
    out, err = logs / "stdout", logs / "stderr"
    opened = set()
    with open(out, "wb") as stdout, open(err, "wb") as stderr:  # files: OpenCV's FFmpeg logs a lot
        proc = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=stdout, stderr=stderr,
                                stdin=subprocess.DEVNULL, cwd=REPO)
        try:
            deadline = time.monotonic() + timeout
            while proc.poll() is None:
                assert time.monotonic() < deadline, f"still running after {timeout} s: {err.read_text()[-2000:]}"
                for fifo in fifos:
                    try:
                        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO: no reader
                    except OSError:
                        continue
                    os.close(fd)
                    opened.add(Path(fifo))
                time.sleep(0.01)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return proc.returncode, out.read_text(), opened


#: FFmpeg without this package's whitelists (the premise: it opens the file beside the input)
PLAIN_PYAV = """
import sys, av
try:
    av.open(sys.argv[1]).close()
except av.error.FFmpegError:
    pass
"""

#: every reader on argv[1]: {reader: [problem, whether the message names the file]}, "read" if it read it
EVERY_READER = """
import json, sys
from deepfake_keras.data import decode, video
from deepfake_keras.data.video import VideoError, iter_frames, read_frames, video_info
from deepfake_keras.inference.annotate import annotate_video

path, out = sys.argv[1], sys.argv[2]


def whitelist_alone():  # without the first-bytes check
    decode.looks_like_playlist = lambda p: False
    decode.open_container(path).close()


def opencv_alone():  # ...and with PyAV pretending it cannot read the file: OpenCV asked, under the whitelists
    def cannot(p):
        raise decode.CannotOpen("pretend PyAV cannot read it")
    video.open_container = cannot
    read_frames(path, 3)


readers = {
    "read_frames": lambda: read_frames(path, 3),
    "read_frames pyav": lambda: read_frames(path, 3, decoder="pyav"),
    "read_frames opencv": lambda: read_frames(path, 3, decoder="opencv"),
    "video_info": lambda: video_info(path),
    "open_video": lambda: video.open_video(path).release(),
    "iter_frames": lambda: next(iter_frames(path)),
    "annotate_video": lambda: annotate_video(path, out + "/a.annotated.mp4",
                                             {"frames": [], "sampled_frames": [], "status": "failed", "video": {}}),
    "whitelist alone": whitelist_alone,
    "opencv alone": opencv_alone,
}
results = {}
for name, read in readers.items():
    try:
        read()
        results[name] = "read"
    except VideoError as e:
        results[name] = [e.problem, path in str(e)]
print(json.dumps(results))
"""

BESIDE = {"vobsub": (vobsub_index, "a.mp4", "a.sub"), "mlv": (mlv_header, "raw.mov", "raw.m00")}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("demuxer", sorted(BESIDE))
def test_formats_that_open_the_files_beside_them_are_refused_without_opening_them(tmp_path, demuxer):
    """A VobSub index (or a Magic Lantern video) saved as a video, the file FFmpeg would open beside it a
    link to a FIFO outside the input folder: every reader refuses it as not a plain media file, within
    seconds, and the FIFO is never opened."""
    make, name, beside = BESIDE[demuxer]
    root, outside = tmp_path / "input", tmp_path / "secret"
    path = make(root, name)
    fifo = fifo_beside(root, beside, outside)
    assert demuxer in DENIED_DEMUXERS and demuxer not in allowed_demuxers().split(",")
    assert looks_like_playlist(path)
    code, _, opened = run_watching([fifo], PLAIN_PYAV, path, logs=tmp_path / "premise")
    assert opened == {fifo}  # the premise: FFmpeg alone opens the FIFO (and would wait for a writer forever)
    before, outside_before = listing(root), listing(outside)
    out = tmp_path / "annotated"
    out.mkdir()
    code, printed, opened = run_watching([fifo], EVERY_READER, path, out, logs=tmp_path / "readers")
    assert code == 0 and not opened, opened
    results = json.loads(printed.strip().splitlines()[-1])
    expected = {reader: [NOT_PLAIN, True] for reader in results}
    expected["opencv alone"] = [NOT_A_VIDEO, True]  # OpenCV's FFmpeg refuses it too, without saying why
    assert results == expected
    assert list(out.iterdir()) == []  # no annotated copy, not even a temporary one
    assert listing(root) == before and listing(outside) == outside_before


EXTRACT = "import sys; from deepfake_keras import cli; sys.exit(cli.main(sys.argv[1:]))"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_extract_records_formats_that_open_the_files_beside_them_and_goes_on(tmp_path):
    root, outside = tmp_path / "input", tmp_path / "secret"
    vobsub = vobsub_index(root, "a.mp4")
    mlv = mlv_header(root, "raw.mov")
    fifos = [fifo_beside(root, "a.sub", outside), fifo_beside(root, "raw.m00", outside)]
    corpus.one_frame(root, "z good.mp4")  # after the bad ones in the manifest's order
    before, outside_before = listing(root), listing(outside)
    out = tmp_path / "store"
    code, printed, opened = run_watching(
        fifos, EXTRACT, "extract", "--dataset", "folder", "--root", root, "--out", out, "--workers", "0",
        "--frames", "2", "--detect-size", "320", "--quiet", logs=tmp_path / "extract", timeout=600)
    assert not opened, opened
    assert code == 1  # something failed
    failures = read_index(out, "failures.csv").set_index("store_key")
    assert failures["reason"].to_dict() == {"folder/a.mp4": NOT_PLAIN, "folder/raw.mov": NOT_PLAIN}
    assert failures.loc["folder/a.mp4", "path"] == str(vobsub) and failures.loc["folder/raw.mov", "path"] == str(mlv)
    for key in ("folder/a.mp4", "folder/raw.mov"):
        assert f"FAILED {key}: {NOT_PLAIN}" in printed
    videos = read_index(out, "videos.csv").set_index("store_key")
    assert sorted(videos.index) == ["folder/a.mp4", "folder/raw.mov", "folder/z good.mp4"]  # no .sub, no .m00
    assert videos.loc["folder/z good.mp4", "status"] == "ok"  # the batch went on
    assert videos.loc["folder/z good.mp4", "frames_with_face"] == 1
    assert listing(root) == before and listing(outside) == outside_before


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


@pytest.mark.parametrize("out", [".", "p:q"])
def test_predict_writes_the_annotated_copy_of_a_name_with_a_colon_into_a_relative_out(bundle, tmp_path,
                                                                                    monkeypatch, out):
    """ffmpeg writes the annotated copy to ``file:<absolute path>``: its temporary name
    (``.x:y.annotated...``, ``p:q/.x:y...``) is never read as a protocol's URL ("Protocol not found")."""
    corpus.pipe_url_name(tmp_path, "x:y.mp4")
    monkeypatch.chdir(tmp_path)
    code = cli.main(["predict", "x:y.mp4", "--model", str(bundle), "--out", out, "--quiet"])
    folder = tmp_path / out
    report = json.loads((folder / "x:y.json").read_text())
    assert code == 0 and report["status"] == "scored" and "errors" not in report, report.get("errors")
    assert report["outputs"]["annotated_video"] == "x:y.annotated.mp4"
    assert len(list(iter_frames(folder / "x:y.annotated.mp4"))) == report["annotated_frames"] == 3
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left behind
