"""Window metrics to the digit, on hand-built confusion matrices: accuracy, precision, recall, F1
(zero divisions included), the minimum-label rule at its boundary, and the Wilson interval at the
counts where approximations break (n = 0, 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelvigil.analysis.performance import wilson_interval, window_quality


def _by_window(window, predicted, actual, **kwargs):
    table = window_quality(
        np.asarray(window), np.asarray(predicted), np.asarray(actual, dtype=float), **kwargs
    )
    return table.set_index("window").to_dict("index")


def test_a_mixed_window_to_the_digit():
    # pred 1 1 0 0 1 / true 1 0 0 1 1: hits at 0, 2, 4; tp 2, predicted positives 3, actual positives 3
    got = _by_window([0] * 5, [1, 1, 0, 0, 1], [1, 0, 0, 1, 1])[0]
    assert got["n_labelled"] == 5
    assert got["accuracy"] == pytest.approx(0.6)
    assert got["precision"] == pytest.approx(2 / 3) and got["recall"] == pytest.approx(2 / 3)
    assert got["f1"] == pytest.approx(2 / 3)


def test_precision_and_recall_differ_and_f1_is_their_harmonic_mean():
    # pred 1 1 1 1 0 / true 1 1 0 0 1: tp 2, predicted positives 4, actual positives 3
    got = _by_window([0] * 5, [1, 1, 1, 1, 0], [1, 1, 0, 0, 1])[0]
    assert got["accuracy"] == pytest.approx(0.4)
    assert got["precision"] == pytest.approx(0.5) and got["recall"] == pytest.approx(2 / 3)
    assert got["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_zero_divisions_give_zero_not_nan():
    got = _by_window([0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0])
    # window 0: all correct, no positives at all; window 1: two false positives, no actual positives
    assert (got[0]["accuracy"], got[0]["precision"], got[0]["recall"], got[0]["f1"]) == (1.0, 0.0, 0.0, 0.0)
    assert (got[1]["accuracy"], got[1]["precision"], got[1]["recall"], got[1]["f1"]) == (0.0, 0.0, 0.0, 0.0)


def test_the_positive_class_can_be_another_label():
    got = _by_window([0] * 4, [0, 0, 1, 1], [0, 1, 1, 1], positive=0)[0]
    # for class 0: tp 1, predicted 0s 2, actual 0s 1
    assert got["precision"] == pytest.approx(0.5) and got["recall"] == pytest.approx(1.0)


def test_unlabelled_rows_do_not_count_and_a_window_without_labels_stays_listed():
    got = _by_window([0, 0, 0, 1, 1], [1, 0, 1, 1, 0], [1, np.nan, 0, np.nan, np.nan])
    assert got[0]["n_labelled"] == 2 and got[0]["accuracy"] == pytest.approx(0.5)
    assert got[1]["n_labelled"] == 0
    assert all(
        math.isnan(got[1][k]) for k in ("accuracy", "accuracy_low", "accuracy_high", "precision", "f1")
    )


def test_windows_keep_their_order_of_first_appearance():
    table = window_quality(np.array([3, 3, 1, 1]), np.array([1, 1, 0, 0]), np.array([1.0, 1.0, 0.0, 1.0]))
    assert table["window"].tolist() == [3, 1]
    assert table["accuracy"].tolist() == [1.0, 0.5]


def test_min_labels_boundary_judges_at_exactly_the_minimum():
    got = _by_window([0, 0, 1], [1, 1, 1], [1, 0, 1], min_count=2)
    assert got[0]["n_labelled"] == 2 and got[0]["accuracy"] == pytest.approx(0.5)  # exactly 2: judged
    assert got[1]["n_labelled"] == 1 and math.isnan(got[1]["accuracy"])  # under 2: counts only
    assert math.isnan(got[1]["accuracy_high"]) and math.isnan(got[1]["recall"])
    zero = _by_window([0], [1], [1], min_count=0)[0]  # a minimum under 1 is taken as 1
    assert zero["accuracy"] == 1.0


def test_wilson_interval_at_n_zero_and_one():
    low, high = wilson_interval(np.array([0, 0, 1]), np.array([0, 1, 1]))
    assert math.isnan(low[0]) and math.isnan(high[0])
    # 0 of 1 and 1 of 1 at z = 1.959964: (0, 0.7935) and (0.2065, 1)
    assert low[1] == pytest.approx(0.0, abs=1e-12) and high[1] == pytest.approx(0.79345, abs=1e-5)
    assert low[2] == pytest.approx(0.20655, abs=1e-5) and high[2] == pytest.approx(1.0)


def test_wilson_interval_at_another_confidence():
    low, high = wilson_interval(np.array([50]), np.array([100]), confidence=0.99)
    # z = 2.575829: centre 0.5, half = z * sqrt(0.25/100 + z^2/40000) / (1 + z^2/100)
    z = 2.5758293035489
    half = z * math.sqrt(0.25 / 100 + z**2 / 40_000) / (1 + z**2 / 100)
    assert low[0] == pytest.approx(0.5 - half) and high[0] == pytest.approx(0.5 + half)
    assert half == pytest.approx(0.12472, abs=1e-5)


def test_wilson_interval_holds_at_counts_whose_square_overflows_integers():
    n = 2**32  # n squared is beyond 64-bit integers: the interval is computed in floats
    low, high = wilson_interval(np.array([n // 2]), np.array([n]))
    assert low[0] == pytest.approx(0.5, abs=1e-4) and high[0] == pytest.approx(0.5, abs=1e-4)
    assert low[0] < 0.5 < high[0]
