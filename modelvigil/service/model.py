"""`POST /model`: CML's model endpoint, access key in the body or as `?accessKey=`."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from modelvigil.data import FEATURES
from modelvigil.service.deps import IdempotencyKey, Service
from modelvigil.service.errors import ServiceError
from modelvigil.service.payload import PayloadError, parse_request

router = APIRouter()
AGGREGATE_KEYS = "aggregate:"  # the store keeps aggregates' idempotency keys under this prefix
# Above these, parsing the request and encoding the answer move to a worker thread, so that one big
# call leaves the event loop free for every other caller (/health included). Below, the thread
# hop would cost more than the work (a single-row call parses in about 30 us).
OFF_LOOP_BYTES = 64 * 1024
OFF_LOOP_ROWS = 2_000


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
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ModelCall.model_json_schema()}},
        }
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
async def call_model(
    request: Request,
    service: Service,
    access_key_param: Annotated[str | None, Query(alias="accessKey", max_length=200)] = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Score rows with the model; one prediction record (one uuid) per call.

    Send an `Idempotency-Key` header to make retries safe: a repeated key returns the first
    call's response and stores nothing new.
    """
    raw = await request.body()
    if idempotency_key is not None and idempotency_key.startswith(AGGREGATE_KEYS):
        raise ServiceError(422, f"Idempotency-Key: keys starting with {AGGREGATE_KEYS!r} are the aggregates'")
    served = service.identity.access_key
    if len(raw) > OFF_LOOP_BYTES:  # parsing megabytes on the event loop would stall every caller
        rows = await run_in_threadpool(_rows, raw, access_key_param, served)
    else:
        rows = _rows(raw, access_key_param, served)
    try:
        await asyncio.wait_for(service.replicas.acquire(), timeout=service.options.queue_timeout_s)
    except TimeoutError:
        raise ServiceError(
            429, "model.busy: all replicas busy, try again later", headers={"Retry-After": "1"}
        ) from None
    try:
        # The same key with another body is a conflict (409), as payment APIs answer it.
        request_hash = hashlib.sha256(raw).hexdigest() if idempotency_key is not None else None
        response = await asyncio.wrap_future(service.scorer.submit(rows, idempotency_key, request_hash))
    finally:
        service.replicas.release()
    answer = {"success": True, "response": response}
    if len(rows) > OFF_LOOP_ROWS:
        return Response(await run_in_threadpool(orjson.dumps, answer), media_type="application/json")
    return Response(orjson.dumps(answer), media_type="application/json")


def _rows(raw: bytes, access_key_param: str | None, served_key: str) -> np.ndarray:
    """The call's feature matrix, or the ServiceError that says what is wrong with it."""
    try:
        # orjson: stdlib json was a third of the CPU of a 1,000-row call; NaN/Infinity are
        # refused by it as they must be (not JSON).
        body = orjson.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError(400, f"malformed JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise ServiceError(422, "body must be a JSON object with 'accessKey' and 'request'")
    access_key = access_key_param or body.get("accessKey")
    if not access_key:
        raise ServiceError(422, "no access key: put 'accessKey' in the body or '?accessKey=' in the URL")
    if not isinstance(access_key, str) or not secrets.compare_digest(
        access_key.encode(), served_key.encode()
    ):
        raise ServiceError(404, "no model deployment has that access key")
    if "request" not in body:
        raise ServiceError(422, "body has no 'request' object")
    try:
        return parse_request(body["request"])
    except PayloadError as exc:
        raise ServiceError(422, str(exc)) from None
