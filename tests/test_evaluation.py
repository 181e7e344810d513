"""deepfake_keras.evaluation: hand-worked answers, a brute-force EER, cross-checks with scikit-learn."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from deepfake_keras.evaluation import (binary_metrics, eer, eer_point, evaluate_table, roc_points,
                                       video_scores)


# --------------------------------------------------------------------------- brute force

def brute_force_rates(y, s):
    """(thresholds, FPR, FNR) by counting, for +inf and every distinct score, descending."""
    y, s = np.asarray(y), np.asarray(s, dtype=float)
    thresholds = np.concatenate([[np.inf], np.sort(np.unique(s))[::-1]])
    fpr = np.array([np.mean(s[y == 0] >= t) for t in thresholds])
    fnr = np.array([np.mean(s[y == 1] < t) for t in thresholds])
    return thresholds, fpr, fnr


def brute_force_eer(y, s):
    """Sweep every threshold; where FNR - FPR changes sign, intersect the segment with FPR = FNR."""
    _, fpr, fnr = brute_force_rates(y, s)
    for i in range(1, len(fpr)):
        d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
        if d0 > 0 >= d1:
            t = d0 / (d0 - d1)
            return fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    raise AssertionError("no crossing")


def closest_threshold_eer(y, s):
    """The naive EER: the threshold with the smallest |FPR - FNR|, reported as (FPR + FNR) / 2."""
    _, fpr, fnr = brute_force_rates(y, s)
    i = np.argmin(np.abs(fnr - fpr))
    return (fpr[i] + fnr[i]) / 2


# --------------------------------------------------------------------------- hand-worked

def test_binary_metrics_hand_worked():
    # reals 0.1 0.2 0.6 0.3, fakes 0.7 0.8 0.4 0.9; threshold 0.5:
    # TP = 3 (0.7 0.8 0.9), FN = 1 (0.4), FP = 1 (0.6), TN = 3 -> every rate 3/4.
    # AUC: fake > real pairs: 0.7, 0.8, 0.9 beat all 4 reals, 0.4 beats 3 -> 15/16.
    # EER: descending 0.9F 0.8F 0.7F 0.6R ...; at threshold 0.6 FPR = 1/4 = FNR -> 0.25, threshold 0.6.
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [0.1, 0.2, 0.6, 0.3, 0.7, 0.8, 0.4, 0.9]
    m = binary_metrics(y, s)
    for key in ("accuracy", "precision_fake", "recall_fake", "f1_fake", "precision_real", "recall_real", "f1_real",
                "acc_real", "acc_fake"):
        assert m[key] == pytest.approx(0.75), key
    assert m["auc"] == pytest.approx(15 / 16)
    assert m["eer"] == pytest.approx(0.25)
    assert m["eer_threshold"] == pytest.approx(0.6)
    assert (m["n"], m["n_real"], m["n_fake"], m["threshold"]) == (8, 4, 4, 0.5)


def test_threshold_is_inclusive_and_precision_zero_when_nothing_called_fake():
    m = binary_metrics([0, 1], [0.2, 0.5])  # 0.5 >= 0.5 -> fake
    assert (m["accuracy"], m["precision_fake"], m["recall_fake"]) == (1.0, 1.0, 1.0)
    m = binary_metrics([0, 1], [0.2, 0.4], threshold=0.9)  # nothing called fake
    assert (m["precision_fake"], m["recall_fake"], m["f1_fake"], m["acc_real"], m["acc_fake"]) == (0.0, 0.0, 0.0, 1.0, 0.0)
    assert (m["precision_real"], m["recall_real"]) == (0.5, 1.0)  # everything called real: 1 of 2 right
    assert m["auc"] == 1.0


def test_eer_interpolates_along_the_segment():
    # reals 0.2 0.6, fakes 0.4 0.7 0.9. (FPR, FNR) by threshold: inf (0, 1), 0.9 (0, 2/3),
    # 0.7 (0, 1/3), 0.6 (1/2, 1/3), ... FNR - FPR goes 1/3 -> -1/6 on the segment 0.7 -> 0.6,
    # along which FNR stays 1/3 while FPR rises: the rates meet at 1/3 (t = 2/3 of the way).
    # Closest deterministic threshold: |d| = 1/6 at 0.6 < 1/3 at 0.7.
    rate, thr = eer_point([0, 0, 1, 1, 1], [0.2, 0.6, 0.4, 0.7, 0.9])
    assert rate == pytest.approx(1 / 3)
    assert thr == pytest.approx(0.6)


def test_eer_ties_constant_perfect_and_inverted():
    # tie: reals 0.3 0.1, fakes 0.3 0.9. (FPR, FNR): 0.9 (0, 1/2), 0.3 (1/2, 0): the tied group is
    # one diagonal segment (random tie-breaking); it meets FPR = FNR half way: 1/4.
    assert eer([0, 1, 0, 1], [0.3, 0.3, 0.1, 0.9]) == pytest.approx(0.25)
    assert roc_auc_score([0, 1, 0, 1], [0.3, 0.3, 0.1, 0.9]) == pytest.approx(0.875)
    assert eer([0, 1, 0, 1, 1], [0.5] * 5) == pytest.approx(0.5)  # constant score: chance
    rate, thr = eer_point([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert (rate, thr) == (0.0, 0.8)  # separated: EER 0 at the lowest fake score
    assert eer([0, 1], [0.9, 0.1]) == pytest.approx(1.0)  # every call wrong


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("decimals", [None, 1])
def test_eer_matches_brute_force_sweep(seed, decimals):
    rng = np.random.default_rng(seed)
    n_real, n_fake = rng.integers(5, 60, size=2)
    y = np.r_[np.zeros(n_real, int), np.ones(n_fake, int)]
    s = rng.normal(size=len(y)) + 1.0 * y
    if decimals is not None:  # many ties
        s = np.round(s, decimals)
    rng.shuffle(y)  # labels and scores decorrelated half of the time
    if seed % 2:
        y = np.sort(y)
    # exact: the same segment crossing computed by counting at every threshold (float rounding only)
    assert eer(y, s) == pytest.approx(brute_force_eer(y, s), abs=1e-12)
    if decimals is None:
        # distinct scores: neighbouring thresholds differ by one sample, so along the crossing segment
        # one rate is constant (= EER) and the other moves by one step, 1/n_real or 1/n_fake; the
        # naive closest-threshold estimate (FPR + FNR) / 2 is therefore within half a step.
        bound = 1 / (2 * min(n_real, n_fake))
        assert abs(eer(y, s) - closest_threshold_eer(y, s)) <= bound + 1e-12
        # and the returned threshold attains the smallest |FPR - FNR| of any threshold
        thresholds, fpr, fnr = brute_force_rates(y, s)
        gap = np.abs(fnr - fpr)
        assert gap[thresholds == eer_point(y, s)[1]][0] == gap.min()


def test_binary_metrics_agree_with_sklearn_on_random_data():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, size=300)
    s = rng.random(300) * 0.6 + 0.4 * y
    m = binary_metrics(y, s, threshold=0.55)
    pred = (s >= 0.55).astype(int)
    assert m["precision_fake"] == pytest.approx(precision_score(y, pred))
    assert m["recall_fake"] == pytest.approx(recall_score(y, pred))
    assert m["f1_fake"] == pytest.approx(f1_score(y, pred))
    assert m["precision_real"] == pytest.approx(precision_score(y, pred, pos_label=0))
    assert m["recall_real"] == pytest.approx(recall_score(y, pred, pos_label=0))
    assert m["f1_real"] == pytest.approx(f1_score(y, pred, pos_label=0))
    assert m["auc"] == pytest.approx(roc_auc_score(y, s))
    assert m["acc_real"] == pytest.approx(np.mean(pred[y == 0] == 0))
    assert m["accuracy"] == pytest.approx(np.mean(pred == y))


def test_roc_points_table():
    roc = roc_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert list(roc.columns) == ["threshold", "fpr", "tpr", "fnr"]
    assert np.isinf(roc["threshold"].iloc[0])
    np.testing.assert_allclose(roc["fpr"], [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(roc["tpr"], [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(roc["fnr"], 1 - roc["tpr"])


@pytest.mark.parametrize("y, s, match", [
    ([1, 1, 1], [0.1, 0.5, 0.9], "both classes"),
    ([0, 0], [0.1, 0.5], "both classes"),
    ([0, 1, 2], [0.1, 0.5, 0.9], "only 0"),
    ([0, 1, -1], [0.1, 0.5, 0.9], "only 0"),
    ([0, 1], [0.1, np.nan], "NaN"),
    ([0, 1, 1], [0.1, 0.5], "same length"),
    ([], [], "empty"),
])
def test_bad_input_raises_value_error(y, s, match):
    with pytest.raises(ValueError, match=match):
        eer(y, s)
    with pytest.raises(ValueError, match=match):
        binary_metrics(y, s)


# --------------------------------------------------------------------------- frame -> video

@pytest.fixture
def frames():
    # video a (fake): 0.2 0.4 0.9 -> mean 0.5, max 0.9, vote (>= 0.5) 1/3
    # video b (real): 0.1 0.3     -> mean 0.2, max 0.3, vote 0
    # video c (fake): 0.6 0.5 0.7 0.1 -> mean 0.475, max 0.7, vote 3/4
    rows = [("a", 1, 0.2), ("b", 0, 0.1), ("c", 1, 0.6), ("a", 1, 0.4), ("c", 1, 0.5),
            ("b", 0, 0.3), ("c", 1, 0.7), ("a", 1, 0.9), ("c", 1, 0.1)]
    return pd.DataFrame(rows, columns=["store_key", "label", "p_fake"])


@pytest.mark.parametrize("how, expected", [
    ("mean", [0.5, 0.2, 0.475]),
    ("max", [0.9, 0.3, 0.7]),
    ("vote", [1 / 3, 0.0, 0.75]),
])
def test_video_scores_hand_made_table(frames, how, expected):
    v = video_scores(frames, "p_fake", how=how)
    assert list(v.columns) == ["store_key", "label", "p_fake", "n_frames"]
    assert list(v["store_key"]) == ["a", "b", "c"]
    assert list(v["label"]) == [1, 0, 1]
    assert list(v["n_frames"]) == [3, 2, 4]
    np.testing.assert_allclose(v["p_fake"], expected)


def test_video_scores_default_is_mean_and_bad_input(frames):
    np.testing.assert_allclose(video_scores(frames, "p_fake")["p_fake"], [0.5, 0.2, 0.475])
    with pytest.raises(ValueError, match="unknown aggregation"):
        video_scores(frames, "p_fake", how="median")
    with pytest.raises(ValueError, match="no column"):
        video_scores(frames, "score")
    mixed = frames.copy()
    mixed.loc[0, "label"] = 0  # a frame of video a says real
    with pytest.raises(ValueError, match="varies within 1 videos"):
        video_scores(mixed, "p_fake")
    gap = frames.copy()
    gap.loc[2, "p_fake"] = np.nan
    with pytest.raises(ValueError, match="no numeric"):
        video_scores(gap, "p_fake")


def test_evaluate_table_frame_and_video_levels(frames):
    out = evaluate_table(frames, "p_fake")
    # frames: fakes 0.2 0.4 0.9 0.6 0.5 0.7 0.1, reals 0.1 0.3; called fake at >= 0.5: 0.9 0.6 0.5 0.7
    assert out["frame"]["n"] == 9
    assert out["frame"]["recall_fake"] == pytest.approx(4 / 7)
    assert out["frame"]["acc_real"] == 1.0
    # videos: a 0.5 (fake, called fake), b 0.2 (real), c 0.475 (fake, missed)
    assert out["video"]["n"] == 3
    assert out["video"]["accuracy"] == pytest.approx(2 / 3)
    assert out["video"]["auc"] == 1.0


# --------------------------------------------------------------------------- the paper's tables, recomputed

def test_papers_table_3_is_pristine_positive():
    """Table III's Triplets + RF row from the counts the paper implies (Tables II-IV): 115 of 139 pristine
    and 127 of 140 NeuralTextures test videos right. With pristine as the positive class our metric code
    gives the paper's P 89.84, R 82.73, F1 86.14 (and the accuracy 86.74 of Table II, the RF row)."""
    y = np.r_[np.zeros(139, int), np.ones(140, int)]
    called_fake = np.r_[np.ones(24, int), np.zeros(115, int), np.ones(127, int), np.zeros(13, int)]
    m = binary_metrics(y, called_fake.astype(float), decisions=called_fake)
    assert round(100 * m["precision_real"], 2) == 89.84
    assert round(100 * m["recall_real"], 2) == 82.73
    assert round(100 * m["f1_real"], 2) == 86.14
    assert round(100 * m["accuracy"], 2) == 86.74
    assert (round(100 * m["acc_fake"], 2), round(100 * m["acc_real"], 2)) == (90.71, 82.73)  # Table IV, "Ours"
    # with fake as the positive class the same calls give other numbers: not the paper's
    assert round(100 * m["precision_fake"], 2) != 89.84


def test_video_decisions_majority_and_mean():
    from deepfake_keras.evaluation import video_decisions

    frames = pd.DataFrame({"store_key": ["a"] * 3 + ["b"] * 4 + ["c"] * 2,
                           "p": [0.9, 0.6, 0.1, 0.9, 0.9, 0.2, 0.2, 0.45, 0.55]})
    v = video_decisions(frames, "p").set_index("store_key")
    # a: 2 of 3 fake -> fake (mean 0.533); b: 2 of 4, a tie -> the mean 0.55 decides, fake;
    # c: 1 of 2, a tie, mean 0.5 -> fake (>= 0.5)
    assert v["fake_frames"].tolist() == pytest.approx([2 / 3, 0.5, 0.5])
    assert v["score"].tolist() == pytest.approx([1.6 / 3, 0.55, 0.5])
    assert v["decision"].tolist() == [1, 1, 1]
    frames.loc[frames["store_key"] == "a", "p"] = [0.9, 0.2, 0.3]  # 1 of 3 fake, mean 0.467
    frames.loc[frames["store_key"] == "b", "p"] = [0.99, 0.99, 0.99, 0.4]  # 3 of 4 fake, mean 0.84
    v = video_decisions(frames, "p").set_index("store_key")
    assert v.loc["a", "decision"] == 0 and v.loc["b", "decision"] == 1
    frames.loc[frames["store_key"] == "a", "p"] = [0.9, 0.45, 0.45]  # 1 of 3 fake but mean 0.6: the rules differ
    assert video_decisions(frames, "p").set_index("store_key").loc["a", "decision"] == 0
    assert video_decisions(frames, "p", rule="mean").set_index("store_key").loc["a", "decision"] == 1
    with pytest.raises(ValueError, match="rule"):
        video_decisions(frames, "p", rule="median")

