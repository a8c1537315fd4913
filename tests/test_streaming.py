"""The one analysis engine, streamed from a store (SQLite and Postgres), against figures computed
independently here with pandas, numpy, scipy and scikit-learn: counts, coverage, accuracy and its
interval, precision/recall/F1, class mix, positive rate, latency percentiles, PSI and missing
shares exactly; KS within its stated bound. And the same analysis whatever the block size: the
fold of many blocks equals the fold of one."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import precision_recall_fscore_support

from modelvigil.analysis.calculators.traffic import percentile_from_counts
from modelvigil.analysis.config import MonitoringConfig
from modelvigil.analysis.engine import analyse, analyse_blocks
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
            label = {"unknown": 1} if i % 97 == 5 else truth.tolist()  # an object: no label
            labels.append((u, {"final_label": label}))
    for i in range(0, n, 500):
        store.record_predictions(records[i : i + 500])
    for i in range(0, len(labels), 500):
        store.merge_delayed(labels[i : i + 500])


def streamed(store, config: MonitoringConfig, block: int, reference_range=None):
    time_range = (T0, T0 + 10**9)
    return analyse_blocks(
        lambda: store.iter_frames(DEP, *time_range, block=block),
        store.read_aggregates_frame(DEP, *time_range),
        config,
        time_range,
        (lambda: store.iter_frames(DEP, *reference_range, block=block)) if reference_range else None,
        count_rows=(lambda: store.count_rows(DEP, *time_range)) if block % 2 else None,  # both ways
    )


def wilson(hits: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def psi(window: np.ndarray, reference: np.ndarray) -> float:
    """PSI over the reference's deciles, half a count added to every bin of the window."""
    edges = np.unique(np.quantile(reference, np.linspace(0.1, 0.9, 9)))
    ref = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=edges.size + 1)
    cur = np.bincount(np.searchsorted(edges, window, side="right"), minlength=edges.size + 1)
    expected = np.maximum(ref / ref.sum(), 1e-4)
    actual = (cur + 0.5) / (cur.sum() + 0.5 * cur.size)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def expected_windows(frame: pd.DataFrame, window: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per window and per (window, feature), computed from the frame alone."""
    n = len(frame)
    if window.get("window_kind") == "time":
        number = pd.factorize(frame["start_ms"] // 60_000, sort=True)[0]
    else:
        number = np.arange(n) // window.get("window_size", -(-n // 10))
    raw = frame["final_label"]
    usable = raw.map(lambda v: isinstance(v, int | float) and v == v)
    label = pd.to_numeric(raw.where(usable), errors="coerce")
    latency = (frame["end_ms"] - frame["start_ms"]).astype(float)
    reference = frame.iloc[: int(n * 0.2)]
    rows, drift = [], []
    for w in np.unique(number):
        mine = frame[number == w]
        calls = mine["row"] == 0
        known = usable[number == w]
        y, p = label[number == w][known].astype(int), mine["prediction"][known]
        hits = int((y == p).sum())
        low, high = wilson(hits, len(y))
        precision, recall, f1, _ = precision_recall_fscore_support(
            y, p, pos_label=1, average="binary", zero_division=0
        )
        pos_low, pos_high = wilson(int((mine["prediction"] == 1).sum()), len(mine))
        rows.append({
            "window": w, "start_ms": mine["start_ms"].min(), "end_ms": mine["end_ms"].max(),
            "predictions": len(mine), "requests": int(calls.sum()),
            "label_coverage": float(raw[number == w].notna().mean()), "n_labelled": len(y),
            "accuracy": hits / len(y), "accuracy_low": low, "accuracy_high": high,
            "precision": precision, "recall": recall, "f1": f1,
            "share_0": float((mine["prediction"] == 0).mean()),
            "share_1": float((mine["prediction"] == 1).mean()),
            "positive_rate": float((mine["prediction"] == 1).mean()),
            "positive_rate_low": pos_low, "positive_rate_high": pos_high,
            **{f"latency_p{q}_ms": float(np.percentile(latency[number == w][calls], q))
               for q in (50, 95, 99)},
        })  # fmt: skip
        for feature in ("x", "y"):
            column = f"input_data.{feature}"
            values = mine[column].astype(float).to_numpy()
            finite = values[np.isfinite(values)]
            ref = reference[column].astype(float).to_numpy()
            ref = ref[np.isfinite(ref)]
            drift.append({
                "window": w, "feature": feature, "psi": psi(finite, ref),
                "nan_share": 1 - finite.size / values.size,
                "ks_exact": stats.ks_2samp(finite, ref).statistic,
            })  # fmt: skip
    return pd.DataFrame(rows), pd.DataFrame(drift)


EXACT = [
    "window", "start_ms", "end_ms", "predictions", "requests", "label_coverage", "n_labelled", "accuracy",
    "accuracy_low", "accuracy_high", "precision", "recall", "f1", "share_0", "share_1", "positive_rate",
    "positive_rate_low", "positive_rate_high", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
]  # fmt: skip


@pytest.mark.parametrize(
    ("window", "block"),
    [({}, 137), ({"window_size": 450}, 1_000), ({"window_kind": "time", "window_minutes": 1}, 211)],
)
def test_the_streamed_analysis_equals_figures_computed_from_the_frame(store, window, block):
    fill(store, 2_400)
    config = MonitoringConfig(**window)
    got = streamed(store, config, block)
    frame = store.read_frame(DEP, T0, T0 + 10**9)
    want, want_drift = expected_windows(frame, window)
    assert len(got.windows) == len(want) > 3
    pd.testing.assert_frame_equal(got.windows[EXACT], want[EXACT], check_dtype=False, rtol=1e-12, atol=1e-12)
    pd.testing.assert_frame_equal(
        got.drift[["window", "feature", "psi", "nan_share"]].reset_index(drop=True),
        want_drift[["window", "feature", "psi", "nan_share"]],
        check_dtype=False,
        rtol=1e-12,
    )
    # KS binned: never above the exact statistic and at most about one fine bin below it.
    bounds = got.sketch.ks_bounds
    gap = want_drift["ks_exact"].to_numpy() - got.drift["ks"].to_numpy(dtype=float)
    assert (gap >= -1e-12).all() and (gap <= got.drift["feature"].map(bounds).to_numpy() + 1e-12).all()
    usable = frame["final_label"].map(lambda v: isinstance(v, int | float) and v == v)
    truth = pd.to_numeric(frame["final_label"].where(usable)).dropna().astype(int).rename("actual")
    confusion = pd.crosstab(truth, frame.loc[truth.index, "prediction"].rename("predicted"))
    pd.testing.assert_frame_equal(got.confusion, confusion, check_dtype=False, check_names=False)
    objects = frame["final_label"].map(lambda v: isinstance(v, dict))
    assert got.overall["invalid_labels"] == int(objects.sum()) > 0
    assert (
        got.overall["predictions"] == len(frame)
        and got.overall["requests"] == frame["prediction_uuid"].nunique()
    )
    # The shift after 60% of the traffic, in x only: drift alerts name x, after the reference.
    drifted = {(a.subject, a.window) for a in got.alerts if a.metric == "psi"}
    assert drifted and {f for f, _ in drifted} == {"x"}


@pytest.mark.parametrize("window", [{}, {"window_size": 450}, {"window_kind": "time", "window_minutes": 1}])
def test_the_fold_of_many_blocks_equals_the_fold_of_one(store, window):
    fill(store, 1_800, seed=2)
    config = MonitoringConfig(**window)
    one = analyse(store.read_frame(DEP, T0, T0 + 10**9), pd.DataFrame(), config)
    many = streamed(store, config, 97)
    pd.testing.assert_frame_equal(one.windows, many.windows, check_dtype=False, rtol=1e-9)
    pd.testing.assert_frame_equal(one.drift, many.drift, check_dtype=False, rtol=1e-9)
    pd.testing.assert_frame_equal(one.arrival, many.arrival, check_dtype=False)
    assert [(a.kind, a.window, a.metric, a.subject) for a in one.alerts] == [
        (a.kind, a.window, a.metric, a.subject) for a in many.alerts
    ]
    assert one.notes == many.notes and one.overall == pytest.approx(many.overall)


def test_a_reference_period_is_the_reference(store):
    fill(store, 1_500, seed=1)
    config = MonitoringConfig(window_size=300)
    got = streamed(store, config, 250, reference_range=(T0, T0 + 500 * 250))
    frame = store.read_frame(DEP, T0, T0 + 10**9)
    reference = store.read_frame(DEP, T0, T0 + 500 * 250)
    x = frame["input_data.x"].astype(float).to_numpy()
    ref = reference["input_data.x"].astype(float).to_numpy()
    want = [psi(x[i : i + 300], ref) for i in range(0, len(frame), 300)]
    assert got.drift.loc[got.drift["feature"] == "x", "psi"].tolist() == pytest.approx(want, rel=1e-12)
    assert {x.subject for x in got.alerts if x.metric == "psi"} == {"x"}  # the shifted feature, only
    assert got.reference_span_ms == (int(reference["start_ms"].min()), int(reference["start_ms"].max()))


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
