"""The alert rules are data: each row fires where it must, stays quiet where it must, and a new
rule is a new row. One windowing object cuts records and label arrivals alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelvigil.analysis.alerts import Guard, Rule, default_rules, evaluate, event_name, resource_id
from modelvigil.analysis.config import AlertKind, Thresholds
from modelvigil.analysis.windows import Windowing, WindowKind, by_count, by_time


def _windows(**columns: list[float]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        "window": list(range(n)),
        "start_ms": [1000 * i for i in range(n)],
        "end_ms": [1000 * i + 999 for i in range(n)],
        "predictions": [500] * n,
        "accuracy": [0.95] * n,
        "accuracy_high": [0.97] * n,
        "n_labelled": [500] * n,
        "latency_p95_ms": [5.0] * n,
        "label_coverage": [1.0] * n,
        "prediction_js": [0.01] * n,
        "prediction_pvalue": [0.5] * n,
    }
    return pd.DataFrame({**base, **columns})


NO_DRIFT = pd.DataFrame(columns=["window", "feature", "psi", "psi_critical"])


def test_a_healthy_table_raises_nothing():
    assert evaluate(_windows(accuracy=[0.95, 0.96]), NO_DRIFT, Thresholds()) == []


def test_each_window_rule_fires_with_its_numbers():
    table = _windows(
        accuracy=[0.95, 0.70, 0.95, 0.95],
        accuracy_high=[0.97, 0.74, 0.97, 0.97],
        latency_p95_ms=[5.0, 5.0, 1500.0, 5.0],
        label_coverage=[1.0, 1.0, 1.0, 0.25],
    )
    alerts = evaluate(table, NO_DRIFT, Thresholds())
    assert [(a.kind, a.window, a.metric, a.value, a.threshold) for a in alerts] == [
        (AlertKind.accuracy, 1, "accuracy", 0.70, 0.85),
        (AlertKind.latency, 2, "latency_p95_ms", 1500.0, 1000.0),
        (AlertKind.coverage, 3, "label_coverage", 0.25, 0.5),
    ]
    assert [a.message for a in alerts] == [
        "window 1: accuracy 0.700 below 0.85 (500 labels)",
        "window 2: p95 latency 1500 ms above 1000 ms",
        "window 3: label coverage 0.25 below 0.5",
    ]
    assert (alerts[1].window_start_ms, alerts[1].window_end_ms) == (2000, 2999)


def test_accuracy_fires_on_its_interval_not_its_point_estimate():
    point_below_interval_not = _windows(accuracy=[0.80], accuracy_high=[0.90])
    assert evaluate(point_below_interval_not, NO_DRIFT, Thresholds()) == []


def test_prediction_drift_needs_size_and_significance():
    drifted = dict(prediction_js=[0.3, 0.3, 0.3], prediction_pvalue=[1e-9, 0.01, 1e-9])
    alerts = evaluate(_windows(**drifted, predictions=[500, 500, 99]), NO_DRIFT, Thresholds())
    assert [(a.window, a.subject, a.metric) for a in alerts] == [(0, "predictions", "prediction_js")]


def test_feature_drift_needs_psi_above_both_the_threshold_and_noise():
    drift = pd.DataFrame(
        {
            "window": [0, 0, 1, 1],
            "feature": ["age", "amount", "age", "amount"],
            "psi": [0.40, 0.40, 0.10, 0.40],
            "psi_critical": [0.05, 0.60, 0.05, 0.05],
        }
    )
    alerts = evaluate(_windows(predictions=[500, 50]), drift, Thresholds())
    assert [(a.window, a.subject, round(a.value, 2)) for a in alerts] == [(0, "age", 0.40)]
    assert alerts[0].message == "window 0: feature 'age' drifted (PSI 0.400 > 0.25)"


def test_a_new_rule_is_one_more_row():
    slow_median = Rule(
        AlertKind.latency,
        "windows",
        "latency_p50_ms",
        "max_p95_latency_ms",
        ">",
        "window {window}: median latency {value:.0f} ms",
        guards=(Guard("requests", ">=", 10),),
    )
    table = _windows(latency_p50_ms=[2000.0, 2000.0], requests=[50, 5])
    alerts = evaluate(table, NO_DRIFT, Thresholds(), [*default_rules(), slow_median])
    assert [a.message for a in alerts] == ["window 0: median latency 2000 ms"]


def test_one_run_payload_holds_every_breach_with_its_times_and_links():
    from modelvigil.analysis.alerts import run_payload
    from modelvigil.analysis.config import Alert

    alerts = [
        Alert(kind="drift", window=2, window_start_ms=0, window_end_ms=59_999, metric="psi",
              subject="age", value=0.4, threshold=0.25, message="m1"),
        Alert(kind="accuracy", window=3, window_start_ms=60_000, window_end_ms=119_999, metric="accuracy",
              subject="model", value=0.7, threshold=0.85, message="m2"),
    ]  # fmt: skip
    got = run_payload(alerts, model_name="m", deployment_crn="crn:x", report="file:///r", flow_run=None)
    assert (got["alerts"], got["kinds"], got["from"], got["to"]) == (
        2, ["accuracy", "drift"], "1970-01-01T00:00:00+00:00", "1970-01-01T00:01:59+00:00"
    )  # fmt: skip
    assert [b["subject"] for b in got["breaches"]] == ["age", "model"]
    assert got["breaches"][1]["window_start"] == "1970-01-01T00:01:00+00:00"


def test_event_names_and_resources_come_from_one_place():
    assert event_name(AlertKind.accuracy) == "modelvigil.alert.accuracy"
    assert event_name("drift") == "modelvigil.alert.drift"
    assert resource_id("crn:x/y") == "modelvigil.deployment.crn:x/y"
    with pytest.raises(ValueError):
        event_name("nonsense")


def test_windowing_by_count_default_and_explicit():
    assert Windowing().assign(np.arange(25)).tolist() == [i // 3 for i in range(25)]  # ceil(25/10) = 3
    assert Windowing(size=10).assign(np.arange(25)).tolist() == [0] * 10 + [1] * 10 + [2] * 5
    assert Windowing().describe() == "count: 10 equal" and Windowing(size=7).describe() == "count: 7"


def test_windowing_by_time_aligns_to_the_clock():
    minute = 60_000
    stamps = np.array([5 * minute - 1, 5 * minute, 9 * minute + 59_999, 10 * minute, 31 * minute])
    windowing = Windowing(WindowKind.time, minutes=5)
    assert windowing.assign(stamps).tolist() == [0, 1, 1, 2, 3]  # [0,5) [5,10) [10,15) [30,35)
    assert windowing.describe() == "time: 5 min"


def test_few_items_get_one_window_each():
    assert Windowing().assign(np.arange(5)).tolist() == [0, 1, 2, 3, 4]
    assert Windowing().assign(np.arange(0)).tolist() == []
    assert by_count(3, 1).tolist() == [0, 1, 2]


def test_time_windows_start_on_the_clock():
    minute = 60_000
    starts = by_time(np.array([0, 59_999, 60_000, 7 * minute + 5]), 5 * minute)
    assert starts.tolist() == [0, 0, 0, 5 * minute]
    assert starts.dtype == np.int64
    assert by_time(pd.Series([1_700_000_123_456]), 3_600_000).tolist() == [1_699_999_200_000]


def test_window_numbers_follow_the_clock_even_out_of_order():
    minute = 60_000
    windowing = Windowing(WindowKind.time, minutes=1)
    assert windowing.assign(np.array([3 * minute, 0, 3 * minute + 1, minute])).tolist() == [2, 0, 2, 1]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: by_count(3, 0), "window size must be >= 1, got 0"),
        (lambda: by_time(np.array([1]), 0), "window length must be >= 1 ms, got 0"),
    ],
)
def test_window_sizes_under_one_are_refused(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == message
    assert by_time(np.array([5]), 1).tolist() == [5]  # 1 ms is the smallest length, and allowed


def test_a_value_exactly_at_its_threshold_does_not_alert():
    at_the_line = _windows(
        accuracy=[0.80], accuracy_high=[0.85], latency_p95_ms=[1000.0], label_coverage=[0.5]
    )
    assert evaluate(at_the_line, NO_DRIFT, Thresholds()) == []
    drift = pd.DataFrame({"window": [0], "feature": ["age"], "psi": [0.40], "psi_critical": [0.40]})
    assert evaluate(_windows(accuracy=[0.95]), drift, Thresholds()) == []  # not above noise


def test_drift_is_judged_from_exactly_the_minimum_window_size():
    drifted = _windows(predictions=[100, 99], prediction_js=[0.3, 0.3], prediction_pvalue=[1e-9, 1e-9])
    assert [a.window for a in evaluate(drifted, NO_DRIFT, Thresholds())] == [0]
    custom = Thresholds(min_drift_rows=99, max_prediction_js=0.5)
    assert evaluate(drifted, NO_DRIFT, custom) == []  # the threshold comes from the thresholds given
    lower = Thresholds(min_drift_rows=99)
    assert [a.window for a in evaluate(drifted, NO_DRIFT, lower)] == [0, 1]


def test_missing_figures_never_alert():
    blank = _windows(
        accuracy=[np.nan], accuracy_high=[np.nan], latency_p95_ms=[np.nan], label_coverage=[np.nan]
    )
    assert evaluate(blank.drop(columns=["prediction_js"]), NO_DRIFT, Thresholds()) == []


def test_window_numbers_read_back_as_floats_print_as_integers():
    table = _windows(accuracy=[0.5, 0.5], accuracy_high=[0.6, 0.6]).astype({"window": float})
    alerts = evaluate(table, NO_DRIFT, Thresholds())
    assert [a.message.split(":")[0] for a in alerts] == ["window 0", "window 1"]


def test_a_rule_set_for_one_table_only_still_reads_the_other():
    drift_only = [r for r in default_rules() if r.table == "drift"]
    drift = pd.DataFrame({"window": [1], "feature": ["age"], "psi": [0.9], "psi_critical": [0.1]})
    alerts = evaluate(
        _windows(accuracy=[0.5, 0.5], accuracy_high=[0.6, 0.6]), drift, Thresholds(), drift_only
    )
    assert [(a.kind, a.window, a.subject) for a in alerts] == [(AlertKind.drift, 1, "age")]
    assert (alerts[0].window_start_ms, alerts[0].window_end_ms) == (1000, 1999)  # from the window's row


def test_time_windows_of_float_timestamps_start_on_whole_milliseconds():
    starts = by_time(np.array([59_999.0, 60_000.0, 125_000.5]), 60_000)
    assert starts.tolist() == [0, 60_000, 120_000] and starts.dtype == np.int64
