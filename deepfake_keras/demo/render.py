"""Pixels and files of the DEMO clips: render a job's frames (:mod:`.synth`) and encode them with
libx264 through the ffmpeg binary of imageio-ffmpeg."""
from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import uuid
from pathlib import Path

import numpy as np

from . import synth
from .plan import DemoSizes, Job

# preset veryfast: half the encoding time of the default (medium) at the same CRF; the build must
# fit in 3 minutes on 2 cores
X264 = ("-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-threads", "1")


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def encode(frames: list, outputs: list, fps: int) -> None:
    """Encode RGB uint8 frames to H.264 files, one per ``(path, crf)`` of ``outputs``, in one ffmpeg
    run: libx264 with :data:`X264` (one thread, so that the bytes do not depend on the machine's
    core count) and no metadata that changes from run to run. Each file is written under a
    temporary name and renamed into place."""
    h, w = frames[0].shape[:2]
    cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(fps), "-i", "-"]
    tmps = []
    for path, crf in outputs:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp.mp4")
        tmps.append((tmp, path))
        cmd += ["-an", *X264, "-crf", str(crf), "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
                "-movflags", "+faststart", str(tmp)]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        try:
            for f in frames:
                proc.stdin.write(np.ascontiguousarray(f, dtype=np.uint8).tobytes())
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()
        code = proc.wait()
        err.seek(0)
        message = err.read().decode(errors="replace")[-500:]
    if code != 0 or not all(tmp.is_file() for tmp, _ in tmps):
        for tmp, _ in tmps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise RuntimeError(f"ffmpeg failed on {', '.join(p.name for _, p in tmps)}: {message}")
    for tmp, path in tmps:
        os.replace(tmp, path)


def video_features(path, fps: float | None = None) -> dict:
    """What a model that never looks at a face could use: file size (bytes), bitrate (kbit/s),
    mean R, G, B over all decoded frames, and the number of decoded frames."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        rate = fps or cap.get(cv2.CAP_PROP_FPS) or 25.0
        n, total = 0, np.zeros(3)
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            total += np.array(cv2.mean(frame)[2::-1])  # BGR -> RGB
            n += 1
    finally:
        cap.release()
    size = Path(path).stat().st_size
    mean = total / max(n, 1)
    return {"size": size, "bitrate": size * 8 / 1000 / max(n / rate, 1e-9), "mean_r": mean[0], "mean_g": mean[1],
            "mean_b": mean[2], "frames": n}


def render_job(job: Job, images: dict, marks: dict, sizes: DemoSizes, root: Path) -> list:
    """Render one job's clips and encode them under ``root``; ``[(relative path, features)]``."""
    rng = np.random.default_rng(job.seed)
    tl = np.asarray(marks[job.photo]["landmarks"])
    base = synth.align_to_frame(tl, sizes.frame_size, sizes.face_iod)
    mo = synth.motion(rng, sizes.frames, sizes.fps)
    maps = synth.frame_transforms(base, mo, sizes.frame_size)
    clean = synth.render(images[job.photo], maps, sizes.frame_size)
    noise = synth.sensor_noise(mo, sizes.frames, sizes.frame_size)
    centre = synth.apply(maps[0], [tl.mean(0)])[0]
    out = []
    for k, render in enumerate(job.renders):
        if render.source is None:
            frames = synth.finish(clean, mo, noise)
        else:
            swapped, mask = synth.swap_face(images[job.photo], tl, images[render.source],
                                            marks[render.source]["landmarks"], render.blend)
            jitters = synth.jitter(np.random.default_rng([job.seed, k]), sizes.frames, centre)
            frames = synth.finish(synth.composite(clean, swapped, mask, maps, jitters, sizes.frame_size), mo, noise)
        encode(frames, [(root / rel, crf) for rel, crf in render.outputs], sizes.fps)
        out.extend((rel, video_features(root / rel, sizes.fps)) for rel, _ in render.outputs)
    return out

