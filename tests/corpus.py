"""Bad inputs for the extraction stage, built at test time from real frames and photos.

Nothing binary is committed: each builder writes one file into a given folder,
made from the shared real test data (``tests/conftest.py``'s :func:`shared`,
which skips the test when the data is absent), and returns its path. Videos
are encoded with the ffmpeg binary shipped by ``imageio_ffmpeg`` (libx264,
yuv420p) and kept tiny: a few frames, 640x360 or smaller except the huge one.

:data:`BUILDERS` maps a short name to each builder; :func:`build_corpus`
writes them all.
"""
from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .conftest import shared

FFPP_004 = ("ffpp_mini", "original_sequences", "youtube", "c23", "videos", "004.mp4")  # one presenter, 1280x720
NO_FACE_PHOTO = ("faces", "ipazc_mtcnn", "tests", "images", "no-faces.jpg")  # 199x148, no face
FACE_PHOTO = ("faces", "ipazc_mtcnn", "tests", "images", "ivan.jpg")  # 561x561, one face
GROUP_PHOTO = ("faces", "timesler_facenet-pytorch", "data", "multiface.jpg")  # 1200x630, seven people

SMALL = (640, 360)  # (width, height) of the ordinary test clips
HUGE = (4096, 2304)  # 4K-wide, 16:9: more than twice the extractor's max_frame_side (1920)
PORTRAIT_X = (600, 1006)  # columns of a 1280x720 frame of 004.mp4 kept for the portrait clip (face inside)


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@lru_cache(maxsize=None)
def _ffpp_frames(count: int) -> tuple:
    cap = cv2.VideoCapture(str(shared(*FFPP_004)))
    frames = []
    try:
        while len(frames) < count:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    if len(frames) < count:
        raise RuntimeError(f"{shared(*FFPP_004)} gave {len(frames)} frame(s), wanted {count}")
    return tuple(frames)


def ffpp_frames(count: int, size=None) -> list:
    """The first ``count`` frames of FF++ ``004.mp4`` (BGR, 1280x720), resized to ``size`` (w, h) if given."""
    frames = [f.copy() for f in _ffpp_frames(count)]
    if size is not None:
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA if size[0] < f.shape[1] else cv2.INTER_CUBIC)
                  for f in frames]
    return frames


def photo(parts, size=None) -> np.ndarray:
    """A shared photo as a BGR array, resized to ``size`` (w, h) if given."""
    image = cv2.imread(str(shared(*parts)), cv2.IMREAD_COLOR)
    if image is None:
        raise RuntimeError(f"cannot read {shared(*parts)}")
    return image if size is None else cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)


def portrait_frame() -> np.ndarray:
    """Frame 0 of ``004.mp4`` cut to an upright portrait (406x720) around the presenter's face."""
    return ffpp_frames(1)[0][:, PORTRAIT_X[0]:PORTRAIT_X[1]].copy()


def encode(path, frames: list, fps: float = 25, input_args=(), output_args=(), codec=("libx264", "-preset", "veryfast"),
           pix_fmt: str = "yuv420p") -> Path:
    """Encode BGR ``frames`` (one size, even sides) to a video at ``path`` with ffmpeg (H.264 unless ``codec``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    cmd = [ffmpeg_exe(), "-y", "-nostdin", "-v", "error", *input_args,
           "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-",
           "-an", "-c:v", *codec, "-pix_fmt", pix_fmt, *output_args, str(path)]
    done = subprocess.run(cmd, input=b"".join(np.ascontiguousarray(f).tobytes() for f in frames),
                          capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({done.returncode}) writing {path}: {done.stderr.decode(errors='replace')}")
    return path


def mp4_boxes(data: bytes) -> dict:
    """Top-level MP4 boxes: ``{type: (offset, size)}``."""
    boxes, i = {}, 0
    while i + 8 <= len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[i + 8:i + 16], "big")
        elif size == 0:
            size = len(data) - i
        if size < 8:
            break
        boxes.setdefault(kind, (i, size))
        i += size
    return boxes


# ---------------------------------------------------------------- builders


def empty(folder, name="empty.mp4") -> Path:
    """A zero-byte file with a video extension."""
    path = Path(folder) / name
    path.write_bytes(b"")
    return path


def not_a_video(folder, name="not_a_video.mp4") -> Path:
    """A text file with a video extension."""
    path = Path(folder) / name
    path.write_text("This is a text file, not a video. It was named .mp4 by mistake.\n" * 20)
    return path


def photo_named_as_video(folder, name="photo_named_as_video.mp4") -> Path:
    """A JPEG photo of one face (``ivan.jpg``) named ``.mp4``: FFmpeg probes content, not names."""
    path = Path(folder) / name
    path.write_bytes(shared(*FACE_PHOTO).read_bytes())
    return path


def _good_mp4(folder, name, faststart: bool, frames: int = 6, all_intra: bool = False) -> bytes:
    tmp = Path(folder) / f".{name}.source.mp4"
    args = (["-movflags", "+faststart"] if faststart else []) + (["-g", "1"] if all_intra else [])
    encode(tmp, ffpp_frames(frames, SMALL), output_args=args)
    data = tmp.read_bytes()
    tmp.unlink()
    return data


def truncated_no_index(folder, name="truncated_no_index.mp4") -> Path:
    """An mp4 whose index (``moov``, written last) was lost: the download stopped halfway."""
    data = _good_mp4(folder, name, faststart=False)
    if mp4_boxes(data)["moov"][0] < len(data) // 2:
        raise RuntimeError("expected the moov box at the end of the file")
    path = Path(folder) / name
    path.write_bytes(data[:len(data) // 2])
    return path


def truncated_after_header(folder, name="truncated_after_header.mp4") -> Path:
    """A streamable mp4 (index first) cut right after its index: no frame data at all."""
    data = _good_mp4(folder, name, faststart=True)
    mdat_offset, _ = mp4_boxes(data)["mdat"]
    path = Path(folder) / name
    path.write_bytes(data[:mdat_offset + 16])
    return path


def truncated_partial(folder, name="truncated_partial.mp4", frames: int = 10, keep: float = 0.55) -> Path:
    """A streamable all-intra mp4 of ``frames`` frames cut after ``keep`` of its frame data: its
    index still reports every frame, but only the first ones decode."""
    data = _good_mp4(folder, name, faststart=True, frames=frames, all_intra=True)
    offset, size = mp4_boxes(data)["mdat"]
    path = Path(folder) / name
    path.write_bytes(data[:offset + 8 + int((size - 8) * keep)])
    return path


def corrupt_header(folder, name="corrupt_header.mp4") -> Path:
    """A complete mp4 whose first 64 bytes (the ``ftyp`` box and more) are noise."""
    data = bytearray(_good_mp4(folder, name, faststart=False))
    data[:64] = np.random.default_rng(1).integers(0, 256, 64, dtype=np.uint8).tobytes()
    path = Path(folder) / name
    path.write_bytes(bytes(data))
    return path


def corrupt_data(folder, name="corrupt_data.mp4") -> Path:
    """A streamable mp4 with an intact index and all of its frame data replaced by noise."""
    data = bytearray(_good_mp4(folder, name, faststart=True))
    offset, size = mp4_boxes(data)["mdat"]
    data[offset + 8:offset + size] = np.random.default_rng(2).integers(0, 256, size - 8, dtype=np.uint8).tobytes()
    path = Path(folder) / name
    path.write_bytes(bytes(data))
    return path


def no_face(folder, name="no_face.mp4", frames: int = 4) -> Path:
    """``no-faces.jpg`` (a landscape without people) as a short clip."""
    return encode(Path(folder) / name, [photo(NO_FACE_PHOTO, (398, 296))] * frames)


def one_frame(folder, name="one_frame.mp4") -> Path:
    """Frame 0 of ``004.mp4`` as a one-frame clip at 640x360."""
    return encode(Path(folder) / name, ffpp_frames(1, SMALL))


def many_faces(folder, name="many_faces.mp4", frames: int = 3) -> Path:
    """The facenet-pytorch group photo (seven people) as a short clip at 1200x630."""
    return encode(Path(folder) / name, [photo(GROUP_PHOTO)] * frames)


def huge(folder, name="huge.mp4", frames: int = 2) -> Path:
    """Frame 0 of ``004.mp4`` upscaled to 4096x2304 (a still, so it stays small on disk)."""
    return encode(Path(folder) / name, ffpp_frames(1, HUGE) * frames, output_args=["-crf", "30"])


def rotated(folder, name="rotated.mp4", frames: int = 3) -> Path:
    """A phone video: upright portrait content (:func:`portrait_frame`) stored as landscape
    pixels (rotated 90 degrees clockwise, 720x406) with a display matrix saying "rotate 90
    degrees counter-clockwise to show". ``-noautorotate`` keeps ffmpeg from turning the pixels
    upright itself (it would otherwise apply the input's rotation and drop the metadata)."""
    stored = cv2.rotate(portrait_frame(), cv2.ROTATE_90_CLOCKWISE)
    return encode(Path(folder) / name, [stored] * frames, input_args=["-noautorotate", "-display_rotation", "90"])


def spaces(folder, name="clip with spaces.mp4", frames: int = 3) -> Path:
    """Three frames of ``004.mp4`` at 640x360, under a name with spaces."""
    return encode(Path(folder) / name, ffpp_frames(frames, SMALL))


def non_ascii(folder, name="sous-dossier été/vidéo ünïcode 日本語.mp4", frames: int = 3) -> Path:
    """Three frames of ``004.mp4`` at 640x360, in a subfolder, both named with non-ASCII letters."""
    return encode(Path(folder) / name, ffpp_frames(frames, SMALL))


NON_UTF8_NAME = b"caf\xe9 (Latin-1 name).mp4"  # "cafe" with an acute e in Latin-1: not valid UTF-8


def non_utf8_name(folder, name=NON_UTF8_NAME, frames: int = 2):
    """A good clip (two frames of ``004.mp4``) whose file name bytes are not UTF-8, as files
    unpacked from old archives have; None where the file system refuses such names."""
    path = Path(folder) / os.fsdecode(name)
    try:
        path.write_bytes(b"")
    except OSError:
        return None
    return encode(path, ffpp_frames(frames, SMALL))


# ---------------------------------------------------------------- hostile media files (issue 17)

OUTSIDE = "secret"  # a folder beside the input folder: what hostile files point at


def outside_clip(folder) -> Path:
    """A good clip with a face *outside* the input folder (``../secret/private.mp4``, three frames of
    ``004.mp4`` mirrored, and ``private.ts``, the same in MPEG-TS), written once."""
    secret = Path(folder).resolve().parent / OUTSIDE
    mp4 = secret / "private.mp4"
    if not mp4.is_file():
        encode(mp4, [f[:, ::-1].copy() for f in ffpp_frames(3, SMALL)])
        done = subprocess.run([ffmpeg_exe(), "-y", "-nostdin", "-v", "error", "-i", str(mp4), "-c", "copy", "-f",
                               "mpegts", str(secret / "private.ts")], capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.decode(errors="replace"))
    return mp4


def hls_playlist(folder, name="playlist.mp4") -> Path:
    """An HLS playlist named ``.mp4`` whose one segment is ``../secret/private.ts``."""
    outside_clip(folder)
    path = Path(folder) / name
    path.write_text(f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n../{OUTSIDE}/private.ts\n"
                    "#EXT-X-ENDLIST\n")
    return path


def ffconcat_list(folder, name="concat_list.mp4") -> Path:
    """An ffconcat list named ``.mp4`` naming ``../secret/private.mp4``."""
    outside_clip(folder)
    path = Path(folder) / name
    path.write_text(f"ffconcat version 1.0\nfile ../{OUTSIDE}/private.mp4\n")
    return path


def concat_url_name(folder, name="concat:one_frame.mp4") -> Path:
    """Junk named like FFmpeg's concat protocol URL: read as a URL it would be ``one_frame.mp4``."""
    path = Path(folder) / name
    path.write_bytes(b"junk, not a video\n" * 50)
    return path


def pipe_url_name(folder, name="pipe:clip.mp4", frames: int = 3) -> Path:
    """A good clip (three frames of ``004.mp4``) named like FFmpeg's pipe protocol URL (read as a
    URL, it would read standard input and wait)."""
    return encode(Path(folder) / name, ffpp_frames(frames, SMALL))


def av1(folder, name="av1.mp4", frames: int = 3) -> Path:
    """A valid AV1 clip (three frames of ``004.mp4``), which OpenCV's FFmpeg cannot decode."""
    return encode(Path(folder) / name, ffpp_frames(frames, SMALL), codec=("libaom-av1", "-cpu-used", "8", "-crf", "40"))


def huge_duration(folder, name="huge_duration.mkv", seconds: float = 2, claimed: float = 1e12) -> Path:
    """A 2 s Matroska clip (frame 0 of ``004.mp4``, 256x144) whose header claims ``claimed`` seconds
    (30,000 years: 2.5e13 frames at 25 fps; 1e15 s would overflow FFmpeg's 64-bit microseconds)."""
    path = encode(Path(folder) / name, ffpp_frames(1, (256, 144)) * int(seconds * 25))
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89\x88")  # Duration element, an 8-byte float in TimestampScale units (1 ms)
    if at < 0:
        raise RuntimeError(f"no 8-byte Duration element in {path}")
    data[at + 3:at + 11] = np.array([claimed * 1000], ">f8").tobytes()
    path.write_bytes(bytes(data))
    return path


BUILDERS = {
    "empty": empty,
    "not_a_video": not_a_video,
    "photo_named_as_video": photo_named_as_video,
    "truncated_no_index": truncated_no_index,
    "truncated_after_header": truncated_after_header,
    "truncated_partial": truncated_partial,
    "corrupt_header": corrupt_header,
    "corrupt_data": corrupt_data,
    "no_face": no_face,
    "one_frame": one_frame,
    "many_faces": many_faces,
    "huge": huge,
    "rotated": rotated,
    "spaces": spaces,
    "non_ascii": non_ascii,
    "non_utf8_name": non_utf8_name,
    "hls_playlist": hls_playlist,
    "ffconcat_list": ffconcat_list,
    "concat_url_name": concat_url_name,
    "pipe_url_name": pipe_url_name,
    "av1": av1,
    "huge_duration": huge_duration,
}


def build_corpus(folder, names=None) -> dict:
    """Write the inputs ``names`` (default: all of :data:`BUILDERS`) into ``folder``; ``{name: path}``
    (a path is None where the platform cannot hold that input)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {name: BUILDERS[name](folder) for name in (names or BUILDERS)}
