"""`/metrics/...`: what CML's metrics SDK does inside a workspace, over HTTP for clients outside one.

`POST /metrics/delayed` and `/metrics/delayed/bulk` (`track_delayed_metrics`), `POST
/metrics/aggregate` (`track_aggregate_metrics`), `GET /metrics` (`read_metrics`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import AfterValidator, BaseModel, Field
from starlette.concurrency import run_in_threadpool

from modelvigil.protocol import MAX_MS
from modelvigil.service.deps import NO_NUL, IdempotencyKey, Service, Store
from modelvigil.service.errors import ServiceError
from modelvigil.store.limits import MAX_KEY_CHARS, MAX_VALUE_BYTES
from modelvigil.store.metrics_pages import MAX_PAGE, TOKEN_PATTERN, MetricsPage

router = APIRouter()
JSON = "application/json"
STREAM_PAGE = 2_000  # records per store read while streaming a whole range


def _storable(metrics: dict[str, Any]) -> dict[str, Any]:
    """Finite JSON, keys a store column holds, values of a size a read can carry: checked here,
    when written, so that no later read fails on what was accepted."""
    for key, value in metrics.items():
        if not 1 <= len(key) <= MAX_KEY_CHARS or "\x00" in key:
            raise ValueError(f"metric key {key[:40]!r}: 1 to {MAX_KEY_CHARS} characters, no NUL")
        try:
            size = len(json.dumps(value, allow_nan=False))
        except ValueError:
            raise ValueError(f"metric {key!r}: must be finite JSON values (no NaN or Infinity)") from None
        if size > MAX_VALUE_BYTES:
            raise ValueError(f"metric {key!r}: {size} bytes of JSON, at most {MAX_VALUE_BYTES}")
    return metrics


StorableMetrics = Annotated[dict[str, Any], Field(min_length=1), AfterValidator(_storable)]


class DelayedMetrics(BaseModel):
    prediction_uuid: str = Field(min_length=1, max_length=64, pattern=NO_NUL)
    metrics: StorableMetrics


class DelayedMetricsBulk(BaseModel):
    items: list[DelayedMetrics] = Field(min_length=1, max_length=100_000)


class AggregateMetrics(BaseModel):
    metrics: StorableMetrics
    # Strict: milliseconds are whole numbers; `true` or "1" is a caller's mistake, not a time.
    start_timestamp_ms: int = Field(ge=0, le=MAX_MS, strict=True)
    end_timestamp_ms: int = Field(ge=0, le=MAX_MS, strict=True)
    model_deployment_crn: str | None = Field(default=None, max_length=300, pattern=NO_NUL)


@router.post("/metrics/delayed")
async def track_delayed(body: DelayedMetrics, store: Store) -> dict[str, Any]:
    """`cdsw.track_delayed_metrics`: merge metrics (e.g. `final_label`) into one prediction."""
    written = await run_in_threadpool(store.merge_delayed, [(body.prediction_uuid, body.metrics)])
    return {"success": True, "stored": written}


@router.post("/metrics/delayed/bulk")
async def track_delayed_bulk(body: DelayedMetricsBulk, store: Store) -> dict[str, Any]:
    """Many delayed metrics in one transaction: all stored, or none (404 names the unknown)."""
    items = [(item.prediction_uuid, item.metrics) for item in body.items]
    written = await run_in_threadpool(store.merge_delayed, items)
    return {"success": True, "stored": written}


@router.post("/metrics/aggregate")
async def track_aggregate(
    body: AggregateMetrics,
    store: Store,
    service: Service,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """`cdsw.track_aggregate_metrics`: a record with an empty prediction uuid covering a window.

    With an `Idempotency-Key` header, a repeated key stores nothing new (`stored: false`); the
    same key with a different aggregate is a 409.
    """
    if body.end_timestamp_ms < body.start_timestamp_ms:
        raise ServiceError(422, "end_timestamp_ms is before start_timestamp_ms")
    served = service.model_of(body.model_deployment_crn or None)
    if served is None:
        raise ServiceError(404, "unknown model_deployment_crn")
    identity = served.identity
    crn = identity.deployment_crn
    stored = await run_in_threadpool(
        lambda: store.record_aggregate(
            body.metrics,
            body.start_timestamp_ms,
            body.end_timestamp_ms,
            model_deployment_crn=crn,
            model_crn=identity.model_crn,
            model_build_crn=identity.build_crn,
            idempotency_key=idempotency_key,
            request_hash=_hash(body) if idempotency_key is not None else None,
        )
    )
    return {"success": True, "stored": stored}


def _hash(body: AggregateMetrics) -> str:
    """What an aggregate says (its metrics, for which deployment), not when: a resumed simulation
    sends the same window with the times its own clock saw, and that is the same aggregate."""
    said = {"metrics": body.metrics, "model_deployment_crn": body.model_deployment_crn}
    # stdlib json: orjson refuses integers beyond 64 bits, which a metric may hold.
    canonical = json.dumps(said, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@router.get(
    "/metrics",
    responses={200: {"description": '`{"metrics": [...]}`; with paging, `next_page_token` beside it'}},
)
async def read_metrics(
    store: Store,
    model_deployment_crn: Annotated[str | None, Query(max_length=300, pattern=NO_NUL)] = None,
    start_timestamp_ms: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
    end_timestamp_ms: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
    model_crn: Annotated[str | None, Query(max_length=300, pattern=NO_NUL)] = None,
    model_build_crn: Annotated[str | None, Query(max_length=300, pattern=NO_NUL)] = None,
    page_size: Annotated[
        int | None, Query(ge=1, le=MAX_PAGE, description="records per page: answer one page")
    ] = None,
    page_token: Annotated[
        str | None, Query(pattern=TOKEN_PATTERN, description="the previous page's next_page_token")
    ] = None,
) -> Response:
    """`cdsw.read_metrics`: records in `{"metrics": [...]}`, any one CRN is enough.

    Without paging the whole range is streamed, read from the store a page at a time, so the
    service holds one page whatever the range. With `page_size` (or `page_token`), one page and
    `next_page_token` (null after the last page); a page also ends after about 8 MB of metrics.
    """
    query = (model_deployment_crn, start_timestamp_ms, end_timestamp_ms, model_crn, model_build_crn)

    def page(token: str | None, size: int) -> MetricsPage:
        return store.read_metrics_page(*query, page_token=token, page_size=size)

    try:  # the first page before any byte is sent: a bad query is still a 422
        first = await run_in_threadpool(page, page_token, page_size or STREAM_PAGE)
    except ValueError as exc:
        raise ServiceError(422, str(exc)) from None
    if page_size is not None or page_token is not None:
        token = orjson.dumps(first.next_token).decode()
        return Response(f'{{"metrics":{first.json()},"next_page_token":{token}}}', media_type=JSON)

    async def stream() -> AsyncIterator[bytes]:
        current = first
        yield b'{"metrics":['
        yield ",".join(current.records).encode()
        while current.next_token is not None:
            current = await run_in_threadpool(page, current.next_token, STREAM_PAGE)
            if current.records:
                yield ("," + ",".join(current.records)).encode()
        yield b"]}"

    return StreamingResponse(stream(), media_type=JSON)
