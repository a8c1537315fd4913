"""The engine on in-memory records of other kinds of model (no Prefect, no store): what it infers
about the model, and its figures against values computed here with numpy, scipy and scikit-learn.
Fast: `./run mutation` runs these against the calculators."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import f1_score, precision_score, recall_score

from modelvigil.analysis.alerts import run_payload
from modelvigil.analysis.config import Alert, AlertKind, MonitoringConfig, Task
from modelvigil.analysis.distribution_plots import feature_distribution, window_bins
from modelvigil.analysis.engine import analyse, analyse_blocks
from modelvigil.analysis.model_schema import (
    FeatureKind,
    categories,
    infer_features,
    infer_task,
    label_values,
    positive_class,
    sort_key,
)
from tests.helpers import record_frame


@pytest.mark.parametrize(
    ("prediction", "label", "task"),
    [
        ([0, 1, 1, 0], [1, 1, 0, 0], Task.binary),
        ([True, False], [False, False], Task.binary),
        (["low", "mid", "high"], ["mid", "mid", "low"], Task.multiclass),
        ([0, 1, 2, 2], [0, 1, 1, 2], Task.multiclass),
        ([0.5, 1.25, 3.0], [0.4, 1.0, 3.5], Task.regression),
        (list(range(30)), list(range(30)), Task.regression),  # too many whole numbers for classes
        ([1.0, 0.0], [1, 0], Task.binary),  # 1.0 and 1 are one class
    ],
)
def test_the_task_is_inferred_from_predictions_and_labels(prediction, label, task):
    assert infer_task(pd.Series(prediction), pd.Series(label, dtype=object)) is task


@pytest.mark.parametrize(
    ("classes", "given", "positive"),
    [
        ([0, 1], None, 1),
        ([False, True], None, True),
        (["no", "yes"], None, "yes"),
        (["No", "Yes"], None, "Yes"),
        (["cat", "dog"], None, None),  # not clear: macro-averaged
        (["cat", "dog"], "dog", "dog"),
        ([0, 1], "0", 0),
        ([0, 1], "7", None),
        ([False, True], "TRUE", True),  # a boolean given in any case
        ([False, True], "false", False),
        (["n", "y"], None, "y"),
        (["negative", "positive"], None, "positive"),
        ([1], None, 1),  # one class seen so far: positive only when it says so
        (["yes"], None, "yes"),
        (["Y"], None, "Y"),
        (["true"], None, "true"),
        (["positive"], None, "positive"),
        ([0], None, None),
        (["cat"], None, None),
        (["a", "b", "c"], None, None),
    ],
)
def test_the_positive_class_is_the_obvious_one_or_the_one_given(classes, given, positive):
    assert positive_class(classes, given) == positive


def test_labels_are_values_and_only_objects_and_lists_are_invalid():
    raw = pd.Series(["a", 1, 2.0, True, {"x": 1}, [1], None], dtype=object)
    labels = label_values(raw, len(raw))
    assert labels.invalid_count == 2 and labels.invalid == [{"x": 1}, [1]]
    assert labels.arrived.tolist() == [True, True, True, True, True, True, False]
    assert labels.values.iloc[:4].tolist() == ["a", 1, 2.0, True]
    numbers = label_values(pd.Series([1, None, 0.0], dtype=object), 3)
    assert numbers.values.dtype == float and numbers.values.iloc[0] == 1.0


def test_feature_kinds_follow_their_values_unless_declared():
    frame = pd.DataFrame(
        {
            "input_data.amount": np.linspace(0, 1, 50),
            "input_data.country": ["DE", "FR"] * 25,
            "input_data.member": [True, False] * 25,
            "input_data.stars": [1, 2, 3, 4, 5] * 10,  # few whole numbers
            "input_data.age": np.arange(50),  # many whole numbers
            "input_data.code": [7, "A7"] * 25,
        }
    )
    columns = list(frame.columns)
    kinds = infer_features(frame, columns, [], []).kinds
    short = {c.removeprefix("input_data."): k for c, k in kinds.items()}
    assert short == {
        "amount": FeatureKind.numeric, "country": FeatureKind.categorical, "member": FeatureKind.categorical,
        "stars": FeatureKind.categorical, "age": FeatureKind.numeric, "code": FeatureKind.categorical,
    }  # fmt: skip
    declared = infer_features(frame, columns, ["age"], ["stars"]).kinds
    assert declared["input_data.age"] is FeatureKind.categorical
    assert declared["input_data.stars"] is FeatureKind.numeric


def test_feature_kinds_at_their_edges_ten_values_boxed_numbers_flags_beside_text():
    frame = pd.DataFrame(
        {
            "ten": np.arange(110) % 10,  # exactly FEW_VALUES whole numbers: still categorical
            "eleven": np.arange(110) % 11,
            "boxed": pd.Series([1.5, 2, 3.25, 4] * 27 + [5, 6], dtype=object),  # numbers, as objects
            "flagged": pd.Series([True, "x"] * 55, dtype=object),  # flags and text: no number in it
        }
    )
    schema = infer_features(frame, list(frame.columns), [], [])
    assert {c: str(k) for c, k in schema.kinds.items()} == {
        "ten": "categorical", "eleven": "numeric", "boxed": "numeric", "flagged": "categorical"
    }
    assert not any("numbers and text" in note for note in schema.notes)


def test_categories_read_alike_from_numbers_and_from_objects_infinities_as_text():
    values = [1.0, 2.5, np.inf, np.nan, -3.0, -np.inf]
    expected = ["1", "2.5", "inf", None, "-3", "-inf"]
    assert categories(pd.Series(values)).tolist() == expected
    assert categories(pd.Series(values, dtype=object)).tolist() == expected


def test_text_in_a_feature_declared_numeric_is_a_missing_value_not_a_failure():
    rng = np.random.default_rng(23)
    amount = pd.Series(rng.normal(100, 10, 1_000), dtype=object)
    amount[900:] = "n/a"  # the last window: a tenth of its values are not numbers
    amount[:100] = np.where(np.arange(100) % 10 == 0, "n/a", amount[:100])
    truth = rng.integers(0, 2, 1_000)
    a = analyse(
        record_frame(truth, truth, amount=amount),
        pd.DataFrame(),
        MonitoringConfig(window_size=100, numeric=["amount"]),
    )
    drift = a.drift.set_index("window")
    assert a.feature_kinds == {"amount": "numeric"}
    assert drift.loc[0, "nan_share"] == pytest.approx(0.1) and drift.loc[9, "nan_share"] == 1.0
    assert drift["reference_nan_share"].tolist() == pytest.approx([0.05] * 10)  # 10 of the reference's 200


def test_a_missing_share_that_rises_beyond_noise_but_by_less_than_the_least_rise_is_quiet():
    size = 10_000
    shares = [0.2, 0.2, 0.2, 0.24, 0.30]  # the reference's, two quiet, +0.04 (under 0.05), +0.10
    rng = np.random.default_rng(24)
    x = rng.normal(size=size * len(shares))
    for w, share in enumerate(shares):
        x[w * size : w * size + int(share * size)] = np.nan
    truth = rng.integers(0, 2, x.size)
    a = analyse(record_frame(truth, truth, x=x), pd.DataFrame(), MonitoringConfig(window_size=size))
    drift = a.drift.set_index("window")
    assert drift.loc[3, "nan_pvalue"] < 1e-6  # beyond noise, and yet
    assert [(al.window, al.value, al.threshold) for al in a.alerts if al.kind == "missing"] == [
        (4, pytest.approx(0.30), pytest.approx(0.2))
    ]


def test_one_new_category_value_in_a_window_is_a_bin_of_its_own():
    from scipy.spatial.distance import jensenshannon

    channel = np.array(["web", "app"] * 200, dtype=object)
    channel[350] = "phone"  # once, in the last window
    truth = np.zeros(400, dtype=int)
    a = analyse(
        record_frame(truth, truth, channel=channel), pd.DataFrame(), MonitoringConfig(window_size=100)
    )
    last = a.drift.set_index("window").loc[3]
    window = [np.sum(channel[300:] == c) for c in ("web", "app", "phone")]
    reference = [np.sum(channel[:80] == c) for c in ("web", "app")] + [0]
    assert last["js"] == pytest.approx(jensenshannon(window, reference, base=2))
    assert last["unseen_share"] == pytest.approx(0.01)


def test_classes_sort_numbers_by_value_before_text_and_flags_as_their_text():
    assert sorted([10, "b", 2, True, 1.5, "a", False], key=sort_key) == [1.5, 2, 10, False, True, "a", "b"]


def test_multiclass_figures_equal_scikit_learns():
    rng = np.random.default_rng(1)
    n = 1_200
    truth = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    guess = np.where(rng.random(n) < 0.8, truth, rng.choice(["a", "b", "c"], n))
    a = analyse(record_frame(guess, truth), pd.DataFrame(), MonitoringConfig(window_size=400))
    assert a.task is Task.multiclass and a.positive is None
    for w in range(3):
        y, p = truth[w * 400 : (w + 1) * 400], guess[w * 400 : (w + 1) * 400]
        row = a.windows.iloc[w]
        assert row["accuracy"] == pytest.approx(np.mean(y == p))
        assert row["precision"] == pytest.approx(precision_score(y, p, average="macro", zero_division=0))
        assert row["recall"] == pytest.approx(recall_score(y, p, average="macro", zero_division=0))
        assert row["f1"] == pytest.approx(f1_score(y, p, average="macro", zero_division=0))
        assert row["share_b"] == pytest.approx(np.mean(p == "b"))
    per_class = a.per_class.set_index("class")
    assert per_class.loc["c", "recall"] == pytest.approx(
        recall_score(truth, guess, labels=["c"], average="macro")
    )
    assert a.confusion.loc["a", "b"] == int(((truth == "a") & (guess == "b")).sum())


def test_regression_figures_and_its_rise_test():
    rng = np.random.default_rng(2)
    n = 2_000
    truth = rng.normal(50, 10, n)
    error = rng.normal(0, 1, n) * np.where(np.arange(n) < 1_000, 1.0, 2.0)
    a = analyse(record_frame(truth + error, truth), pd.DataFrame(), MonitoringConfig(window_size=200))
    assert a.task is Task.regression
    for w in range(10):
        e = error[w * 200 : (w + 1) * 200]
        row = a.windows.iloc[w]
        assert row["mae"] == pytest.approx(np.abs(e).mean(), rel=1e-9)
        assert row["rmse"] == pytest.approx(np.sqrt((e**2).mean()), rel=1e-9)
        assert row["bias"] == pytest.approx(e.mean(), abs=1e-9)
        # Quantiles from the reference's fine bins: within a bin of the exact ones.
        assert row["abs_error_p90"] == pytest.approx(np.quantile(np.abs(e), 0.9), rel=0.05)
    reference = np.abs(error[:400])
    assert a.windows["reference_mae"].iloc[0] == pytest.approx(reference.mean())
    late = a.windows.iloc[7]
    se = np.sqrt(np.abs(error[1400:1600]).var(ddof=1) / 200 + reference.var(ddof=1) / 400)
    assert late["error_rise_pvalue"] == pytest.approx(
        stats.norm.sf((late["mae"] - reference.mean()) / se), rel=1e-6
    )
    assert sorted({x.window for x in a.alerts if x.kind is AlertKind.error}) == list(range(5, 10))


def test_a_categorical_feature_drift_is_psi_over_its_categories():
    rng = np.random.default_rng(3)
    n = 2_000
    before = rng.choice(["x", "y", "z"], n // 2, p=[0.6, 0.3, 0.1])
    after = rng.choice(["x", "y", "w"], n // 2, p=[0.3, 0.3, 0.4])
    colour = np.concatenate([before, after])
    truth = rng.integers(0, 2, n)
    a = analyse(record_frame(truth, truth, colour=colour), pd.DataFrame(), MonitoringConfig(window_size=200))
    drift = a.drift[a.drift["feature"] == "colour"].set_index("window")
    ref = pd.Series(colour[:400]).value_counts()
    for w in (2, 8):
        window = pd.Series(colour[w * 200 : (w + 1) * 200]).value_counts()
        cats = [c for c in ["x", "y", "z", "w"] if c in ref or c in window]
        expected = np.maximum(np.array([ref.get(c, 0) for c in cats]) / ref.sum(), 1e-4)
        counts = np.array([window.get(c, 0) for c in cats], dtype=float)
        actual = (counts + 0.5) / (counts.sum() + 0.5 * len(cats))
        assert drift.loc[w, "psi"] == pytest.approx(np.sum((actual - expected) * np.log(actual / expected)))
        assert drift.loc[w, "unseen_share"] == pytest.approx(window.get("w", 0) / 200)
    flagged = {x.window for x in a.alerts if x.subject == "colour" and x.metric == "psi"}
    assert flagged == set(range(5, 10))
    # One incident, not five alert rows: the run of windows and its cause in one line.
    (incident,) = a.incidents
    assert (incident.first_window, incident.last_window, incident.alerts) == (5, 9, len(a.alerts))
    assert (
        incident.summary.startswith("windows 5 to 9: ")
        and "1 of 1 features drifted (colour)" in incident.summary
    )


def test_a_feature_that_starts_arriving_empty_is_its_own_alert():
    rng = np.random.default_rng(4)
    n = 3_000
    x = rng.normal(size=n)
    x[1_500:][rng.random(1_500) < 0.3] = np.nan
    truth = rng.integers(0, 2, n)
    a = analyse(
        record_frame(truth, truth, x=x, y=rng.normal(size=n)),
        pd.DataFrame(),
        MonitoringConfig(window_size=300),
    )
    missing = [(al.subject, al.window) for al in a.alerts if al.kind is AlertKind.missing]
    assert missing == [("x", w) for w in range(5, 10)]
    assert not [al for al in a.alerts if al.kind is AlertKind.drift]  # present values did not move


def test_no_rule_measured_against_the_reference_alerts_in_the_windows_it_was_fitted_on():
    """The default reference, the earliest 20%, holds a shift of its own (its second window moved):
    measured against itself, that window would alert; it is never judged, the windows after are."""
    rng = np.random.default_rng(5)
    n = 2_000
    x = rng.normal(size=n)
    x[200:400] += 4  # inside the reference (rows 0-399)
    x[1_000:] += 4  # after it
    truth = rng.integers(0, 2, n)
    a = analyse(record_frame(truth, truth, x=x), pd.DataFrame(), MonitoringConfig(window_size=200))
    assert a.windows["in_reference"].tolist() == [True, True] + [False] * 8
    drifted = sorted({al.window for al in a.alerts if al.metric == "psi"})
    assert drifted and min(drifted) >= 2


def test_declared_feature_kinds_are_checked_on_the_command_line_and_in_the_config(capsys):
    from flows.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["monitor", "--categorical", " , "])
    assert stop.value.code == 2 and "give one or more names, separated by commas" in capsys.readouterr().err
    with pytest.raises(ValueError, match="declared both categorical and numeric: age"):
        MonitoringConfig(categorical=["age", "city"], numeric=["age"])
    assert MonitoringConfig(task="regression").task is Task.regression


def test_without_a_reference_the_task_is_still_read_from_the_records():
    rng = np.random.default_rng(6)
    truth = rng.normal(size=1_000)
    frame = record_frame(truth + rng.normal(size=1_000), truth, x=rng.normal(size=1_000))
    a = analyse(frame, pd.DataFrame(), MonitoringConfig(window_size=100), reference=frame.iloc[:0])
    assert a.task is Task.regression and "mae" in a.windows and "accuracy" not in a.windows
    assert any("reference period holds no records" in n for n in a.notes)


def _kinds_of_model(kind: str) -> pd.DataFrame:
    """Records of one kind of model, with a shift half-way, some labels missing and a feature
    that goes missing, so every calculator has something to fold."""
    rng = np.random.default_rng(11)
    n = 1_500
    late = np.arange(n) >= n // 2
    amount = rng.lognormal(3, 0.5, n) * np.where(late, 1.4, 1.0)
    amount[late & (rng.random(n) < 0.2)] = np.nan
    country = np.where(late, rng.choice(["US", "BR"], n), rng.choice(["DE", "FR", "US"], n))
    if kind == "regression":
        truth = rng.normal(100, 15, n)
        prediction = truth + rng.normal(0, 3, n) * np.where(late, 3.0, 1.0) + 0.25
    elif kind == "multiclass":
        truth = rng.choice(["low", "mid", "high"], n)
        prediction = np.where(rng.random(n) < np.where(late, 0.6, 0.9), truth, rng.choice(["low", "mid"], n))
    else:
        truth = rng.integers(0, 2, n)
        prediction = np.where(rng.random(n) < np.where(late, 0.7, 0.92), truth, 1 - truth)
    label = pd.Series(truth, dtype=object)
    label[rng.random(n) < 0.15] = None
    frame = record_frame(prediction, label, amount=amount, country=country)
    if kind == "binary":
        frame["probability"] = np.clip(np.where(prediction == 1, 0.8, 0.2) + rng.normal(0, 0.1, n), 0, 1)
    return frame


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("window", [{"window_size": 250}, {"window_kind": "time", "window_minutes": 4}])
def test_every_calculator_folds_many_blocks_to_what_one_block_gives(kind, window):
    frame = _kinds_of_model(kind)
    config = MonitoringConfig(**window)
    one = analyse(frame, pd.DataFrame(), config)
    low, high = int(frame["start_ms"].min()), int(frame["end_ms"].max())
    many = analyse_blocks(
        lambda: (frame.iloc[i : i + 97] for i in range(0, len(frame), 97)),
        pd.DataFrame(),
        config,
        (low, high),
    )
    assert one.alerts, "the shift must give the rules something to say"
    pd.testing.assert_frame_equal(one.windows, many.windows, check_dtype=False, rtol=1e-9)
    pd.testing.assert_frame_equal(one.drift, many.drift, check_dtype=False, rtol=1e-9)
    pd.testing.assert_frame_equal(one.arrival, many.arrival, check_dtype=False)
    pd.testing.assert_frame_equal(one.confusion, many.confusion, check_dtype=False)
    pd.testing.assert_frame_equal(one.per_class, many.per_class, check_dtype=False, rtol=1e-9)
    assert [(a.kind, a.window, a.metric, a.subject) for a in one.alerts] == [
        (a.kind, a.window, a.metric, a.subject) for a in many.alerts
    ]
    assert [a.value for a in one.alerts] == pytest.approx([a.value for a in many.alerts], rel=1e-12)
    assert one.notes == many.notes and one.overall == pytest.approx(many.overall, nan_ok=True)
    assert one.sketch.category_counts.keys() == many.sketch.category_counts.keys()
    for key, (labels, reference, counts) in one.sketch.category_counts.items():
        other = many.sketch.category_counts[key]  # new categories named alike, whatever the blocks
        assert labels == other[0] and np.array_equal(reference, other[1]) and np.array_equal(counts, other[2])
    for name in ("residual_counts", "probability_counts"):
        a, b = getattr(one.sketch, name, None), getattr(many.sketch, name, None)
        if isinstance(a, dict):
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_every_regression_column_against_the_errors_themselves():
    rng = np.random.default_rng(5)
    n, size = 2_400, 300
    truth = rng.normal(40, 8, n)
    scale = np.where(np.arange(n) < 1_200, 1.0, 2.5)
    prediction = truth + rng.normal(0.3, 1.0, n) * scale
    shifted = np.arange(n) >= 1_800
    prediction[shifted] += 15  # predictions drift too (and the error with them)
    label = pd.Series(truth, dtype=object)
    label[np.arange(n) % 50 == 7] = None  # a few labels missing: n_labelled < rows
    frame = record_frame(prediction, label)
    config = MonitoringConfig(window_size=size)
    a = analyse(frame, pd.DataFrame(), config)
    windows = a.windows
    has = label.notna().to_numpy()
    error = prediction - truth
    ref = np.abs(error[: int(n * config.reference_share)][has[: int(n * config.reference_share)]])
    ref_pred = prediction[: int(n * config.reference_share)]
    edges = np.unique(np.quantile(ref_pred, np.linspace(0.1, 0.9, 9)))
    ref_share = (
        np.bincount(np.searchsorted(edges, ref_pred, side="right"), minlength=edges.size + 1) / ref_pred.size
    )
    assert a.overall["reference_mae"] == pytest.approx(ref.mean())
    for w in range(n // size):
        rows = slice(w * size, (w + 1) * size)
        e = error[rows][has[rows]]
        row = windows.iloc[w]
        m = np.abs(e).mean()
        assert row["mae"] == pytest.approx(m, rel=1e-9)
        assert row["rmse"] == pytest.approx(np.sqrt((e**2).mean()), rel=1e-9)
        assert row["bias"] == pytest.approx(e.mean(), rel=1e-9)
        assert row["abs_error_p50"] == pytest.approx(np.median(np.abs(e)), rel=0.06)
        assert row["abs_error_p90"] == pytest.approx(np.quantile(np.abs(e), 0.9), rel=0.06)
        assert row["reference_mae"] == pytest.approx(ref.mean())
        half = 1.96 * ref.std(ddof=1) / np.sqrt(e.size)
        assert row["mae_band_low"] == pytest.approx(max(ref.mean() - half, 0.0))
        assert row["mae_band_high"] == pytest.approx(ref.mean() + half)
        assert row["error_rise"] == pytest.approx(m / ref.mean() - 1)
        se = np.sqrt(np.abs(e).var(ddof=1) / e.size + ref.var(ddof=1) / ref.size)
        assert row["error_rise_pvalue"] == pytest.approx(
            stats.norm.sf((m - ref.mean()) / se), rel=1e-6, abs=1e-300
        )
        counts = np.bincount(np.searchsorted(edges, prediction[rows], side="right"), minlength=edges.size + 1)
        actual = (counts + 0.5) / (counts.sum() + 0.5 * counts.size)
        assert row["prediction_psi"] == pytest.approx(
            np.sum((actual - ref_share) * np.log(actual / ref_share))
        )
        n_eff = 1 / (1 / size + 1 / ref_pred.size)
        assert row["prediction_psi_critical"] == pytest.approx(stats.chi2.ppf(1 - 1e-4, edges.size) / n_eff)
    everything = error[has]
    assert a.overall["mae"] == pytest.approx(np.abs(everything).mean())
    assert a.overall["rmse"] == pytest.approx(np.sqrt((everything**2).mean()))
    assert a.overall["bias"] == pytest.approx(everything.mean())
    flagged = {x.window for x in a.alerts if x.metric == "prediction_psi"}
    assert flagged == set(range(6, 8))
    # The residual histogram counts every labelled error of its window, far ones included.
    counts = a.sketch.residual_counts
    assert [int(counts[w].sum()) for w in range(n // size)] == [
        int(has[w * size : (w + 1) * size].sum()) for w in range(n // size)
    ]
    assert np.array_equal(
        a.sketch.reference_residuals,
        np.sort(error[: int(n * config.reference_share)][has[: int(n * config.reference_share)]]),
    )


def test_a_regression_window_with_too_few_labels_has_no_error_and_a_small_reference_is_said():
    rng = np.random.default_rng(6)
    n = 1_000
    truth = rng.normal(10, 2, n)
    label = pd.Series(truth, dtype=object)
    label[(np.arange(n) >= 800) & (np.arange(n) % 25 != 0)] = None  # the last window: 8 labels
    a = analyse(
        record_frame(truth + rng.normal(0, 1, n), label), pd.DataFrame(), MonitoringConfig(window_size=200)
    )
    last = a.windows.iloc[4]
    assert last["n_labelled"] < MonitoringConfig().thresholds.min_labels
    assert all(
        np.isnan(last[c]) for c in ("mae", "rmse", "bias", "abs_error_p90", "mae_band_low", "error_rise")
    )
    assert not np.isnan(a.windows.iloc[3]["mae"])
    # A reference of 20 labels: nothing is held against it, and the report says why.
    label[20:200] = None
    b = analyse(record_frame(truth, label), pd.DataFrame(), MonitoringConfig(window_size=200))
    assert any("too few labels" in note for note in b.notes)
    assert b.overall["reference_mae"] is None and b.windows["reference_mae"].isna().all()
    assert not [x for x in b.alerts if x.kind is AlertKind.error]


def test_a_categorical_features_values_are_named_as_people_read_them():
    index = [10, 11, 12, 13]
    flags = categories(pd.Series([True, False, True, False], index=index))
    assert flags.tolist() == ["True", "False", "True", "False"] and flags.index.tolist() == index
    numbers = categories(pd.Series([1.0, 2.5, np.nan, -3.0], index=index))
    assert numbers.tolist() == ["1", "2.5", None, "-3"] and numbers.index.tolist() == index
    whole = categories(pd.Series([7, 8, 7, 9], index=index))
    assert whole.tolist() == ["7", "8", "7", "9"]
    mixed = categories(pd.Series([1, 1.0, "a", None], index=index, dtype=object))
    assert mixed.tolist() == ["1", "1", "a", None] and mixed.index.tolist() == index
    text = categories(pd.Series(["DE", None, np.nan, "US"], index=index))
    assert text.tolist() == ["DE", None, None, "US"]


@pytest.mark.parametrize(("labels", "held"), [(30, True), (29, False)])
def test_a_regression_reference_needs_thirty_labels(labels, held):
    rng = np.random.default_rng(8)
    truth = rng.normal(10, 2, 1_000)
    label = pd.Series(truth, dtype=object)
    label[labels:200] = None  # the reference (the first 200) keeps `labels` of them
    a = analyse(
        record_frame(truth + rng.normal(0, 1, 1_000), label),
        pd.DataFrame(),
        MonitoringConfig(window_size=200),
    )
    assert (a.overall["reference_mae"] is not None) == held
    assert any("too few labels" in note for note in a.notes) != held


def test_the_rise_test_at_its_edges_one_label_no_spread_a_perfect_reference():
    truth = np.arange(1_000) % 50 + 1.0  # whole numbers: every error below is exact
    error = np.full(1_000, 1.0)  # every error exactly 1: no spread at all
    error[800:] = 2.0
    label = pd.Series(truth, dtype=object)
    label[600:800] = None
    label[650] = truth[650]  # window 3: a single label
    config = MonitoringConfig(window_size=200, thresholds={"min_labels": 1})
    a = analyse(record_frame(truth + error, label), pd.DataFrame(), config)
    w = a.windows
    assert w.loc[2, "error_rise_pvalue"] == 1.0 and w.loc[2, "error_rise"] == 0.0  # as the reference
    assert w.loc[3, "mae"] == 1.0 and w.loc[3, "error_rise_pvalue"] == 1.0  # one label, judged
    assert w.loc[4, "error_rise"] == pytest.approx(1.0) and w.loc[4, "error_rise_pvalue"] == 0.0
    assert {x.window for x in a.alerts if x.kind is AlertKind.error} == {4}
    # The same window of one label with spread in the reference: the reference's spread stands in.
    noisy = error + np.where(np.arange(1_000) % 2, 0.5, -0.5)
    b = analyse(record_frame(truth + noisy, label), pd.DataFrame(), config)
    ref = np.abs(noisy[:200])
    se = np.sqrt(ref.var(ddof=1) / 1 + ref.var(ddof=1) / 200)
    assert b.windows.loc[3, "error_rise_pvalue"] == pytest.approx(
        stats.norm.sf((abs(noisy[650]) - ref.mean()) / se)
    )
    # A perfect reference: any error at all is an infinite rise.
    perfect = np.where(np.arange(1_000) < 800, 0.0, 0.5)
    c = analyse(record_frame(truth + perfect, pd.Series(truth, dtype=object)), pd.DataFrame(), config)
    assert c.windows.loc[4, "error_rise"] == np.inf and c.windows.loc[1, "error_rise_pvalue"] == 1.0


def test_a_regression_without_labels_or_with_a_word_for_a_prediction():
    rng = np.random.default_rng(9)
    prediction = pd.Series(rng.normal(5, 1, 600), dtype=object)
    a = analyse(record_frame(prediction, None), pd.DataFrame(), MonitoringConfig(window_size=200))
    assert a.task is Task.regression
    assert {k: a.overall[k] for k in ("mae", "rmse", "bias", "reference_mae")} == dict.fromkeys(
        ("mae", "rmse", "bias", "reference_mae")
    )
    truth = prediction.astype(float) - 1.0
    prediction[3] = "n/a"  # a failed call's answer: no error for that row, the rest still counted
    b = analyse(record_frame(prediction, truth), pd.DataFrame(), MonitoringConfig(window_size=200))
    assert b.windows.loc[0, "mae"] == pytest.approx(1.0) and b.windows.loc[0, "n_labelled"] == 200
    assert b.overall["mae"] == pytest.approx(1.0)


def test_a_column_of_many_categories_is_its_top_fifty_and_the_rest():
    rng = np.random.default_rng(12)
    n = 2_000
    names = [f"c{i:02d}" for i in range(60)]
    weights = np.linspace(3, 1, 60) / np.linspace(3, 1, 60).sum()
    shop = rng.choice(names, n, p=weights).astype(object)
    late = np.arange(n) >= 1_600
    shop[late] = rng.choice([*names[40:], "new1", "new2"], late.sum())  # the tail, and never-seen ones
    truth = rng.integers(0, 2, n)
    a = analyse(record_frame(truth, truth, shop=shop), pd.DataFrame(), MonitoringConfig(window_size=200))
    ref = pd.Series(shop[:400]).value_counts()
    top = list(ref.index[:50])
    labels, reference, _ = a.sketch.category_counts[("shop", 0)]
    assert labels == [*top, "(other)"]  # folded: nothing is "unseen" beside a long tail
    assert reference.tolist() == [*ref.iloc[:50].tolist(), ref.iloc[50:].sum()]
    drift = a.drift[a.drift["feature"] == "shop"].set_index("window")
    for w in (1, 9):
        window = pd.Series(shop[w * 200 : (w + 1) * 200]).value_counts()
        counts = np.array(
            [window.get(c, 0) for c in top] + [window[~window.index.isin(top)].sum()], dtype=float
        )
        assert a.sketch.category_counts[("shop", w)][2].tolist() == counts.tolist()
        actual = (counts + 0.5) / (counts.sum() + 0.5 * counts.size)
        expected = np.maximum(reference / reference.sum(), 1e-4)
        assert drift.loc[w, "psi"] == pytest.approx(np.sum((actual - expected) * np.log(actual / expected)))
        assert np.isnan(drift.loc[w, "unseen_share"])
    assert (
        "feature 'shop': 60 categories; its 50 most frequent are compared, the rest as '(other)'" in a.notes
    )


def test_fifty_categories_are_compared_one_by_one_and_new_ones_named():
    rng = np.random.default_rng(13)
    names = [f"c{i:02d}" for i in range(50)]
    shop = np.concatenate([rng.choice(names, 1_000), rng.choice([*names[:5], "BR", "AR"], 400)]).astype(
        object
    )
    truth = rng.integers(0, 2, 1_400)
    a = analyse(record_frame(truth, truth, shop=shop), pd.DataFrame(), MonitoringConfig(window_size=200))
    ref = pd.Series(shop[:280]).value_counts()
    labels, _, window = a.sketch.category_counts[("shop", 6)]
    last = pd.Series(shop[1_200:]).value_counts()
    assert labels[: len(ref)] == list(ref.index) and labels[len(ref)] == "(other)"
    assert dict(zip(labels[len(ref) + 1 :], window[len(ref) + 1 :], strict=True)) == {
        f"{c} (new)": last[c] for c in last.index if c not in ref.index
    }
    drift = a.drift[a.drift["feature"] == "shop"].set_index("window")
    assert drift.loc[6, "unseen_share"] == pytest.approx(last[~last.index.isin(ref.index)].sum() / 200)
    assert drift.loc[1, "unseen_share"] == pytest.approx(
        (~pd.Series(shop[200:400]).isin(ref.index)).sum() / 200
    )


def test_the_alert_event_payload_says_who_when_what_and_where():
    T = (1_700_000_000_000, 1_700_000_600_000, 1_700_001_200_000)
    alerts = [
        Alert(kind=AlertKind.accuracy, window=3, window_start_ms=T[0], window_end_ms=T[1],
              metric="accuracy_drop", subject="model", value=0.81, threshold=0.9, message="window 3: acc"),
        Alert(kind=AlertKind.drift, window=4, window_start_ms=T[1], window_end_ms=T[2],
              metric="psi", subject="amount", value=0.4, threshold=0.25, message="window 4: amount drifted"),
    ]  # fmt: skip
    incidents = [{"summary": "windows 3 to 4: accuracy, 1 feature drifted"}]
    payload = run_payload(
        alerts, model_name="churn", deployment_crn="crn:d", report="/r/report.html", flow_run="http://ui/run",
        task="binary", incidents=incidents,
    )  # fmt: skip
    iso = [datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds") for ms in T]
    assert payload == {
        "model_name": "churn", "deployment_crn": "crn:d", "task": "binary", "alerts": 2,
        "kinds": ["accuracy", "drift"], "incidents": incidents, "from": iso[0], "to": iso[2],
        "breaches": [
            {"kind": "accuracy", "rule": "accuracy_drop", "subject": "model", "window": 3,
             "window_start": iso[0], "window_end": iso[1], "value": 0.81, "threshold": 0.9,
             "message": "window 3: acc"},
            {"kind": "drift", "rule": "psi", "subject": "amount", "window": 4, "window_start": iso[1],
             "window_end": iso[2], "value": 0.4, "threshold": 0.25, "message": "window 4: amount drifted"},
        ],
        "flow_run": "http://ui/run", "report": "/r/report.html",
    }  # fmt: skip
    quiet = run_payload([], model_name="churn", deployment_crn="crn:d", report="r", flow_run=None)
    assert (quiet["from"], quiet["to"], quiet["incidents"], quiet["task"], quiet["alerts"]) == (
        None,
        None,
        [],
        None,
        0,
    )


def test_an_empty_range_has_the_figures_a_full_one_has_and_none_of_their_values():
    rng = np.random.default_rng(14)
    truth = rng.integers(0, 2, 600)
    full = analyse(record_frame(truth, truth), pd.DataFrame(), MonitoringConfig(window_size=200))
    empty = analyse(record_frame([], []), pd.DataFrame(), MonitoringConfig(window_size=200))
    assert empty.empty and not full.empty
    assert set(empty.overall) <= set(full.overall)
    counted = ("predictions", "requests", "labelled", "invalid_labels", "windows", "alerts")
    assert {k: empty.overall[k] for k in counted} == dict.fromkeys(counted, 0)
    assert all(v is None for k, v in empty.overall.items() if k not in counted)
    assert set(empty.windows.columns) <= set(full.windows.columns) and empty.windows.empty
    assert set(empty.drift.columns) <= set(full.drift.columns) and empty.drift.empty
    assert empty.alerts == [] and empty.confusion.empty
    assert empty.notes == ["no prediction records in the requested range"]


# Windows of 200 read in blocks of 131; and windows of 9 in blocks of 10, where excursions begin
# and end at window and block borders.
@pytest.mark.parametrize(("n", "size", "block"), [(4_000, 200, 131), (1_500, 9, 10)])
def test_the_accuracy_cusum_and_when_its_excursion_began_row_by_row(n, size, block):
    rng = np.random.default_rng(15)
    truth = rng.integers(0, 2, n)
    rows = np.arange(n)
    rate = np.where((rows >= 0.4 * n) & (rows < 0.6 * n), 0.3, 0.06)  # windows 8-11 of 200
    wrong = rng.random(n) < rate
    frame = record_frame(np.where(wrong, 1 - truth, truth), truth)
    config = MonitoringConfig(window_size=size, reference_share=1_000 / n)
    low, high = int(frame["start_ms"].min()), int(frame["end_ms"].max())
    a = analyse_blocks(
        lambda: (frame.iloc[i : i + block] for i in range(0, n, block)), pd.DataFrame(), config, (low, high)
    )
    # The CUSUM of errors against the reference's error rate raised by its 95% upper bound.
    ref = wrong[:1_000]
    p0 = ref.mean() + 1.645 * np.sqrt(ref.mean() * (1 - ref.mean()) / ref.size)
    p1 = min(p0 * config.thresholds.cusum_shift, 0.999)
    level, began = 0.0, None
    top: dict[int, tuple[float, int]] = {}
    for i, e in enumerate(wrong):
        level = max(0.0, level + (np.log(p1 / p0) if e else np.log((1 - p1) / (1 - p0))))
        if level > 0 and began is None:
            began = i // size
        elif level == 0:
            began = None
        w = i // size
        if w not in top or level > top[w][0]:
            top[w] = (level, began if began is not None else w)
    windows = a.windows
    count = -(-n // size)  # the last window may be partial
    assert windows["accuracy_cusum"].tolist() == pytest.approx([top[w][0] for w in range(count)], rel=1e-9)
    assert windows["cusum_since"].tolist() == [top[w][1] for w in range(count)]
    if size != 200:
        return
    fired = [x for x in a.alerts if x.metric == "accuracy_cusum"]
    assert fired and fired[0].window >= 8 and "since window 8" in fired[0].message


def test_label_columns_of_every_kind_become_comparable_values():
    none = label_values(None, 3)
    assert none.values.isna().all() and len(none.values) == 3
    assert none.arrived.tolist() == [False] * 3 and (none.invalid_count, none.invalid) == (0, [])
    flags = label_values(pd.Series([True, False, True]), 3)
    assert flags.values.tolist() == [True, False, True] and flags.values.dtype == object
    assert flags.arrived.tolist() == [True] * 3 and (flags.invalid_count, flags.invalid) == (0, [])
    numbers = label_values(pd.Series([1, 0, np.nan]), 3)
    assert numbers.values.dtype == float and numbers.arrived.tolist() == [True, True, False]
    assert (numbers.invalid_count, numbers.invalid) == (0, [])
    text = label_values(pd.Series(["low", None, "high"], index=[5, 6, 7]), 3)
    assert text.values.tolist()[::2] == ["low", "high"] and text.values.index.tolist() == [5, 6, 7]
    assert (text.invalid_count, text.invalid) == (0, [])
    many = label_values(pd.Series([[1], [2], {"a": 1}, [3], "ok"], dtype=object), 5)
    assert many.invalid_count == 4 and many.invalid == [[1], [2], {"a": 1}]  # the first three, for the note


def test_a_features_kind_and_the_notes_that_say_why():
    frame = pd.DataFrame(
        {
            "input_data.code": pd.Series([7, "A7", 8, "B2"] * 5, dtype=object),  # numbers and text
            "input_data.flag": [True, False] * 10,
            "input_data.grade": [1, 2, 3, 2, 1] * 4,  # whole numbers, few: categorical, said
            "input_data.amount": np.linspace(0, 1, 20),
            "input_data.count": np.arange(20),  # whole numbers, many: numeric
            "input_data.typed": pd.Series(["1.5", "2", "3.25", None] * 5, dtype=object),  # numbers as text
            "input_data.words": ["x", "y"] * 10,
            "input_data.empty": [None] * 20,
        }
    )
    columns = [c for c in frame.columns]
    schema = infer_features(frame, columns, [], [])
    kinds = {c.removeprefix("input_data."): str(k) for c, k in schema.kinds.items()}
    assert kinds == {
        "code": "categorical", "flag": "categorical", "grade": "categorical", "amount": "numeric",
        "count": "numeric", "typed": "categorical", "words": "categorical", "empty": "numeric",
    }  # fmt: skip
    assert schema.notes == [
        "feature 'code' holds numbers and text: compared as categories",
        "whole-number feature(s) of at most 10 values taken as categorical: 'grade' "
        "(--numeric NAME to measure one as a number)",
    ]
    flags_as_text = infer_features(
        pd.DataFrame({"f": pd.Series([True, False, None], dtype=object)}), ["f"], [], []
    )
    assert flags_as_text.notes == [] and str(flags_as_text.kinds["f"]) == "categorical"


def test_the_distribution_plot_draws_every_window_value_where_it_was_even_in_a_reference_gap(tmp_path):
    rng = np.random.default_rng(16)
    n = 2_000
    reference = np.concatenate([rng.uniform(0, 14_000, 300), rng.uniform(20_000, 30_000, 100)])
    later = np.concatenate(
        [rng.uniform(0, 14_000, 1_000), rng.uniform(15_000, 19_000, 300), rng.uniform(31_000, 40_000, 300)]
    )
    balance = np.concatenate([reference, rng.permutation(later)])
    truth = rng.integers(0, 2, n)
    a = analyse(
        record_frame(truth, truth, balance=balance), pd.DataFrame(), MonitoringConfig(window_size=400)
    )
    ref_sample = a.profile.numeric["input_data.balance"].sample
    for window in range(1, 5):
        values = balance[window * 400 : (window + 1) * 400]
        edges, ref, current, left_out = window_bins(a, "balance", window, ref_sample)
        assert left_out == 0 and current.sum() == pytest.approx(values.size)  # no value dropped
        assert edges[0] <= values.min() and edges[-1] >= values.max() * 0.99
        # In the gap (no reference value from 14,000 to 20,000: the window's values there are spread
        # across it) and beyond the reference (over 30,000): as many as there are, but for the
        # coarse bins that straddle the borders.
        for lo, hi in ((14_000, 20_000), (30_000, 40_000)):
            inside = (edges[:-1] >= lo) & (edges[1:] <= hi)
            within = ((values >= lo) & (values <= hi)).sum()
            assert 0.8 * within <= current[inside].sum() <= within + 1e-9
        # No spike: the gap's values are spread over it, not piled into one bar taller than any.
        assert current.max() <= 1.25 * np.histogram(values, bins=edges)[0].max()
    assert ref.sum() >= 0.98 * ref_sample.size
    assert feature_distribution(
        a, MonitoringConfig().thresholds, "balance", tmp_path / "balance.png"
    ).exists()


def test_a_time_plot_marks_only_the_alerts_about_what_it_shows():
    import matplotlib.pyplot as plt

    from modelvigil.analysis.plot_style import marks

    rng = np.random.default_rng(17)
    n = 2_000
    truth = rng.integers(0, 2, n)
    right = rng.random(n) < np.where(np.arange(n) < 1_000, 0.95, 0.6)  # accuracy falls, nothing drifts
    a = analyse(
        record_frame(np.where(right, truth, 1 - truth), truth, x=rng.normal(size=n)),
        pd.DataFrame(),
        MonitoringConfig(window_size=200),
    )
    accuracy_windows = {x.window for x in a.alerts if x.kind is AlertKind.accuracy}
    assert accuracy_windows and not [x for x in a.alerts if x.kind is AlertKind.drift]

    def spans(**which) -> int:
        fig, ax = plt.subplots()
        marks(ax, a, "test", **which)
        drawn = sum(1 for p in ax.patches if p.get_gid() == "alert-span")
        plt.close(fig)
        return drawn

    assert spans(kinds=["accuracy"]) == len(accuracy_windows)
    assert spans(kinds=["latency"]) == 0 and spans(metrics=["psi"]) == 0


def test_classes_are_their_values_whatever_the_column_type():
    from modelvigil.analysis.calculators.classification import class_keys

    index = [4, 5, 6, 7]
    whole = class_keys(pd.Series([1.0, np.nan, 0.0, 2.0], index=index))
    assert whole.tolist() == [1, None, 0, 2] and whole.dtype == object and whole.index.tolist() == index
    assert all(type(v) is int for v in whole.dropna())
    fractions = pd.Series([0.5, 1.0, np.nan, 2.0], index=index)
    assert class_keys(fractions) is fractions  # a regression's values stay numbers
    integers, flags = pd.Series([3, 1, 2, 3]), pd.Series([True, False, True, True])
    assert class_keys(integers) is integers and class_keys(flags) is flags
    mixed = class_keys(pd.Series([1.0, "a", None, np.nan, np.int64(4), True], dtype=object))
    assert mixed.tolist() == [1, "a", None, None, 4, True] and mixed.dtype == object
    assert type(mixed.iloc[4]) is int


def test_per_class_rates_equal_scikit_learns_and_an_unseen_class_is_zero():
    from collections import Counter

    from modelvigil.analysis.calculators.classification import rates

    rng = np.random.default_rng(18)
    actual = rng.choice(["a", "b", "c"], 500)
    predicted = np.where(rng.random(500) < 0.7, actual, rng.choice(["a", "b"], 500))
    got = rates(Counter(zip(actual.tolist(), predicted.tolist(), strict=True)), ["a", "b", "c", "d"])
    for c in ("a", "b", "c"):
        kw = {"labels": [c], "average": None, "zero_division": 0}
        want = (precision_score(actual, predicted, **kw)[0], recall_score(actual, predicted, **kw)[0],
                f1_score(actual, predicted, **kw)[0])  # fmt: skip
        assert got[c] == pytest.approx(want)
    assert got["d"] == (0.0, 0.0, 0.0)  # neither predicted nor seen
    assert rates(Counter({("a", "b"): 3}), ["a", "b"]) == {"a": (0.0, 0.0, 0.0), "b": (0.0, 0.0, 0.0)}


def test_the_estimated_accuracy_is_held_against_the_reference_as_a_drop_with_its_pvalue():
    rng = np.random.default_rng(19)
    n = 3_000
    truth = rng.integers(0, 2, n)
    sure = np.where(np.arange(n) < 2_000, 0.45, 0.15)  # the model grows unsure after row 2,000
    probability = np.clip(np.where(truth == 1, 0.5 + sure, 0.5 - sure) + rng.normal(0, 0.25, n), 0, 1)
    frame = record_frame((probability >= 0.5).astype(int), pd.Series([None] * n, dtype=object))
    frame["probability"] = probability
    frame.loc[:999, "final_label"] = truth[:1_000]  # labels for the reference only
    a = analyse(frame, pd.DataFrame(), MonitoringConfig(window_size=250, reference_share=1 / 3))
    w = a.windows
    assert w["estimated_drop"].to_numpy() == pytest.approx(
        (w["reference_accuracy"] - w["estimated_accuracy"]).to_numpy()
    )
    steady, unsure = w.iloc[4:8], w.iloc[8:]
    assert (steady["estimated_drop_pvalue"] > 0.01).all() and (unsure["estimated_drop_pvalue"] < 1e-4).all()
    assert (unsure["estimated_accuracy"] < steady["estimated_accuracy"].min()).all()
    assert {x.window for x in a.alerts if x.metric == "estimated_accuracy"} == set(range(8, 12))


def _wilson(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wilson's score interval at 95%, written out from its formula."""
    z = stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_every_binary_window_column_against_scikit_learn_scipy_and_wilsons_formula():
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(21)
    n, size = 1_200, 200
    truth = rng.choice(["no", "yes"], n, p=[0.7, 0.3])
    right = rng.random(n) < np.where(np.arange(n) < 800, 0.9, 0.6)
    guess = np.where(right, truth, np.where(truth == "yes", "no", "yes"))
    guess[1_000:] = np.where(rng.random(200) < 0.8, "yes", guess[1_000:])  # the mix moves at the end
    labelled = rng.random(n) < 0.75
    labelled[400:600] = np.arange(200) < 60  # window 2: too few labels to judge
    frame = record_frame(guess, pd.Series(np.where(labelled, truth, None), dtype=object))
    a = analyse(frame, pd.DataFrame(), MonitoringConfig(window_size=size), reference=frame.iloc[:400])
    assert a.task is Task.binary and a.positive == "yes"
    reference_mix = [np.sum(guess[:400] == c) for c in ("no", "yes")]
    for w in range(n // size):
        row, part = a.windows.iloc[w], slice(w * size, (w + 1) * size)
        y, p, mine = truth[part], guess[part], labelled[part]
        share = [np.mean(p == c) for c in ("no", "yes")]
        assert (row["share_no"], row["share_yes"]) == pytest.approx(share)
        k = np.sum(p == "yes")
        assert row["positive_rate"] == pytest.approx(k / size)
        assert (row["positive_rate_low"], row["positive_rate_high"]) == pytest.approx(_wilson(k, size))
        counts = [np.sum(p == c) for c in ("no", "yes")]
        assert row["prediction_js"] == pytest.approx(jensenshannon(counts, reference_mix, base=2))
        chi2 = stats.chi2_contingency([counts, reference_mix])
        assert row["prediction_pvalue"] == pytest.approx(chi2.pvalue)
        if w == 2:
            for column in ("accuracy", "accuracy_low", "accuracy_high", "precision", "recall", "f1"):
                assert np.isnan(row[column]), column
            continue
        y, p = y[mine], p[mine]
        kw = {"pos_label": "yes", "zero_division": 0}
        assert row["accuracy"] == pytest.approx(np.mean(y == p))
        interval = _wilson(np.sum(y == p), mine.sum())
        assert (row["accuracy_low"], row["accuracy_high"]) == pytest.approx(interval)
        assert row["precision"] == pytest.approx(precision_score(y, p, **kw))
        assert row["recall"] == pytest.approx(recall_score(y, p, **kw))
        assert row["f1"] == pytest.approx(f1_score(y, p, **kw))
    assert a.windows["prediction_pvalue"].iloc[5] < 1e-6 < a.windows["prediction_pvalue"].iloc[3]
    assert [x.window for x in a.alerts if x.metric == "prediction_js"] == [5]
    assert a.overall["accuracy"] == pytest.approx(np.mean(truth[labelled] == guess[labelled]))


def test_many_classes_show_the_twenty_most_frequent_and_the_rest_as_other():
    rng = np.random.default_rng(22)
    n, names = 3_000, [f"c{i:02d}" for i in range(25)]
    weights = np.linspace(2.0, 0.2, 25)
    truth = rng.choice(names, n, p=weights / weights.sum())
    guess = np.where(rng.random(n) < 0.7, truth, rng.choice(names, n))
    a = analyse(record_frame(guess, truth), pd.DataFrame(), MonitoringConfig(window_size=1_000))
    assert a.task is Task.multiclass and a.positive is None
    predicted = pd.Series(guess).value_counts()
    shown = sorted(predicted.index[:20])
    shares = [c.removeprefix("share_") for c in a.windows.columns if c.startswith("share_")]
    assert shares == [*shown, "(other)"]
    for w in range(3):
        p, y = guess[w * 1_000 : (w + 1) * 1_000], truth[w * 1_000 : (w + 1) * 1_000]
        row = a.windows.iloc[w]
        assert row["share_(other)"] == pytest.approx(np.mean(~np.isin(p, shown)))
        assert row[f"share_{shown[3]}"] == pytest.approx(np.mean(p == shown[3]))
        kw = {"labels": names, "average": "macro", "zero_division": 0}
        assert row["precision"] == pytest.approx(precision_score(y, p, **kw))
        assert row["recall"] == pytest.approx(recall_score(y, p, **kw))
        assert row["f1"] == pytest.approx(f1_score(y, p, **kw))
    actual_shown = sorted(pd.Series(truth).value_counts().index[:20])
    fold = lambda v, keep: np.where(np.isin(v, keep), v, "(other)")  # noqa: E731
    want = pd.crosstab(fold(truth, actual_shown), fold(guess, shown))
    grid = a.confusion
    assert grid.index.tolist() == [*actual_shown, "(other)"] and grid.columns.tolist() == [*shown, "(other)"]
    want = want.reindex(index=grid.index, columns=grid.columns, fill_value=0)
    assert (grid.to_numpy() == want.to_numpy()).all()
    assert int(grid.to_numpy().sum()) == n
    per_class = a.per_class.set_index("class")
    assert per_class.index.tolist() == names  # the table keeps every class
    kw = {"labels": names, "average": None, "zero_division": 0}
    assert per_class["labels"].tolist() == [int(np.sum(truth == c)) for c in names]
    assert per_class["predicted"].tolist() == [int(np.sum(guess == c)) for c in names]
    assert per_class["precision"].to_numpy() == pytest.approx(precision_score(truth, guess, **kw))
    assert per_class["recall"].to_numpy() == pytest.approx(recall_score(truth, guess, **kw))
    assert per_class["f1"].to_numpy() == pytest.approx(f1_score(truth, guess, **kw))


def test_every_numeric_drift_column_against_the_reference_deciles_scipys_ks_and_a_z_test():
    rng = np.random.default_rng(23)
    n, size = 2_000, 250
    x = rng.normal(0, 1, n) + np.where(np.arange(n) >= 1_250, 0.6, 0.0)
    x[rng.random(n) < np.where(np.arange(n) >= 1_250, 0.25, 0.05)] = np.nan
    truth = rng.integers(0, 2, n)
    frame = record_frame(truth, truth, x=x)
    a = analyse(frame, pd.DataFrame(), MonitoringConfig(window_size=size), reference=frame.iloc[:500])
    drift = a.drift[a.drift["feature"] == "x"].set_index("window")
    ref = x[:500][np.isfinite(x[:500])]
    ref_nan = 1 - ref.size / 500
    edges = np.quantile(ref, np.linspace(0.1, 0.9, 9))
    expected = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=10) / ref.size
    for w in range(n // size):
        part = x[w * size : (w + 1) * size]
        present = part[np.isfinite(part)]
        row = drift.loc[w]
        assert row["kind"] == "numeric"
        counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=10)
        actual = (counts + 0.5) / (counts.sum() + 5.0)
        assert row["psi"] == pytest.approx(np.sum((actual - expected) * np.log(actual / expected)))
        n_eff = 1 / (1 / present.size + 1 / ref.size)
        assert row["psi_critical"] == pytest.approx(stats.chi2.ppf(1 - 1e-4, 9) / n_eff)
        exact = stats.ks_2samp(present, ref)
        assert row["ks"] == pytest.approx(exact.statistic, abs=0.02)
        share = 1 - present.size / size
        assert (row["nan_share"], row["reference_nan_share"]) == pytest.approx((share, ref_nan))
        pooled = (share * size + ref_nan * 500) / (size + 500)
        z = (share - ref_nan) / np.sqrt(pooled * (1 - pooled) * (1 / size + 1 / 500))
        assert row["nan_pvalue"] == pytest.approx(stats.norm.sf(z))
        for column in ("js", "chi2_pvalue", "unseen_share"):
            assert np.isnan(row[column]), column
    assert (drift.loc[5:, "ks_pvalue"] < 1e-3).all() and (drift.loc[2:4, "ks_pvalue"] > 1e-3).all()
    assert {x.window for x in a.alerts if x.kind is AlertKind.missing} == set(range(5, 8))
    assert {x.window for x in a.alerts if x.metric == "psi"} == set(range(5, 8))


def test_every_categorical_drift_column_and_new_categories_named_up_to_twenty():
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(24)
    n, size = 1_600, 200
    colour = rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2]).astype(object)
    late = np.arange(n) >= 1_000
    news = [f"n{i:02d}" for i in range(30)]
    colour[late] = np.where(rng.random(late.sum()) < 0.5, rng.choice(news, late.sum()), colour[late])
    colour[rng.random(n) < 0.1] = None
    truth = rng.integers(0, 2, n)
    frame = record_frame(truth, truth, colour=colour)
    a = analyse(frame, pd.DataFrame(), MonitoringConfig(window_size=size), reference=frame.iloc[:400])
    drift = a.drift[a.drift["feature"] == "colour"].set_index("window")
    ref = pd.Series(colour[:400]).value_counts()
    for w in range(n // size):
        part = pd.Series(colour[w * size : (w + 1) * size])
        present = part.dropna()
        window = present.value_counts()
        unseen = int((~present.isin(ref.index)).sum())
        cats = [c for c in ref.index if window.get(c, 0) or ref[c]]
        counts = np.array([window.get(c, 0) for c in cats] + ([unseen] if unseen else []), dtype=float)
        reference = np.array([ref[c] for c in cats] + ([0] if unseen else []), dtype=float)
        row = drift.loc[w]
        assert row["kind"] == "categorical"
        assert row["unseen_share"] == pytest.approx(unseen / present.size)
        assert row["js"] == pytest.approx(jensenshannon(counts, reference, base=2))
        assert row["chi2_pvalue"] == pytest.approx(stats.chi2_contingency([counts, reference]).pvalue)
        n_eff = 1 / (1 / present.size + 1 / ref.sum())
        assert row["psi_critical"] == pytest.approx(stats.chi2.ppf(1 - 1e-4, counts.size - 1) / n_eff)
        assert row["nan_share"] == pytest.approx(part.isna().mean())
        assert row["reference_nan_share"] == pytest.approx(pd.Series(colour[:400]).isna().mean())
        assert np.isnan(row["ks"]) and np.isnan(row["ks_pvalue"])
        labels, ref_counts, counted = a.sketch.category_counts[("colour", w)]
        assert labels[:3] == list(ref.index) and labels[3] == "(other)"
        assert counted[:3].tolist() == [window.get(c, 0) for c in ref.index] and counted[3] == 0
        named = dict(zip(labels[4:], counted[4:], strict=True))
        assert sum(named.values()) == unseen and ref_counts[4:].sum() == 0
        new = window[~window.index.isin(ref.index)]
        by_name = {k.removesuffix(" (new)"): v for k, v in named.items() if k.endswith(" (new)")}
        assert len(by_name) == min(20, new.size) and all(new[k] == v for k, v in by_name.items())
        rest = named.get("(unseen)", 0)
        assert rest == unseen - sum(by_name.values()) and (rest > 0) == (new.size > 20)
    assert {x.window for x in a.alerts if x.subject == "colour" and x.metric == "psi"} == set(range(5, 8))


def _calls_frame(rng: np.random.Generator, calls: int, rows_per_call: np.ndarray) -> pd.DataFrame:
    """Records of `calls` requests, each of its `rows_per_call` rows (`row` 0, 1, ...) sharing the
    call's start and end; whole-millisecond latencies; labels for some rows, a few unusable."""
    start = 1_700_000_000_000 + np.cumsum(rng.integers(1, 4_000, calls))
    latency = rng.integers(5, 300, calls)
    call = np.repeat(np.arange(calls), rows_per_call)
    n = call.size
    label = np.where(rng.random(n) < 0.6, rng.integers(0, 2, n), None).astype(object)
    label[rng.random(n) < 0.05] = {"not": "a label"}
    return pd.DataFrame({
        "prediction_uuid": [f"u{i}" for i in range(n)],
        "row": np.concatenate([np.arange(k) for k in rows_per_call]),
        "start_ms": start[call], "end_ms": (start + latency)[call],
        "prediction": rng.integers(0, 2, n), "final_label": label,
    })  # fmt: skip


def test_traffic_columns_latency_percentiles_coverage_and_the_latency_over_time():
    rng = np.random.default_rng(25)
    frame = _calls_frame(rng, 6_200, rng.integers(1, 4, 6_200))
    size = 150  # about 75 calls a window: p99 sits between its two largest latencies
    a = analyse(frame, pd.DataFrame(), MonitoringConfig(window_size=size), reference=frame.iloc[:1_500])
    first = frame["row"].to_numpy() == 0
    latency = (frame["end_ms"] - frame["start_ms"]).to_numpy(dtype=float)
    arrived = frame["final_label"].notna().to_numpy()
    usable = np.array([v is not None and not isinstance(v, dict) for v in frame["final_label"]])
    windows = a.windows
    assert len(windows) == -(-len(frame) // size)
    for w in (0, 1, 9, 10, len(windows) - 1):
        part = slice(w * size, (w + 1) * size)
        row, mine = windows.iloc[w], latency[part][first[part]]
        assert (row["start_ms"], row["end_ms"]) == (
            frame["start_ms"][part].min(),
            frame["end_ms"][part].max(),
        )
        assert (row["predictions"], row["requests"]) == (len(frame[part]), first[part].sum())
        for q in (50, 95, 99):
            assert row[f"latency_p{q}_ms"] == pytest.approx(np.percentile(mine, q)), q
        assert row["label_coverage"] == pytest.approx(arrived[part].mean())
        assert row["n_labelled"] == usable[part].sum()
    span = (frame["start_ms"][:1_500].min(), frame["start_ms"][:1_500].max())
    starts = frame["start_ms"].groupby(np.arange(len(frame)) // size)
    fitted_on = (starts.min() >= span[0]) & (starts.max() <= span[1])
    assert windows["in_reference"].tolist() == fitted_on.tolist() and 5 < fitted_on.sum() < 11
    overall = a.overall
    assert (overall["predictions"], overall["requests"], overall["labelled"]) == (
        len(frame),
        first.sum(),
        usable.sum(),
    )
    assert overall["label_coverage"] == pytest.approx(arrived.mean())
    for q in (50, 95, 99):
        assert overall[f"latency_p{q}_ms"] == pytest.approx(np.percentile(latency[first], q))
    # The scatter keeps the first 5,001 calls, numbered afresh.
    calls = frame[first]
    assert a.sketch.calls.index.tolist() == list(range(5_001))
    assert a.sketch.calls["start_ms"].tolist() == calls["start_ms"].iloc[:5_001].tolist()
    assert a.sketch.calls["latency_ms"].tolist() == latency[first][:5_001].tolist()
    # Latency over time: 200 equal bins of the range, each at its calls' mean time.
    low, high = frame["start_ms"].min(), frame["end_ms"].max()
    where = np.clip(np.searchsorted(np.linspace(low, high, 201), calls["start_ms"], side="right") - 1, 0, 199)
    want = pd.DataFrame({"b": where, "t": calls["start_ms"].to_numpy(dtype=float), "v": latency[first]})
    want = want.groupby("b").agg(
        t=("t", "mean"), p50=("v", lambda v: np.percentile(v, 50)), p95=("v", lambda v: np.percentile(v, 95)),
        low=("v", "min"), high=("v", "max"),
    )  # fmt: skip
    got = a.sketch.latency_bins
    assert got.columns.tolist() == ["t", "p50", "p95", "low", "high"] and len(got) == len(want)
    assert got.to_numpy() == pytest.approx(want.to_numpy())


def test_records_without_the_first_row_of_any_call_have_no_latency():
    rng = np.random.default_rng(26)
    frame = _calls_frame(rng, 300, np.full(300, 2))
    frame = frame[frame["row"] == 1].reset_index(drop=True)
    a = analyse(frame, pd.DataFrame(), MonitoringConfig(window_size=100))
    assert a.sketch.calls.empty and a.sketch.calls.columns.tolist() == ["start_ms", "latency_ms"]
    assert a.windows["requests"].isna().all() and a.windows["latency_p95_ms"].isna().all()
    assert a.windows["predictions"].tolist() == [100, 100, 100]
    assert a.overall["requests"] == 0 and a.overall["latency_p50_ms"] is None
    assert a.sketch.latency_bins.empty and a.sketch.latency_bins.columns.tolist() == [
        "t",
        "p50",
        "p95",
        "low",
        "high",
    ]


def test_the_missing_share_test_at_its_edges():
    from modelvigil.analysis.calculators.feature_drift import missing_pvalue

    assert np.isnan(missing_pvalue(0.5, 0, 0.1, 100)) and np.isnan(missing_pvalue(0.5, 100, 0.1, 0))
    assert missing_pvalue(0.0, 100, 0.0, 400) == 1.0  # never missing, before or now: no rise
    assert missing_pvalue(1.0, 100, 1.0, 400) == 1.0
    assert missing_pvalue(0.3, 200, 0.0, 400) < 1e-10 < missing_pvalue(0.01, 200, 0.0, 400) < 0.5


def test_features_that_come_and_go_between_blocks_and_a_feature_of_one_category():
    rng = np.random.default_rng(27)
    n = 1_200
    truth = rng.integers(0, 2, n)
    colour = rng.choice(["red", "blue"], n).astype(object)
    colour[7] = "green"  # once, in the reference only
    frame = record_frame(truth, truth, late=np.full(n, np.nan), x=rng.normal(size=n), colour=colour, one="a")
    frame.loc[600:, "input_data.late"] = rng.normal(size=600)  # absent from the reference: not fitted
    blocks = [frame.iloc[:400], frame.iloc[400:800].drop(columns=["input_data.x"]), frame.iloc[800:]]
    config = MonitoringConfig(window_size=200, numeric=["late", "x"], categorical=["colour", "one"])
    low, high = int(frame["start_ms"].min()), int(frame["end_ms"].max())
    a = analyse_blocks(lambda: iter(blocks), pd.DataFrame(), config, (low, high))
    drift = a.drift.set_index(["feature", "window"])
    assert "late" not in drift.index.get_level_values(0)  # fitted on nothing: not measured
    assert drift.loc[("x", 2), "nan_share"] == 1.0 and drift.loc[("x", 3), "nan_share"] == 1.0
    assert np.isnan(drift.loc[("x", 2), "psi"]) and drift.loc[("x", 4), "nan_share"] == 0.0
    ref = pd.Series(colour[:240]).value_counts()
    for w in (1, 3):
        window = pd.Series(colour[w * 200 : (w + 1) * 200]).value_counts()
        cats = list(ref.index)  # green: a bin of the reference's alone, still compared
        counts = np.array([window.get(c, 0) for c in cats], dtype=float)
        expected = ref.to_numpy(dtype=float)
        n_eff = 1 / (1 / 200 + 1 / 240)
        assert drift.loc[("colour", w), "psi_critical"] == pytest.approx(stats.chi2.ppf(1 - 1e-4, 2) / n_eff)
        actual = (counts + 0.5) / (counts.sum() + 1.5)
        share = np.maximum(expected / expected.sum(), 1e-4)
        assert drift.loc[("colour", w), "psi"] == pytest.approx(
            np.sum((actual - share) * np.log(actual / share))
        )
    one = drift.loc["one"]
    assert (one["chi2_pvalue"] == 1.0).all() and (one["js"] == 0.0).all() and (one["psi"] < 1e-6).all()


def test_classes_from_the_reference_labels_and_predictions_alike_and_missing_predictions_as_misses():
    rng = np.random.default_rng(41)
    n, size = 1_200, 200
    truth = rng.choice(np.array([1, "b", "c"], dtype=object), n)
    guess = np.where(rng.random(n) < 0.8, truth, rng.choice(np.array([1, "b", "c"], dtype=object), n))
    guess = guess.astype(object)
    truth[700:720] = "d"  # labels of a class never predicted
    guess[900:915] = "e"  # predictions of a class never labelled
    guess[1_000:1_010] = None  # labelled calls that came back without a prediction
    guess[1_010:1_200] = [1, "b"] * 95  # the last window never predicts "c"
    frame = record_frame(guess, pd.Series(truth, dtype=object))
    config = MonitoringConfig(window_size=size, thresholds={"min_labels": 1})
    a = analyse(frame, pd.DataFrame(), config, reference=frame.iloc[:400])
    classes = [1, "b", "c", "d", "e"]
    assert a.per_class["class"].tolist() == classes  # numbers first, then text, every one seen
    for w in range(n // size):
        part = slice(w * size, (w + 1) * size)
        y, p = truth[part].astype(str), np.where(guess[part] == None, "none", guess[part]).astype(str)  # noqa: E711
        row = a.windows.iloc[w]
        assert row["n_labelled"] == size  # a call without a prediction is labelled, and a miss
        assert row["accuracy"] == pytest.approx(np.mean(y == p))
        expected = recall_score(y, p, labels=[str(c) for c in classes], average="macro", zero_division=0)
        assert row["recall"] == pytest.approx(expected)
        predicted = [c for c in guess[part] if c is not None]
        for c in (1, "b", "c", "e"):
            assert row[f"share_{c}"] == pytest.approx(sum(x == c for x in predicted) / len(predicted))
    assert not any(column.startswith("share_None") for column in a.windows.columns)
    assert a.windows.iloc[5]["share_c"] == 0.0  # a class the window never predicted: 0, not missing
    assert a.confusion.index.name == "actual" and a.confusion.columns.name == "predicted"
    assert a.confusion["(no prediction)"].sum() == 10  # shown as such, not as a class "nan"
    assert (a.confusion.dtypes == np.int64).all()


def test_a_window_with_exactly_the_least_labels_is_judged_and_one_without_predictions_has_no_mix():
    truth = np.array([0, 1] * 50)
    guess = truth.astype(float)
    guess[50:] = np.nan  # the second window: no prediction came back
    label = pd.Series([None] * 100, dtype=object)
    label[0] = 0  # one label in the first window
    frame = record_frame(guess, label)
    config = MonitoringConfig(window_size=50, task="binary", thresholds={"min_labels": 1})
    a = analyse(frame, pd.DataFrame(), config, reference=frame.iloc[:50])
    first, second = a.windows.iloc[0], a.windows.iloc[1]
    assert first["accuracy"] == 1.0 and first["n_labelled"] == 1  # one label, as many as asked for
    assert np.isnan(second["share_0"]) and np.isnan(second["share_1"])


def test_twenty_classes_are_shown_each_and_a_classifier_without_labels_has_no_accuracy():
    classes = [f"k{i:02d}" for i in range(20)]
    guess = np.array(classes * 20, dtype=object)
    a = analyse(record_frame(guess, guess), pd.DataFrame(), MonitoringConfig(window_size=100))
    assert [c for c in a.windows.columns if c.startswith("share_")] == [f"share_{c}" for c in classes]
    bare = analyse(
        record_frame(guess, pd.Series([None] * 400, dtype=object)), pd.DataFrame(), MonitoringConfig()
    )
    assert bare.overall["accuracy"] is None
    assert bare.per_class.columns.tolist() == ["class", "labels", "predicted", "precision", "recall", "f1"]
