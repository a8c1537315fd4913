"""Sending metrics to where the deployment keeps them: a modelvigil service over HTTP, or CML's SDK.

Delayed metrics are an upsert keyed by (uuid, key), so sending the same ones twice changes nothing.
Aggregates carry an idempotency key on a modelvigil service; CML's SDK has no such thing, so there
a retried aggregate can be stored twice (readers should take the latest per window).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from modelvigil.endpoint import ModelEndpoint

BULK_CHUNK = 5_000


def submit_delayed(endpoint: ModelEndpoint, items: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
    """In bulk (all-or-nothing per chunk) to a modelvigil service; one call per uuid inside CML."""
    items = list(items)
    if endpoint.metrics_url:
        for i in range(0, len(items), BULK_CHUNK):
            endpoint.track_delayed_metrics_bulk(items[i : i + BULK_CHUNK])
        return len(items)
    from modelvigil import cdsw  # inside CML this is CML's own SDK

    for uuid_, metrics in items:
        cdsw.track_delayed_metrics(dict(metrics), uuid_)
    return len(items)


def track_aggregate(
    endpoint: ModelEndpoint,
    metrics: Mapping[str, Any],
    start_ms: int,
    end_ms: int,
    deployment_crn: str,
    idempotency_key: str,
) -> None:
    if endpoint.metrics_url:
        endpoint.track_aggregate_metrics(
            dict(metrics), start_ms, end_ms, deployment_crn, idempotency_key=idempotency_key
        )
        return
    from modelvigil import cdsw

    cdsw.track_aggregate_metrics(dict(metrics), start_ms, end_ms, model_deployment_crn=deployment_crn)
