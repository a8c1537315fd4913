"""Monitoring analysis without the engine: drift statistics, windows, guards against NaN and empty data."""

import numpy as np
import pandas as pd
import pytest

from modelvigil.analysis.config import AlertKind, MonitoringConfig
from modelvigil.analysis.drift import ReferenceProfile, psi_noise_floor
from modelvigil.analysis.engine import analyse, analyse_blocks
from modelvigil.analysis.performance import wilson_interval


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(np.array([5, 0, 10]), np.array([10, 10, 10]))
    assert low[0] == pytest.approx(0.2366, abs=1e-4) and high[0] == pytest.approx(0.7634, abs=1e-4)
    assert low[1] == 0 and high[1] == pytest.approx(0.2775, abs=1e-4)
    assert high[2] == pytest.approx(1.0) and low[2] == pytest.approx(0.7225, abs=1e-4)


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 20_000), "y": rng.normal(0, 1, 20_000)})
    profile = ReferenceProfile.fit(ref, ["x", "y"])
    same = profile.numeric_drift("x", rng.normal(0, 1, 2000))
    moved = profile.numeric_drift("x", rng.normal(0.8, 1, 2000))
    assert (
        same["psi"] < same["psi_critical"] == pytest.approx(33.72 / (1 / (1 / 2000 + 1 / 20_000)), rel=1e-3)
    )
    assert moved["psi"] > 0.5 and moved["ks_pvalue"] < 1e-6
    assert (
        psi_noise_floor(100, 1000, 10) > psi_noise_floor(1000, 1000, 10) > psi_noise_floor(10_000, 10**6, 10)
    )


def test_missing_values_are_data_not_a_crash():
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(size=1000), "empty": [np.nan] * 1000})
    profile = ReferenceProfile.fit(ref, ["x", "empty"])
    assert "empty" not in profile.numeric  # nothing to compare against
    values = rng.normal(size=500)
    values[:100] = np.nan
    out = profile.numeric_drift("x", values)
    assert out["nan_share"] == pytest.approx(0.2) and np.isfinite(out["psi"])
    all_nan = profile.numeric_drift("x", np.full(10, np.nan))
    assert np.isnan(all_nan["psi"]) and all_nan["nan_share"] == 1.0


def frame(n=1000, start=1_000_000, shift_after=None, accuracy=0.95, seed=0):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, n)
    prediction = np.where(rng.random(n) < accuracy, label, 1 - label)
    x = rng.normal(size=n)
    if shift_after is not None:
        x[shift_after:] += 3
    starts = start + np.arange(n) * 1000
    return pd.DataFrame(
        {
            "prediction_uuid": [f"u{i}" for i in range(n)],
            "row": 0,
            "start_ms": starts,
            "end_ms": starts + rng.integers(2, 50, n),
            "prediction": prediction,
            "probability": rng.random(n),
            "input_data.x": x,
            "input_data.blank": np.nan,
            "final_label": label.astype(float),
        }
    )


def test_windows_latency_coverage_and_alerts():
    f = frame(n=2000, shift_after=1000)
    f.loc[1500:, "final_label"] = np.nan  # the last quarter has no ground truth yet
    a = analyse(f, pd.DataFrame(), MonitoringConfig(window_size=250))
    assert len(a.windows) == 8
    latency = (f["end_ms"] - f["start_ms"]).to_numpy(dtype=float)  # the whole call, in ms
    expected = [np.percentile(latency[i : i + 250], 95) for i in range(0, 2000, 250)]
    assert a.windows["latency_p95_ms"].tolist() == pytest.approx(expected, rel=1e-12)
    assert a.windows["label_coverage"].tolist() == [1.0] * 6 + [0.0, 0.0]
    assert a.windows["accuracy"].iloc[-1] != a.windows["accuracy"].iloc[-1]  # NaN: no labels, no verdict
    kinds = {(al.kind, al.subject, al.window) for al in a.alerts}
    assert {(AlertKind.drift, "x", w) for w in (4, 5, 6, 7)} <= kinds
    assert not any(al.kind is AlertKind.drift and al.window < 4 for al in a.alerts)
    assert {(AlertKind.coverage, "model", 6), (AlertKind.coverage, "model", 7)} <= kinds
    assert any("'blank' has no values" in n for n in a.notes)


def test_time_windows_align_to_the_clock():
    f = frame(n=600)  # one prediction a second for ten minutes
    a = analyse(f, pd.DataFrame(), MonitoringConfig(window_kind="time", window_minutes=5))
    assert len(a.windows) in (2, 3) and a.windows["predictions"].sum() == 600


def test_accuracy_alert_needs_enough_labels_and_a_confident_breach():
    bad = frame(n=400, accuracy=0.6, seed=3)
    a = analyse(bad, pd.DataFrame(), MonitoringConfig(window_size=200))
    assert [al.window for al in a.alerts if al.kind is AlertKind.accuracy] == [0, 1]
    few = analyse(bad, pd.DataFrame(), MonitoringConfig(window_size=50))  # < min_labels (100) each
    assert not [al for al in few.alerts if al.kind is AlertKind.accuracy]


def test_an_empty_range_gives_empty_tables_and_a_note():
    a = analyse(pd.DataFrame(), pd.DataFrame(), MonitoringConfig())
    assert a.empty and a.alerts == [] and a.windows.empty
    assert "no prediction records" in a.notes[0]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end must be after start"),
        ({"reference_start": "2026-01-01T00:00:00Z"}, "give both reference_start and reference_end"),
        ({"deployment_crn": "x'; drop table mv_metric_records; --"}, "should match pattern"),
        ({"window_size": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_monitoring_parameters_are_refused(kwargs, needle):
    with pytest.raises(ValueError) as err:
        MonitoringConfig(**kwargs)
    assert needle in str(err.value)


def test_every_tracked_aggregate_is_shown_even_on_a_skewed_clock():
    """The sender's clock runs a little behind the service's: the first aggregate's middle falls
    before the first window, and must still be shown beside it, not dropped."""
    f = frame(n=1000, start=1_000_000)
    first, last = int(f["start_ms"].min()), int(f["end_ms"].max())
    span = (last - first) // 2
    aggregates = pd.DataFrame(
        {
            "start_ms": [first - 400, first + span],
            "end_ms": [first + 100, last],
            "accuracy": [0.94, 0.93],
        }
    )
    a = analyse(f, aggregates, MonitoringConfig(window_size=500))
    # The second aggregate starts a moment before the first window's last prediction ends: that
    # sliver of it counts there, by its share of the aggregate's range.
    assert a.windows["tracked_accuracy"].tolist() == pytest.approx([0.94, 0.93], abs=1e-4)


def test_aggregates_without_any_window_are_shown_nowhere():
    from modelvigil.analysis.tracked_aggregates import tracked_accuracy

    no_windows = pd.DataFrame({"start_ms": pd.Series(dtype=float), "end_ms": pd.Series(dtype=float)})
    aggregates = pd.DataFrame({"start_ms": [1], "end_ms": [2], "accuracy": [0.9]})
    assert tracked_accuracy(no_windows, aggregates).empty


def test_a_slow_answer_stretching_an_aggregate_does_not_leave_its_window_without_one():
    """Window 1's aggregate ends with a straggler deep in window 2, which lasts twice as long as
    window 1 (slower traffic): the aggregate still counts beside window 1, and window 2 shows
    mostly its own aggregate."""
    f = frame(n=300, start=1_000_000)
    f.loc[200:, ["start_ms", "end_ms"]] += np.arange(100)[:, None] * 1000  # window 2: slower traffic
    table = analyse(f, pd.DataFrame(), MonitoringConfig(window_size=100)).windows
    s, e = table["start_ms"].tolist(), table["end_ms"].tolist()
    aggregates = pd.DataFrame(
        {
            "start_ms": [s[0], s[1], s[2]],
            "end_ms": [e[0], e[2] - 1000, e[2]],  # window 1's slowest answer came back late
            "accuracy": [0.9, 0.8, 0.6],
            "predictions": [100, 100, 100],
        }
    )
    tracked = analyse(f, aggregates, MonitoringConfig(window_size=100)).windows["tracked_accuracy"]
    assert tracked.notna().all()
    assert tracked[0] == pytest.approx(0.9, abs=0.01)
    assert tracked[1] == pytest.approx(0.8, abs=0.01)
    assert 0.6 < tracked[2] < 0.7  # its own 0.6, with the straggling aggregate's share of 0.8


def test_an_empty_range_is_one_no_data_alert_over_the_range_asked_for_and_no_figure():
    from modelvigil.analysis.calculators.arrival import ARRIVAL_COLUMNS
    from modelvigil.analysis.calculators.feature_drift import DRIFT_COLUMNS
    from modelvigil.analysis.config import Alert
    from modelvigil.analysis.engine import NO_RECORDS, WINDOW_COLUMNS, analyse_blocks

    a = analyse_blocks(lambda: [], pd.DataFrame(), MonitoringConfig(), (1_000, 61_000))
    assert a.empty and a.notes == [NO_RECORDS]
    (alert,) = a.alerts
    assert alert == Alert(
        kind=AlertKind.no_data,
        window=0,
        window_start_ms=1_000,
        window_end_ms=61_000,
        metric="predictions",
        subject="model",
        value=0.0,
        threshold=1.0,
        message="no prediction records in this range: no traffic, or it went to another deployment",
    )
    incidents = [(i.kinds, i.alerts, i.start_ms, i.end_ms) for i in a.incidents]
    assert incidents == [(["no_data"], 1, 1_000, 61_000)]
    assert a.overall == {
        "predictions": 0, "requests": 0, "labelled": 0, "invalid_labels": 0, "label_coverage": None,
        "accuracy": None, "latency_p50_ms": None, "latency_p95_ms": None, "latency_p99_ms": None,
        "windows": 0, "alerts": 1,
    }  # fmt: skip
    assert list(a.windows.columns) == WINDOW_COLUMNS and a.windows.empty
    assert list(a.drift.columns) == DRIFT_COLUMNS and a.drift.empty
    assert list(a.arrival.columns) == ARRIVAL_COLUMNS and a.arrival.empty and a.confusion.empty
    # A frame without a record says so, with no range to put an alert on.
    nothing = analyse(pd.DataFrame(), pd.DataFrame(), MonitoringConfig())
    assert nothing.empty and nothing.alerts == [] and nothing.notes == [NO_RECORDS]
    assert nothing.overall["alerts"] == 0


def _binary_records(n: int, seed: int = 0) -> pd.DataFrame:
    from tests.helpers import record_frame

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    guess = np.where(rng.random(n) < 0.85, truth, 1 - truth)
    return record_frame(guess, truth.astype(float), x=rng.normal(size=n), grade=rng.integers(1, 4, n))


def test_records_out_of_time_order_are_analysed_as_in_order():
    records = _binary_records(1_000, 1)
    config = MonitoringConfig(window_size=100)
    ordered = analyse(records, pd.DataFrame(), config)
    shuffled = records.sample(frac=1.0, random_state=3)  # and an index that is not 0..n-1
    mixed = analyse(shuffled, pd.DataFrame(), config)
    pd.testing.assert_frame_equal(mixed.windows, ordered.windows)
    pd.testing.assert_frame_equal(mixed.drift, ordered.drift)
    # A block out of order, its reference given: put in order before it is cut into windows.
    span = (int(records["start_ms"].min()), int(records["end_ms"].max()))
    reference = records.iloc[:200]
    blocked = analyse_blocks(lambda: [shuffled], pd.DataFrame(), config, span, lambda: [reference])
    in_order = analyse(records, pd.DataFrame(), config, reference)
    pd.testing.assert_frame_equal(blocked.windows, in_order.windows)


def test_records_without_labels_or_predictions_still_give_traffic_and_drift():
    records = _binary_records(600, 2).drop(columns=["final_label", "prediction"])
    a = analyse(records, pd.DataFrame(), MonitoringConfig(window_size=200))
    assert a.windows["predictions"].tolist() == [200, 200, 200]
    assert a.windows["accuracy"].isna().all() and a.overall["labelled"] == 0
    assert set(a.drift["feature"]) == {"x", "grade"}


@pytest.mark.parametrize(("n", "size", "windows"), [(95, 10, 10), (3, 1, 3), (1_000, 100, 10)])
def test_count_windows_by_default_are_a_tenth_of_the_range_each(n, size, windows):
    a = analyse(_binary_records(n, 3), pd.DataFrame(), MonitoringConfig())
    assert len(a.windows) == windows
    assert a.windows["predictions"].tolist() == [size] * (windows - 1) + [n - size * (windows - 1)]


def test_time_windows_cut_by_the_clock_and_labels_by_their_arrival_minute():
    records = _binary_records(300, 4)  # one a second: five minutes
    records["start_ms"] = 1_700_000_040_000 + np.arange(300) * 1_000  # from the start of a minute
    records["end_ms"] = records["start_ms"] + 3
    records["delayed_arrived_ms"] = records["start_ms"] + 60_000  # each label a minute later
    a = analyse(records, pd.DataFrame(), MonitoringConfig(window_kind="time", window_minutes=1))
    assert a.windows["predictions"].tolist() == [60] * 5
    assert np.diff(a.windows["start_ms"]).tolist() == [60_000] * 4
    assert np.diff(a.arrival["arrived_from_ms"]).tolist() == [60_000] * 4  # arrival minutes too
    assert a.arrival["n_labelled"].tolist() == [60] * 5


def test_what_the_model_is_taken_for_is_said_and_classes_come_from_labels_too():
    from tests.helpers import record_frame

    def notes(prediction, label, **config) -> tuple[list[str], object]:
        a = analyse(
            record_frame(prediction, label), pd.DataFrame(), MonitoringConfig(window_size=50, **config)
        )
        about = ("classes ", "positive label ", "model task ")  # what the model is taken for
        return [n for n in a.notes if n.startswith(about)], a

    said, a = notes(["a", "b"] * 50, ["a", "b"] * 50)
    assert said == [
        "classes 'a' and 'b': which is positive is not clear, so precision and recall are macro-averaged "
        "(--positive-label to choose)",
        "model task inferred from the records: binary classification (--task to say otherwise)",
    ]
    said, a = notes(["a", "b"] * 50, ["a", "b"] * 50, positive_label="b", task="binary")
    assert said == [] and a.positive == "b"  # given and found: nothing to say, nothing inferred
    said, _ = notes(["a", "b"] * 50, ["a", "b"] * 50, positive_label="z")
    assert (
        said[0]
        == "positive label 'z' is none of the classes seen (a, b): precision and recall are macro-averaged"
    )
    said, a = notes([1, 2] * 50, ["x", "x"] + [1, 2] * 49)  # a class only the labels have
    assert said[-1] == (
        "model task inferred from the records: multi-class classification (3 classes) "
        "(--task to say otherwise)"
    )
    assert a.per_class["class"].tolist() == [1, 2, "x"]  # numbers by value, then text
    said, _ = notes(np.linspace(0, 1, 100), np.linspace(0, 1, 100) + 0.01)
    assert said == [
        "model task inferred from the records: regression (numeric predictions) (--task to say otherwise)"
    ]


def test_the_analysis_carries_what_the_report_draws():
    from collections import Counter

    records = _binary_records(1_000, 5)
    records["probability"] = np.random.default_rng(5).uniform(0, 1, 1_000)
    records["input_data.empty"] = np.nan  # a feature that never has a value
    records["end_ms"] = records["start_ms"] + np.arange(1_000) % 7  # latencies 0..6 ms
    records["final_label"] = records["final_label"].astype(object)
    records.loc[[10, 500], "final_label"] = pd.Series([[1, 2], {"x": 1}], index=[10, 500])  # not values
    config = MonitoringConfig(window_size=100)
    a = analyse(records, pd.DataFrame(), config)
    assert a.notes[:2] == [
        "2 label(s) not usable (objects or lists, not values), left out: [1, 2], {'x': 1}",
        "feature 'empty' has no values in this range",
    ]
    assert a.overall["invalid_labels"] == 2
    assert a.overall["windows"] == len(a.windows) == 10 and a.overall["alerts"] == len(a.alerts)
    per_window_max = a.drift.groupby("window")["psi"].max()
    assert a.windows["max_psi"].tolist() == pytest.approx(per_window_max.tolist())
    assert a.sketch.latency == Counter((records["end_ms"] - records["start_ms"]).tolist())
    assert a.sketch.total_calls == 1_000
    assert set(a.sketch.ks_bounds) == {"x", "probability"} and all(  # numbers only: grade is categorical
        0 < bound < 0.1 for bound in a.sketch.ks_bounds.values()
    )
    assert a.profile is not None and a.profile.rows == 200  # the earliest 20%
    assert a.reference_span_ms == (int(records["start_ms"].iloc[0]), int(records["start_ms"].iloc[199]))
    assert a.feature_kinds == {"x": "numeric", "grade": "categorical", "empty": "numeric"}

    # A window of exactly the least rows drift is judged on is judged; one under it is said.
    least = config.thresholds.min_drift_rows
    small = analyse(_binary_records(least * 2 + 1, 6), pd.DataFrame(), MonitoringConfig(window_size=least))
    assert f"1 window(s) under {least} predictions: drift shown, not judged" in small.notes

    regression = analyse(
        _binary_records(400, 7).assign(prediction=np.linspace(0, 1, 400)), pd.DataFrame(), MonitoringConfig()
    )
    assert regression.overall["accuracy"] is None and regression.sketch.residual_edges is not None


def test_blocks_fold_what_one_frame_would_invalid_labels_across_them_and_empty_ones_between():
    records = _binary_records(900, 8)
    records["final_label"] = records["final_label"].astype(object)
    for i, row in enumerate([5, 6, 305, 306, 605, 606]):
        records.at[row, "final_label"] = [i]
    config = MonitoringConfig(window_size=150)
    span = (int(records["start_ms"].min()), int(records["end_ms"].max()))
    blocks = [records.iloc[:300], records.iloc[:0], records.iloc[300:600], records.iloc[600:]]
    folded = analyse_blocks(lambda: blocks, pd.DataFrame(), config, span)
    whole = analyse(records, pd.DataFrame(), config)
    pd.testing.assert_frame_equal(folded.windows, whole.windows)
    assert folded.notes[0] == "6 label(s) not usable (objects or lists, not values), left out: [0], [1], [2]"
    assert folded.notes == whole.notes
    # A reference period without a record: said, and nothing judged against it.
    for none in ([records.iloc[:0]], []):
        empty_reference = analyse_blocks(lambda: blocks, pd.DataFrame(), config, span, lambda none=none: none)
        assert "the reference period holds no records: drift not measured" in empty_reference.notes
    # A range whose blocks hold nothing, though a reference was given: no data, over that range.
    for reference in (records.iloc[:100], records.iloc[:0]):
        nothing = analyse_blocks(lambda: [], pd.DataFrame(), config, span, lambda r=reference: [r])
        assert [(x.kind, x.window_start_ms, x.window_end_ms) for x in nothing.alerts] == [("no_data", *span)]
    assert nothing.notes[-1] == "no prediction records in the requested range"
    # Default windows over blocks with a reference given: still a tenth of the range each.
    tenths = analyse_blocks(
        lambda: blocks, pd.DataFrame(), MonitoringConfig(), span, lambda: [records.iloc[:100]]
    )
    assert tenths.windows["predictions"].tolist() == [90] * 10


def test_window_start_times_read_at_the_coarsest_resolution_that_tells_them_apart(tmp_path):
    from modelvigil.analysis.report import write_report
    from modelvigil.analysis.time_labels import distinct_times

    minute = 1_764_756_780_000  # 2025-12-03 10:13:00 UTC
    assert distinct_times([minute, minute + 60_000, None]) == ["12-03 10:13", "12-03 10:14", "–"]
    assert distinct_times([minute, minute + 4_000]) == ["12-03 10:13:00", "12-03 10:13:04"]
    assert distinct_times([minute, minute + 250]) == ["12-03 10:13:00.000", "12-03 10:13:00.250"]
    assert distinct_times([minute, minute]) == ["12-03 10:13", "12-03 10:13"]  # the same start: alike

    records = _binary_records(1_000, 9)
    records["start_ms"] = minute + np.arange(1_000) * 20  # 20 s of traffic, ten windows
    records["end_ms"] = records["start_ms"] + 5
    a = analyse(records, pd.DataFrame(), MonitoringConfig(window_size=100))
    page = write_report(a, {}, tmp_path, {"model_name": "m"}).read_text()
    for second in range(0, 20, 2):
        assert f"<td>12-03 10:13:{second:02d}</td>" in page  # each window's row says when it began
