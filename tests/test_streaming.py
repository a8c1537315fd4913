"""The streamed monitoring analysis against the in-memory one, side by side on the same store
(SQLite and Postgres): exactly the same counts, accuracy, intervals, confusion matrix, class mix,
PSI, missing shares, latency percentiles and alerts; KS within its stated bound."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from modelvigil.analysis.analyse import analyse
from modelvigil.analysis.config import MonitoringConfig
from modelvigil.analysis.streaming import analyse_blocks, percentile_from_counts
from modelvigil.store import PredictionRecord

DEP = "crn:cdp:ml:local:a:workspace:w/stream"
T0 = 1_764_000_000_000


def fill(store, n: int, seed: int = 0) -> None:
    """`n` calls: some of two rows, a feature missing from a stretch, NaN values, a shift after
    60%, ground truth on most (a few of them unusable text), latencies in whole ms."""
    rng = np.random.default_rng(seed)
    records, labels = [], []
    for i in range(n):
        rows = 2 if i % 17 == 0 else 1
        shifted = i > 0.6 * n
        x = rng.normal(3.0 if shifted else 0.0, 1.0, rows)
        y = rng.lognormal(1.0, 0.5, rows)
        truth = (x + rng.normal(0, 1, rows) > 0.5).astype(int)
        prediction = np.where(rng.random(rows) < 0.9, truth, 1 - truth)
        features = {"x": x.tolist(), "y": [None if rng.random() < 0.05 else float(v) for v in y]}
        if 300 <= i < 400:
            del features["y"]  # a stretch of traffic without this feature
        u = str(uuid.uuid4())
        start = T0 + i * 250 + int(rng.integers(0, 5))
        records.append(
            PredictionRecord(
                "crn:model", "crn:build", DEP, u, start, start + int(rng.gamma(2.0, 3.0)),
                {
                    "prediction": prediction.tolist(),
                    "probability": np.round(rng.uniform(0.5, 1.0, rows), 4).tolist(),
                    "input_data": features,
                },
            )
        )  # fmt: skip
        if i % 10 != 3:
            label = "unknown" if i % 97 == 5 else truth.tolist()
            labels.append((u, {"final_label": label}))
    for i in range(0, n, 500):
        store.record_predictions(records[i : i + 500])
    for i in range(0, len(labels), 500):
        store.merge_delayed(labels[i : i + 500])


def both(store, config: MonitoringConfig, block: int, reference_range=None):
    time_range = (T0, T0 + 10**9)
    frame = store.read_frame(DEP, *time_range)
    reference = store.read_frame(DEP, *reference_range) if reference_range else None
    aggregates = store.read_aggregates_frame(DEP, *time_range)
    in_memory = analyse(frame, aggregates, config, reference)
    streamed = analyse_blocks(
        lambda: store.iter_frames(DEP, *time_range, block=block),
        aggregates,
        config,
        time_range,
        (lambda: store.iter_frames(DEP, *reference_range, block=block)) if reference_range else None,
        count_rows=(lambda: store.count_rows(DEP, *time_range)) if block % 2 else None,  # both ways
    )
    return in_memory, streamed


EXACT = [
    "window", "start_ms", "end_ms", "predictions", "requests", "label_coverage", "n_labelled", "accuracy",
    "accuracy_low", "accuracy_high", "precision", "recall", "f1", "positive_rate", "positive_rate_low",
    "positive_rate_high", "share_0", "share_1", "reference_accuracy", "accuracy_drop", "accuracy_drop_pvalue",
    "cusum_limit", "max_psi",
]  # fmt: skip
CLOSE = ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "prediction_js", "prediction_pvalue",
         "accuracy_cusum", "estimated_accuracy", "estimated_drop", "estimated_drop_pvalue"]  # fmt: skip


@pytest.mark.parametrize(
    ("window", "block"),
    [({}, 137), ({"window_size": 450}, 1_000), ({"window_kind": "time", "window_minutes": 1}, 211)],
)
def test_streamed_equals_in_memory(store, window, block):
    fill(store, 2_400)
    config = MonitoringConfig(**window)
    a, b = both(store, config, block)
    assert len(a.windows) == len(b.windows) > 3
    pd.testing.assert_frame_equal(a.windows[EXACT], b.windows[EXACT], check_dtype=False, rtol=0, atol=0)
    pd.testing.assert_frame_equal(a.windows[CLOSE], b.windows[CLOSE], check_dtype=False, rtol=1e-9)
    # Feature drift: PSI, its noise floor and the missing share exactly; KS binned, never above
    # the exact statistic and at most about one fine bin below it.
    pd.testing.assert_frame_equal(
        a.drift[["window", "feature", "psi", "psi_critical", "nan_share"]],
        b.drift[["window", "feature", "psi", "psi_critical", "nan_share"]],
        check_dtype=False,
        rtol=0,
        atol=0,
    )
    bounds = b.sketch.ks_bounds
    gap = a.drift["ks"] - b.drift["ks"]
    assert (gap >= -1e-12).all() and (gap <= a.drift["feature"].map(bounds) + 1e-12).all()
    for name, ref in b.profile.numeric.items():  # continuous values: one reference value per bin
        assert bounds[name.removeprefix("input_data.")] <= 1.01 / min(len(ref.sample), 1_000)
    gap = a.windows["probability_ks"] - b.windows["probability_ks"]
    assert (gap >= -1e-12).all() and (gap <= bounds["probability"] + 1e-12).all()
    pd.testing.assert_frame_equal(a.confusion, b.confusion, check_dtype=False)
    pd.testing.assert_frame_equal(a.arrival, b.arrival, check_dtype=False)
    assert a.overall == pytest.approx(b.overall, rel=1e-12)
    assert a.notes == b.notes
    assert [_key(x) for x in a.alerts] == [_key(x) for x in b.alerts]
    for x, y in zip(a.alerts, b.alerts, strict=True):
        ks = x.metric in ("probability_ks", "ks")  # binned: within its bound
        assert (
            y.value == pytest.approx(x.value, abs=5e-3) if ks else y.value == pytest.approx(x.value, rel=1e-9)
        )
    assert a.reference_span_ms == b.reference_span_ms


def _key(alert):
    return (alert.kind, alert.window, alert.metric, alert.subject, alert.window_start_ms, alert.window_end_ms)


def test_streamed_equals_in_memory_with_a_reference_period(store):
    fill(store, 1_500, seed=1)
    config = MonitoringConfig(window_size=300)
    a, b = both(store, config, 250, reference_range=(T0, T0 + 500 * 250))
    pd.testing.assert_frame_equal(a.windows[EXACT], b.windows[EXACT], check_dtype=False, rtol=0, atol=0)
    assert a.drift["psi"].tolist() == b.drift["psi"].tolist()
    assert {(x.kind, x.subject, x.window) for x in a.alerts} == {
        (x.kind, x.subject, x.window) for x in b.alerts
    }
    assert {x.subject for x in b.alerts if x.metric == "psi"} == {"x"}  # the shifted feature, only


def test_an_empty_range_streams_to_an_empty_analysis(store):
    b = analyse_blocks(lambda: store.iter_frames(DEP, 0, 1), pd.DataFrame(), MonitoringConfig(), (0, 1))
    assert b.empty and b.windows.empty and "no prediction records" in b.notes[0]


def test_percentiles_from_counts_are_numpys():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 40, 1_001)
    counts = pd.Series(values).value_counts().to_dict()
    from collections import Counter

    for q in (0, 1, 50, 95, 99, 99.9, 100):
        assert percentile_from_counts(Counter(counts), q) == pytest.approx(
            np.percentile(values, q), rel=1e-12
        )
