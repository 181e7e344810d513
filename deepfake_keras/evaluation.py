"""Scores -> metrics: frame -> video aggregation, the vote of the Xception bags; accuracy, P, R, F1,
AUC, EER.

Pure functions over NumPy arrays and pandas tables; nothing here trains or
plots.

Conventions (every function of this module)
-------------------------------------------
- Labels: ``1 = fake`` (the positive class), ``0 = real``; the manifest of
  :mod:`deepfake_keras.data.datasets` uses the same.
- Scores: a higher score means "more likely fake" (a probability of fake for
  the classifiers of this package, but any real number works for AUC, EER and
  the ROC).
- Decisions: a sample is called fake when ``score >= threshold``.
- Every rate is a fraction in ``[0, 1]``, never a percentage (the paper's
  tables print percentages: multiply by 100 for them).

Error rates, in the words of the paper ("when the false rejection rate and
false acceptance rate are equal"): the detector *accepts* a sample as real and
*rejects* it as fake, so

- FAR, false acceptance rate = fakes accepted as real = ``1 - TPR`` (the miss
  rate of the fake class);
- FRR, false rejection rate = reals rejected as fake = ``FPR``.

The EER is the rate where the two are equal. Swapping the names of FAR and FRR
(as some authors do) leaves the EER unchanged.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from .config import VIDEO_DECISIONS

__all__ = ["AGGREGATIONS", "VIDEO_DECISIONS", "aggregate_bags", "bag_video_probs", "bagged_video_predictions",
           "binary_metrics", "eer", "eer_point", "evaluate_table", "roc_points", "video_decisions", "video_scores"]


# --------------------------------------------------------------------------- input checks

def _check_binary(y_true, score) -> tuple:
    """``(y, s)`` as 1-D int and float arrays, or ValueError saying what is wrong."""
    y = np.asarray(y_true)
    s = np.asarray(score, dtype=float)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"y_true and score must be 1-D, got shapes {y.shape} and {s.shape}")
    if len(y) != len(s):
        raise ValueError(f"y_true and score must have the same length, got {len(y)} and {len(s)}")
    if len(y) == 0:
        raise ValueError("y_true and score are empty")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"score holds {int(np.sum(~np.isfinite(s)))} NaN or infinite values")
    if y.dtype == bool:
        y = y.astype(int)
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"y_true must hold only 0 (real) and 1 (fake), got values {sorted(values)}")
    return y.astype(int), s


def _require_both_classes(y: np.ndarray, what: str) -> None:
    n_fake = int(y.sum())
    if n_fake == 0 or n_fake == len(y):
        only = "fake (1)" if n_fake else "real (0)"
        raise ValueError(f"{what} needs both classes, but every one of the {len(y)} labels is {only}")


# --------------------------------------------------------------------------- ROC and EER

def roc_points(y_true, score, drop_intermediate: bool = False) -> pd.DataFrame:
    """The ROC curve as a table, for figures (paper Fig. 7) and for :func:`eer`.

    Returns one row per distinct threshold, thresholds descending, with columns
    ``threshold`` (a sample is called fake when ``score >= threshold``; the
    first row is ``+inf``: nothing called fake), ``fpr`` (= FRR, reals called
    fake), ``tpr`` (fakes called fake) and ``fnr`` (= ``1 - tpr`` = FAR).
    Tied scores make one row, so the segment to the next row is the diagonal
    that random tie-breaking would trace. ``drop_intermediate=True`` drops the
    collinear points that do not change the curve (smaller figures).
    """
    y, s = _check_binary(y_true, score)
    _require_both_classes(y, "a ROC curve")
    fpr, tpr, thresholds = roc_curve(y, s, pos_label=1, drop_intermediate=drop_intermediate)
    return pd.DataFrame({"threshold": thresholds, "fpr": fpr, "tpr": tpr, "fnr": 1.0 - tpr})


def eer_point(y_true, score) -> tuple:
    """``(eer, threshold)``: the equal error rate and a threshold that attains it best.

    How it is computed: the ROC points ``(FPR_k, FNR_k)`` of every distinct
    threshold (descending) run from ``(0, 1)`` to ``(1, 0)``; ``FPR`` never
    falls and ``FNR`` never rises, so ``d_k = FNR_k - FPR_k`` falls from +1 to
    -1 and crosses 0 exactly once. Take the first ``k`` with ``d_k <= 0``; on
    the straight ROC segment from point ``k-1`` to point ``k`` (the operating
    points of a randomised choice between the two thresholds, which is also
    what random tie-breaking gives inside a group of tied scores) the two rates
    are equal at ``t = d_{k-1} / (d_{k-1} - d_k)``::

        eer = FPR_{k-1} + t * (FPR_k - FPR_{k-1})   (= FNR at the same t)

    This is the usual EER of the empirical ROC curve drawn with straight
    segments (not of its convex hull; the same number as solving
    ``1 - x = interp(fpr, tpr)(x)`` where FPR strictly rises), exact on the
    segment rather than a closest-threshold approximation; if some threshold
    gives ``FPR == FNR`` exactly, it is that rate.

    The returned threshold is that of the segment end whose ``|FNR - FPR|`` is
    smaller (the later end on a tie), i.e. the deterministic threshold closest
    to the EER; where that end is the ``+inf`` start of the curve, the other
    end. Calling fake ``score >= threshold`` there gives error rates within one
    ROC step of the EER.

    Special cases: constant scores give one diagonal segment and EER 0.5;
    perfectly separated scores give 0.0 (a lower EER is better; 0.5 is chance).
    Raises ValueError for single-class labels, NaN scores or bad labels.
    """
    roc = roc_points(y_true, score)
    fpr, fnr, thr = roc["fpr"].to_numpy(), roc["fnr"].to_numpy(), roc["threshold"].to_numpy()
    d = fnr - fpr
    k = int(np.argmax(d <= 0))  # first index with d <= 0; d[0] = 1 > 0 so k >= 1
    t = d[k - 1] / (d[k - 1] - d[k])
    rate = float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))
    j = k - 1 if abs(d[k - 1]) < abs(d[k]) else k
    if not np.isfinite(thr[j]):
        j = k
    return rate, float(thr[j])


def eer(y_true, score) -> float:
    """Equal error rate, a fraction in [0, 0.5] for any sensible detector: see :func:`eer_point`."""
    return eer_point(y_true, score)[0]


# --------------------------------------------------------------------------- metrics

def binary_metrics(y_true, score, threshold: float = 0.5, decisions=None) -> dict:
    """Every metric of the paper's tables for one set of scores (frames or videos).

    Args:
        y_true: labels, 1 = fake, 0 = real.
        score: higher = more likely fake (probability of fake): the AUC, the EER and, unless
            ``decisions`` are given, the calls.
        threshold: call a sample fake when ``score >= threshold``.
        decisions: the calls themselves (1 = called fake), when they come from another rule than
            the score's threshold (e.g. the majority of a video's frames, :func:`video_decisions`).

    Returns a dict of plain floats and ints; rates are fractions in [0, 1]:

    - ``accuracy``: correct calls / n.
    - ``precision_fake``, ``recall_fake``, ``f1_fake``: with **fake** as the positive class (of
      the samples called fake, the fraction that are fake; of the fakes, the fraction called
      fake; their harmonic mean; 0.0 where a denominator is 0).
    - ``precision_real``, ``recall_real``, ``f1_real``: with **pristine** as the positive class,
      as the paper's Table III (its P/R/F1 work out exactly so: 115 of 139 pristine and 127 of 140
      NeuralTextures videos right give P 89.84, R 82.73, F1 86.14).
    - ``auc``: area under the ROC curve (threshold-free; ties count one half).
    - ``eer``, ``eer_threshold``: see :func:`eer_point` (threshold-free rate).
    - ``acc_real``: accuracy on the reals (TNR, = 1 - FPR, = ``recall_real``); ``acc_fake``:
      accuracy on the fakes (TPR, = ``recall_fake``) -- the per-class accuracy of Table IV.
    - ``n``, ``n_real``, ``n_fake``, ``threshold``, ``decided`` (``"score"`` or ``"given"``).

    Raises ValueError unless both classes are present (AUC and EER need both).
    """
    y, s = _check_binary(y_true, score)
    _require_both_classes(y, "binary_metrics")
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold}")
    if decisions is None:
        pred = (s >= threshold).astype(int)
    else:
        pred = np.asarray(decisions)
        if pred.shape != y.shape or not set(np.unique(pred).tolist()) <= {0, 1}:
            raise ValueError(f"decisions must be {len(y)} values of 0 (real) or 1 (fake)")
        pred = pred.astype(int)
    tp = int(np.sum((pred == 1) & (y == 1)))
    tn = int(np.sum((pred == 0) & (y == 0)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    rate, eer_thr = eer_point(y, s)
    out = {"accuracy": (tp + tn) / len(y)}
    for name, hits, false_calls, misses in (("fake", tp, fp, fn), ("real", tn, fn, fp)):
        precision = hits / (hits + false_calls) if hits + false_calls else 0.0
        recall = hits / (hits + misses)
        out[f"precision_{name}"] = float(precision)
        out[f"recall_{name}"] = float(recall)
        out[f"f1_{name}"] = float(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    out.update(auc=float(roc_auc_score(y, s)), eer=rate, eer_threshold=eer_thr, acc_real=tn / (tn + fp),
               acc_fake=tp / (tp + fn), n=int(len(y)), n_real=int(tn + fp), n_fake=int(tp + fn),
               threshold=float(threshold), decided="score" if decisions is None else "given")
    return out


# --------------------------------------------------------------------------- frame -> video

def _vote(scores: pd.Series, threshold: float) -> float:
    return float(np.mean(scores.to_numpy() >= threshold))


#: how frame scores become one video score; ``vote`` is the fraction of frames
#: called fake (``score >= threshold``), so thresholding it at 0.5 is a majority
#: vote in which a tie calls the video fake.
AGGREGATIONS = {
    "mean": lambda scores, threshold: float(scores.mean()),
    "max": lambda scores, threshold: float(scores.max()),
    "vote": _vote,
}


def video_scores(frame_table: pd.DataFrame, score_col: str, by: str = "store_key", how: str = "mean",
                 keep=("label",), threshold: float = 0.5) -> pd.DataFrame:
    """One score per video from its frames' scores (the paper: the mean).

    Args:
        frame_table: one row per frame (face crop), e.g. the face store's
            ``faces.csv`` with a score column added.
        score_col: the column holding each frame's score (higher = fake).
        by: the column naming the video (``store_key`` is unique per video).
        how: a key of :data:`AGGREGATIONS`: ``"mean"`` (default; the paper),
            ``"max"`` or ``"vote"`` (fraction of frames with
            ``score >= threshold``).
        keep: per-video columns to carry over (e.g. ``label``); each must be
            constant within a video. Columns in ``keep`` absent from the table
            are skipped.
        threshold: the frame-level threshold of ``"vote"``.

    Returns a table sorted by ``by`` with columns ``by``, the kept columns,
    ``score_col`` (the video score) and ``n_frames``. Frames whose score is NaN
    raise ValueError (drop them first, deliberately).
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation how={how!r}; choose one of {sorted(AGGREGATIONS)}")
    for col in (by, score_col):
        if col not in frame_table.columns:
            raise ValueError(f"frame_table has no column {col!r} (columns: {list(frame_table.columns)})")
    if len(frame_table) == 0:
        raise ValueError("frame_table is empty")
    scores = pd.to_numeric(frame_table[score_col], errors="coerce")
    if scores.isna().any():
        raise ValueError(f"{int(scores.isna().sum())} frames have no numeric {score_col!r}; drop them first")
    if frame_table[by].isna().any():
        raise ValueError(f"{int(frame_table[by].isna().sum())} frames have no {by!r}")
    keep = [c for c in keep if c in frame_table.columns and c != by]
    table = frame_table[[by] + keep].copy()
    table[score_col] = scores.to_numpy()
    groups = table.groupby(by, sort=True)
    for col in keep:
        varying = groups[col].nunique(dropna=False)
        varying = varying[varying > 1]
        if len(varying):
            raise ValueError(f"column {col!r} varies within {len(varying)} videos (e.g. {varying.index[0]!r})")
    aggregate = AGGREGATIONS[how]
    out = groups[keep].first() if keep else pd.DataFrame(index=groups.size().index)
    out[score_col] = groups[score_col].apply(lambda s: aggregate(s, threshold))
    out["n_frames"] = groups.size()
    return out.reset_index()


def evaluate_table(frame_table: pd.DataFrame, score_col: str, label_col: str = "label", by: str = "store_key",
                   how: str = "mean", threshold: float = 0.5) -> dict:
    """``{"frame": metrics, "video": metrics}`` of :func:`binary_metrics` for one scored table.

    Frame metrics count every row; video metrics score each video by
    :func:`video_scores` (``how``) and threshold that at ``threshold``.
    """
    if label_col not in frame_table.columns:
        raise ValueError(f"frame_table has no label column {label_col!r}")
    frame = binary_metrics(frame_table[label_col].to_numpy(), frame_table[score_col].to_numpy(), threshold)
    videos = video_scores(frame_table, score_col, by=by, how=how, keep=(label_col,), threshold=threshold)
    video = binary_metrics(videos[label_col].to_numpy(), videos[score_col].to_numpy(), threshold)
    return {"frame": frame, "video": video}


def video_decisions(frame_table: pd.DataFrame, score_col: str, rule: str = "majority", by: str = "store_key",
                    threshold: float = 0.5) -> pd.DataFrame:
    """One call per video from its frames' scores: ``by``, ``score`` (the mean of the frames, the score
    for the AUC), ``fake_frames`` (the fraction of frames with ``score >= threshold``) and ``decision``
    (1 = fake), sorted by ``by``.

    ``rule="majority"`` (the authors' ``evaluate_triplets.py``, 10.py lines 300-308: the mean of the
    frames' predicted labels decides the video, the mean probability gives the AUC): fake when more
    than half of the frames are called fake; a tie (an even number of frames, half of them fake) is
    decided by the mean score. ``rule="mean"``: fake when the mean score is at least ``threshold``.
    """
    if rule not in VIDEO_DECISIONS:
        raise ValueError(f"unknown video decision rule {rule!r}; choose one of {VIDEO_DECISIONS}")
    mean = video_scores(frame_table, score_col, by=by, how="mean", keep=())
    vote = video_scores(frame_table, score_col, by=by, how="vote", keep=(), threshold=threshold)
    out = pd.DataFrame({by: mean[by], "score": mean[score_col], "fake_frames": vote[score_col].to_numpy()})
    by_mean = (out["score"] >= threshold).astype(int)
    if rule == "mean":
        out["decision"] = by_mean
    else:
        f = out["fake_frames"]
        out["decision"] = np.where(f > 0.5, 1, np.where(f < 0.5, 0, by_mean))
    return out


# --------------------------------------------------------------------------- the vote of the bags

def aggregate_bags(prob_matrix, threshold: float = 0.5) -> tuple:
    """``(vote_labels, mean_prob)`` of per-bag probabilities ``(n_samples, n_bags)`` (videos or frames).

    - ``vote_labels`` (int 0/1): the majority vote of the bags' decisions, each
      bag calling a sample fake when its probability is ``>= threshold``; fake
      when more than half of the bags say fake. With an odd number of bags (the
      paper's 7) there is never a tie; with an even number, a tie is decided by
      the mean probability (fake when ``mean_prob >= threshold``).
    - ``mean_prob`` (float): the mean of the bags' probabilities, the score for
      the AUC.

    Raises ValueError for a matrix that is not 2-D, is empty, or holds NaN or
    values outside [0, 1].
    """
    p = np.asarray(prob_matrix, dtype=float)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"prob_matrix must be 2-D (samples, bags) and non-empty, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("prob_matrix must hold probabilities in [0, 1] (no NaN)")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    n_bags = p.shape[1]
    fake_votes = (p >= threshold).sum(axis=1)
    mean_prob = p.mean(axis=1)
    vote = np.where(2 * fake_votes > n_bags, 1, 0)
    tie = 2 * fake_votes == n_bags
    vote[tie] = (mean_prob[tie] >= threshold).astype(int)
    return vote.astype(int), mean_prob


def bag_video_probs(frame_table: pd.DataFrame, frame_probs, by: str = "store_key",
                    keep=("label", "split")) -> pd.DataFrame:
    """Per-video probability of every bag: the mean over the video's frames
    (:func:`video_scores`). Columns ``by``, kept columns,
    ``bag_0 .. bag_{k-1}``, ``n_frames``; one row per video, sorted by ``by``."""
    p = np.asarray(frame_probs, dtype=float)
    if p.ndim != 2 or p.shape[0] != len(frame_table):
        raise ValueError(f"frame_probs must be (n_frames, n_bags) with n_frames = {len(frame_table)}, "
                         f"got shape {p.shape}")
    table = frame_table.copy()
    out = None
    for i in range(p.shape[1]):
        table[f"bag_{i}"] = p[:, i]
        v = video_scores(table, f"bag_{i}", by=by, keep=keep)
        out = v if out is None else out.merge(v[[by, f"bag_{i}"]], on=by)
    cols = [c for c in out.columns if c != "n_frames"] + ["n_frames"]
    return out[cols]


def bagged_video_predictions(frame_table: pd.DataFrame, frame_probs, threshold: float = 0.5,
                             by: str = "store_key", keep=("label", "split")) -> pd.DataFrame:
    """:func:`bag_video_probs` plus ``votes_fake`` (bags calling the video fake), ``vote`` (the
    majority label, for the accuracy) and ``mean_prob`` (for the AUC), see :func:`aggregate_bags`."""
    videos = bag_video_probs(frame_table, frame_probs, by=by, keep=keep)
    bag_cols = [c for c in videos.columns if c.startswith("bag_")]
    matrix = videos[bag_cols].to_numpy()
    vote, mean_prob = aggregate_bags(matrix, threshold)
    videos["votes_fake"] = (matrix >= threshold).sum(axis=1)
    videos["vote"] = vote
    videos["mean_prob"] = mean_prob
    return videos
