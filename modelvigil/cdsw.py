"""A drop-in for CML's `cdsw` metrics SDK: replace `import cdsw` with `from modelvigil import cdsw`.

Inside CML (where `cml.utils_v1` or `cdsw` imports) every call goes to CML's own SDK. Elsewhere
the calls go over HTTP to a modelvigil service: the one named by `configure(url)`, else
`MODELVIGIL_SERVICE_URL`, else the embedded service on this machine's default port.
Signatures and return shapes are CML's (`call_model` returns the whole envelope).
"""

from __future__ import annotations

import threading
from typing import Any

from modelvigil.connect import Connection, connect
from modelvigil.settings import Settings

_lock = threading.Lock()
_backend: Any = None
_connection: Connection | None = None


def _cml_sdk() -> Any | None:
    try:
        import cml.utils_v1 as utils  # type: ignore[import-not-found]

        return utils._emulate_cdsw()
    except ImportError:
        pass
    try:
        import cdsw as sdk  # type: ignore[import-not-found]

        return sdk
    except ImportError:
        return None


def configure(base_url: str | None = None, settings: Settings | None = None) -> None:
    """Point the facade at a modelvigil service (tests and the demo do; users rarely need to)."""
    global _backend, _connection
    with _lock:
        if _connection is not None:
            _connection.endpoint.close()
        _connection = connect(settings, base_url)
        _backend = None


def reset() -> None:
    """Close the facade's connection; the next call connects again."""
    global _backend, _connection
    with _lock:
        if _connection is not None:
            _connection.endpoint.close()
        _connection = None
        _backend = None


def connection() -> Connection:
    """The HTTP connection in use (outside CML), with the discovered deployment."""
    target = _target()
    if not isinstance(target, Connection):
        raise RuntimeError("running inside CML: calls go to CML's own SDK, not over modelvigil's HTTP client")
    return target


def _target() -> Any:
    global _backend, _connection
    with _lock:
        if _connection is not None:
            return _connection
        if _backend is None:
            _backend = _cml_sdk()
        if _backend is not None:
            return _backend
        _connection = connect()
        return _connection


def _no_dev(dev: bool) -> None:
    if dev:
        raise NotImplementedError(
            "dev=True (CML's in-memory development store) is not emulated: run `modelvigil serve` "
            "and call without dev"
        )


def call_model(model_access_key: str, ipt: dict[str, Any], api_key: str | None = None) -> dict[str, Any]:
    target = _target()
    if not isinstance(target, Connection):
        return target.call_model(model_access_key, ipt, api_key=api_key)
    if api_key is None:
        return target.endpoint.call_model(ipt, access_key=model_access_key)
    from modelvigil.endpoint import ModelEndpoint

    with ModelEndpoint(
        target.endpoint.model_url,
        access_key=model_access_key,
        api_key=api_key,
        timeout=target.endpoint.timeout,
    ) as once:
        return once.call_model(ipt)


def track_delayed_metrics(metrics: dict[str, Any], prediction_uuid: str, dev: bool = False) -> None:
    target = _target()
    if not isinstance(target, Connection):
        return target.track_delayed_metrics(metrics, prediction_uuid, dev=dev)
    _no_dev(dev)
    target.endpoint.track_delayed_metrics(metrics, prediction_uuid)
    return None


def track_aggregate_metrics(
    metrics: dict[str, Any],
    start_timestamp_ms: int,
    end_timestamp_ms: int,
    model_deployment_crn: str | None = None,
    dev: bool = False,
) -> None:
    target = _target()
    if not isinstance(target, Connection):
        return target.track_aggregate_metrics(
            metrics, start_timestamp_ms, end_timestamp_ms, model_deployment_crn=model_deployment_crn, dev=dev
        )
    _no_dev(dev)
    target.endpoint.track_aggregate_metrics(
        metrics, start_timestamp_ms, end_timestamp_ms, model_deployment_crn
    )
    return None


def read_metrics(
    model_deployment_crn: str | None = None,
    start_timestamp_ms: int | None = None,
    end_timestamp_ms: int | None = None,
    model_crn: str | None = None,
    model_build_crn: str | None = None,
    dev: bool = False,
) -> dict[str, Any]:
    target = _target()
    if not isinstance(target, Connection):
        return target.read_metrics(
            model_deployment_crn=model_deployment_crn,
            start_timestamp_ms=start_timestamp_ms,
            end_timestamp_ms=end_timestamp_ms,
            model_crn=model_crn,
            model_build_crn=model_build_crn,
            dev=dev,
        )
    _no_dev(dev)
    return target.endpoint.read_metrics(
        model_deployment_crn, start_timestamp_ms, end_timestamp_ms, model_crn, model_build_crn
    )


def track_metric(key: str, value: Any) -> None:
    """Only meaningful inside a CML model replica; the embedded service tracks its own metrics."""
    target = _target()
    if not isinstance(target, Connection):
        return target.track_metric(key, value)
    raise RuntimeError("track_metric works only inside a model function running in CML")
