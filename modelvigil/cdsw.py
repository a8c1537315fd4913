"""A drop-in for CML's `cdsw` metrics SDK: replace `import cdsw` with `from modelvigil import cdsw`.

Inside CML (where `cml.utils_v1` or `cdsw` imports) every call goes to CML's own SDK. Elsewhere
the calls go over HTTP to a modelvigil service: the one named by `configure(url)`, else
`MODELVIGIL_SERVICE_URL`, else the embedded service on this machine's default port.
Signatures and return shapes are CML's (`call_model` returns the whole envelope). Which of the
two it is gets decided once, on the first call (`client.backends`); no call asks again.
"""

from __future__ import annotations

import threading
from typing import Any

from modelvigil.client import backends
from modelvigil.client.backends import HttpMetrics, SdkSurface
from modelvigil.client.connect import Connection, connect
from modelvigil.settings import Settings

_lock = threading.Lock()
_backend: SdkSurface | None = None
_connection: Connection | None = None  # set when the backend is a modelvigil service over HTTP


def _use(connection: Connection | None, backend: SdkSurface | None) -> None:
    global _backend, _connection
    if _connection is not None:
        _connection.close()
    _connection, _backend = connection, backend


def configure(base_url: str | None = None, settings: Settings | None = None) -> None:
    """Point the facade at a modelvigil service (tests and the demo do; users rarely need to)."""
    with _lock:
        conn = connect(settings, base_url)
        _use(conn, HttpMetrics(conn.endpoint))


def reset() -> None:
    """Close the facade's connection; the next call connects again."""
    with _lock:
        _use(None, None)


def _current() -> SdkSurface:
    with _lock:
        if _backend is None:
            sdk = backends.cml_sdk()
            if sdk is not None:
                _use(None, backends.CmlSdkMetrics(sdk))
            else:
                # No discovery until something needs it: the lab's calls name their access key
                # and CRN, and must not fail on a model name they never gave.
                conn = connect(discover=False)
                _use(conn, HttpMetrics(conn.endpoint))
        assert _backend is not None
        return _backend


def connection() -> Connection:
    """The HTTP connection in use (outside CML), with the discovered deployment."""
    _current()
    if _connection is None:
        raise RuntimeError("running inside CML: calls go to CML's own SDK, not over modelvigil's HTTP client")
    return _connection


def call_model(model_access_key: str, ipt: dict[str, Any], api_key: str | None = None) -> dict[str, Any]:
    return _current().call_model(model_access_key, ipt, api_key)


def track_delayed_metrics(metrics: dict[str, Any], prediction_uuid: str, dev: bool = False) -> None:
    backend = _current()
    if dev:
        backend.dev_call("track_delayed_metrics")(metrics, prediction_uuid, dev=dev)
        return
    backend.track_delayed(metrics, prediction_uuid)


def track_aggregate_metrics(
    metrics: dict[str, Any],
    start_timestamp_ms: int,
    end_timestamp_ms: int,
    model_deployment_crn: str | None = None,
    dev: bool = False,
) -> None:
    backend = _current()
    if dev:
        backend.dev_call("track_aggregate_metrics")(
            metrics, start_timestamp_ms, end_timestamp_ms, model_deployment_crn=model_deployment_crn, dev=dev
        )
        return
    backend.track_aggregate(metrics, start_timestamp_ms, end_timestamp_ms, model_deployment_crn)


def read_metrics(
    model_deployment_crn: str | None = None,
    start_timestamp_ms: int | None = None,
    end_timestamp_ms: int | None = None,
    model_crn: str | None = None,
    model_build_crn: str | None = None,
    dev: bool = False,
) -> dict[str, Any]:
    backend = _current()
    if dev:
        return backend.dev_call("read_metrics")(
            model_deployment_crn=model_deployment_crn,
            start_timestamp_ms=start_timestamp_ms,
            end_timestamp_ms=end_timestamp_ms,
            model_crn=model_crn,
            model_build_crn=model_build_crn,
            dev=dev,
        )
    return backend.read_metrics(
        model_deployment_crn, start_timestamp_ms, end_timestamp_ms, model_crn, model_build_crn
    )


def track_metric(key: str, value: Any) -> None:
    """Only meaningful inside a CML model replica; the embedded service tracks its own metrics."""
    _current().track_metric(key, value)
