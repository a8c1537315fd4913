"""The client's errors tell "nothing was sent" from "it may have run", against real loopback sockets,
and the retry policy uses that; "not configured" and "not found" stay apart from connectivity."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from modelvigil.client import (
    DeploymentNotFound,
    EndpointConnectionDropped,
    EndpointConnectionError,
    EndpointConnectTimeout,
    EndpointError,
    EndpointNotConfigured,
    EndpointReadTimeout,
    EndpointTimeout,
    ModelEndpoint,
    ServiceUnreachable,
    backends,
)
from modelvigil.client.connect import connect
from modelvigil.client.retry import RetryPolicy, call_with_retries
from tests.helpers import lab_payload


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose listen queue is full: the kernel drops new SYNs, so a connect times out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    waiting = []
    for _ in range(3):
        sock = socket.socket()
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.connect(("127.0.0.1", port))
        waiting.append(sock)
    time.sleep(0.1)
    yield port
    for sock in [*waiting, server]:
        sock.close()


@pytest.fixture
def hangs_up() -> Iterator[tuple[int, list[bytes]]]:
    """A server that reads each request whole, then closes the connection without a word."""
    server = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                received.append(data)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], received
    server.close()


@pytest.fixture
def silent() -> Iterator[int]:
    """A server that accepts and reads, but never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    for sock in [*held, server]:
        sock.close()


def _call(port: int, timeout: tuple[float, float] = (0.3, 0.3)) -> None:
    ModelEndpoint(f"http://127.0.0.1:{port}/model", access_key="k", timeout=timeout).predict(lab_payload(1))


def test_connect_timeout_means_nothing_was_sent(full_backlog):
    with pytest.raises(EndpointConnectTimeout) as err:
        _call(full_backlog)
    assert isinstance(err.value, EndpointTimeout) and err.value.retryable
    assert err.value.may_have_executed is False


def test_read_timeout_means_it_may_have_run(silent):
    with pytest.raises(EndpointReadTimeout) as err:
        _call(silent)
    assert isinstance(err.value, EndpointTimeout) and err.value.retryable
    assert err.value.may_have_executed is True


def test_refused_connection_means_nothing_was_sent():
    with pytest.raises(EndpointConnectionError) as err:
        _call(_free_port())
    assert not isinstance(err.value, EndpointConnectionDropped)
    assert err.value.retryable and err.value.may_have_executed is False


def test_an_answer_that_never_comes_back_may_have_run(hangs_up):
    port, received = hangs_up
    with pytest.raises(EndpointConnectionDropped) as err:
        _call(port, timeout=(1.0, 2.0))
    assert received and received[0].startswith(b"POST /model")  # the request did go out
    assert err.value.retryable and err.value.may_have_executed is True


def test_a_call_that_is_not_idempotent_is_retried_only_when_it_cannot_have_run(full_backlog, silent):
    once = RetryPolicy(max_attempts=3, base_delay_s=0.0, idempotent=False)
    refused = call_with_retries(lambda: _call(full_backlog), once, sleep=lambda s: None)
    assert refused.attempts == 3 and isinstance(refused.error, EndpointConnectTimeout)
    ran = call_with_retries(lambda: _call(silent), once, sleep=lambda s: None)
    assert ran.attempts == 1 and isinstance(ran.error, EndpointReadTimeout)
    again = call_with_retries(lambda: _call(silent), RetryPolicy(max_attempts=2), sleep=lambda s: None)
    assert again.attempts == 2  # idempotent (the default): retried


def test_no_access_key_is_not_configured_not_a_connectivity_failure():
    with pytest.raises(EndpointNotConfigured, match="no model access key") as err:
        ModelEndpoint(f"http://127.0.0.1:{_free_port()}/model").predict(lab_payload(1))
    assert not err.value.retryable and err.value.may_have_executed is False


def test_a_cml_endpoint_has_no_api_or_metrics_routes_configured():
    bare = ModelEndpoint("http://127.0.0.1:1/model", access_key="k")
    with pytest.raises(EndpointNotConfigured, match="no API v2 URL"):
        bare.latest_deployment("p", "m")
    with pytest.raises(EndpointNotConfigured, match="no metrics routes"):
        bare.read_metrics(model_deployment_crn="x")


def test_nothing_listening_is_service_unreachable(settings):
    with pytest.raises(ServiceUnreachable, match="no modelvigil service answers") as err:
        connect(settings, f"http://127.0.0.1:{_free_port()}")
    assert isinstance(err.value, EndpointConnectionError)


def test_an_unknown_model_name_is_deployment_not_found(service, settings):
    # The models there are named, so that a typo is one glance away from its fix.
    project = service.identity.project_id
    known = rf"no model named 'nobody' in project {project} \(its models: 'fraud-detector'\)"
    with pytest.raises(DeploymentNotFound, match=known) as err:
        connect(settings.model_copy(update={"model_name": "nobody"}), service.url)
    assert isinstance(err.value, LookupError) and isinstance(err.value, EndpointError)


def test_the_metrics_backend_is_chosen_once_by_connect(service, settings):
    conn = connect(settings, service.url)
    try:
        assert isinstance(conn.metrics, backends.HttpMetrics)
        crn = conn.deployment.latest_deployment_crn
        uuid_ = conn.endpoint.predict(lab_payload(1)).uuid
        assert conn.metrics.track_delayed_bulk([(uuid_, {"final_label": 1})]) == 1
        records = conn.metrics.read_metrics(crn)["metrics"]
        assert [r["metrics"]["final_label"] for r in records if r["predictionUuid"] == uuid_] == [1]
    finally:
        conn.close()
    outside = backends.for_endpoint(ModelEndpoint.for_cml("ml.example.com"))
    with pytest.raises(EndpointNotConfigured, match="no metrics routes"):
        outside.read_metrics("crn")


def test_inside_a_workspace_the_sdk_backend_is_cmls_own(tmp_path, monkeypatch, forget_cml_sdk):
    """Where CML's SDK imports (here a module standing in for it), metrics go through it."""
    (tmp_path / "cdsw.py").write_text(
        "calls = []\n"
        "def track_delayed_metrics(metrics, uuid): calls.append(('delayed', uuid, metrics))\n"
        "def track_aggregate_metrics(m, s, e, model_deployment_crn=None): calls.append(('agg', s, e))\n"
        "def read_metrics(**query): calls.append(('read', query)); return {'metrics': []}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    backend = backends.for_endpoint(ModelEndpoint.for_cml("ml.example.com"))
    assert isinstance(backend, backends.CmlSdkMetrics)
    assert backend.track_delayed_bulk([("u1", {"final_label": 0}), ("u2", {"final_label": 1})]) == 2
    backend.track_aggregate({"accuracy": 0.9}, 1, 2, "crn", "key")
    assert backend.read_metrics("crn", 1, 2) == {"metrics": []}
    assert sys.modules["cdsw"].calls == [
        ("delayed", "u1", {"final_label": 0}),
        ("delayed", "u2", {"final_label": 1}),
        ("agg", 1, 2),
        ("read", {"model_deployment_crn": "crn", "start_timestamp_ms": 1, "end_timestamp_ms": 2}),
    ]
