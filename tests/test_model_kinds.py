"""The engine on in-memory records of other kinds of model (no Prefect, no store): what it infers
about the model, and its figures against values computed here with numpy, scipy and scikit-learn.
Fast: `./run mutation` runs these against the calculators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import f1_score, precision_score, recall_score

from modelvigil.analysis.config import AlertKind, MonitoringConfig, Task
from modelvigil.analysis.engine import analyse
from modelvigil.analysis.model_schema import (
    FeatureKind,
    infer_features,
    infer_task,
    label_values,
    positive_class,
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
