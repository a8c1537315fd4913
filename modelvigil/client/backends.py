"""Where a deployment's metrics go and come from, chosen once: a modelvigil service over HTTP, or
CML's own SDK inside a workspace. `connect()` and the `cdsw` facade pick one; every caller then
just calls it and never asks again which it is.

Delayed metrics are an upsert keyed by (uuid, key), so sending the same ones twice changes nothing.
Aggregates carry an idempotency key on a modelvigil service; CML's SDK has no such thing, so there
a retried aggregate can be stored twice (readers should take the latest per window).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from modelvigil.client.endpoint import ModelEndpoint
from modelvigil.client.errors import EndpointNotConfigured

FACADE_MODULE = "modelvigil.cdsw"
BULK_CHUNK = 5_000  # delayed metrics per bulk call: each chunk is stored all or nothing
# CML's read_metrics parameters, in its order; its SDK is called with them by name.
READ_METRICS_PARAMETERS = (
    "model_deployment_crn",
    "start_timestamp_ms",
    "end_timestamp_ms",
    "model_crn",
    "model_build_crn",
)

Items = Iterable[tuple[str, Mapping[str, Any]]]


class MetricsBackend(Protocol):
    bulk_chunk: int  # delayed items one call carries: the unit a retried task need not send again

    def track_delayed(self, metrics: Mapping[str, Any], prediction_uuid: str) -> None: ...

    def track_delayed_bulk(self, items: Items) -> int:
        """Every item stored; returns how many. Safe to repeat: delayed metrics are an upsert."""
        ...

    def track_aggregate(
        self, metrics: Mapping[str, Any], start_ms: int, end_ms: int, crn: str | None, key: str | None = None
    ) -> None:
        """An aggregate over [start_ms, end_ms]; `key` makes a repeat store nothing (where honoured)."""
        ...

    def read_metrics(self, *query: Any) -> dict[str, Any]:
        """CML's `{"metrics": [...]}`; the selection positionally as CML's SDK takes it: deployment
        CRN, start ms, end ms, model CRN, build CRN (one CRN is enough; a missing time is open)."""
        ...

    def iter_metrics(self, *query: Any) -> Iterator[dict[str, Any]]:
        """`read_metrics`' records one at a time, read a page at a time where the backend pages."""
        ...


class SdkSurface(MetricsBackend, Protocol):
    """What the `cdsw` facade serves beyond metrics: CML's model call and in-model tracking."""

    def call_model(
        self, access_key: str, ipt: dict[str, Any], api_key: str | None = None
    ) -> dict[str, Any]: ...

    def track_metric(self, key: str, value: Any) -> None: ...

    def dev_call(self, name: str) -> Any:
        """The SDK function `name` for a `dev=True` call (CML's in-memory development store)."""
        ...


class HttpMetrics:
    """A modelvigil service's `/metrics` routes, through the endpoint's pooled session."""

    bulk_chunk = BULK_CHUNK

    def __init__(self, endpoint: ModelEndpoint) -> None:
        self.endpoint = endpoint

    def track_delayed(self, metrics: Mapping[str, Any], prediction_uuid: str) -> None:
        self.endpoint.track_delayed_metrics(metrics, prediction_uuid)

    def track_delayed_bulk(self, items: Items) -> int:
        """In chunks of BULK_CHUNK, each stored all or nothing."""
        items = list(items)
        for i in range(0, len(items), BULK_CHUNK):
            self.endpoint.track_delayed_metrics_bulk(items[i : i + BULK_CHUNK])
        return len(items)

    def track_aggregate(
        self, metrics: Mapping[str, Any], start_ms: int, end_ms: int, crn: str | None, key: str | None = None
    ) -> None:
        self.endpoint.track_aggregate_metrics(dict(metrics), start_ms, end_ms, crn, idempotency_key=key)

    def read_metrics(self, *query: Any) -> dict[str, Any]:
        return self.endpoint.read_metrics(*query)

    def iter_metrics(self, *query: Any) -> Iterator[dict[str, Any]]:
        return self.endpoint.iter_metrics(*query)

    def call_model(self, access_key: str, ipt: dict[str, Any], api_key: str | None = None) -> dict[str, Any]:
        if api_key is None:
            return self.endpoint.call_model(ipt, access_key=access_key)
        with ModelEndpoint(
            self.endpoint.model_url, access_key=access_key, api_key=api_key, timeout=self.endpoint.timeout
        ) as once:
            return once.call_model(ipt)

    def track_metric(self, key: str, value: Any) -> None:
        raise RuntimeError("track_metric works only inside a model function running in CML")

    def dev_call(self, name: str) -> Any:
        raise NotImplementedError(
            "dev=True (CML's in-memory development store) is not emulated: run `modelvigil serve` "
            "and call without dev"
        )


class CmlSdkMetrics:
    """CML's own SDK (`cml.utils_v1._emulate_cdsw()` or `cdsw`) inside a workspace: one call per
    uuid, and no idempotency key for aggregates (CML's SDK has none)."""

    bulk_chunk = 1

    def __init__(self, sdk: Any) -> None:
        self.sdk = sdk

    def track_delayed(self, metrics: Mapping[str, Any], prediction_uuid: str) -> None:
        self.sdk.track_delayed_metrics(dict(metrics), prediction_uuid)

    def track_delayed_bulk(self, items: Items) -> int:
        sent = 0
        for uuid_, metrics in items:
            self.track_delayed(metrics, uuid_)
            sent += 1
        return sent

    def track_aggregate(
        self, metrics: Mapping[str, Any], start_ms: int, end_ms: int, crn: str | None, key: str | None = None
    ) -> None:
        self.sdk.track_aggregate_metrics(dict(metrics), start_ms, end_ms, model_deployment_crn=crn)

    def read_metrics(self, *query: Any) -> dict[str, Any]:
        return self.sdk.read_metrics(**dict(zip(READ_METRICS_PARAMETERS, query, strict=False)))

    def iter_metrics(self, *query: Any) -> Iterator[dict[str, Any]]:
        return iter(self.read_metrics(*query).get("metrics") or [])  # CML's SDK reads all at once

    def call_model(self, access_key: str, ipt: dict[str, Any], api_key: str | None = None) -> dict[str, Any]:
        return self.sdk.call_model(access_key, ipt, api_key=api_key)

    def track_metric(self, key: str, value: Any) -> None:
        self.sdk.track_metric(key, value)

    def dev_call(self, name: str) -> Any:
        return getattr(self.sdk, name)


class NoMetrics:
    """A real CML workspace reached from outside it: its metrics live behind its SDK, not HTTP."""

    bulk_chunk = 1

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise EndpointNotConfigured(
            "this endpoint has no metrics routes (a real CML workspace writes metrics through its "
            "own SDK inside the workspace: run there, where modelvigil.cdsw uses it)"
        )

    track_delayed = track_delayed_bulk = track_aggregate = read_metrics = _refuse


def cml_sdk() -> Any | None:
    """CML's own metrics SDK when this process runs inside a workspace, else None.

    A module named `cdsw` (or an `_emulate_cdsw()`) that hands back modelvigil's own facade is not
    CML's SDK: taking it for one would have the facade call itself forever.
    """
    try:
        import cml.utils_v1 as utils  # type: ignore[import-not-found]

        sdk = utils._emulate_cdsw()
        if not _is_our_facade(sdk):
            return sdk
    except ImportError:
        pass
    try:
        import cdsw as sdk  # type: ignore[import-not-found]
    except ImportError:
        return None
    return None if _is_our_facade(sdk) else sdk


def _is_our_facade(sdk: Any) -> bool:
    # By where the function was defined, which a re-export (`from modelvigil.cdsw import *`) keeps.
    return getattr(getattr(sdk, "read_metrics", None), "__module__", None) == FACADE_MODULE


def for_endpoint(endpoint: ModelEndpoint) -> MetricsBackend:
    """The endpoint's own metrics routes when it has them; else CML's SDK if this is a workspace."""
    if endpoint.metrics_url:
        return HttpMetrics(endpoint)
    sdk = cml_sdk()
    return CmlSdkMetrics(sdk) if sdk is not None else NoMetrics()
