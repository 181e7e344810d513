"""Frame sampling: indices worked out by hand and against their definition, the frames checked against a
plain sequential read with OpenCV, the choice of decoder and the fallback to OpenCV."""
import hashlib
import os

import cv2
import numpy as np
import pytest

from deepfake_keras.data.video import VideoError, iter_frames, read_frames, sample_indices, video_info

from ..conftest import shared


def sequential(path, wanted):
    """Reference: read every frame with cap.read() and keep the wanted ones (RGB)."""
    cap = cv2.VideoCapture(str(path))
    out, i = {}, 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i in wanted:
            out[i] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        i += 1
    cap.release()
    return out, i


def test_sample_indices_by_hand():
    assert sample_indices(10, 4) == [0, 3, 6, 9]          # linspace(0, 9, 4) = 0, 3, 6, 9
    assert sample_indices(101, 5) == [0, 25, 50, 75, 100]
    assert sample_indices(3, 25) == [0, 1, 2]             # short video: every frame
    assert sample_indices(1, 25) == [0]
    assert sample_indices(0, 25) == []
    # 25 fps video, 1 frame per second: one every 25 frames, capped
    assert sample_indices(309, 25, video_fps=25, rate=1) == list(range(0, 309, 25))
    assert sample_indices(309, 3, video_fps=25, rate=1) == [0, 25, 50]
    # 29.97 fps at 5 per second: every 5.994 frames, rounded
    assert sample_indices(30, 25, video_fps=29.97, rate=5) == [0, 6, 12, 18, 24]
    # unknown frame rate counts as 25
    assert sample_indices(100, 25, video_fps=0, rate=2) == [0, 12, 25, 38, 50, 62, 75, 88]
    # consecutive: a run of frames from the middle (every frame, or every sampled one at a rate)
    assert sample_indices(10, 4, consecutive=True) == [3, 4, 5, 6]
    assert sample_indices(3, 4, consecutive=True) == [0, 1, 2]
    assert sample_indices(100, 3, video_fps=25, rate=5, consecutive=True) == [40, 45, 50]  # 0, 5, ... 95: middle 3


@pytest.mark.parametrize("clip", ["original_sequences/youtube/c23/videos/519.mp4",
                                  "manipulated_sequences/Deepfakes/c23/videos/519_515.mp4"])
def test_few_keyframe_clips_decode_like_a_sequential_read(clip):
    """519.mp4 has four keyframes: seeking into it gives corrupt frames. Ours equal a full in-order read."""
    path = shared("ffpp_mini", clip)
    frames = read_frames(path, frames_per_video=6)
    assert frames.indices == sample_indices(751, 6)
    ref, total = sequential(path, set(frames.indices))
    assert total == 751
    for i, image in zip(frames.indices, frames.images):
        assert np.array_equal(image, ref[i]), f"frame {i} differs from the sequential read"


def test_rate_sampling_on_real_clip():
    path = shared("ffpp_mini", "original_sequences/youtube/c23/videos/004.mp4")
    info = video_info(path)
    assert (info.width, info.height, info.fps) == (1280, 720, 25.0)
    frames = read_frames(path, frames_per_video=25, rate=1)
    assert frames.indices == list(range(0, 309, 25))  # 13 frames at one per second
    assert frames.images[0].shape == (720, 1280, 3)


def test_large_frames_are_shrunk_and_scale_is_reported():
    path = shared("face_videos", "conan_obrien.mp4")  # 1920x1080
    frames = read_frames(path, frames_per_video=2, max_side=960)
    assert frames.images[0].shape == (540, 960, 3)
    assert frames.scale == pytest.approx(0.5)


def write_avi(path, n, size=(64, 48)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    rng = np.random.default_rng(0)
    for i in range(n):
        frame = np.full((size[1], size[0], 3), i * 8 % 256, np.uint8)
        frame[:8, :8] = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        writer.write(frame)
    writer.release()


def test_wrong_reported_frame_count_is_corrected(tmp_path):
    """A truncated AVI still reports its full count; sampling spans the frames that really decode."""
    full = tmp_path / "full.avi"
    write_avi(full, 40)
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    reported = video_info(cut).reported_frames
    _, true_count = sequential(cut, set())
    assert reported == 40 and 5 < true_count < 40  # the premise: the header lies
    frames = read_frames(cut, frames_per_video=5)
    assert frames.indices == sample_indices(true_count, 5)
    assert frames.indices[-1] == true_count - 1
    ref, _ = sequential(cut, set(frames.indices))
    assert all(np.array_equal(a, ref[i]) for i, a in zip(frames.indices, frames.images))


def test_unreadable_files_raise_with_the_file_named(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    for path, problem in ((empty, "empty file"), (text, "cannot be opened"), (tmp_path / "nope.mp4", "not found")):
        with pytest.raises(VideoError) as e:
            read_frames(path)
        assert str(path) in str(e.value) and problem in str(e.value)


def test_sampling_is_deterministic():
    path = shared("ffpp_mini", "original_sequences/youtube/c23/videos/634.mp4")
    a, b = read_frames(path, frames_per_video=3), read_frames(path, frames_per_video=3)
    digest = [hashlib.sha256(x.tobytes()).hexdigest() for x in a.images]
    assert digest == [hashlib.sha256(x.tobytes()).hexdigest() for x in b.images]


def sample_indices_by_enumeration(n, count, fps=0.0, rate=None, consecutive=False):
    """The definition, enumerated (every index, then the middle ones): what sample_indices must equal."""
    if n <= 0 or count <= 0:
        return []
    if rate is None and not consecutive:
        return list(range(n)) if n <= count else sorted(set(np.linspace(0, n - 1, count).round().astype(int).tolist()))
    step = 1.0 if rate is None else (fps if fps > 0 else 25.0) / rate
    every, k = [], 0
    while True:
        i = int(round(k * step))
        if i >= n:
            break
        if not every or i != every[-1]:
            every.append(i)
        k += 1
    start = max(0, (len(every) - count) // 2) if consecutive else 0
    return every[start:start + count]


def test_sample_indices_equal_their_definition():
    for n in (1, 2, 7, 30, 101, 751):
        for count in (1, 3, 25):
            for fps, rate in ((25, None), (25, 1), (29.97, 5), (25, 30), (0, 2), (30, 7.5), (24, 24)):
                for consecutive in (False, True):
                    assert sample_indices(n, count, fps, rate, consecutive) == \
                        sample_indices_by_enumeration(n, count, fps, rate, consecutive), (n, count, fps, rate, consecutive)


def test_sample_indices_work_is_bounded_by_the_frames_asked_for():
    """A header claiming 30,000 years (2.5e13 frames): the middle 25 at once, not a list of every frame."""
    n = 25 * 10 ** 12
    assert sample_indices(n, 25, 25, None, True) == list(range((n - 25) // 2, (n - 25) // 2 + 25))
    assert sample_indices(n, 3, 25, 5, True)[1] - sample_indices(n, 3, 25, 5, True)[0] == 5
    assert len(sample_indices(n, 25, 25, 1)) == 25


def test_decoder_is_recorded_and_can_be_chosen():
    path = shared("ffpp_mini", "original_sequences/youtube/c23/videos/004.mp4")
    ours, theirs = read_frames(path, 3), read_frames(path, 3, decoder="opencv")
    assert (ours.decoder, theirs.decoder) == ("pyav", "opencv")
    assert ours.indices == theirs.indices == [0, 154, 308] and ours.info == theirs.info
    assert ours.times == pytest.approx([0, 154 / 25, 308 / 25]) and theirs.times == pytest.approx(ours.times)
    with pytest.raises(ValueError, match="decoder must be one of"):
        read_frames(path, 3, decoder="ffmpeg")


def test_files_pyav_cannot_open_are_read_by_opencv(monkeypatch):
    from deepfake_keras.data import video

    def cannot(path):
        raise video.CannotOpen("pretend PyAV cannot read it")

    path = shared("ffpp_mini", "original_sequences/youtube/c23/videos/634.mp4")
    expected = read_frames(path, 4)
    monkeypatch.setattr(video, "open_container", cannot)
    got = read_frames(path, 4)
    assert (got.decoder, got.indices, got.decoded) == ("opencv", expected.indices, 338)
    assert all(np.array_equal(a, b) for a, b in zip(got.images, expected.images))  # untagged: same pixels
    with pytest.raises(VideoError, match="cannot be opened as a video"):
        read_frames(path, 4, decoder="pyav")


def test_iter_frames_gives_every_frame_with_the_same_numbers(tmp_path):
    path = shared("face_videos", "short_hamilton_clip.mp4")
    sampled = read_frames(path, 4, max_side=0)
    every = list(iter_frames(path))
    assert len(every) == 275 and sampled.indices == sample_indices(275, 4)
    for i, image in zip(sampled.indices, sampled.images):
        assert np.array_equal(every[i], image)
    assert np.array_equal(next(iter(iter_frames(path, bgr=True))), every[0][:, :, ::-1])


def test_opencv_cannot_open_names_that_are_not_utf8(tmp_path):
    name = tmp_path / os.fsdecode(b"caf\xe9.mp4")
    write_avi(tmp_path / "clip.avi", 3)
    name.write_bytes((tmp_path / "clip.avi").read_bytes())
    assert read_frames(name, 2).decoder == "pyav"  # PyAV opens the bytes of the name
    with pytest.raises(VideoError, match="not valid UTF-8"):
        read_frames(name, 2, decoder="opencv")
