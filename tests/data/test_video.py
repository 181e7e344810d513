"""Frame sampling: indices worked out by hand, in-order decoding checked against a plain sequential read."""
import hashlib

import cv2
import numpy as np
import pytest

from deepfake_keras.data.video import VideoError, read_frames, sample_indices, video_info

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
