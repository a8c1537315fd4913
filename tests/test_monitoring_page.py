"""The live Monitoring page's JSON endpoint, against counts taken straight from the store."""

from __future__ import annotations

import os
import time
import uuid

import numpy as np
import pytest
import requests
from sqlalchemy import func, select

from modelvigil.protocol import now_ms
from modelvigil.store import PredictionRecord
from modelvigil.store.schema import live
from tests.helpers import auth, lab_payload


def model_call(svc, body, **kw):
    return requests.post(f"{svc.url}/model", json=body, headers=auth(svc), timeout=30, **kw)


def data(svc, **params):
    r = requests.get(f"{svc.url}/monitoring/data", params=params, headers=auth(svc), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
def test_figures_match_the_store(store_kind, make_service, request):
    url = request.getfixturevalue("store_url_pg") if store_kind == "postgres" else None
    svc = make_service(store_url=url)
    key = svc.identity.access_key
    crn = svc.identity.deployment_crn
    start = now_ms()
    uuids = []
    for i in range(30):
        r = model_call(svc, {"accessKey": key, "request": lab_payload(1 if i % 3 else 4, seed=i)})
        assert r.status_code == 200, r.text
        uuids.append(r.json()["response"]["uuid"])
    # Refused calls: counted by the page, stored nowhere.
    assert model_call(svc, {"accessKey": "wrong", "request": lab_payload(1)}).status_code == 404
    assert model_call(svc, {"accessKey": key, "request": {"inputs": "x"}}).status_code == 422
    assert model_call(svc, {"accessKey": key, "request": {"inputs": "y"}}).status_code == 422
    # A replayed idempotent call stores nothing new and counts as a request, not a prediction.
    headers = {**auth(svc), "Idempotency-Key": "page-1"}
    for _ in range(2):
        r = requests.post(
            f"{svc.url}/model", json={"accessKey": key, "request": lab_payload(1, seed=99)}, headers=headers
        )
        assert r.status_code == 200
    frame = svc.store.read_frame(crn)
    labels = {u: int(p) for u, p in zip(frame["prediction_uuid"], frame["prediction"], strict=True)}
    # Ground truth for two thirds; half of those disagree with the prediction; then one replaced.
    items = []
    for i, u in enumerate(uuids[:20]):
        rows = int((frame["prediction_uuid"] == u).sum())
        value = labels[u] if i % 2 == 0 else 1 - labels[u]
        items.append(
            {"prediction_uuid": u, "metrics": {"final_label": value if rows == 1 else [value] * rows}}
        )
    r = requests.post(f"{svc.url}/metrics/delayed/bulk", json={"items": items}, headers=auth(svc), timeout=30)
    assert r.status_code == 200, r.text
    flip = items[1]["metrics"]["final_label"]
    fixed = [1 - v for v in flip] if isinstance(flip, list) else 1 - flip
    r = requests.post(
        f"{svc.url}/metrics/delayed",
        json={"prediction_uuid": items[1]["prediction_uuid"], "metrics": {"final_label": fixed}},
        headers=auth(svc),
        timeout=30,
    )
    assert r.status_code == 200, r.text

    got = data(svc, start_ms=start - 60_000, end_ms=now_ms() + 1_000)
    frame = svc.store.read_frame(crn)  # the store, read directly, is the truth
    first_rows = frame[frame["row"] == 0]
    labelled = frame["final_label"].notna()
    correct = (frame.loc[labelled, "final_label"] == frame.loc[labelled, "prediction"]).sum()
    t = got["totals"]
    assert t["calls"] == svc.store.count(crn) == len(first_rows) == 31
    assert t["predictions"] == len(frame)
    assert t["labelled"] == int(labelled.sum())
    assert t["correct"] == int(correct)
    assert t["accuracy"] == pytest.approx(correct / labelled.sum(), abs=1e-4)
    assert t["label_coverage"] == pytest.approx(labelled.mean(), abs=1e-4)
    confidence = np.maximum(frame["probability"], 1 - frame["probability"])
    assert t["estimated_accuracy"] == pytest.approx(confidence.mean(), abs=1e-3)  # before any label
    assert len(got["model"]["estimated_accuracy"]) == len(got["bucket_starts"])
    per_class = {k: sum(v) for k, v in got["model"]["predictions"].items()}
    assert per_class == {str(k): int(n) for k, n in frame["prediction"].value_counts().items()}
    # HTTP side: 30 + 2 replays accepted, 3 refused.
    assert t["requests"] == 35 and t["failed"] == 3
    assert {k: sum(v) for k, v in got["service"]["failed"].items()} == {"404": 1, "422": 2}
    p95 = [v for v in got["service"]["latency_p95_ms"] if v is not None]
    assert p95 and all(v > 0 for v in p95)
    sizes = [v for v in got["service"]["request_bytes_mean"] if v is not None]
    assert sizes and all(v > 100 for v in sizes)
    # Series and buckets line up, on one time axis.
    n = len(got["bucket_starts"])
    assert np.all(np.diff(got["bucket_starts"]) == got["step_ms"])
    for series in (got["service"]["requests"], got["model"]["calls"], got["model"]["accuracy"]):
        assert len(series) == n
    assert sum(got["service"]["requests"]) == t["requests"]
    assert crn in got["deployments"]


def test_ranges_buckets_and_bad_input(service):
    end = now_ms()
    got = data(service, start_ms=end - 3_600_000, end_ms=end)
    assert got["step_ms"] == 30_000 and len(got["bucket_starts"]) in (120, 121)
    default = data(service)
    assert default["end_ms"] - default["start_ms"] == 300_000  # default: the last 5 minutes

    def bad(**params):
        r = requests.get(f"{service.url}/monitoring/data", params=params, headers=auth(service), timeout=30)
        assert r.status_code == 422, r.text
        return r.json()["error"]

    assert "after start_ms" in bad(start_ms=end, end_ms=end - 1)
    assert "multiple of 5000" in bad(start_ms=end - 60_000, end_ms=end, step_ms=7_000)
    assert "31 days" in bad(start_ms=0, end_ms=end)
    assert "at most 2000" in bad(start_ms=end - 86_400_000, end_ms=end, step_ms=5_000)
    assert "start_ms" in bad(start_ms=-1)
    assert requests.get(f"{service.url}/monitoring/data", timeout=30).status_code == 401


def test_page_and_script_are_served_and_hold_no_secret(service):
    page = requests.get(f"{service.url}/monitoring", timeout=30)
    script = requests.get(f"{service.url}/monitoring/app.js", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert 'id="kpi-requests"' in page.text and "monitoring/data" in script.text
    for secret in (service.identity.api_key.get_secret_value(), service.identity.access_key):
        assert secret not in page.text and secret not in script.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing fetched from elsewhere
    assert "/monitoring/data" in requests.get(f"{service.url}/openapi.json", timeout=30).json()["paths"]


def _rss_mb_of_this_process() -> float:
    with open("/proc/self/statm", "rb") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_service_process_cpu_and_memory_are_charted(service):
    """The in-thread service shares this process: its figures are this process's own."""
    start = now_ms()
    busy_until = time.process_time() + 2.5
    while time.process_time() < busy_until:  # 2.5 s of CPU, inside a 5-s bucket or split over two
        pass
    time.sleep(1.2)  # one more sample after the busy spell
    d = data(service, start_ms=start - 10_000, end_ms=now_ms() + 1, step_ms=5_000)
    cpu = [v for v in d["service"]["cpu_percent"] if v is not None]
    memory = [v for v in d["service"]["memory_rss_mb"] if v is not None]
    assert cpu and max(cpu) >= 20  # at least half of 2.5 s in one 5-s bucket: 25% of a core
    assert all(0 <= v <= 100 * (os.cpu_count() or 1) + 5 for v in cpu)
    assert memory and memory[-1] == pytest.approx(_rss_mb_of_this_process(), rel=0.2)
    assert len(d["service"]["cpu_percent"]) == len(d["bucket_starts"])


def test_the_page_and_its_data_forbid_framing_sniffing_and_foreign_code(service):
    for path in (
        "/monitoring",
        "/monitoring/app.js",
        "/monitoring/app.css",
        "/monitoring/favicon.svg",
        "/favicon.ico",
    ):
        r = requests.get(f"{service.url}{path}", timeout=10)
        assert r.status_code == 200, path
        assert r.headers["content-security-policy"].startswith("default-src 'self'; frame-ancestors 'none'")
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
    data = requests.get(f"{service.url}/monitoring/data", headers=auth(service), timeout=10)
    assert data.status_code == 200 and data.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in data.headers["content-security-policy"]
    assert (
        requests.get(f"{service.url}/monitoring/app.css", timeout=10)
        .headers["content-type"]
        .startswith("text/css")
    )
    # The interactive docs would load scripts from a CDN: off; the schema itself stays.
    assert requests.get(f"{service.url}/docs", timeout=10).status_code == 404
    assert requests.get(f"{service.url}/redoc", timeout=10).status_code == 404
    assert requests.get(f"{service.url}/openapi.json", timeout=10).status_code == 200


OTHER_DEP = "crn:cdp:ml:local:a:workspace:w/another-model"


def _write_other_model(store, predictions: list, labels: list, start: int) -> list[str]:
    """One call per prediction, 10 ms apart, for a deployment this service does not serve (as
    another writer of the store would), then every label by uuid."""
    uuids = [str(uuid.uuid4()) for _ in predictions]
    records = [
        PredictionRecord(
            "crn:m", "crn:b", OTHER_DEP, u, start + 10 * i, start + 10 * i + 3, {"prediction": p}
        )
        for i, (u, p) in enumerate(zip(uuids, predictions, strict=True))
    ]
    for i in range(0, len(records), 700):
        store.record_predictions(records[i : i + 700])
    store.merge_delayed([(u, {"final_label": y}) for u, y in zip(uuids, labels, strict=True)])
    return uuids


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
def test_a_regression_deployment_shows_its_error_not_an_accuracy(store_kind, make_service, request):
    url = request.getfixturevalue("store_url_pg") if store_kind == "postgres" else None
    svc = make_service(store_url=url)
    rng = np.random.default_rng(3)
    truth = rng.normal(250.0, 40.0, 400)
    predictions = truth + rng.normal(0.0, 12.0, 400) + 0.5  # never whole numbers: not classes
    start = now_ms() - 30_000
    uuids = _write_other_model(svc.store, predictions.tolist(), truth.tolist(), start)
    # One label corrected: its first value's error must leave the sums.
    truth[7] = predictions[7] - 100.0
    svc.store.merge_delayed([(uuids[7], {"final_label": float(truth[7])})])

    got = data(svc, deployment=OTHER_DEP, start_ms=start - 10_000, end_ms=now_ms() + 1_000)
    errors = predictions - truth
    t = got["totals"]
    assert got["task"] == "regression"
    assert t["predictions"] == t["calls"] == 400
    assert t["label_coverage"] == 1.0
    assert t["mae"] == pytest.approx(np.abs(errors).mean(), rel=1e-9)
    assert t["rmse"] == pytest.approx(np.sqrt((errors**2).mean()), rel=1e-9)
    assert t["mean_prediction"] == pytest.approx(predictions.mean(), rel=1e-9)
    assert got["model"]["predictions"] == {}  # no class per distinct value
    assert sum(got["model"]["numeric"]) == 400
    # Per bucket, the same figures from the records of that bucket.
    starts = np.array(got["bucket_starts"])
    at = start + 10 * np.arange(400)
    which = np.searchsorted(starts, at, side="right") - 1
    for i, mae in enumerate(got["model"]["mae"]):
        rows = which == i
        assert (mae is None) == (not rows.any())
        if rows.any():
            assert mae == pytest.approx(np.abs(errors[rows]).mean(), rel=1e-9)


def test_thousands_of_distinct_classes_keep_a_bucket_to_a_few_rows(make_service):
    svc = make_service()
    n = 3_000
    predictions = [f"item-{i}" for i in range(n)]  # 3,000 distinct strings
    labels = [p if i % 4 else "item-0" for i, p in enumerate(predictions)]
    start = now_ms() - 40_000
    _write_other_model(svc.store, predictions, labels, start)
    with svc.store.engine.connect() as conn:
        rows = conn.execute(
            select(func.count())
            .select_from(live)
            .where((live.c.model_deployment_crn == OTHER_DEP) & (live.c.metric == "predictions"))
        ).scalar()
        buckets = conn.execute(
            select(func.count(func.distinct(live.c.bucket_ms))).where(
                live.c.model_deployment_crn == OTHER_DEP
            )
        ).scalar()
    # 20 classes named per bucket and "(other)", instead of one row per distinct prediction.
    assert rows <= buckets * 21 and rows < n / 10

    got = data(svc, deployment=OTHER_DEP, start_ms=start - 10_000, end_ms=now_ms() + 1_000)
    shown = got["model"]["predictions"]
    assert got["task"] == "multi-class classification"
    assert len(shown) == 21 and "(other)" in shown
    assert sum(sum(v) for v in shown.values()) == got["totals"]["predictions"] == n
    hits = np.array(predictions) == np.array(labels)
    assert got["totals"]["accuracy"] == pytest.approx(hits.mean(), abs=1e-4)
    assert got["totals"]["mae"] is None


def test_string_and_boolean_classes_are_named_as_they_are(make_service):
    svc = make_service()
    start = now_ms() - 20_000
    _write_other_model(
        svc.store, ["low", "high", "mid", "low"] * 25, ["low", "high", "low", "low"] * 25, start
    )
    got = data(svc, deployment=OTHER_DEP, start_ms=start - 10_000, end_ms=now_ms() + 1_000)
    assert got["task"] == "multi-class classification"
    assert {k: sum(v) for k, v in got["model"]["predictions"].items()} == {
        '"high"': 25,
        '"low"': 50,
        '"mid"': 25,
    }
    assert got["totals"]["accuracy"] == 0.75
