"""The service's errors and the handlers that turn every failure into its documented body.

Every error answer is `{"success": false, "error": "<what is wrong>"}`; the API v2 routes answer
with CML API v2's `{"error", "code", "message", "details"}` instead.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelvigil.store import IdempotencyConflict, LimitExceeded, StoreUnavailable, UnknownPredictions


class ServiceError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class APIv2Error(Exception):
    """Errors of the API v2 routes, in CML API v2's body shape."""

    def __init__(self, status: int, message: str, code: int) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def failure(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"success": False, "error": message}, status, headers=headers)


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return failure(exc.status, exc.message, exc.headers)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, APIv2Error)
    body = {"error": exc.message, "code": exc.code, "message": exc.message, "details": []}
    return JSONResponse(body, exc.status)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return failure(exc.status_code, str(exc.detail))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return failure(400, "malformed JSON body")
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors[:10]]
    return failure(422, "; ".join(parts))


async def _store_down(_: Request, exc: Exception) -> JSONResponse:
    return failure(503, "metrics store unavailable; nothing was recorded, retry later", {"Retry-After": "1"})


async def _unknown_predictions(_: Request, exc: Exception) -> JSONResponse:
    return failure(404, f"nothing stored: {exc}")


async def _limit_exceeded(_: Request, exc: Exception) -> JSONResponse:
    return failure(422, f"nothing stored: {exc}")


async def _idempotency_conflict(_: Request, exc: Exception) -> JSONResponse:
    return failure(409, str(exc))


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(APIv2Error, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StoreUnavailable, _store_down)
    app.add_exception_handler(UnknownPredictions, _unknown_predictions)
    app.add_exception_handler(IdempotencyConflict, _idempotency_conflict)
    app.add_exception_handler(LimitExceeded, _limit_exceeded)
