"""The LSTM/GRU variant of Table II's row, chosen from hand-made validation accuracies: the best wins,
accuracies within ``TIE_TOLERANCE`` of it (float32 rounding) are tied, and a tie goes to the shorter
sequence, then to LSTM before GRU, whatever order the results come in."""
import itertools
import random

import numpy as np
import pytest

from deepfake_keras.pipelines.ffpp_baselines import TIE_TOLERANCE, select_recurrent

PREFERENCE = ["lstm_2", "gru_2", "lstm_4", "gru_4"]  # the tie order: shorter sequence, then LSTM


def f32(x) -> float:
    """``x`` as Keras reports it: a float32 widened to a Python float (what training records hold)."""
    return float(np.float32(x))


def next_up(x, n=1) -> float:
    """The float32 ``n`` ulps above ``x``."""
    v = np.float32(x)
    for _ in range(n):
        v = np.nextafter(v, np.float32(np.inf), dtype=np.float32)
    return float(v)


def shuffled(results: dict, seed: int) -> dict:
    items = list(results.items())
    random.Random(seed).shuffle(items)
    return dict(items)


def test_the_best_validation_accuracy_wins():
    acc = {"lstm_2": f32(0.5), "gru_2": f32(0.625), "lstm_4": f32(0.75), "gru_4": f32(0.875)}
    assert select_recurrent(acc) == "gru_4"
    assert select_recurrent({**acc, "lstm_16": f32(0.9)}) == "lstm_16"  # lengths compared as numbers


@pytest.mark.parametrize("tied, expected", [
    (["lstm_2", "gru_2", "lstm_4", "gru_4"], "lstm_2"),
    (["gru_2", "lstm_4", "gru_4"], "gru_2"),  # the shorter sequence before LSTM
    (["lstm_4", "gru_4"], "lstm_4"),
    (["gru_2", "gru_4"], "gru_2"),
    (["gru_4", "lstm_4"], "lstm_4"),
])
def test_exact_ties_go_to_the_shorter_sequence_then_to_lstm(tied, expected):
    acc = {k: f32(0.75) if k in tied else f32(0.5) for k in PREFERENCE}
    for seed in range(6):  # the order of the results does not matter
        assert select_recurrent(shuffled(acc, seed)) == expected


def test_accuracies_one_ulp_apart_are_tied_either_way():
    """The second machine's failure: gru_4 came out 1 ulp of float32 above lstm_2. Whichever of the two is
    rounded up, and by up to 16 ulps, the tie rule decides, not the rounding."""
    low = f32(0.75)
    for ulps in (1, 2, 16):
        high = next_up(low, ulps)
        assert 0 < high - low <= TIE_TOLERANCE
        assert select_recurrent({"lstm_2": low, "gru_2": 0.5, "lstm_4": 0.5, "gru_4": high}) == "lstm_2"
        assert select_recurrent({"lstm_2": high, "gru_2": 0.5, "lstm_4": 0.5, "gru_4": low}) == "lstm_2"
        assert select_recurrent({"lstm_2": 0.5, "gru_2": high, "lstm_4": low, "gru_4": low}) == "gru_2"
        assert select_recurrent({"lstm_2": 0.5, "gru_2": low, "lstm_4": high, "gru_4": 0.5}) == "gru_2"
    # a near tie of the same value in other float forms (the JSON of a record, float64 sums)
    third = 2 / 3
    assert select_recurrent({"gru_2": third, "lstm_4": f32(third), "gru_4": next_up(third)}) == "gru_2"


def test_a_real_difference_is_not_a_tie():
    """One validation sequence of 1,000 per class more or less right is 1 / 2,000 = 5e-4, far above the tolerance;
    so is anything just past it."""
    n = 1000
    better, worse = f32(0.5 * (800 / n) + 0.5 * (700 / n)), f32(0.5 * (799 / n) + 0.5 * (700 / n))
    assert select_recurrent({"lstm_2": worse, "gru_2": worse, "lstm_4": worse, "gru_4": better}) == "gru_4"
    best = 0.75
    assert select_recurrent({"lstm_2": best - 2 * TIE_TOLERANCE, "gru_4": best}) == "gru_4"
    assert select_recurrent({"lstm_2": best - TIE_TOLERANCE / 2, "gru_4": best}) == "lstm_2"


def test_a_tie_is_measured_from_the_best_not_chained():
    """Three values each within the tolerance of the next but the lowest 1.5 tolerances under the best: the
    lowest is not tied with the best, whatever order they come in."""
    best = 0.8
    acc = {"lstm_2": best - 1.5 * TIE_TOLERANCE, "gru_2": best - 0.75 * TIE_TOLERANCE, "lstm_4": best,
           "gru_4": 0.1}
    for order in itertools.permutations(acc):
        assert select_recurrent({k: acc[k] for k in order}) == "gru_2"


def test_unvalidated_variants_count_as_zero():
    assert select_recurrent({"lstm_2": None, "gru_2": None}) == "lstm_2"
    assert select_recurrent({"lstm_2": None, "gru_2": 0.6}) == "gru_2"
