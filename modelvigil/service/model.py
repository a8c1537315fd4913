"""`POST /model`: CML's model endpoint, access key in the body or as `?accessKey=`."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from modelvigil.data import FEATURES
from modelvigil.service.call_body import CallRefused, call_rows
from modelvigil.service.deps import IDEMPOTENCY_KEY_DOC, MAX_IDEMPOTENCY_KEY, ServiceState
from modelvigil.service.errors import ServiceError
from modelvigil.service.telemetry import CALLED_DEPLOYMENT

router = APIRouter()
AGGREGATE_KEYS = "aggregate:"  # the store keeps aggregates' idempotency keys under this prefix
# Above these, parsing the request and encoding the answer move to a worker thread, so that one big
# call leaves the event loop free for every other caller (/health included). Below, the thread
# hop would cost more than the work (a single-row call parses in about 30 us).
OFF_LOOP_BYTES = 64 * 1024
OFF_LOOP_ROWS = 2_000
# Above this, even a worker thread would hold the GIL too long while parsing (see `parse_pool`).
IN_PROCESS_BYTES = 1024 * 1024
MAX_ACCESS_KEY_PARAM = 200

# The route reads its query and header itself, with the words FastAPI's validation would use:
# resolving them as FastAPI parameters cost 12% of the service's CPU per single-row call
# (profiled under 8 pooled clients). They are documented here instead.
_PARAMETERS = [
    {
        "name": "accessKey",
        "in": "query",
        "required": False,
        "description": "The model's access key, when the body has none.",
        "schema": {"type": "string", "maxLength": MAX_ACCESS_KEY_PARAM},
    },
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": IDEMPOTENCY_KEY_DOC,
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
    },
]


class ModelCall(BaseModel):
    """CML's model-call envelope. `request` is handed to the model as one object."""

    accessKey: str | None = Field(default=None, description="The model's access key (or ?accessKey=).")
    request: dict[str, Any] = Field(
        description="`dataframe_split`, `dataframe_records`, `inputs`, or one row as a flat object.",
        examples=[{"dataframe_split": {"columns": FEATURES, "data": [[0] * len(FEATURES)]}}],
    )


@router.post(
    "/model",
    openapi_extra={
        "parameters": _PARAMETERS,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ModelCall.model_json_schema()}},
        },
    },
    responses={
        400: {"description": "malformed JSON"},
        401: {"description": "missing or bad API key"},
        404: {"description": "unknown access key"},
        413: {"description": "body over 5 MB"},
        409: {"description": "Idempotency-Key used before with a different request; nothing stored"},
        422: {"description": "payload the model cannot score; the error names the row and column"},
        429: {"description": "all replicas busy (model.busy); see Retry-After"},
        503: {"description": "metrics store unavailable; nothing recorded"},
    },
)
async def call_model(request: Request) -> Response:
    """Score rows with the model; one prediction record (one uuid) per call.

    Send an `Idempotency-Key` header to make retries safe: a repeated key returns the first
    call's response and stores nothing new.
    """
    service: ServiceState = request.app.state.service
    access_key_param, idempotency_key = _parameters(request)
    raw = await request.body()
    if idempotency_key is not None and idempotency_key.startswith(AGGREGATE_KEYS):
        raise ServiceError(422, f"Idempotency-Key: keys starting with {AGGREGATE_KEYS!r} are the aggregates'")
    served = service.served_keys
    try:
        if len(raw) > IN_PROCESS_BYTES and service.parse_pool is not None:
            rows, access_key = await service.parse_pool.rows(raw, access_key_param, served)
        elif len(raw) > OFF_LOOP_BYTES:  # parsing on the event loop would stall every caller
            rows, access_key = await run_in_threadpool(call_rows, raw, access_key_param, served)
        else:
            rows, access_key = call_rows(raw, access_key_param, served)
    except CallRefused as refused:
        raise ServiceError(refused.status, refused.message) from None
    called = service.by_access_key[access_key]
    request.scope[CALLED_DEPLOYMENT] = called.identity.deployment_crn  # for the call counters
    await _take_replica(service)
    try:
        # The same key with another body, or for another model, is a conflict (409), as payment
        # APIs answer it: the models share one store, and a body may leave the key to the URL.
        request_hash = (
            hashlib.sha256(called.identity.deployment_crn.encode() + b"\n" + raw).hexdigest()
            if idempotency_key is not None
            else None
        )
        response = await asyncio.wrap_future(called.scorer.submit(rows, idempotency_key, request_hash))
    finally:
        service.replicas.release()
    answer = {"success": True, "response": response}
    if len(rows) > OFF_LOOP_ROWS:
        return Response(await run_in_threadpool(orjson.dumps, answer), media_type="application/json")
    return Response(orjson.dumps(answer), media_type="application/json")


def _parameters(request: Request) -> tuple[str | None, str | None]:
    """`?accessKey=` (the last one given) and the `Idempotency-Key` header (the first), or a 422
    naming each one out of bounds."""
    access_key = request.query_params.get("accessKey")
    idempotency_key = request.headers.get("idempotency-key")
    problems = []
    if access_key is not None and len(access_key) > MAX_ACCESS_KEY_PARAM:
        problems.append(f"query.accessKey: String should have at most {MAX_ACCESS_KEY_PARAM} characters")
    if idempotency_key is not None and not idempotency_key:
        problems.append("header.Idempotency-Key: String should have at least 1 character")
    elif idempotency_key is not None and len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        problems.append(
            f"header.Idempotency-Key: String should have at most {MAX_IDEMPOTENCY_KEY} characters"
        )
    if problems:
        raise ServiceError(422, "; ".join(problems))
    return access_key, idempotency_key


async def _take_replica(service: ServiceState) -> None:
    """A replica for this call, waiting at most the queue timeout for one (then 429)."""
    if not service.replicas.locked():  # one free: taken without a timer (the usual case)
        await service.replicas.acquire()
        return
    try:
        await asyncio.wait_for(service.replicas.acquire(), timeout=service.options.queue_timeout_s)
    except TimeoutError:
        raise ServiceError(
            429, "model.busy: all replicas busy, try again later", headers={"Retry-After": "1"}
        ) from None
