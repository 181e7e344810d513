"""Splitting by video, never by frame: one row per video, the validation hold-out (stratified, or
by group so that a fake and the clip it was made from stay together) and the paper's bags."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import BaggingConfig


def video_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per video (``store_key``) of a frame or video table: ``store_key``, ``label``,
    ``split`` and ``n_frames`` (rows of that video), sorted by ``store_key``. A table that is already
    one row per video (unique ``store_key`` and an ``n_frames`` column) keeps its ``n_frames``.

    Raises ValueError when a column is missing or a video's label or split varies
    across its frames.
    """
    for col in ("store_key", "label", "split"):
        if col not in table.columns:
            raise ValueError(f"the table has no {col!r} column (columns: {list(table.columns)})")
    if len(table) == 0:
        raise ValueError("the table is empty")
    if "n_frames" in table.columns and table["store_key"].is_unique:
        videos = table[["store_key", "label", "split", "n_frames"]].sort_values("store_key").reset_index(drop=True)
    else:
        groups = table.groupby("store_key", sort=True)
        for col in ("label", "split"):
            varying = groups[col].nunique(dropna=False)
            varying = varying[varying > 1]
            if len(varying):
                raise ValueError(f"{col!r} varies within {len(varying)} videos (e.g. {varying.index[0]!r})")
        videos = groups[["label", "split"]].first()
        videos["n_frames"] = groups.size()
        videos = videos.reset_index()
    videos["label"] = pd.to_numeric(videos["label"], errors="coerce")
    bad = videos[~videos["label"].isin((0, 1))]
    if len(bad):
        raise ValueError(f"labels must be 0 (real) or 1 (fake); {len(bad)} videos have others "
                         f"(e.g. {bad['store_key'].iloc[0]!r}: {bad['label'].iloc[0]!r})")
    videos["label"] = videos["label"].astype(int)
    return videos


def split_validation(videos: pd.DataFrame, fraction: float = BaggingConfig.val_fraction, seed: int = 0,
                     split: str = "train", groups=None) -> tuple:
    """``(train, val)``: the ``split`` videos of ``videos`` divided by video, stratified by label.

    Of each class, ``round(fraction * n)`` videos (at least 1, at most ``n - 1``)
    are drawn with ``seed`` for validation; their ``split`` becomes ``"val"``.
    ``fraction=0`` gives an empty validation table. ``videos`` may be a frame table
    (it is reduced with :func:`video_table` first). Raises ValueError when a class
    has fewer than 2 videos (none could be held out and kept).

    ``groups`` (``{store_key: group}``, e.g. the source clip of each Celeb-DF video,
    :func:`deepfake_keras.data.datasets.celebdf_clip`): videos of one group go to the
    same side, so that a fake and the real clip it was made from never straddle
    train and validation. Groups are drawn in a seeded order: first groups holding
    real videos until the real quota is met (skipping those whose fakes would
    overshoot the fake quota while another can still be taken), then groups of
    fakes only until the fake quota is met; a quota can be overshot by the rest of
    the last group taken. Raises ValueError when a class would be left with no
    training or no validation video.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    videos = video_table(videos)
    pool = videos[videos["split"] == split]
    if fraction == 0:
        return pool.reset_index(drop=True), pool.iloc[:0].reset_index(drop=True)
    rng = np.random.default_rng(int(seed))
    quota = {}
    for label in (0, 1):
        n = int((pool["label"] == label).sum())
        if n < 2:
            raise ValueError(f"a stratified validation split needs >= 2 {('real', 'fake')[label]} {split} videos, "
                             f"got {n}; pass a validation fraction of 0 to train without one")
        quota[label] = min(n - 1, max(1, int(round(fraction * n))))
    if groups is None:
        val_keys = []
        for label in (0, 1):
            keys = np.sort(pool.loc[pool["label"] == label, "store_key"].to_numpy())
            val_keys.extend(rng.choice(keys, size=quota[label], replace=False).tolist())
    else:
        val_keys = _grouped_validation(pool, groups, quota, rng)
    is_val = pool["store_key"].isin(val_keys)
    for label in (0, 1):
        cls = pool["label"] == label
        if not (is_val & cls).any() or not (~is_val & cls).any():
            raise ValueError(f"the grouped validation split leaves no {('real', 'fake')[label]} video on one side "
                             f"(groups too large for {len(pool)} {split} videos)")
    val = pool[is_val].assign(split="val").reset_index(drop=True)
    return pool[~is_val].reset_index(drop=True), val


def _grouped_validation(pool: pd.DataFrame, groups, quota: dict, rng) -> list:
    """The store keys of whole groups held out to meet ``quota`` (see :func:`split_validation`)."""
    group_of = pool["store_key"].map(lambda k: groups.get(k, k))
    counts = pd.crosstab(group_of, pool["label"]).reindex(columns=[0, 1], fill_value=0)
    order = counts.index.to_numpy()[rng.permutation(len(counts))]
    taken, have = [], {0: 0, 1: 0}
    with_real = [g for g in order if counts.at[g, 0] > 0]
    for i, g in enumerate(with_real):  # reals first: each brings its fakes along
        if have[0] >= quota[0]:
            break
        others_left = len(with_real) - i - 1
        if have[1] + counts.at[g, 1] > quota[1] and others_left and counts.at[g, 1] > 0:
            continue
        taken.append(g)
        have[0] += counts.at[g, 0]
        have[1] += counts.at[g, 1]
    for g in order:  # then fakes-only groups
        if have[1] >= quota[1]:
            break
        if counts.at[g, 0] == 0:
            taken.append(g)
            have[1] += counts.at[g, 1]
    return pool.loc[group_of.isin(taken).to_numpy(), "store_key"].tolist()


def make_bags(videos: pd.DataFrame, n_bags: int = BaggingConfig.bags, seed: int = 0, split: str = "train") -> list:
    """The paper's bags: the fake ``split`` videos in ``n_bags`` disjoint near-equal parts (sizes
    differ by at most one, drawn with ``seed``), each with every real ``split`` video.

    ``videos`` is a video table or a frame table (reduced with :func:`video_table`,
    so frames never split). Returns ``n_bags`` video tables (``store_key``,
    ``label``, ``split``, ``n_frames``, ``bag``), sorted by ``store_key``.
    Raises ValueError when there are fewer fake videos than bags or no real one.
    """
    n_bags = int(n_bags)
    if n_bags < 1:
        raise ValueError(f"n_bags must be >= 1, got {n_bags}")
    videos = video_table(videos)
    pool = videos[videos["split"] == split]
    fakes = np.sort(pool.loc[pool["label"] == 1, "store_key"].to_numpy())
    reals = pool[pool["label"] == 0]
    if len(fakes) < n_bags:
        raise ValueError(f"{n_bags} bags need at least {n_bags} fake {split} videos, got {len(fakes)}")
    if len(reals) == 0:
        raise ValueError(f"no real {split} videos: every bag needs the real videos")
    parts = np.array_split(np.random.default_rng(int(seed)).permutation(fakes), n_bags)
    bags = []
    for i, part in enumerate(parts):
        bag = pd.concat([pool[pool["store_key"].isin(part)], reals])
        bags.append(bag.sort_values("store_key").assign(bag=i).reset_index(drop=True))
    return bags


def balanced_weights(labels) -> np.ndarray:
    """Per-row weights under which each class present weighs the same in total (mean weight 1)."""
    y = np.asarray(labels).astype(int)
    out = np.ones(len(y), np.float32)
    classes = np.unique(y)
    for c in classes:
        out[y == c] = len(y) / (len(classes) * np.sum(y == c))
    return out


def grouped_folds(videos: pd.DataFrame, k: int, seed: int = 0, val_fraction: float = 0.2,
                  group_col: str = "group") -> list:
    """K-fold cross-validation by group: ``k`` dicts ``{"fold", "train", "val", "test"}`` of store keys.

    ``videos``: one row per video with ``store_key`` and ``group_col`` (e.g. the FF++ pair: a pair, its
    originals and every fake made from them are one group), and optionally ``label``. The groups, in
    an order drawn with ``seed``, are dealt round-robin into ``k`` folds, those holding fakes first
    and then those holding only real videos (so that with labels each fold gets its share of both
    kinds); each fold is the test set once. Of the other groups ``round(val_fraction * n)`` (at least
    1) drawn with ``seed + 1 + fold`` validate and the rest train; when the draw holds no video of a
    class the training groups have, the first further group (same draw) with one is added. A group is
    never on two sides; every video is tested exactly once. Raises ValueError for ``k < 2``, fewer
    groups than ``k + 2`` (a fold needs test, validation and training groups), a missing column, or a
    fold whose training groups lack a class.
    """
    for col in ("store_key", group_col):
        if col not in videos.columns:
            raise ValueError(f"the table has no {col!r} column (columns: {list(videos.columns)})")
    k = int(k)
    group = videos[group_col].astype(str)
    groups = np.array(sorted(group.unique()))
    if k < 2:
        raise ValueError(f"k-fold cross-validation needs k >= 2, got {k}")
    if len(groups) < k + 2:
        raise ValueError(f"{k}-fold cross-validation by {group_col} needs at least {k + 2} groups, got {len(groups)}")
    labels = videos["label"].astype(int) if "label" in videos.columns else pd.Series(0, index=videos.index)
    classes = {g: frozenset(v.tolist()) for g, v in labels.groupby(group.to_numpy())}
    order = groups[np.random.default_rng(int(seed)).permutation(len(groups))]
    order = sorted(order, key=lambda g: 1 not in classes[g])  # stable: groups with fakes first, drawn order kept
    fold_of = {g: i % k for i, g in enumerate(order)}
    out = []
    for fold in range(k):
        rest = np.array([g for g in order if fold_of[g] != fold])
        rest = rest[np.random.default_rng(int(seed) + 1 + fold).permutation(len(rest))]
        n_val = min(len(rest) - 1, max(1, int(round(val_fraction * len(rest)))))
        val, train = list(rest[:n_val]), list(rest[n_val:])
        for c in sorted(set(labels)):
            if not any(c in classes[g] for g in val):
                extra = next((g for g in train if c in classes[g]), None)
                if extra is not None and sum(c in classes[g] for g in train) > 1:
                    val.append(extra)
                    train.remove(extra)
            if not any(c in classes[g] for g in train):
                raise ValueError(f"fold {fold} of the {k}-fold cross-validation has no training video of "
                                 f"label {c}: too few groups hold one")
        val = set(val)
        side = group.map(lambda g: "test" if fold_of[g] == fold else "val" if g in val else "train")
        out.append({"fold": fold, **{name: sorted(videos.loc[(side == name).to_numpy(), "store_key"])
                                     for name in ("train", "val", "test")}})
    return out

