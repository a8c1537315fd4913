"""The endpoint client: its error hierarchy against real loopback servers, and API v2 discovery."""

import socket
import threading
import time

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from modelvigil.client import (
    EndpointConnectionError,
    EndpointError,
    EndpointHTTPError,
    EndpointResponseError,
    EndpointTimeout,
    ModelEndpoint,
)
from modelvigil.testing import serve_app_in_thread
from tests.helpers import lab_payload


@pytest.fixture
def misbehaving():
    """A real HTTP server whose /model answers with whatever status the test asks for."""
    app = FastAPI()

    @app.post("/model")
    async def model(request: Request):
        want = request.query_params.get("status", "200")
        if want == "slow":
            time.sleep(1.0)
            return {"success": True, "response": {"prediction": [0], "uuid": "u"}}
        if want == "html":
            return JSONResponse(content="<html>proxy error</html>", status_code=200)
        if want == "nouuid":
            return {"success": True, "response": [0]}
        headers = {"Retry-After": "7"} if want == "429" else None
        return JSONResponse({"success": False, "error": f"status {want}"}, int(want), headers=headers)

    running = serve_app_in_thread(app)
    yield running.url
    running.stop()


def endpoint_for(url, status, **kw):
    return ModelEndpoint(f"{url}/model?status={status}", access_key="m" * 32, **kw)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(429, True), (500, True), (503, True), (400, False), (401, False), (404, False), (422, False)],
)
def test_http_errors_carry_status_body_and_retryability(misbehaving, status, retryable):
    with pytest.raises(EndpointHTTPError) as err:
        endpoint_for(misbehaving, status).predict(lab_payload(1))
    assert err.value.status == status
    assert err.value.body == {"success": False, "error": f"status {status}"}
    assert err.value.response.status_code == status
    assert err.value.retryable is retryable
    assert isinstance(err.value, EndpointError)
    if status == 429:
        assert err.value.retry_after == 7.0


def test_read_timeout_is_a_retryable_timeout(misbehaving):
    with pytest.raises(EndpointTimeout) as err:
        endpoint_for(misbehaving, "slow", timeout=(1.0, 0.2)).predict(lab_payload(1))
    assert err.value.retryable


def test_refused_connection_is_retryable():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(EndpointConnectionError) as err:
        ModelEndpoint(f"http://127.0.0.1:{port}/model", access_key="k").predict(lab_payload(1))
    assert err.value.retryable


@pytest.mark.parametrize("status", ["html", "nouuid"])
def test_answers_that_break_the_protocol_are_not_retryable(misbehaving, status):
    with pytest.raises(EndpointResponseError) as err:
        endpoint_for(misbehaving, status).predict(lab_payload(1))
    assert not err.value.retryable


def test_cml_urls_and_no_metrics_routes():
    ep = ModelEndpoint.for_cml("https://ml-abc.example.cloudera.site", api_key="secret-token")
    assert ep.model_url == "https://modelservice.ml-abc.example.cloudera.site/model"
    assert ep.api_url == "https://ml-abc.example.cloudera.site/api/v2"
    assert "secret-token" not in repr(ep)
    with pytest.raises(EndpointError, match="no metrics routes"):
        ep.read_metrics(model_deployment_crn="x")


@pytest.fixture
def cml_api():
    """A CML API v2 with several builds and deployments, paged two items at a time, in no useful order."""
    app = FastAPI()
    calls: list[str] = []
    models = [
        {
            "id": "m-old",
            "name": "fraud",
            "crn": "crn:m-old",
            "access_key": "mold",
            "created_at": "2024-01-01T00:00Z",
        },
        {
            "id": "m2",
            "name": "fraud-v2",
            "crn": "crn:m2",
            "access_key": "m2key",
            "created_at": "2025-01-01T00:00Z",
        },
        {
            "id": "m1",
            "name": "fraud",
            "crn": "crn:m1",
            "access_key": "m1key",
            "created_at": "2025-02-01T00:00Z",
        },
    ]
    builds = {
        "m1": [
            {"id": f"b{i}", "crn": f"crn:b{i}", "status": "built", "created_at": f"2025-03-0{i}T00:00Z"}
            for i in (3, 1, 2)
        ]
    }
    deployments = {
        "b1": [{"id": "d1", "crn": "crn:d1", "status": "deployed", "created_at": "2025-03-01T01:00Z"}],
        "b2": [
            {"id": "d2", "crn": "crn:d2", "status": "deployed", "created_at": "2025-03-02T01:00Z"},
            {"id": "d2b", "crn": "crn:d2b", "status": "stopped", "created_at": "2025-03-09T01:00Z"},
        ],
        "b3": [{"id": "d3", "crn": "crn:d3", "status": "failed", "created_at": "2025-03-03T01:00Z"}],
    }

    def page(items, request):
        token = int(request.query_params.get("page_token") or 0)
        nxt = str(token + 2) if token + 2 < len(items) else ""
        return {"items": items[token : token + 2], "next_page_token": nxt}

    @app.get("/api/v2/projects/p/models")
    async def list_models(request: Request):
        calls.append(str(request.url))
        assert request.headers["authorization"] == "Bearer k"
        p = page(models, request)
        return {"models": p["items"], "next_page_token": p["next_page_token"]}

    @app.get("/api/v2/projects/p/models/{mid}/builds")
    async def list_builds(mid: str, request: Request):
        p = page(builds.get(mid, []), request)
        return {"model_builds": p["items"], "next_page_token": p["next_page_token"]}

    @app.get("/api/v2/projects/p/models/{mid}/builds/{bid}/deployments")
    async def list_deps(mid: str, bid: str, request: Request):
        p = page(deployments.get(bid, []), request)
        return {"model_deployments": p["items"], "next_page_token": p["next_page_token"]}

    running = serve_app_in_thread(app)
    yield running.url, calls
    running.stop()


def test_discovery_follows_pages_and_picks_the_newest_deployed(cml_api):
    url, calls = cml_api
    ep = ModelEndpoint("unused", api_url=f"{url}/api/v2", api_key="k")
    details = ep.latest_deployment("p", "fraud")
    assert details.model_name == "fraud" and details.model_id == "m1"  # newest model of that exact name
    assert details.model_crn == "crn:m1" and details.model_access_key == "m1key"
    # d2b is newer but stopped; d3 failed: the newest *deployed* one is d2 on build b2.
    assert details.latest_build_id == "b2" and details.latest_deployment_crn == "crn:d2"
    assert any("page_token=2" in c for c in calls)


def test_discovery_says_what_is_missing(cml_api):
    url, _ = cml_api
    ep = ModelEndpoint("unused", api_url=f"{url}/api/v2", api_key="k")
    with pytest.raises(LookupError, match="no model named 'nothing'"):
        ep.latest_deployment("p", "nothing")
    with pytest.raises(LookupError, match="no deployment with status 'deployed'"):
        ep.latest_deployment("p", "fraud-v2")


def test_one_pooled_session_is_safe_across_threads(service):
    from modelvigil.client.connect import connect

    conn = connect(base_url=service.url)
    uuids, errors = [], []

    def work():
        try:
            for _ in range(20):
                uuids.append(conn.endpoint.predict(lab_payload(1)).uuid)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(uuids)) == 160


def test_metrics_with_integers_beyond_64_bits_round_trip(service):
    from modelvigil.client.connect import connect

    conn = connect(base_url=service.url)
    uuid_ = conn.endpoint.predict(lab_payload(1)).uuid
    big = 2**70 + 1  # not a float: a lossy parse would change it
    conn.endpoint.track_delayed_metrics({"big": big}, uuid_)
    [record] = conn.endpoint.read_metrics(service.identity.deployment_crn)["metrics"]
    assert record["metrics"]["big"] == big and isinstance(record["metrics"]["big"], int)


def test_proxy_settings_from_the_environment_are_honoured_per_client(monkeypatch):
    """The client reads proxy settings once per host (not per call): still requests' own rules."""
    app = FastAPI()
    seen: list[str] = []

    @app.get("/{path:path}")
    async def forward(request: Request):
        seen.append(str(request.url))  # a proxy is sent the target's absolute URL
        return {"status": "ok", "via": "proxy"}

    proxy = serve_app_in_thread(app)
    with socket.socket() as s:  # a port nobody listens on: reachable only through the proxy
        s.bind(("127.0.0.1", 0))
        target = f"http://127.0.0.1:{s.getsockname()[1]}"
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    try:
        endpoint = ModelEndpoint.for_service(target)
        assert endpoint.health()["via"] == "proxy" and endpoint.health()["via"] == "proxy"
        assert seen == [f"{target}/health"] * 2
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with pytest.raises(EndpointConnectionError):  # a new client goes direct, and finds no one
            ModelEndpoint.for_service(target).health()
        assert len(seen) == 2
    finally:
        proxy.stop()
