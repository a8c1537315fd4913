"""Records of models other than the built-in fraud classifier, written the way CML's model service
writes them (the call's `input_data`, its `prediction`, ground truth later by uuid), monitored by
the monitoring flow from the store (SQLite and Postgres) and over HTTP (`read_metrics` pages, as
from CML); every figure checked against values computed here from the records themselves."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from flows.monitoring import monitoring_flow
from modelvigil.analysis.config import AlertKind, MonitoringConfig
from modelvigil.store import MetricsStore, PredictionRecord
from tests.helpers import record_frame

pytestmark = pytest.mark.usefixtures("prefect_harness")

DEP = "crn:cdp:ml:local:a:workspace:w/other-model"
T0 = 1_761_955_200_000  # 2025-11-01 UTC
N = 2_000
WINDOW = 200


def write(
    store_url: str, inputs: list[dict], predictions: list, labels: list, *, omit_first: bool = False
) -> None:
    """One call per row, 3 s apart; every label delivered later by uuid (`omit_first`: the first
    call never gets one, so the first record of every read lacks `final_label`)."""
    store = MetricsStore(store_url)
    try:
        records, delayed = [], []
        for i, (x, p, y) in enumerate(zip(inputs, predictions, labels, strict=True)):
            u = str(uuid.UUID(int=i + 1))
            start = T0 + i * 3_000
            metrics = {"input_data": x, "prediction": p}
            records.append(PredictionRecord("crn:model", "crn:build", DEP, u, start, start + 5, metrics))
            if not (omit_first and i == 0):
                delayed.append((u, {"final_label": y}))
        for i in range(0, len(records), 500):
            store.record_predictions(records[i : i + 500])
        for i in range(0, len(delayed), 500):
            store.merge_delayed(delayed[i : i + 500])
    finally:
        store.close()


def monitor(tmp_path, name: str, **source) -> tuple[dict, object]:
    config = MonitoringConfig(
        start=datetime.fromtimestamp(T0 / 1000 - 1, UTC),
        end=datetime.fromtimestamp(T0 / 1000 + N * 3 + 10, UTC),
        deployment_crn=DEP,
        window_size=WINDOW,
        output_dir=str(tmp_path / name),
        **source,
    )
    result = monitoring_flow(config)
    return json.loads((tmp_path / name / "summary.json").read_text()), result


def per_window(values: np.ndarray) -> list[np.ndarray]:
    return [values[i : i + WINDOW] for i in range(0, len(values), WINDOW)]


def categorical_traffic(seed: int = 0) -> tuple[list[dict], list, list]:
    """`country` moves from DE/FR/US to US/US/BR half-way; `channel` and `amount` stay put;
    classes "low"/"mid"/"high", right about 85% of the time."""
    rng = np.random.default_rng(seed)
    half = N // 2
    country = np.concatenate([rng.choice(["DE", "FR", "US"], half), rng.choice(["US", "US", "BR"], N - half)])
    channel = rng.choice(["web", "app", "shop"], N, p=[0.5, 0.3, 0.2])
    amount = rng.lognormal(3, 0.5, N)
    truth = rng.choice(["low", "mid", "high"], N)
    right = rng.random(N) < 0.85
    guess = np.where(right, truth, rng.choice(["low", "mid", "high"], N))
    inputs = [
        {"country": c, "channel": h, "amount": float(a)}
        for c, h, a in zip(country, channel, amount, strict=True)
    ]
    return inputs, guess.tolist(), truth.tolist()


def test_categorical_inputs_and_string_labels_from_the_store(store_url, tmp_path):
    inputs, predictions, labels = categorical_traffic()
    write(store_url, inputs, predictions, labels)
    summary, result = monitor(tmp_path, "report", store_url=store_url)

    hits = np.array(predictions) == np.array(labels)
    assert summary["task"] == "multiclass"
    assert [w["accuracy"] for w in summary["windows"]] == pytest.approx([h.mean() for h in per_window(hits)])
    assert summary["overall"]["accuracy"] == pytest.approx(hits.mean())
    assert all(w["label_coverage"] == 1.0 for w in summary["windows"])
    assert not [a for a in result.alerts if a.kind in (AlertKind.coverage, AlertKind.accuracy)]
    # Drift: country only, from the shift on; the stable categorical and numeric features not.
    drifted = {a.subject for a in result.alerts if a.metric == "psi"}
    assert drifted == {"country"}
    assert min(a.window for a in result.alerts if a.subject == "country") == N // 2 // WINDOW
    kinds = {f["feature"]: f["kind"] for f in summary["features"]}
    assert kinds == {"country": "categorical", "channel": "categorical", "amount": "numeric"}
    # Category shares of the last window, as counted here: BR never seen in the reference.
    last = [x["country"] for x in inputs[-WINDOW:]]
    drift = pd.DataFrame(summary["drift"])
    row = drift[(drift["feature"] == "country") & (drift["window"] == N // WINDOW - 1)].iloc[0]
    assert row["unseen_share"] == pytest.approx(last.count("BR") / WINDOW)
    per_class = {c["class"]: c for c in summary["per_class"]}
    for c in ("low", "mid", "high"):
        predicted = np.array(predictions) == c
        assert per_class[c]["precision"] == pytest.approx(hits[predicted].mean())
        assert per_class[c]["recall"] == pytest.approx(hits[np.array(labels) == c].mean())


@pytest.mark.parametrize("traffic", ["categorical", "boolean", "multiclass", "regression", "mixed"])
def test_the_same_records_read_over_http_give_the_same_figures(traffic, make_service, tmp_path):
    """Each kind of model read as from CML (`read_metrics` pages from a service on the store),
    the first call without a label so that the first record of every page lacks `final_label`."""
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    make = {
        "categorical": lambda: categorical_traffic(seed=1),
        "boolean": boolean_traffic,
        "multiclass": multiclass_traffic,
        "regression": regression_traffic,
        "mixed": mixed_traffic,
    }
    write(store_url, *make[traffic](), omit_first=True)
    svc = make_service(store_url=store_url)
    from_store, a = monitor(tmp_path, "store", store_url=store_url)
    over_http, b = monitor(tmp_path, "http", service_url=svc.url)
    assert over_http["overall"]["labelled"] == from_store["overall"]["labelled"] == N - 1
    assert over_http["task"] == from_store["task"]
    for key in ("predictions", "labelled", "accuracy", "mae", "label_coverage"):
        assert over_http["overall"].get(key) == pytest.approx(from_store["overall"].get(key)), key
    quality = "mae" if from_store["task"] == "regression" else "accuracy"
    assert [w[quality] for w in over_http["windows"]] == pytest.approx(
        [w[quality] for w in from_store["windows"]]
    )
    assert [d["psi"] for d in over_http["drift"]] == pytest.approx([d["psi"] for d in from_store["drift"]])
    assert [(x.kind, x.window, x.subject) for x in b.alerts] == [
        (x.kind, x.window, x.subject) for x in a.alerts
    ]
    assert not [x for x in b.alerts if x.kind is AlertKind.coverage]


def boolean_traffic() -> tuple[list[dict], list, list]:
    rng = np.random.default_rng(3)
    truth = rng.random(N) < 0.3
    guess = np.where(rng.random(N) < 0.9, truth, ~truth)
    member = rng.random(N) < 0.5
    inputs = [{"member": bool(m), "score": float(s)} for m, s in zip(member, rng.normal(size=N), strict=True)]
    return inputs, [bool(g) for g in guess], [bool(t) for t in truth]


def test_boolean_labels_are_a_binary_classifier_with_true_as_positive(store_url, tmp_path):
    inputs, predictions, labels = boolean_traffic()
    guess, truth = np.array(predictions), np.array(labels)
    write(store_url, inputs, predictions, labels)
    summary, _ = monitor(tmp_path, "report", store_url=store_url)
    assert summary["task"] == "binary" and summary["positive_label"] is True
    tp = per_window(guess & truth)
    predicted = per_window(guess)
    for w, t, p in zip(summary["windows"], tp, predicted, strict=True):
        assert w["precision"] == pytest.approx(t.sum() / p.sum())
        assert w["positive_rate"] == pytest.approx(p.mean())
    assert {f["feature"]: f["kind"] for f in summary["features"]}["member"] == "categorical"


def multiclass_traffic() -> tuple[list[dict], list, list]:
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, N)
    rate = np.where(np.arange(N) < N // 2, 0.92, 0.6)
    guess = np.where(rng.random(N) < rate, truth, (truth + 1) % 3)
    return [{"x": float(v)} for v in rng.normal(size=N)], guess.tolist(), truth.tolist()


def test_integer_multiclass_drop_is_seen_and_counted(store_url, tmp_path):
    inputs, predictions, labels = multiclass_traffic()
    guess, truth = np.array(predictions), np.array(labels)
    write(store_url, inputs, predictions, labels)
    summary, result = monitor(tmp_path, "report", store_url=store_url)
    assert summary["task"] == "multiclass"
    hits = guess == truth
    assert [w["accuracy"] for w in summary["windows"]] == pytest.approx([h.mean() for h in per_window(hits)])
    flagged = sorted({a.window for a in result.alerts if a.kind is AlertKind.accuracy})
    assert flagged and min(flagged) == N // 2 // WINDOW
    confusion = pd.crosstab(truth, guess)
    assert summary["confusion"] == confusion.to_numpy().tolist()


def regression_traffic() -> tuple[list[dict], list, list]:
    rng = np.random.default_rng(5)
    x = rng.normal(size=N)
    truth = 3 * x + 10
    scale = np.where(np.arange(N) < N // 2, 0.5, 2.5)  # the error grows 5x half-way
    prediction = truth + rng.normal(0, 1, N) * scale
    return [{"x": float(v)} for v in x], prediction.tolist(), truth.tolist()


def test_a_regression_model_is_judged_by_its_error(store_url, tmp_path):
    inputs, predictions, labels = regression_traffic()
    prediction, truth = np.array(predictions), np.array(labels)
    write(store_url, inputs, predictions, labels)
    summary, result = monitor(tmp_path, "report", store_url=store_url)
    assert summary["task"] == "regression"
    error = prediction - truth
    for w, e in zip(summary["windows"], per_window(error), strict=True):
        assert w["mae"] == pytest.approx(np.abs(e).mean())
        assert w["rmse"] == pytest.approx(np.sqrt((e**2).mean()))
        assert w["bias"] == pytest.approx(e.mean())
        assert w["accuracy"] is None if "accuracy" in w else True
    assert not [a for a in result.alerts if a.kind is AlertKind.accuracy]
    flagged = sorted({a.window for a in result.alerts if a.kind is AlertKind.error})
    assert flagged == list(range(N // 2 // WINDOW, N // WINDOW))
    assert summary["overall"]["mae"] == pytest.approx(np.abs(error).mean())
    html = (tmp_path / "report" / "index.html").read_text()
    assert "mean absolute error" in html.lower()


def mixed_traffic() -> tuple[list[dict], list, list]:
    rng = np.random.default_rng(6)
    users = [f"user-{i}" for i in range(3_000)]
    codes: list[object] = [7, 12, "A7", "B2"]
    inputs = [
        {"user": str(rng.choice(users)), "code": codes[int(rng.integers(0, 4))], "x": float(v)}
        for v in rng.normal(size=N)
    ]
    truth = rng.integers(0, 2, N)
    guess = np.where(rng.random(N) < 0.9, truth, 1 - truth)
    return inputs, guess.tolist(), truth.tolist()


def test_a_mixed_type_column_and_thousands_of_categories(store_url, tmp_path):
    write(store_url, *mixed_traffic())
    summary, result = monitor(tmp_path, "report", store_url=store_url)
    kinds = {f["feature"]: f["kind"] for f in summary["features"]}
    assert kinds == {"user": "categorical", "code": "categorical", "x": "numeric"}
    assert not [a for a in result.alerts if a.kind is AlertKind.drift]  # nothing moved
    assert any("categories; its 50 most frequent" in n for n in summary["notes"])
    assert any("'code' holds numbers and text" in n for n in summary["notes"])


@pytest.mark.parametrize("kind", ["regression", "distinct strings"])
def test_many_distinct_predictions_are_analysed_and_drawn_within_bounds(kind, tmp_path):
    """6,000 float predictions (a regression) or 6,000 distinct strings (a classifier of
    thousands of classes): the window table and the confusion matrix stay small, and every plot
    and the report are written (their time is measured in the benchmarks)."""
    from modelvigil.analysis.engine import analyse
    from modelvigil.analysis.plots import draw_all
    from modelvigil.analysis.report import write_report

    n = 6_000
    rng = np.random.default_rng(7)
    truth = rng.normal(100, 20, n)
    if kind == "regression":
        prediction, label = truth + rng.normal(0, 5, n), truth
    else:
        prediction = np.array([f"item-{i}" for i in range(n)], dtype=object)
        label = np.where(rng.random(n) < 0.5, prediction, "item-0")
    frame = record_frame(prediction, label, T0, x=rng.normal(size=n))
    a = analyse(frame, pd.DataFrame(), MonitoringConfig(window_size=600))
    assert len(a.windows) == 10
    assert len(a.windows.columns) < 60  # not a column per distinct prediction
    assert a.confusion.size <= 21 * 21
    plots = draw_all(a, MonitoringConfig().thresholds, tmp_path)
    index = write_report(a, plots, tmp_path, {"model_name": "m"})
    assert index.exists() and plots
    if kind == "regression":
        assert a.task == "regression" and {"error_band", "residuals"} <= set(plots)
        assert a.overall["mae"] == pytest.approx(np.abs(prediction - label).mean())
    else:
        assert a.task == "multiclass"
        assert a.overall["accuracy"] == pytest.approx(float(np.mean(prediction == label)))


@pytest.mark.parametrize("during", ["analyse", "render-report"])
def test_sigterm_during_a_task_ends_monitor_within_10_s(during, tmp_path, cli_env):
    """A supervisor's SIGTERM while the analysis or the report of a regression deployment runs:
    `monitor` stops, with what it started, in seconds."""
    n = 50_000
    rng = np.random.default_rng(8)
    truth = rng.normal(size=n)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    write(store_url, [{"x": float(v)} for v in truth], (truth + rng.normal(size=n)).tolist(), truth.tolist())
    monitor = subprocess.Popen(
        [sys.executable, "-m", "flows", "monitor", "--store-url", store_url, "--deployment", DEP,
         "--start", "2025-10-31T00:00:00", "--end", "2025-11-03T00:00:00", "--out", str(tmp_path / "r")],
        env=cli_env(tmp_path / "home"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        seen, deadline = [], time.monotonic() + 240
        # The task before the one to interrupt has finished: the next one is running.
        before = {"analyse": "read-records", "render-report": "analyse"}[during]
        while not any(f"Task run '{before}" in line and "Finished" in line for line in seen):
            line = monitor.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(seen)
            seen.append(line)
        monitor.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        monitor.wait(timeout=30)
        assert time.monotonic() - stopped < 10
        assert monitor.returncode != 0
    finally:
        if monitor.poll() is None:
            monitor.kill()
