"""`read_metrics` a page at a time: in the store (SQLite and Postgres), over `GET /metrics` (streamed
whole or paged), and through the client, which reads page by page and retries each page alone."""

import json
import time
import uuid

import pytest
import requests

from modelvigil.client.connect import connect
from modelvigil.client.retry import RetryPolicy
from modelvigil.service.faults import FaultPlan
from modelvigil.store import PredictionRecord
from modelvigil.store.metrics_pages import PAGE_BUDGET_CHARS
from modelvigil.testing import start_in_thread

DEP, MODEL, BUILD = "crn:dep", "crn:model", "crn:build"


def record(i: int, start_ms: int, metrics: dict | None = None, dep: str = DEP) -> PredictionRecord:
    return PredictionRecord(
        model_crn=MODEL,
        model_build_crn=BUILD,
        model_deployment_crn=dep,
        prediction_uuid=str(uuid.uuid4()),
        start_ms=start_ms,
        end_ms=start_ms + 2,
        metrics=metrics or {"prediction": [i % 2], "input_data": {"age": [i]}},
    )


def all_pages(store, size: int, **query) -> list[list[dict]]:
    pages, token = [], None
    while True:
        page = store.read_metrics_page(DEP, page_token=token, page_size=size, **query)
        pages.append(json.loads(page.json()))
        if page.next_token is None:
            return pages
        token = page.next_token


def test_pages_cover_the_range_once_in_order_even_where_start_times_tie(store):
    # Runs of five records share a start time, so pages end in the middle of ties.
    recs = [record(i, 1_000 + 10 * (i // 5)) for i in range(53)]
    store.record_predictions(recs)
    store.record_predictions([record(99, 1_005, dep="crn:other")])
    pages = all_pages(store, 7, end_timestamp_ms=2_000)
    assert [len(p) for p in pages] == [7] * 7 + [4]
    got = [r["predictionUuid"] for p in pages for r in p]
    assert got == [r.prediction_uuid for r in recs]
    assert got == [r["predictionUuid"] for r in store.read_metrics(DEP, 0, 2_000)["metrics"]]


def test_an_open_end_is_fixed_by_the_first_page(store):
    store.record_predictions([record(i, 1_000 + i) for i in range(4)])
    first = store.read_metrics_page(DEP, page_size=2)
    end = int(first.next_token.split(".")[2])  # "now" when the first page was read
    store.record_predictions([record(9, end + 1)])  # arrives while the reader pages
    time.sleep(0.01)  # now moves on past it
    rest = store.read_metrics_page(DEP, page_token=first.next_token, page_size=10)
    assert len(rest.records) == 2 and rest.next_token is None
    assert len(store.read_metrics_page(DEP, page_size=10).records) == 5  # a new read sees it


def test_delayed_metrics_merge_exactly_whatever_their_names_and_sizes(store):
    plain, clash, nested = (record(i, 1_000 + i) for i in range(3))
    nested = record(2, 1_002, {"input_data": {"final_label": [7]}, "prediction": [0]})
    store.record_predictions([plain, clash, nested])
    huge = 2**80  # beyond 64 bits: must come back exact, not as a float
    store.merge_delayed(
        [
            (plain.prediction_uuid, {"final_label": 1, "note": 'say "final_label"'}),
            (clash.prediction_uuid, {"prediction": [1], "big": huge}),
            (nested.prediction_uuid, {"final_label": 0}),
        ]
    )
    [a, b, c] = [r["metrics"] for r in store.read_metrics(DEP)["metrics"]]
    assert a == {"prediction": [0], "input_data": {"age": [0]}, "final_label": 1, "note": 'say "final_label"'}
    assert b == {"prediction": [1], "input_data": {"age": [1]}, "big": huge}  # the later value wins
    assert c == {"input_data": {"final_label": [7]}, "prediction": [0], "final_label": 0}


def test_a_page_ends_after_its_character_budget_however_few_records(store):
    blob = "x" * (PAGE_BUDGET_CHARS // 3)
    store.record_predictions([record(i, 1_000 + i, {"blob": blob}) for i in range(5)])
    pages = all_pages(store, 1_000)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert all(r["metrics"]["blob"] == blob for p in pages for r in p)


def test_bad_page_arguments_are_refused_with_the_reason(store):
    with pytest.raises(ValueError, match="page_token"):
        store.read_metrics_page(DEP, page_token="12;DROP")
    with pytest.raises(ValueError, match="page_token"):  # an id past a BIGINT: refused, not a 500
        store.read_metrics_page(DEP, page_token=f"1.{2**63}.2")
    with pytest.raises(ValueError, match="page size"):
        store.read_metrics_page(DEP, page_size=0)


def test_get_metrics_streams_the_whole_range_or_answers_pages(service):
    crn = service.identity.deployment_crn
    ident = service.identity
    recs = [
        PredictionRecord(
            ident.model_crn, ident.build_crn, crn, str(uuid.uuid4()), 1_000 + i, 1_001 + i, {"p": [i]}
        )
        for i in range(4_500)
    ]
    service.store.record_predictions(recs)
    headers = {"Authorization": f"Bearer {ident.api_key.get_secret_value()}"}
    url = f"{service.url}/metrics"
    whole = requests.get(url, params={"model_deployment_crn": crn}, headers=headers, timeout=30)
    assert whole.status_code == 200 and "content-length" not in whole.headers  # streamed: chunked
    streamed = [r["predictionUuid"] for r in whole.json()["metrics"]]
    assert streamed == [r.prediction_uuid for r in recs]

    paged, params = [], {"model_deployment_crn": crn, "page_size": 1_000}
    while True:
        body = requests.get(url, params=params, headers=headers, timeout=30).json()
        paged += [r["predictionUuid"] for r in body["metrics"]]
        if body["next_page_token"] is None:
            break
        params["page_token"] = body["next_page_token"]
    assert paged == streamed

    for bad, says in [({"page_size": 0}, "page_size"), ({"page_token": "x.y"}, "page_token")]:
        r = requests.get(url, params={"model_deployment_crn": crn, **bad}, headers=headers, timeout=30)
        assert r.status_code == 422 and says in r.text
    r = requests.get(url, params={"page_size": 5}, headers=headers, timeout=30)  # no CRN: still a 422
    assert r.status_code == 422 and "model_deployment_crn" in r.text


def test_the_client_reads_page_by_page_each_page_retried_alone(settings, trained_model):
    svc = start_in_thread(settings, model=trained_model[0], faults=FaultPlan.parse("503=0"))
    try:
        ident = svc.identity
        recs = [
            PredictionRecord(
                ident.model_crn,
                ident.build_crn,
                ident.deployment_crn,
                str(uuid.uuid4()),
                10 + i,
                11 + i,
                {"p": [i]},
            )
            for i in range(5_000)
        ]
        svc.store.record_predictions(recs)
        injector = svc.server.config.app
        injector.plan = FaultPlan.parse("503=0.3,drop=0.2", routes="/metrics", seed=2)
        injector.calls = 0
        conn = connect(base_url=svc.url, retry=RetryPolicy(max_attempts=20, base_delay_s=0.01))
        got = conn.metrics.read_metrics(ident.deployment_crn)["metrics"]
        assert [r["predictionUuid"] for r in got] == [r.prediction_uuid for r in recs]
        assert injector.injected_paths["/metrics"] >= 1
        assert injector.calls - sum(injector.injected.values()) >= 3  # three pages, at least
    finally:
        svc.stop()
