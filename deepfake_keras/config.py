"""Settings as frozen dataclasses. Defaults are the paper's settings (DESIGN.md section 3).

Every run saves the resolved settings beside its results (``asdict`` of these
classes), so that the run can be rebuilt exactly.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path


def cache_dir() -> Path:
    """Root of every download and cache of the package.

    ``$DEEPFAKE_KERAS_CACHE`` if set, else ``~/.cache/deepfake_keras``.
    """
    return Path(os.environ.get("DEEPFAKE_KERAS_CACHE", Path.home() / ".cache" / "deepfake_keras"))


@dataclass(frozen=True)
class ExtractConfig:
    """How videos become face crops.

    Sampling: ``fps=None`` takes ``frames_per_video`` evenly spaced frames; a
    number samples at that rate (frames per second of video time) and caps at
    ``frames_per_video``. The paper sampled at 1 and 5 frames per second and kept
    10 to 25 frames per video (25 for the triplet runs). ``consecutive=True``
    takes ``frames_per_video`` frames in a row (every frame, or every frame of
    the ``fps`` sampling) from the middle of the video, for the sequence
    models (LSTM/GRU, Conv3D).

    Detection (MTCNN, largest face): the two cheap MTCNN stages (PNet, RNet)
    run on the frame downscaled so that its longer side is ``detect_size``
    pixels; the last stage (ONet, which gives the final box, landmarks and
    confidence) runs on the full-resolution pixels. ``detect_size=0`` runs all
    stages at full resolution (the naive detector). Faces smaller than
    ``min_face`` times the shorter frame side are not searched for.

    Crops: a square of side ``(1 + margin) * max(box width, box height)``
    centred on the box, padded with black where it leaves the frame, resized
    to ``crop_size`` pixels (299 for Xception; FaceNet resizes to 160).
    """

    frames_per_video: int = 25
    fps: float | None = None
    consecutive: bool = False
    crop_size: int = 299
    margin: float = 0.3
    detect_size: int = 480
    min_face: float = 0.05
    max_frame_side: int = 1920
    batch_size: int = 16

    def __post_init__(self):
        if self.frames_per_video < 1:
            raise ValueError(f"frames_per_video must be >= 1, got {self.frames_per_video}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be > 0 (or None for evenly spaced frames), got {self.fps}")
        if self.crop_size < 16:
            raise ValueError(f"crop_size must be >= 16 pixels, got {self.crop_size}")
        if not 0 <= self.margin <= 2:
            raise ValueError(f"margin must be between 0 and 2 (a fraction of the box side), got {self.margin}")
        if self.detect_size != 0 and self.detect_size < 64:
            raise ValueError(f"detect_size must be 0 (full resolution) or >= 64 pixels, got {self.detect_size}")
        if not 0 <= self.min_face < 1:
            raise ValueError(f"min_face must be a fraction of the frame side in [0, 1), got {self.min_face}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ExtractConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
