"""The PyAV decoder: the whitelists, the packet index and the decoding plan worked out by hand, the
frames it returns bit-identical to a full in-order decode on every video of the shared data (seeking
forced on, off and decided per video; the clips beyond a fast subset marked slow), colour conversion of tagged, full-range, 10-bit and 4:4:4 sources, rotation, variable frame rate."""
import subprocess
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from deepfake_keras.data import decode
from deepfake_keras.data.datasets import VIDEO_EXTENSIONS
from deepfake_keras.data.decode import (DENIED_DEMUXERS, PacketIndex, allowed_demuxers, iter_decoded, media_url,
                                        plan_segments, to_array)
from deepfake_keras.data.video import VideoError, read_frames, sample_indices

from .. import corpus
from ..conftest import SHARED_DATA, shared

FFPP = "ffpp_mini/{}/c23/videos/{}.mp4"
# the fast subset: every clip of ffpp_mini, dfdc_mini and face_videos, and a handful of ffpp_c23_subset (other
# sizes, a key frame at 242 rather than 250, 292 frames)
CLIPS = [
    FFPP.format("original_sequences/youtube", "004"), FFPP.format("original_sequences/youtube", "519"),
    FFPP.format("original_sequences/youtube", "634"), FFPP.format("manipulated_sequences/NeuralTextures", "004_982"),
    FFPP.format("manipulated_sequences/Deepfakes", "519_515"), FFPP.format("manipulated_sequences/FaceSwap", "634_660"),
    FFPP.format("manipulated_sequences/Face2Face", "750_743"),
    "dfdc_mini/lynaeydofd.mp4", "dfdc_mini/dfdc_train_part_0/brtujopkby.mp4",
    "dfdc_mini/dfdc_train_part_10/widuwuoiur.mp4", "dfdc_mini/dfdc_train_part_10/yhffcuhhjy.mp4",
    "face_videos/conan_obrien.mp4", "face_videos/short_hamilton_clip.mp4",
    "ffpp_c23_subset/original_sequences/youtube/c23/videos/272.mp4",
    "ffpp_c23_subset/original_sequences/youtube/c23/videos/241.mp4",
    "ffpp_c23_subset/manipulated_sequences/Deepfakes/c23/videos/183_253.mp4",
    "ffpp_c23_subset/manipulated_sequences/Face2Face/c23/videos/097_033.mp4",
]



def every_clip() -> list:
    """Every video file under the shared data (the extensions the datasets read), relative to it."""
    if not SHARED_DATA.is_dir():
        return []
    return sorted(p.relative_to(SHARED_DATA).as_posix() for p in SHARED_DATA.rglob("*")
                  if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())


ALL_CLIPS = every_clip()
OTHER_CLIPS = [c for c in ALL_CLIPS if c not in CLIPS]  # the rest of ffpp_c23_subset (88 of its 92 clips)


def full_decode(path, wanted) -> tuple:
    """Reference: PyAV straight, every frame decoded in order from the start; ``({i: RGB}, count)``."""
    keep, n = {}, 0
    with av.open(str(path)) as container:
        for n, frame in enumerate(container.decode(video=0), 1):
            if n - 1 in wanted:
                keep[n - 1] = to_array(frame)
    return keep, n


# ---------------------------------------------------------------- opening only plain media files

def test_the_demuxer_whitelist_holds_no_demuxer_that_opens_other_files():
    allowed = set(allowed_demuxers().split(","))
    assert not allowed & DENIED_DEMUXERS  # (names are matched part by part, as FFmpeg does)
    assert {"hls", "concat", "image2", "rtsp", "sdp"} <= DENIED_DEMUXERS
    assert {"mov", "mp4", "matroska", "webm", "avi", "mpegts", "flv", "jpeg_pipe", "png_pipe"} <= allowed
    assert decode.open_options()["protocol_whitelist"] == "file"


def test_names_are_opened_as_absolute_file_urls(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert media_url("concat:a.mp4|b.mp4") == f"file:{tmp_path}/concat:a.mp4|b.mp4"
    assert media_url("pipe:0") == f"file:{tmp_path}/pipe:0"
    assert media_url(Path("sub") / "x.mp4") == f"file:{tmp_path}/sub/x.mp4"


@pytest.mark.parametrize("text", ["#EXTM3U\n#EXTINF:1,\nx.ts\n", "\ufeff  #EXTM3U\n", "ffconcat version 1.0\nfile x\n",
                                  '<?xml version="1.0"?><MPD></MPD>', "v=0\no=- 0 0 IN IP4 127.0.0.1\n"])
def test_playlists_are_recognised_by_their_first_bytes(tmp_path, text):
    path = tmp_path / "a.mp4"
    path.write_text(text, encoding="utf-8")
    assert decode.looks_like_playlist(path)
    with pytest.raises(VideoError, match="not a plain media file"):
        decode.open_container(path)


def test_the_whitelist_alone_refuses_a_concat_list(tmp_path, monkeypatch):
    """Without the first-bytes check, FFmpeg's own whitelist still refuses the concat demuxer."""
    monkeypatch.setattr(decode, "looks_like_playlist", lambda path: False)
    target = corpus.one_frame(tmp_path, "target.mp4")
    path = tmp_path / "list.mp4"
    path.write_text(f"ffconcat version 1.0\nfile {target.name}\n")  # a name the concat demuxer calls safe
    with pytest.raises(VideoError, match="not a plain media file"):
        decode.open_container(path)
    with av.open(str(path)) as container:  # the premise: without the whitelist it reads the listed file
        assert container.format.name == "concat" and len(list(container.decode(video=0))) == 1


# ---------------------------------------------------------------- the index and the plan

def index_of(pts, starts) -> PacketIndex:
    """A hand-made index: packets in decode order with these pts; start points at ``starts``."""
    pts = np.asarray(pts, np.int64)
    start = np.zeros(len(pts), bool)
    start[list(starts)] = True
    return PacketIndex(pts, start, np.arange(len(pts)) * 1000, np.argsort(pts, kind="stable"), True)


def test_plan_segments_by_hand():
    index = index_of(range(60), [0, 20, 40])  # no reordering; a start point every 20 packets
    assert plan_segments(index, [5, 25, 45], seek=True) == [(0, 5), (20, 25), (40, 45)]
    assert plan_segments(index, [5, 25, 45], seek=False) == [(0, 45)]
    # seek=None decodes through short gaps (up to THROUGH_GAP packets) and jumps over long ones
    assert decode.THROUGH_GAP == 12
    assert plan_segments(index, [5, 25, 45], seek=None) == [(0, 5), (20, 25), (40, 45)]  # gaps of 14
    assert plan_segments(index, [10, 25, 45], seek=None) == [(0, 25), (40, 45)]  # 11..19 decoded through
    assert plan_segments(index, [21, 22, 39], seek=True) == [(20, 39)]
    assert plan_segments(index, [], seek=True) == []


def test_plan_goes_back_past_a_start_point_whose_leading_pictures_are_wanted():
    # decode order: I0 P4 B2 B1 B3 | I8 B6 B5 B7 P9: B5..B7 follow I8 in decode order but show before it
    pts = [0, 4, 2, 1, 3, 8, 6, 5, 7, 9]
    index = index_of(pts, [0, 5])
    assert index.order.tolist() == [0, 3, 2, 4, 1, 7, 6, 8, 5, 9]  # frame i is in packet order[i]
    assert plan_segments(index, [9], seek=True) == [(5, 9)]  # frame 9 (P9): from I8
    assert plan_segments(index, [6], seek=True) == [(0, 6)]  # frame 6 (B6) shows before I8: from I0
    assert plan_segments(index, [1, 9], seek=True) == [(0, 3), (5, 9)]


def test_index_of_a_clip_with_four_key_frames():
    path = shared(FFPP.format("original_sequences/youtube", "519"))
    with av.open(str(path)) as container:
        stream = decode.video_stream(container, path)
        index = decode.index_packets(container, stream)
    assert index.sparse and index.count == 751
    assert np.flatnonzero(index.start).tolist() == [0, 250, 500, 750]  # every key frame is an IDR picture
    assert sorted(index.pts[index.order].tolist()) == index.pts[index.order].tolist()


# ---------------------------------------------------------------- the same frames as a full decode

SEEKS = (True, False, None)  # seeking forced on, off, and decided per video as extraction does


def check_against_a_full_decode(clip, consecutive=True):
    """25 evenly spaced frames (and, with ``consecutive``, 5 consecutive ones from the middle) of ``clip``, read
    with seeking forced on, off and decided per video (``seek=None``, the default): bit-identical to one full
    in-order decode (every frame decoded from the start, straight PyAV), frame by frame, indices and times the
    same every way."""
    if clip is None:
        pytest.skip(f"real test data not found: {SHARED_DATA} (set DEEPFAKE_KERAS_TEST_DATA to the shared data folder)")
    path = shared(clip)
    spaced = {seek: read_frames(path, 25, max_side=0, seek=seek) for seek in SEEKS}
    middle = {seek: read_frames(path, 5, max_side=0, consecutive=True, seek=seek) for seek in SEEKS} if consecutive else {}
    ref, count = full_decode(path, {i for got in (*spaced.values(), *middle.values()) for i in got.indices})
    assert spaced[True].indices == sample_indices(count, 25)
    assert not middle or middle[True].indices == sample_indices(count, 5, consecutive=True)
    for runs in (spaced, middle):
        for seek, got in runs.items():
            assert got.decoder == "pyav", seek
            assert (got.indices, got.times) == (runs[True].indices, runs[True].times), seek
            assert len(got.images) == len(got.indices), seek
            for i, image in zip(got.indices, got.images):
                assert np.array_equal(image, ref[i]), f"frame {i} (seek={seek}) differs from the full decode"


def test_every_video_of_the_shared_data_is_checked():
    """The two lists below cover every video file under the shared data, and each listed clip is there."""
    if not ALL_CLIPS:
        pytest.skip(f"real test data not found: {SHARED_DATA}")
    assert set(CLIPS) <= set(ALL_CLIPS) and sorted(CLIPS + OTHER_CLIPS) == ALL_CLIPS


@pytest.mark.parametrize("clip", CLIPS, ids=[Path(c).name for c in CLIPS])
def test_sampled_frames_equal_a_full_in_order_decode(clip):
    """The fast subset (``519.mp4`` has four key frames and gave corrupt frames after seeking with OpenCV)."""
    check_against_a_full_decode(clip)


@pytest.mark.slow
@pytest.mark.parametrize("clip", OTHER_CLIPS or [None], ids=OTHER_CLIPS or ["no-shared-data"])
def test_sampled_frames_of_every_other_clip_equal_a_full_in_order_decode(clip):
    """The rest of the shared data's clips (the FF++ c23 subset's), checked the same way on 25 evenly spaced
    frames (minutes: marked slow; the consecutive reads are the fast subset's)."""
    check_against_a_full_decode(clip, consecutive=False)


def test_consecutive_and_rate_sampling_equal_a_full_decode():
    path = shared(FFPP.format("manipulated_sequences/Deepfakes", "519_515"))  # 751 frames, key frames every 250
    for kwargs in ({"consecutive": True}, {"rate": 1}, {"rate": 5, "consecutive": True}):
        got = read_frames(path, 25, max_side=0, seek=True, **kwargs)
        assert got.indices == sample_indices(751, 25, 25.0, kwargs.get("rate"), kwargs.get("consecutive", False))
        ref, _ = full_decode(path, set(got.indices))
        assert all(np.array_equal(a, ref[i]) for i, a in zip(got.indices, got.images)), kwargs


def test_untagged_8_bit_frames_are_the_same_as_opencvs():
    """FF++ (yuv444p) and DFDC (yuv420p) carry no colour tags: both decoders give the same pixels."""
    for clip in (FFPP.format("original_sequences/youtube", "519"), "dfdc_mini/dfdc_train_part_10/yhffcuhhjy.mp4"):
        path = shared(clip)
        ours = read_frames(path, 5, decoder="pyav")
        theirs = read_frames(path, 5, decoder="opencv")
        assert (ours.decoder, theirs.decoder, ours.indices) == ("pyav", "opencv", theirs.indices)
        assert all(np.array_equal(a, b) for a, b in zip(ours.images, theirs.images)), clip


def test_a_bt709_tagged_clip_differs_slightly_between_the_decoders():
    """``short_hamilton_clip.mp4`` says BT.709: PyAV converts with it, OpenCV with BT.601 (a face
    store must not mix the two decoders' crops)."""
    path = shared("face_videos/short_hamilton_clip.mp4")
    with av.open(str(path)) as container:
        assert next(container.decode(video=0)).colorspace == 1  # AVCOL_SPC_BT709
    ours, theirs = read_frames(path, 5, decoder="pyav"), read_frames(path, 5, decoder="opencv")
    diff = np.abs(np.stack(ours.images).astype(int) - np.stack(theirs.images))
    assert 0.3 < diff.mean() < 5 and diff.max() <= 40


# ---------------------------------------------------------------- colour, rotation, timestamps

PATCHES = [(200, 30, 40), (30, 180, 60), (40, 60, 220), (235, 220, 30), (128, 128, 128), (20, 20, 20)]


def patch_frame() -> np.ndarray:
    """RGB: six flat 64x64 colour patches side by side (saturated colours show a wrong YUV matrix)."""
    return np.concatenate([np.full((64, 64, 3), c, np.uint8) for c in PATCHES], axis=1)


def patch_clip(path, pix_fmt, matrix=None, full_range=False) -> Path:
    """The patches as a 3-frame H.264 clip (near-lossless) in ``pix_fmt``, tagged with ``matrix``/range."""
    scale = "scale=" + ":".join([f"out_color_matrix={matrix}"] * bool(matrix) + [f"out_range={'pc' if full_range else 'tv'}"])
    tags = (["-colorspace", matrix] if matrix else []) + ["-color_range", "pc" if full_range else "tv"]
    rgb = patch_frame()
    cmd = [corpus.ffmpeg_exe(), "-y", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
           f"{rgb.shape[1]}x{rgb.shape[0]}", "-r", "25", "-i", "-", "-vf", f"{scale},format={pix_fmt}", *tags,
           "-c:v", "libx264", "-qp", "0", str(path)]
    subprocess.run(cmd, input=rgb.tobytes() * 3, check=True, capture_output=True)
    return Path(path)


def patch_colours(image: np.ndarray) -> np.ndarray:
    """The mean colour of the middle of each patch."""
    return np.array([image[16:48, 64 * k + 16:64 * k + 48].reshape(-1, 3).mean(0) for k in range(len(PATCHES))])


@pytest.mark.parametrize("pix_fmt,matrix,full_range", [
    ("yuv420p", None, False), ("yuv444p", None, False), ("yuv420p", "bt709", False), ("yuv420p", "bt709", True),
    ("yuv420p10le", "bt709", False), ("yuv444p10le", None, False)])
def test_colours_are_converted_with_the_sources_own_matrix_range_and_depth(tmp_path, pix_fmt, matrix, full_range):
    path = patch_clip(tmp_path / "patches.mp4", pix_fmt, matrix, full_range)
    frames = read_frames(path, 1, decoder="pyav")
    error = np.abs(patch_colours(frames.images[0]) - np.array(PATCHES)).max()
    assert error <= 3, f"{pix_fmt} {matrix} full={full_range}: a colour is off by {error:.1f}"
    if matrix or full_range:  # OpenCV ignores the tags (BT.601, limited range): these are where the decoders differ
        opencv = read_frames(path, 1, decoder="opencv").images[0]
        assert np.abs(patch_colours(opencv) - np.array(PATCHES)).max() > 8


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_display_rotation_is_applied_as_opencv_does(tmp_path, degrees):
    stored = cv2.rotate(corpus.portrait_frame(), cv2.ROTATE_90_CLOCKWISE)  # BGR, 720x406
    path = corpus.encode(tmp_path / "rotated.mp4", [stored] * 2,
                         input_args=["-noautorotate", "-display_rotation", str(degrees)])
    ours = read_frames(path, 2, max_side=0)
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    assert ok
    assert np.array_equal(ours.images[0], cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    h, w = ours.images[0].shape[:2]
    assert (ours.info.width, ours.info.height) == (w, h) == ((406, 720) if degrees != 180 else (720, 406))


def test_variable_frame_rate_indices_and_timestamps_are_exact(tmp_path):
    """Frames 0..9 at 25 fps, a 1.52 s pause, frames 10..19 at 8.33 fps (times on the 1/25 s grid of the
    encoder): index i is the i-th frame shown, its time the one stored in the file."""
    times = [round(i * 0.04, 2) for i in range(10)] + [round(0.36 + 1.52 + (i - 9) * 0.12, 2) for i in range(10, 20)]
    frames = corpus.ffpp_frames(20, corpus.SMALL)
    path = tmp_path / "vfr.mp4"
    # in ticks of the input's 1/25 s time base (commas escaped in a filter graph)
    setpts = "+".join(f"eq(N\\,{i})*{round(t * 25)}" for i, t in enumerate(times))
    cmd = [corpus.ffmpeg_exe(), "-y", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", "640x360",
           "-r", "25", "-i", "-", "-vf", f"setpts={setpts}", "-fps_mode", "vfr", "-c:v", "libx264", "-bf", "2",
           "-pix_fmt", "yuv420p", "-video_track_timescale", "1000", str(path)]
    subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True, capture_output=True)
    got = read_frames(path, 20, max_side=0, seek=True)
    assert got.indices == list(range(20))
    assert got.times == pytest.approx(times, abs=1e-3)
    ref, count = full_decode(path, set(range(20)))
    assert count == 20 and all(np.array_equal(a, ref[i]) for i, a in zip(got.indices, got.images))
    # the frames are the source frames in order (H.264 at default quality: close, not equal)
    for i in (0, 10, 19):
        assert np.abs(got.images[i].astype(int) - frames[i][:, :, ::-1]).mean() < 6


# ---------------------------------------------------------------- codecs this build cannot decode

class _Stream:
    """A stand-in stream whose decoder answers ENOSYS, as FFmpeg's AV1 decoder does without hardware."""

    class codec_context:
        skip_frame = "DEFAULT"

        class codec:
            canonical_name = "av1"

        @staticmethod
        def decode(packet):
            raise av.error.NotImplementedError(38, "Function not implemented")


class _Container:
    @staticmethod
    def demux(stream):
        return iter([type("P", (), {"size": 10})()] * 3)


def test_a_codec_the_build_cannot_decode_is_named():
    with pytest.raises(VideoError, match="codec av1 not supported by this build of PyAV"):
        list(iter_decoded(_Container(), _Stream(), "x.mp4"))
