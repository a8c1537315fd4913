"""Every limit is enforced when data is written, so no read fails on what a write accepted: metric
keys and values, NUL bytes (which Postgres text cannot hold), the store's count of delayed keys,
and labels the accuracy cannot use, on SQLite and on Postgres."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import requests

from modelvigil.analysis.config import MonitoringConfig
from modelvigil.analysis.engine import analyse
from modelvigil.store import LimitExceeded, MetricsStore, PredictionRecord
from modelvigil.store.limits import MAX_DELAYED_KEYS
from tests.helpers import auth, lab_payload


@pytest.fixture(params=["sqlite", "postgres"])
def svc(request, make_service, store_url_pg):
    return make_service(store_url=store_url_pg) if request.param == "postgres" else make_service()


def _predict(svc) -> str:
    body = {"accessKey": svc.identity.access_key, "request": lab_payload(1)}
    r = requests.post(f"{svc.url}/model", json=body, headers=auth(svc), timeout=30)
    r.raise_for_status()
    return r.json()["response"]["uuid"]


def _error(r) -> str:
    assert r.status_code == 422, r.text
    return r.json()["error"]


def test_keys_values_and_nul_bytes_are_refused_at_write_with_what_is_wrong(svc):
    uuid_ = _predict(svc)
    url, headers = f"{svc.url}/metrics/delayed", auth(svc)

    def delayed(uuid_value: str, metrics: dict) -> requests.Response:
        body = {"prediction_uuid": uuid_value, "metrics": metrics}
        return requests.post(url, json=body, headers=headers, timeout=30)

    assert "metric key 'kkkkkkkk" in _error(delayed(uuid_, {"k" * 201: 1}))
    assert "1 to 200 characters, no NUL" in _error(delayed(uuid_, {"bad\x00key": 1}))
    assert "at most 262144" in _error(delayed(uuid_, {"blob": "x" * 300_000}))
    assert "prediction_uuid" in _error(delayed("u\x00", {"final_label": 1}))
    aggregate = {"metrics": {"a\x00": 1}, "start_timestamp_ms": 1, "end_timestamp_ms": 2}
    r = requests.post(f"{svc.url}/metrics/aggregate", json=aggregate, headers=headers, timeout=30)
    assert "no NUL" in _error(r)
    for params in ({"model_deployment_crn": "crn\x00x"}, {"model_crn": "\x00"}):
        assert "model" in _error(
            requests.get(f"{svc.url}/metrics", params=params, headers=headers, timeout=30)
        )
    r = requests.get(
        f"{svc.url}/monitoring/data", params={"deployment": "d\x00"}, headers=headers, timeout=30
    )
    assert "deployment" in _error(r)
    assert delayed(uuid_, {"k" * 200: 1}).status_code == 200  # at the limit: accepted
    assert svc.store.read_frame(svc.identity.deployment_crn)["k" * 200].tolist() == [1]


def test_the_store_refuses_the_delayed_key_that_reads_could_not_join(store_url):
    store = MetricsStore(store_url)
    try:
        rec = PredictionRecord("m", "b", "d", "u1", 1, 2, {"prediction": [1]})
        store.record_prediction(rec)
        store.merge_delayed([("u1", {f"k{i:02}": i for i in range(MAX_DELAYED_KEYS)})])
        with pytest.raises(LimitExceeded) as err:
            store.merge_delayed([("u1", {"final_label": 1, "k00": 5})])
        assert f"holds {MAX_DELAYED_KEYS} distinct delayed metric keys" in str(err.value)
        assert "add 1 more (['final_label'])" in str(err.value)
        frame = store.read_frame("d")  # the read still works, and the refused call changed nothing
        assert frame["k00"].tolist() == [0] and "final_label" not in frame
        assert store.merge_delayed([("u1", {"k00": 7})]) == 1  # known keys are still welcome
        other = MetricsStore(store_url)  # another process, knowing nothing yet, refuses it too
        try:
            with pytest.raises(LimitExceeded):
                other.merge_delayed([("u1", {"new": 1})])
        finally:
            other.close()
    finally:
        store.close()


def test_the_service_answers_the_key_limit_with_a_422(svc):
    uuid_ = _predict(svc)
    url, headers = f"{svc.url}/metrics/delayed", auth(svc)
    many = {f"m{i:02}": i for i in range(MAX_DELAYED_KEYS + 1)}
    r = requests.post(url, json={"prediction_uuid": uuid_, "metrics": many}, headers=headers, timeout=30)
    assert "nothing stored: this store holds 0 distinct delayed metric keys" in _error(r)
    assert "final_label" not in svc.store.read_frame(svc.identity.deployment_crn)


def test_labels_the_accuracy_cannot_use_are_reported_not_a_crash():
    n = 400
    rng = np.random.default_rng(0)
    labels = list(rng.integers(0, 2, n).astype(object))
    labels[3], labels[10], labels[20] = {"class": 1}, [0, 1], "x" * 300
    frame = pd.DataFrame(
        {
            "prediction_uuid": [f"u{i}" for i in range(n)],
            "row": 0,
            "start_ms": 1_000 + np.arange(n),
            "end_ms": 1_002 + np.arange(n),
            "prediction": [v if type(v) is int else 1 for v in labels],
            "final_label": labels,
            "input_data.x": rng.normal(size=n),
        }
    )
    result = analyse(frame, pd.DataFrame(), MonitoringConfig())
    # An object and a list cannot be a label; text can (a class the model never predicts here).
    assert result.overall["invalid_labels"] == 2 and result.overall["labelled"] == n - 2
    assert result.overall["accuracy"] == pytest.approx((n - 3) / (n - 2))
    assert result.overall["label_coverage"] == 1.0  # every label that arrived counts, usable or not
    note = next(n for n in result.notes if "not usable" in n)
    assert note.startswith(
        "2 label(s) not usable (objects or lists, not values), left out: {'class': 1}, [0, 1]"
    )


def test_a_key_admitted_by_a_write_that_failed_does_not_slip_past_the_limit(store_url):
    store = MetricsStore(store_url)
    try:
        store.record_prediction(PredictionRecord("m", "b", "d", "u1", 1, 2, {"prediction": [1]}))
        store.merge_delayed([("u1", {f"k{i:02}": i for i in range(MAX_DELAYED_KEYS - 1)})])
        with pytest.raises(Exception, match="unknown prediction"):  # admitted, then nothing written
            store.merge_delayed([("nobody", {"late": 1})])
        store.merge_delayed([("u1", {"other": 1})])  # the 60th key
        with pytest.raises(LimitExceeded):
            store.merge_delayed([("u1", {"late": 1})])  # would be the 61st, however it was seen before
        assert len([c for c in store.read_frame("d").columns if c.startswith(("k", "other"))]) == 60
    finally:
        store.close()


def test_concurrent_writers_neither_pass_the_key_limit_nor_count_a_label_twice(store_url):
    """Writers racing, each with a store of its own (as services on one database are): the 60-key
    limit holds, and a label posted by many at once is counted once on the live page."""
    import threading

    from modelvigil.store import live_counts

    first = MetricsStore(store_url)
    stores = [MetricsStore(store_url) for _ in range(8)]
    try:
        first.record_predictions(
            [
                PredictionRecord("m", "b", "d", f"u{i}", 1_000 + i, 1_002 + i, {"prediction": [1]})
                for i in range(5)
            ]
        )
        first.merge_delayed(
            [("u0", {"final_label": 0, **{f"k{i:02}": i for i in range(MAX_DELAYED_KEYS - 3)}})]
        )
        barrier, refused = threading.Barrier(len(stores)), []

        def add_key(store: MetricsStore, n: int) -> None:
            barrier.wait()
            try:
                store.merge_delayed([("u1", {f"new{n}": 1})])
            except LimitExceeded:
                refused.append(n)

        threads = [threading.Thread(target=add_key, args=(s, n)) for n, s in enumerate(stores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(refused) == len(stores) - 2  # two keys fitted under the limit, the rest refused
        keys = [c for c in first.read_frame("d").columns if c.startswith(("k", "new", "final_label"))]
        assert len(keys) == MAX_DELAYED_KEYS
        for store in stores:  # a store that knew none of them: its first write of a known key is welcome
            store.close()
        stores = [MetricsStore(store_url) for _ in range(8)]
        assert stores[0].merge_delayed([("u2", {"final_label": 1})]) == 1

        def label(store: MetricsStore, uuid_: str) -> None:
            barrier.wait()
            store.merge_delayed([(uuid_, {"final_label": 1})])

        for uuid_ in ("u3", "u4"):
            threads = [threading.Thread(target=label, args=(s, uuid_)) for s in stores]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        counts, _ = first.live_series("d", 0, 10_000, 10_000)
        labelled = sum(n for _, metric, _, n in counts if metric == live_counts.LABELLED)
        assert labelled == 4  # u0, u2, u3, u4: each once, however many posted it at the same time
    finally:
        for store in [first, *stores]:
            store.close()


def test_a_store_already_past_the_key_limit_still_reads_and_takes_its_known_keys(store_url, caplog):
    """Written before the limit was enforced: 64 keys. Reads join the label and 59 others, name the
    rest in a warning, and a fresh process may still write a key the store has."""
    import sqlalchemy as sa

    store = MetricsStore(store_url)
    try:
        store.record_prediction(PredictionRecord("m", "b", "d", "u1", 1, 2, {"prediction": [1]}))
        store.merge_delayed([("u1", {"final_label": 1})])
        with store.engine.begin() as conn:  # as an old store holds them: past the write-time check
            conn.execute(
                sa.text(
                    "INSERT INTO mv_delayed_metrics (prediction_uuid, key, value, arrived_ms)"
                    " VALUES (:u, :k, :v, 3)"
                ),
                [{"u": "u1", "k": f"z{i:02}", "v": str(i)} for i in range(63)],
            )
        fresh = MetricsStore(store_url)
        try:
            with caplog.at_level("WARNING"):
                frame = fresh.read_frame("d")
            keys = [c for c in frame.columns if c == "final_label" or c.startswith("z")]
            assert len(keys) == MAX_DELAYED_KEYS and frame["final_label"].tolist() == [1]
            assert "z58" in frame and "z59" not in frame
            assert "64 distinct delayed metric keys" in caplog.text and "'z59', 'z60'" in caplog.text
            assert fresh.merge_delayed([("u1", {"final_label": 0})]) == 1  # a key it has: welcome
            with pytest.raises(LimitExceeded):
                fresh.merge_delayed([("u1", {"brand_new": 1})])
        finally:
            fresh.close()
    finally:
        store.close()
