"""Sequences of faces per video (paper III.C, IV.B.2): which stored frames make each video's sequence,
and per-frame features gathered into sequences.

- :func:`sequence_index` cuts every video of a face table (the face store's
  ``faces.csv``) into exactly one sequence of ``seq_len`` *consecutive stored
  frames, in frame order*, from the middle of what the store holds for it. A
  sequence never mixes videos. (With a store made with
  ``ExtractConfig(consecutive=True)``, consecutive stored frames are
  consecutive frames of the video -- or of its ``fps`` sampling -- except where
  MTCNN found no face in a frame; ``gaps`` in the index counts those.)
- Videos with fewer stored frames than ``seq_len`` follow an explicit policy,
  ``short=``:

  ``"pad"`` (default)
      the sequence is completed at its *end* by repeating the last stored frame,
      and a boolean ``mask`` marks the real frames (``True``) and the padding
      (``False``). The recurrent models take the mask (Keras skips masked steps:
      the state is carried over unchanged, so repeat-last + mask is exactly the
      shorter sequence). The convolutional models have no mask: they see the last
      frame repeated, i.e. a still tail.
  ``"drop"``
      the video gets no sequence; it is listed in ``index.dropped`` with the
      reason, and its models' predictions are missing (not guessed).

- :func:`feature_sequences` gathers per-frame features (e.g. Xception ``fc1``)
  into ``(videos, seq_len, dim)`` arrays with the mask;
  :func:`deepfake_keras.data.inputs.image_sequence_dataset` streams sequences of face
  crops for Conv3D / ConvLSTM.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import SHORT_POLICIES

SHORT = "pad"


@dataclass
class SequenceIndex:
    """Which stored frames make each video's sequence (see :func:`sequence_index`).

    Attributes:
        videos: one row per kept video, in ``rows`` order: ``store_key``, the
            kept columns (``label``, ``split``...), ``n_stored`` (frames the store
            holds), ``n_real`` (of them in the sequence), ``n_padded``
            (``seq_len - n_real``), ``first_frame``, ``last_frame``,
            ``max_step`` (largest step between successive frame numbers in the
            sequence) and ``gaps`` (steps longer than 1.5 times the video's
            median step: frames of the sampling where no face was found).
        rows: int ``(videos, seq_len)`` positions (``iloc``) in the face table;
            padded steps repeat the last real position.
        mask: bool ``(videos, seq_len)``: ``True`` for real frames.
        dropped: videos left out (``short="drop"``): ``store_key``, ``n_stored``, ``reason``.
        seq_len, short: the settings.
    """

    videos: pd.DataFrame
    rows: np.ndarray
    mask: np.ndarray
    dropped: pd.DataFrame
    seq_len: int
    short: str

    def __len__(self) -> int:
        return len(self.videos)

    def subset(self, keep) -> "SequenceIndex":
        """The videos where boolean ``keep`` (one per video) is true, e.g. ``index.videos["split"] == "train"``."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (len(self),):
            raise ValueError(f"keep must be {len(self)} booleans, got shape {keep.shape}")
        return SequenceIndex(self.videos[keep].reset_index(drop=True), self.rows[keep], self.mask[keep],
                             self.dropped, self.seq_len, self.short)

    def split(self, name: str) -> "SequenceIndex":
        """The videos of one split (``train``, ``val``, ``test``)."""
        return self.subset((self.videos["split"] == name).to_numpy())

    @property
    def labels(self) -> np.ndarray:
        return self.videos["label"].to_numpy().astype(np.float32)


def sequence_index(faces: pd.DataFrame, seq_len: int, short: str = SHORT,
                   keep=("label", "split", "method", "video_id")) -> SequenceIndex:
    """One sequence of ``seq_len`` consecutive stored frames per video, in frame order.

    Args:
        faces: rows of a face store's ``faces.csv`` (columns ``store_key`` and
            ``frame``; a video's rows may come in any order). Positions in
            ``rows`` refer to this table's order (``iloc``).
        seq_len: frames per sequence (the paper: 16, 25, 32).
        short: what happens to a video with fewer than ``seq_len`` stored
            frames: ``"pad"`` (repeat its last frame at the end, ``mask`` False
            there) or ``"drop"`` (leave it out, listed in ``dropped``). See the
            module docstring.
        keep: per-video columns to carry into ``videos`` (those present; each
            must be constant within a video).

    A video with more stored frames than ``seq_len`` contributes the middle
    ``seq_len`` of them (the first of the two middles when the surplus is odd),
    like ``ExtractConfig(consecutive=True)`` picks frames from the middle of the
    video. Videos come out sorted by ``store_key``.

    Raises ValueError for a bad ``seq_len`` or ``short``, missing columns, a
    video with the same frame twice, or a kept column that varies in a video.
    """
    seq_len = int(seq_len)
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if short not in SHORT_POLICIES:
        raise ValueError(f"short must be one of {SHORT_POLICIES} (what to do with videos that have fewer than "
                         f"seq_len stored frames), got {short!r}")
    if not isinstance(faces, pd.DataFrame):
        raise ValueError("faces must be a pandas DataFrame (the face store's faces.csv)")
    for col in ("store_key", "frame"):
        if col not in faces.columns:
            raise ValueError(f"the face table has no {col!r} column (columns: {list(faces.columns)})")
    if len(faces) == 0:
        raise ValueError("the face table is empty")
    keep = [c for c in keep if c in faces.columns and c != "store_key"]
    table = pd.DataFrame({"store_key": faces["store_key"].to_numpy(),
                          "frame": pd.to_numeric(faces["frame"], errors="coerce").to_numpy(),
                          "pos": np.arange(len(faces))})
    if table["frame"].isna().any():
        raise ValueError(f"{int(table['frame'].isna().sum())} rows have no numeric frame number")
    duplicated = table.duplicated(["store_key", "frame"])
    if duplicated.any():
        first = table[duplicated].iloc[0]
        raise ValueError(f"video {first['store_key']!r} has frame {int(first['frame'])} more than once; "
                         f"a face table holds one row per stored frame")
    for col in keep:
        varying = faces.groupby("store_key")[col].nunique(dropna=False)
        if (varying > 1).any():
            raise ValueError(f"column {col!r} varies within video {varying[varying > 1].index[0]!r}")
    table = table.sort_values(["store_key", "frame"], kind="stable")
    videos, rows, masks, dropped = [], [], [], []
    first_rows = faces.iloc[table.drop_duplicates("store_key")["pos"].to_numpy()]
    per_video = {k: r for k, r in zip(first_rows["store_key"], first_rows.to_dict("records"))}
    for key, group in table.groupby("store_key", sort=True):
        pos, frames = group["pos"].to_numpy(), group["frame"].to_numpy().astype(int)
        n = len(pos)
        if n < seq_len and short == "drop":
            dropped.append({"store_key": key, "n_stored": n,
                            "reason": f"{n} stored frame(s) < {seq_len} (short='drop')"})
            continue
        start = max(0, (n - seq_len) // 2)
        take = slice(start, start + seq_len)
        pos, frames = pos[take], frames[take]
        n_real = len(pos)
        row = np.concatenate([pos, np.full(seq_len - n_real, pos[-1])]).astype(np.int64)
        rows.append(row)
        masks.append(np.arange(seq_len) < n_real)
        steps = np.diff(frames)
        videos.append({"store_key": key, **{c: per_video[key][c] for c in keep}, "n_stored": n, "n_real": n_real,
                       "n_padded": seq_len - n_real, "first_frame": int(frames[0]), "last_frame": int(frames[-1]),
                       "max_step": int(steps.max()) if len(steps) else 0,
                       "gaps": int(np.sum(steps > 1.5 * np.median(steps))) if len(steps) else 0})
    columns = ["store_key", *keep, "n_stored", "n_real", "n_padded", "first_frame", "last_frame", "max_step", "gaps"]
    return SequenceIndex(
        videos=pd.DataFrame(videos, columns=columns),
        rows=np.array(rows, dtype=np.int64).reshape(len(rows), seq_len),
        mask=np.array(masks, dtype=bool).reshape(len(masks), seq_len),
        dropped=pd.DataFrame(dropped, columns=["store_key", "n_stored", "reason"]),
        seq_len=seq_len, short=short)


def describe(index: SequenceIndex) -> dict:
    """Counts for ``metrics.json``: videos, how many were padded (and by how much) or dropped."""
    padded = index.videos["n_padded"] > 0
    return {"seq_len": index.seq_len, "short": index.short, "videos": int(len(index)),
            "padded_videos": int(padded.sum()), "padded_frames": int(index.videos["n_padded"].sum()),
            "dropped_videos": int(len(index.dropped)), "dropped": index.dropped["store_key"].tolist(),
            "videos_with_gaps": int((index.videos["gaps"] > 0).sum())}


# --------------------------------------------------------------------------- inputs

def feature_sequences(index: SequenceIndex, features) -> dict:
    """``{"features": float32 (videos, seq_len, dim), "mask": bool (videos, seq_len)}``: the rows of
    ``features`` (one per row of the face table the index was made from) in each video's sequence."""
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D (face rows, dim), got shape {x.shape}")
    if len(index) and index.rows.max() >= len(x):
        raise ValueError(f"the index points at face row {int(index.rows.max())} but features has {len(x)} rows; "
                         f"use the features of the table the index was made from")
    return {"features": x[index.rows], "mask": index.mask.copy()}
