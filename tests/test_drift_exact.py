"""Drift statistics to the digit on fixed data: PSI on a known histogram (Jeffreys prior and all),
its noise floor and guards, KS, missing shares, and the prediction mix's Jensen-Shannon distance
and chi-square p-value, worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from modelvigil.analysis.drift import NOISE_ALPHA, ReferenceProfile, psi_noise_floor

# 0..99: deciles at 9.9, 19.8, ... 89.1, so each of the 10 bins holds 10% of the reference.
REFERENCE = pd.DataFrame({"x": np.arange(100, dtype=float)})


def _profile() -> ReferenceProfile:
    return ReferenceProfile.fit(REFERENCE, ["x"])


def test_the_reference_is_cut_at_its_deciles():
    ref = _profile().numeric["x"]
    assert ref.edges == pytest.approx([9.9 * k for k in range(1, 10)])
    assert ref.proportions == pytest.approx([0.1] * 10)
    assert ref.sample.tolist() == list(range(100)) and ref.nan_share == 0.0


def test_psi_of_a_window_piled_into_one_bin():
    got = _profile().numeric_drift("x", np.zeros(20))
    # counts 20, 0 x 9; with half a count per bin: 20.5/25 = 0.82 and 0.5/25 = 0.02 against 0.1
    expected = (0.82 - 0.1) * math.log(0.82 / 0.1) + 9 * (0.02 - 0.1) * math.log(0.02 / 0.1)
    assert got["psi"] == pytest.approx(expected) and expected == pytest.approx(2.673772, abs=1e-6)
    assert got["ks"] == pytest.approx(0.99)  # the window's CDF is 1 at 0, the reference's 0.01
    assert got["ks_pvalue"] < 1e-9 and got["nan_share"] == 0.0


def test_psi_of_a_window_like_the_reference_is_zero():
    got = _profile().numeric_drift("x", np.arange(100, dtype=float))
    # counts 10 per bin: (10.5)/(105) = 0.1 exactly, so every term is 0
    assert got["psi"] == pytest.approx(0.0, abs=1e-12)
    assert got["ks"] == pytest.approx(0.0) and got["ks_pvalue"] == pytest.approx(1.0)


def test_the_noise_floor_is_the_chi_square_quantile_over_the_effective_size():
    got = _profile().numeric_drift("x", np.zeros(20))
    n_eff = 1 / (1 / 20 + 1 / 100)
    assert got["psi_critical"] == pytest.approx(stats.chi2.ppf(1 - NOISE_ALPHA, 9) / n_eff)
    assert got["psi_critical"] == pytest.approx(33.7199 / n_eff, rel=1e-4)
    assert psi_noise_floor(1, 1, 2) == pytest.approx(stats.chi2.ppf(1 - NOISE_ALPHA, 1) / 0.5)
    assert psi_noise_floor(50, 50, 10, alpha=0.05) == pytest.approx(16.9190 / 25, rel=1e-4)


@pytest.mark.parametrize(("n_window", "n_reference", "bins"), [(0, 100, 10), (100, 0, 10), (100, 100, 1)])
def test_the_noise_floor_is_infinite_where_nothing_can_be_judged(n_window, n_reference, bins):
    assert psi_noise_floor(n_window, n_reference, bins) == math.inf


def test_missing_values_are_a_share_not_a_value():
    values = np.array([0.0] * 15 + [np.nan] * 5)
    got = _profile().numeric_drift("x", values)
    assert got["nan_share"] == pytest.approx(0.25)
    expected = (15.5 / 20 - 0.1) * math.log(15.5 / 20 / 0.1) + 9 * (0.5 / 20 - 0.1) * math.log(0.5 / 20 / 0.1)
    assert got["psi"] == pytest.approx(expected)  # the 15 finite values only
    empty = _profile().numeric_drift("x", np.array([]))
    assert math.isnan(empty["nan_share"]) and math.isnan(empty["psi"]) and math.isnan(empty["ks"])
    all_nan = _profile().numeric_drift("x", np.full(4, np.nan))
    assert all_nan["nan_share"] == 1.0 and math.isnan(all_nan["psi_critical"])
    assert math.isnan(all_nan["ks_pvalue"])


def test_fit_counts_the_reference_missing_share_and_caps_the_ks_sample():
    frame = pd.DataFrame({"x": [*range(100), *([np.nan] * 25)], "big": np.arange(125) * 1.0})
    profile = ReferenceProfile.fit(frame, ["x"])
    assert profile.rows == 125 and profile.numeric["x"].nan_share == pytest.approx(0.2)
    big = ReferenceProfile.fit(pd.DataFrame({"x": np.arange(30_000, dtype=float)}), ["x"])
    sample = big.numeric["x"].sample
    assert sample.size == 20_000 and np.all(np.diff(sample) > 0)  # sorted, drawn without replacement
    skewed = ReferenceProfile.fit(pd.DataFrame({"x": [0.0] * 85 + [1.0] * 15}), ["x"])
    assert skewed.numeric["x"].edges.tolist() == [0.0, 1.0]  # eight deciles at 0, one at 1: merged
    assert skewed.numeric["x"].proportions == pytest.approx([0.0, 0.85, 0.15])


def test_js_of_identical_and_of_disjoint_mixes():
    profile = ReferenceProfile.fit(pd.DataFrame({"p": [0, 1] * 50}), [], ["p"])
    same = profile.categorical_drift("p", pd.Series([0, 1] * 10))
    assert same["js"] == pytest.approx(0.0, abs=1e-12) and same["chi2_pvalue"] == pytest.approx(1.0)
    other = ReferenceProfile.fit(pd.DataFrame({"p": [0] * 10}), [], ["p"])
    disjoint = other.categorical_drift("p", pd.Series([1] * 10))
    assert disjoint["js"] == pytest.approx(1.0)  # base 2: disjoint mixes are as far apart as can be


def test_js_and_chi_square_of_a_shifted_mix_by_hand():
    profile = ReferenceProfile.fit(pd.DataFrame({"p": [0] * 50 + [1] * 50}), [], ["p"])
    got = profile.categorical_drift("p", pd.Series([0] * 30 + [1] * 70))
    m = [0.4, 0.6]
    kl_p = 0.3 * math.log2(0.3 / m[0]) + 0.7 * math.log2(0.7 / m[1])
    kl_q = 0.5 * math.log2(0.5 / m[0]) + 0.5 * math.log2(0.5 / m[1])
    assert got["js"] == pytest.approx(math.sqrt((kl_p + kl_q) / 2)) and got["js"] == pytest.approx(
        0.174083, abs=1e-6
    )
    # 2x2 table [[30, 70], [50, 50]], expected 40/60 per row, Yates: (10 - 0.5)^2 * (2/40 + 2/60)
    chi2 = 9.5**2 * (2 / 40 + 2 / 60)
    assert got["chi2_pvalue"] == pytest.approx(stats.chi2.sf(chi2, 1)) and got["chi2_pvalue"] < 0.01


def test_a_class_the_reference_never_saw_counts_as_drift():
    profile = ReferenceProfile.fit(pd.DataFrame({"p": [0, 1] * 50}), [], ["p"])
    got = profile.categorical_drift("p", pd.Series([0, 1, 2, 2]))
    assert got["js"] > 0.3 and got["chi2_pvalue"] < 0.05
    assert math.isnan(profile.categorical_drift("p", pd.Series([None, None]))["js"])
    single = ReferenceProfile.fit(pd.DataFrame({"p": [1] * 10}), [], ["p"]).categorical_drift(
        "p", pd.Series([1])
    )
    assert single == {"js": 0.0, "chi2_pvalue": 1.0}


SKEWED = pd.DataFrame({"x": [0.0] * 85 + [1.0] * 15})  # edges [0, 1]: bins [<0, 0..1, >=1] = 0, .85, .15


def test_psi_against_an_uneven_reference_by_hand():
    got = ReferenceProfile.fit(SKEWED, ["x"]).numeric_drift("x", np.zeros(20))
    # zeros fall in the middle bin (side="right": a value on an edge goes up); half a count per bin
    actual = [0.5 / 21.5, 20.5 / 21.5, 0.5 / 21.5]
    expected = [1e-4, 0.85, 0.15]  # an empty reference bin is floored, never log(0)
    psi = sum((a - e) * math.log(a / e) for a, e in zip(actual, expected, strict=True))
    assert got["psi"] == pytest.approx(psi) and psi == pytest.approx(0.37433, abs=1e-5)


def test_ks_uses_the_asymptotic_p_value():
    window = np.arange(0.0, 60.0, 2.0)
    got = _profile().numeric_drift("x", window)
    asymp = stats.ks_2samp(window, np.arange(100.0), method="asymp")
    assert got["ks"] == pytest.approx(asymp.statistic) and got["ks_pvalue"] == pytest.approx(asymp.pvalue)
    assert got["ks_pvalue"] != pytest.approx(stats.ks_2samp(window, np.arange(100.0), method="exact").pvalue)


def test_window_values_may_come_as_a_list_with_nulls():
    got = _profile().numeric_drift("x", [0.0, None, 0.0, None])
    assert got["nan_share"] == pytest.approx(0.5) and np.isfinite(got["psi"])


def test_fit_reads_text_and_nullable_columns_as_numbers_and_skips_empty_ones():
    frame = pd.DataFrame(
        {
            "empty": [np.nan] * 4,
            "text": ["1", "2", "n/a", "4"],
            "nullable": pd.array([1, None, 3, 4], dtype="Int64"),
            "label": [None] * 4,
            "mix": [0, 1, 1, None],
        }
    )
    profile = ReferenceProfile.fit(frame, ["empty", "text", "nullable"], ["label", "mix"])
    assert set(profile.numeric) == {"text", "nullable"}  # an empty column first does not stop the rest
    assert profile.numeric["text"].nan_share == pytest.approx(0.25)
    assert profile.numeric["nullable"].nan_share == pytest.approx(0.25)
    assert set(profile.categorical) == {"mix"}
    assert profile.categorical["mix"].counts.tolist() == [2.0, 1.0]
    nothing = ReferenceProfile.fit(pd.DataFrame({"x": []}), ["x"])
    assert nothing.numeric == {} and nothing.rows == 0


def test_the_ks_sample_is_reproducible_and_seeded():
    frame = pd.DataFrame({"x": np.random.default_rng(5).normal(size=25_000)})
    first = ReferenceProfile.fit(frame, ["x"]).numeric["x"].sample
    assert np.array_equal(first, ReferenceProfile.fit(frame, ["x"], seed=0).numeric["x"].sample)
    assert not np.array_equal(first, ReferenceProfile.fit(frame, ["x"], seed=1).numeric["x"].sample)


def test_an_empty_window_mix_is_reported_as_unknown():
    profile = ReferenceProfile.fit(pd.DataFrame({"p": [0, 1]}), [], ["p"])
    got = profile.categorical_drift("p", pd.Series([None], dtype=object))
    assert set(got) == {"js", "chi2_pvalue"} and all(math.isnan(v) for v in got.values())
