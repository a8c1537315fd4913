"""The embedded model service over real HTTP on loopback: protocol shapes and every error row."""

import concurrent.futures as cf
import contextlib
import json
import socket
import time

import pandas as pd
import pytest
import requests

from modelvigil.data import FEATURES
from modelvigil.service.options import ServiceOptions
from modelvigil.store import PredictionRecord
from tests.helpers import auth, lab_payload


def post_model(svc, body, *, headers=None, params=None, raw=None):
    h = {**auth(svc), "Content-Type": "application/json", **(headers or {})}
    data = raw if raw is not None else json.dumps(body)
    return requests.post(f"{svc.url}/model", data=data, headers=h, params=params, timeout=30)


def test_plain_requests_post_with_cmls_envelope_and_the_lab_payload(service):
    r = post_model(service, {"accessKey": service.identity.access_key, "request": lab_payload(1)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    inner = body["response"]
    assert set(inner) >= {"prediction", "uuid", "model_deployment_crn"}
    assert len(inner["prediction"]) == 1 and inner["prediction"][0] in (0, 1)
    assert inner["model_deployment_crn"] == service.identity.deployment_crn
    [rec] = service.store.read_metrics(service.identity.deployment_crn)["metrics"]
    assert rec["predictionUuid"] == inner["uuid"]
    assert rec["startTimeStampMs"] <= rec["endTimeStampMs"]
    assert rec["metrics"]["prediction"] == inner["prediction"]
    assert set(rec["metrics"]["input_data"]) == set(FEATURES)
    assert 0 <= rec["metrics"]["probability"][0] <= 1


def test_access_key_as_query_parameter_and_one_uuid_per_multi_row_call(service):
    r = post_model(service, {"request": lab_payload(25)}, params={"accessKey": service.identity.access_key})
    assert r.status_code == 200, r.text
    assert len(r.json()["response"]["prediction"]) == 25
    frame = service.store.read_frame(service.identity.deployment_crn)
    assert len(frame) == 25 and frame["prediction_uuid"].nunique() == 1


@pytest.mark.parametrize("form", ["dataframe_records", "inputs", "flat"])
def test_other_payload_forms(service, form):
    frame = pd.DataFrame(lab_payload(3)["dataframe_split"]["data"], columns=FEATURES)
    request = {
        "dataframe_records": {"dataframe_records": frame.to_dict("records")},
        "inputs": {"inputs": frame.values.tolist()},
        "flat": frame.iloc[0].to_dict(),
    }[form]
    r = post_model(service, {"accessKey": service.identity.access_key, "request": request})
    assert r.status_code == 200, r.text
    assert len(r.json()["response"]["prediction"]) == (1 if form == "flat" else 3)


def test_idempotency_key_replays_the_first_answer(service):
    body = {"accessKey": service.identity.access_key, "request": lab_payload(1)}
    first = post_model(service, body, headers={"Idempotency-Key": "sim-a/17"}).json()
    again = post_model(service, body, headers={"Idempotency-Key": "sim-a/17"}).json()
    assert first == again
    assert service.store.count(service.identity.deployment_crn) == 1


def error(r):
    body = r.json()
    assert body["success"] is False and isinstance(body["error"], str) and body["error"]
    return body["error"]


def test_400_malformed_json(service):
    r = post_model(service, None, raw='{"accessKey": "x", "request": {')
    assert r.status_code == 400 and "malformed JSON" in error(r)
    r = post_model(service, None, raw='{"accessKey": "x", "request": {"inputs": [[NaN]]}}')
    assert r.status_code == 400


def test_401_missing_or_bad_token(service):
    body = {"accessKey": service.identity.access_key, "request": lab_payload(1)}
    r = requests.post(f"{service.url}/model", json=body, timeout=10)
    assert r.status_code == 401 and "Authorization" in error(r)
    r = requests.post(f"{service.url}/model", json=body, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert r.status_code == 401 and error(r) == "User APikey not authorized to access model"
    r = requests.post(f"{service.url}/model", json=body, headers={"Authorization": "Basic abc"}, timeout=10)
    assert r.status_code == 401
    assert service.store.count(service.identity.deployment_crn) == 0


def test_404_unknown_access_key(service):
    r = post_model(service, {"accessKey": "m" * 32, "request": lab_payload(1)})
    assert r.status_code == 404 and "access key" in error(r)
    assert "m" * 32 not in error(r)


def test_413_over_five_megabytes(service):
    big = {"accessKey": service.identity.access_key, "request": {"inputs": [[1.0] * 15] * 80_000}}
    raw = json.dumps(big)
    assert len(raw) > 5 * 1024 * 1024
    r = post_model(service, None, raw=raw)
    assert r.status_code == 413 and "limit" in error(r)

    def chunks():  # no Content-Length: the limit still holds
        for i in range(0, len(raw), 1 << 20):
            yield raw[i : i + (1 << 20)].encode()

    r = requests.post(f"{service.url}/model", data=chunks(), headers=auth(service), timeout=30)
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ([1, 2], "must be a JSON object"),
        ({"request": {}}, "no access key"),
        ({"accessKey": "KEY"}, "no 'request'"),
        ({"accessKey": "KEY", "request": "abc"}, "'request' must be a JSON object"),
        (
            {
                "accessKey": "KEY",
                "request": {"dataframe_split": {"columns": FEATURES[:-1], "data": [[0] * 14]}},
            },
            "missing column(s) ['customer_score']",
        ),
        (
            {"accessKey": "KEY", "request": {"inputs": [[0] * 15, [0] * 15, [0] * 3 + ["x"] + [0] * 11]}},
            "row 2, value 3 ('mortgage_balance')",
        ),
    ],
)
def test_422_wrong_payload_names_what_is_wrong(service, body, needle):
    if isinstance(body, dict) and body.get("accessKey") == "KEY":
        body = {**body, "accessKey": service.identity.access_key}
    r = post_model(service, body)
    assert r.status_code == 422 and needle in error(r)
    assert service.store.count(service.identity.deployment_crn) == 0


def test_429_when_every_replica_is_busy(make_service):
    svc = make_service(ServiceOptions(replicas=1, queue_timeout_s=0.001))
    body = {"accessKey": svc.identity.access_key, "request": lab_payload(2000)}
    with cf.ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda _: post_model(svc, body), range(32)))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 429} and 429 in codes and 200 in codes
    busy = next(r for r in responses if r.status_code == 429)
    assert busy.headers["Retry-After"] == "1" and "model.busy" in error(busy)
    assert svc.store.count(svc.identity.deployment_crn) == codes.count(200)


def test_503_when_the_store_is_unreachable_and_nothing_is_claimed(make_service):
    svc = make_service(store_url="postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1")
    r = post_model(svc, {"accessKey": svc.identity.access_key, "request": lab_payload(1)})
    assert r.status_code == 503 and "store unavailable" in error(r)
    assert requests.get(f"{svc.url}/health", timeout=10).json()["store"] == "unavailable"


def test_metrics_routes(service):
    crn = service.identity.deployment_crn
    uuids = [
        post_model(
            service, {"accessKey": service.identity.access_key, "request": lab_payload(1, seed=i)}
        ).json()["response"]["uuid"]
        for i in range(3)
    ]
    h = auth(service)
    r = requests.post(
        f"{service.url}/metrics/delayed",
        json={"prediction_uuid": uuids[0], "metrics": {"final_label": 1}},
        headers=h,
        timeout=10,
    )
    assert r.status_code == 200 and r.json() == {"success": True, "stored": 1}
    items = [{"prediction_uuid": u, "metrics": {"final_label": 0}} for u in uuids[1:]]
    r = requests.post(f"{service.url}/metrics/delayed/bulk", json={"items": items}, headers=h, timeout=10)
    assert r.json()["stored"] == 2
    r = requests.post(
        f"{service.url}/metrics/delayed/bulk",
        json={"items": [*items, {"prediction_uuid": "nope", "metrics": {"final_label": 1}}]},
        headers=h,
        timeout=10,
    )
    assert r.status_code == 404 and "nope" in error(r)
    r = requests.post(
        f"{service.url}/metrics/aggregate",
        json={"metrics": {"accuracy": 0.5}, "start_timestamp_ms": 1, "end_timestamp_ms": 2},
        headers=h,
        timeout=10,
    )
    assert r.status_code == 200
    r = requests.post(
        f"{service.url}/metrics/aggregate",
        json={"metrics": {"accuracy": 0.5}, "start_timestamp_ms": 5, "end_timestamp_ms": 2},
        headers=h,
        timeout=10,
    )
    assert r.status_code == 422 and "before" in error(r)
    r = requests.post(
        f"{service.url}/metrics/delayed", json={"prediction_uuid": uuids[0]}, headers=h, timeout=10
    )
    assert r.status_code == 422 and "metrics" in error(r)
    got = requests.get(
        f"{service.url}/metrics",
        params={"model_deployment_crn": crn, "start_timestamp_ms": 0},
        headers=h,
        timeout=10,
    ).json()
    flat = pd.json_normalize(got["metrics"])
    assert flat.loc[flat["predictionUuid"] != "", "metrics.final_label"].tolist() == [1, 0, 0]
    assert flat.loc[flat["predictionUuid"] == "", "metrics.accuracy"].tolist() == [0.5]
    r = requests.get(f"{service.url}/metrics", headers=h, timeout=10)
    assert r.status_code == 422 and "at least one of" in error(r)
    assert requests.get(f"{service.url}/metrics", params={"model_crn": "x"}, timeout=10).status_code == 401


def test_api_v2_subset_with_cmls_field_names(service):
    ident, h = service.identity, auth(service)
    base = f"{service.url}/api/v2/projects/{ident.project_id}"
    models = requests.get(
        f"{base}/models",
        params={"search_filter": json.dumps({"name": ident.model_name})},
        headers=h,
        timeout=10,
    ).json()
    [model] = models["models"]
    assert {k: model[k] for k in ("id", "name", "crn", "access_key", "auth_enabled")} == {
        "id": ident.model_id,
        "name": ident.model_name,
        "crn": ident.model_crn,
        "access_key": ident.access_key,
        "auth_enabled": True,
    }
    assert (
        requests.get(
            f"{base}/models", params={"search_filter": '{"name": "zzz"}'}, headers=h, timeout=10
        ).json()["models"]
        == []
    )
    [build] = requests.get(f"{base}/models/{ident.model_id}/builds", headers=h, timeout=10).json()[
        "model_builds"
    ]
    assert build["status"] == "built" and build["crn"] == ident.build_crn
    deps = requests.get(
        f"{base}/models/{ident.model_id}/builds/{build['id']}/deployments", headers=h, timeout=10
    ).json()["model_deployments"]
    assert deps[0]["status"] == "deployed" and deps[0]["crn"] == ident.deployment_crn
    missing = requests.get(f"{service.url}/api/v2/projects/nope/models", headers=h, timeout=10)
    assert missing.status_code == 404 and set(missing.json()) == {"error", "code", "message", "details"}
    bad = requests.get(f"{base}/models", params={"search_filter": "{"}, headers=h, timeout=10)
    assert bad.status_code == 400


def test_health_needs_no_token_and_shows_no_secret(service):
    r = requests.get(f"{service.url}/health", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["store"] == "ok"
    assert service.identity.api_key.get_secret_value() not in r.text


def test_openapi_documents_the_routes(service):
    spec = requests.get(f"{service.url}/openapi.json", timeout=10).json()
    paths = spec["paths"]
    assert {
        "/model",
        "/metrics",
        "/metrics/delayed",
        "/metrics/delayed/bulk",
        "/metrics/aggregate",
        "/health",
    } <= set(paths)
    model_op = paths["/model"]["post"]
    schema = model_op["requestBody"]["content"]["application/json"]["schema"]
    assert "request" in schema["properties"] and "accessKey" in schema["properties"]
    assert {"400", "401", "404", "413", "422", "429"} <= set(model_op["responses"])


def test_no_auth_mode_accepts_calls_without_a_token(make_service):
    svc = make_service(ServiceOptions(auth=False))
    r = requests.post(
        f"{svc.url}/model", json={"accessKey": svc.identity.access_key, "request": lab_payload(1)}, timeout=10
    )
    assert r.status_code == 200


def test_more_model_threads_change_no_answer(make_service):
    body = {"request": lab_payload(300)}
    answers = []
    for threads in (1, 2):
        svc = make_service(ServiceOptions(model_threads=threads))
        r = post_model(svc, {**body, "accessKey": svc.identity.access_key})
        assert r.status_code == 200, r.text
        answers.append({k: r.json()["response"][k] for k in ("prediction", "probability")})
    assert answers[0] == answers[1] and len(answers[0]["prediction"]) == 300


def test_model_threads_below_one_are_refused(make_service):
    with pytest.raises(ValueError, match="model_threads must be >= 1, got 0"):
        make_service(ServiceOptions(model_threads=0))


def test_timestamps_beyond_the_store_range_are_refused_not_a_500(service):
    h = auth(service)
    r = requests.get(
        f"{service.url}/metrics",
        params={"model_crn": "x", "start_timestamp_ms": 2**64},
        headers=h,
        timeout=10,
    )
    assert r.status_code == 422 and "start_timestamp_ms" in error(r)
    r = requests.post(
        f"{service.url}/metrics/aggregate",
        headers=h,
        timeout=10,
        json={"metrics": {"a": 1}, "start_timestamp_ms": 0, "end_timestamp_ms": 2**64},
    )
    assert r.status_code == 422 and "end_timestamp_ms" in error(r)


@pytest.mark.parametrize("header", ["Bearer ", "Bearer    ", "Bearer \t", "bearer  "])
def test_a_bearer_of_blanks_is_no_token_on_any_route(service, header):
    body = {"accessKey": service.identity.access_key, "request": lab_payload(1)}
    r = requests.post(f"{service.url}/model", json=body, headers={"Authorization": header}, timeout=10)
    assert r.status_code == 401 and error(r) == "Authorization header must be 'Bearer <API key>'"
    r = requests.get(f"{service.url}/monitoring/data", headers={"Authorization": header}, timeout=10)
    assert r.status_code == 401
    crn = service.identity.deployment_crn
    r = requests.get(
        f"{service.url}/metrics",
        params={"model_deployment_crn": crn},
        headers={"Authorization": header},
        timeout=10,
    )
    assert r.status_code == 401
    assert service.store.count(crn) == 0


def test_an_empty_idempotency_key_is_refused_not_shared(service):
    crn = service.identity.deployment_crn
    body = {"accessKey": service.identity.access_key, "request": lab_payload(1)}
    r = requests.post(
        f"{service.url}/model", json=body, headers={**auth(service), "Idempotency-Key": ""}, timeout=10
    )
    assert r.status_code == 422 and "Idempotency-Key" in error(r), r.text
    aggregate = {"metrics": {"accuracy": 0.9}, "start_timestamp_ms": 1, "end_timestamp_ms": 2}
    r = requests.post(
        f"{service.url}/metrics/aggregate",
        json=aggregate,
        headers={**auth(service), "Idempotency-Key": ""},
        timeout=10,
    )
    assert r.status_code == 422 and "Idempotency-Key" in error(r), r.text
    assert service.store.count(crn) == 0 and service.store.count(crn, aggregates=True) == 0


def test_out_of_bounds_query_and_header_are_named_together_and_store_nothing(service):
    crn = service.identity.deployment_crn
    body = {"accessKey": service.identity.access_key, "request": lab_payload(1)}
    long = "k" * 201
    r = post_model(service, body, params={"accessKey": long}, headers={"Idempotency-Key": long})
    assert r.status_code == 422, r.text
    assert error(r) == (
        "query.accessKey: String should have at most 200 characters; "
        "header.Idempotency-Key: String should have at most 200 characters"
    )
    # The metrics routes word the same bound the same way.
    aggregate = {"metrics": {"accuracy": 0.9}, "start_timestamp_ms": 1, "end_timestamp_ms": 2}
    r = requests.post(
        f"{service.url}/metrics/aggregate",
        json=aggregate,
        headers={**auth(service), "Idempotency-Key": long},
        timeout=10,
    )
    assert error(r) == "header.Idempotency-Key: String should have at most 200 characters"
    # At the bounds: 200 characters is a key, a repeated query parameter counts its last value.
    ok = post_model(
        service, body, params=[("accessKey", "wrong"), ("accessKey", service.identity.access_key)]
    )
    assert ok.status_code == 200, ok.text
    assert post_model(service, body, headers={"Idempotency-Key": long[:200]}).status_code == 200
    assert service.store.count(crn) == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_reused_key_with_another_request_is_a_409_never_a_replay(make_service, store_url_pg, backend):
    svc = make_service(store_url=store_url_pg) if backend == "postgres" else make_service()
    crn = svc.identity.deployment_crn
    body = {"accessKey": svc.identity.access_key, "request": lab_payload(1)}
    first = post_model(svc, body, headers={"Idempotency-Key": "run-1/0"})
    assert first.status_code == 200
    other = {"accessKey": svc.identity.access_key, "request": lab_payload(1, seed=99)}
    r = post_model(svc, other, headers={"Idempotency-Key": "run-1/0"})
    assert r.status_code == 409
    assert error(r).startswith("Idempotency-Key 'run-1/0' was used before with a different request")
    assert post_model(svc, body, headers={"Idempotency-Key": "run-1/0"}).json() == first.json()  # a replay
    assert svc.store.count(crn) == 1

    aggregate = {"metrics": {"accuracy": 0.9}, "start_timestamp_ms": 1, "end_timestamp_ms": 2}
    url = f"{svc.url}/metrics/aggregate"
    keyed = {**auth(svc), "Idempotency-Key": "w-0"}
    assert requests.post(url, json=aggregate, headers=keyed, timeout=10).json() == {
        "success": True,
        "stored": True,
    }
    assert requests.post(url, json=aggregate, headers=keyed, timeout=10).json() == {
        "success": True,
        "stored": False,
    }
    later = {**aggregate, "start_timestamp_ms": 5, "end_timestamp_ms": 9}  # a resumed run's own clock
    assert requests.post(url, json=later, headers=keyed, timeout=10).json() == {
        "success": True,
        "stored": False,
    }
    changed = {**aggregate, "metrics": {"accuracy": 0.1}}
    r = requests.post(url, json=changed, headers=keyed, timeout=10)
    assert r.status_code == 409 and "'w-0'" in error(r)
    assert svc.store.count(crn, aggregates=True) == 1

    r = post_model(svc, body, headers={"Idempotency-Key": "aggregate:w-0"})
    assert r.status_code == 422 and "aggregate:" in error(r)
    assert svc.store.count(crn) == 1


@pytest.mark.parametrize("path", ["/model", "/metrics/delayed/bulk", "/metrics/aggregate"])
def test_an_unauthenticated_body_is_refused_before_it_is_read(service, path):
    """401 while the caller is still sending: the service holds no megabytes for a stranger."""
    host, port = service.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: 4900000\r\n\r\n".encode()
            + b"{" * 1000  # of 4.9 MB announced: the rest never comes
        )
        sock.settimeout(5)
        answer = sock.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 401"), answer[:200]
    assert "missing Authorization header" in answer


def _raw_exchange(url: str, data: bytes, *, wait_s: float = 10.0) -> str:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s) as sock:
        with contextlib.suppress(OSError):  # the service may close while we still send
            sock.sendall(data)
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := sock.recv(4096):
                chunks.append(chunk)
    return b"".join(chunks).decode("latin-1")


def test_headers_over_64_kb_are_refused_while_they_arrive(service):
    huge = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: " + b"a" * 200_000  # and never an end
    answer = _raw_exchange(service.url, huge)
    assert answer.startswith("HTTP/1.1 431"), answer[:200]
    assert "request headers over 65536 bytes" in answer
    ok = requests.get(f"{service.url}/health", headers={"X-Filler": "a" * 60_000}, timeout=10)
    assert ok.status_code == 200  # under the limit: served


def test_headers_that_trickle_in_are_cut_off(make_service):
    svc = make_service(options=ServiceOptions(header_timeout_s=0.5))
    answer = _raw_exchange(svc.url, b"GET /health HTTP/1.1\r\nHost: x\r\n", wait_s=10)  # no blank line
    assert answer.startswith("HTTP/1.1 408"), answer[:200]
    assert "request headers took over 0.5 s" in answer
    # Headers split over two reads are timed from the first; they arrive in time: served.
    host, port = svc.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.2)
        sock.sendall(b"Connection: close\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    # A kept-alive connection's next request gets the same limits, and an idle one is no offence.
    with requests.Session() as session:
        for _ in range(3):
            assert session.get(f"{svc.url}/health", timeout=10).status_code == 200
            time.sleep(0.6)


def test_a_response_that_outlasts_the_header_timeout_is_not_cut(make_service):
    """The header timer is for headers that have not come; a long answer after them is no offence."""
    svc = make_service(options=ServiceOptions(header_timeout_s=0.3))
    ident = svc.identity
    recs = [
        PredictionRecord(
            ident.model_crn, ident.build_crn, ident.deployment_crn, f"u{i}", i, i, {"blob": "x" * 4000}
        )
        for i in range(5_000)
    ]
    svc.store.record_predictions(recs)
    headers = {"Authorization": f"Bearer {ident.api_key.get_secret_value()}"}
    started, chunks = time.perf_counter(), []
    with requests.get(
        f"{svc.url}/metrics",
        params={"model_deployment_crn": ident.deployment_crn},
        headers=headers,
        stream=True,
        timeout=60,
    ) as answer:
        for chunk in answer.iter_content(64 * 1024):
            chunks.append(chunk)
            time.sleep(0.005)  # a reader slower than the service
    assert time.perf_counter() - started > 0.6  # the answer outlasted the header timeout twice
    assert len(json.loads(b"".join(chunks))["metrics"]) == 5_000


def test_added_latency_delays_every_answer_and_not_the_models_own_time(make_service):
    """`serve --latency-ms`: a remote endpoint rehearsed on loopback. Every route answers at least
    that late; the record's start-to-end (the model's latency) does not include it."""
    svc = make_service(ServiceOptions(added_latency_ms=200))
    started = time.perf_counter()
    assert requests.get(f"{svc.url}/health", timeout=10).ok
    assert time.perf_counter() - started >= 0.2
    started = time.perf_counter()
    answer = requests.post(
        f"{svc.url}/model",
        json={"accessKey": svc.identity.access_key, "request": lab_payload(1)},
        headers=auth(svc),
        timeout=10,
    )
    assert answer.status_code == 200 and time.perf_counter() - started >= 0.2
    [record] = svc.store.read_metrics(svc.identity.deployment_crn)["metrics"]
    assert record["endTimeStampMs"] - record["startTimeStampMs"] < 200


def test_a_long_name_in_another_script_is_searched_as_the_text_it_is(service):
    """170 CJK characters are a valid name; sent \\u-escaped, the filter would pass 1,000 characters."""
    from modelvigil.client.endpoint import ModelEndpoint

    ep = ModelEndpoint.for_service(service.url, api_key=service.identity.api_key.get_secret_value())
    assert ep.list_models(service.identity.project_id, "模型" * 85) == []  # searched: none has that name
    [model] = ep.list_models(service.identity.project_id, service.identity.model_name)
    assert model["crn"] == service.identity.model_crn


@pytest.mark.parametrize("start", [True, "1", 1.5])
def test_aggregate_timestamps_are_whole_milliseconds_only(service, start):
    body = {"metrics": {"accuracy": 0.5}, "start_timestamp_ms": start, "end_timestamp_ms": 10}
    r = requests.post(f"{service.url}/metrics/aggregate", json=body, headers=auth(service), timeout=10)
    assert r.status_code == 422 and "start_timestamp_ms" in error(r) and "integer" in error(r)
    assert service.store.count(service.identity.deployment_crn, aggregates=True) == 0


def test_a_simulation_id_of_dots_is_refused():
    from modelvigil.simulation import SimulationConfig

    for bad in (".", ".."):
        with pytest.raises(ValueError, match="is not a simulation id"):
            SimulationConfig(simulation_id=bad)
    assert SimulationConfig(simulation_id="run.2").simulation_id == "run.2"
