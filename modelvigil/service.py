"""The embedded, CML-compatible model service (FastAPI).

Routes:
- `POST /model`: CML's model endpoint, access key in the body or as `?accessKey=`.
- `POST /metrics/delayed`, `POST /metrics/delayed/bulk`, `POST /metrics/aggregate`, `GET /metrics`:
  what CML's metrics SDK does inside a workspace, over HTTP for clients outside one.
- `GET /api/v2/projects/{project}/models[/{model}/builds[/{build}/deployments]]`: the CML API v2
  subset that deployment discovery uses.
- `GET /monitoring`: the live Monitoring page; `GET /monitoring/data`: its figures as JSON
  (see `monitoring_page`).
- `GET /health`: unauthenticated liveness, no secrets.

Every error is `{"success": false, "error": "<what is wrong>"}` (API v2 routes use CML's API v2
error body instead), with 400 malformed JSON, 401 bad or missing token, 404 unknown access key,
413 over the size limit, 422 wrong content, 429 all replicas busy, 503 store unreachable.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelvigil import monitoring_page
from modelvigil.data import FEATURES
from modelvigil.model import FraudModel
from modelvigil.payload import PayloadError, parse_request
from modelvigil.request_telemetry import PROCESS_SAMPLE_S, CountModelCalls, RequestTelemetry
from modelvigil.scoring import BatchScorer
from modelvigil.settings import ServiceIdentity
from modelvigil.store import MAX_MS, MetricsStore, StoreUnavailable, UnknownPredictions

MAX_BODY_BYTES = 5 * 1024 * 1024  # CML: requests should stay under 5 MB


@dataclass(frozen=True)
class ServiceOptions:
    auth: bool = True
    # CML: each replica serves one request at a time; the router waits up to 30 s, then 429.
    # Here `replicas` bounds the requests in flight; those in flight are scored in batches.
    replicas: int = 8
    queue_timeout_s: float = 30.0
    max_body_bytes: int = MAX_BODY_BYTES
    # OpenMP threads per model call; 1 is fastest under load on a small machine (see `scoring`).
    model_threads: int = 1


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


# ---- request bodies, documented in the OpenAPI schema ------------------------------------------


class ModelCall(BaseModel):
    """CML's model-call envelope. `request` is handed to the model as one object."""

    accessKey: str | None = Field(default=None, description="The model's access key (or ?accessKey=).")
    request: dict[str, Any] = Field(
        description="`dataframe_split`, `dataframe_records`, `inputs`, or one row as a flat object.",
        examples=[{"dataframe_split": {"columns": FEATURES, "data": [[0] * len(FEATURES)]}}],
    )


def _finite_json(metrics: dict[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(metrics, allow_nan=False)
    except ValueError:
        raise ValueError("metrics must be finite JSON values (no NaN or Infinity)") from None
    return metrics


FiniteMetrics = Annotated[dict[str, Any], Field(min_length=1), AfterValidator(_finite_json)]


class DelayedMetrics(BaseModel):
    prediction_uuid: str = Field(min_length=1, max_length=64)
    metrics: FiniteMetrics


class DelayedMetricsBulk(BaseModel):
    items: list[DelayedMetrics] = Field(min_length=1, max_length=100_000)


class AggregateMetrics(BaseModel):
    metrics: FiniteMetrics
    start_timestamp_ms: int = Field(ge=0, le=MAX_MS)
    end_timestamp_ms: int = Field(ge=0, le=MAX_MS)
    model_deployment_crn: str | None = Field(default=None, max_length=300)


class LimitBodySize:
    """Refuse bodies over the limit (413) before any route reads them, declared length or not."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"success": False, "error": f"request body over the limit of {self.limit} bytes"}, status_code=413
        )
        await response(scope, receive, send)


def create_app(
    identity: ServiceIdentity, model: FraudModel, store: MetricsStore, options: ServiceOptions | None = None
) -> FastAPI:
    options = options or ServiceOptions()
    scorer = BatchScorer(model, store, identity, model_threads=options.model_threads)

    telemetry = RequestTelemetry()

    async def sample_process() -> None:
        while True:
            telemetry.sample_process()
            await asyncio.sleep(PROCESS_SAMPLE_S)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sampler = asyncio.create_task(sample_process())
        yield
        sampler.cancel()
        scorer.close()

    app = FastAPI(
        title="modelvigil model service",
        description="A local, CML-compatible model endpoint and Model Metrics Store.",
        version="1",
        lifespan=lifespan,
    )
    app.add_middleware(LimitBodySize, limit=options.max_body_bytes)
    # Outermost, so refused calls (413 included) are counted too.
    app.add_middleware(CountModelCalls, telemetry=telemetry, deployment_crn=identity.deployment_crn)
    app.state.telemetry = telemetry
    replicas = asyncio.Semaphore(options.replicas)
    expected_token = identity.api_key.get_secret_value().encode()

    # async: a plain def would cost a thread-pool hop on every call (measured ~10% of server CPU).
    async def bearer(authorization: Annotated[str | None, Header(include_in_schema=False)] = None) -> None:
        if not options.auth:
            return
        if not authorization:
            raise ServiceError(401, "missing Authorization header: send 'Authorization: Bearer <API key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ServiceError(401, "Authorization header must be 'Bearer <API key>'")
        if not secrets.compare_digest(token.strip().encode(), expected_token):
            raise ServiceError(401, "User APikey not authorized to access model")

    authorized = [Depends(bearer)]

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"success": False, "error": exc.message}, exc.status, headers=exc.headers)

    @app.exception_handler(APIv2Error)
    async def _api_error(_: Request, exc: APIv2Error) -> JSONResponse:
        body = {"error": exc.message, "code": exc.code, "message": exc.message, "details": []}
        return JSONResponse(body, exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"success": False, "error": str(exc.detail)}, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"success": False, "error": "malformed JSON body"}, 400)
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors[:10]]
        return JSONResponse({"success": False, "error": "; ".join(parts)}, 422)

    @app.exception_handler(StoreUnavailable)
    async def _store_down(_: Request, exc: StoreUnavailable) -> JSONResponse:
        return JSONResponse(
            {"success": False, "error": "metrics store unavailable; nothing was recorded, retry later"},
            503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(UnknownPredictions)
    async def _unknown(_: Request, exc: UnknownPredictions) -> JSONResponse:
        return JSONResponse({"success": False, "error": f"nothing stored: {exc}"}, 404)

    # ---- the model endpoint ----------------------------------------------------------------

    @app.post(
        "/model",
        dependencies=authorized,
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
            422: {"description": "payload the model cannot score; the error names the row and column"},
            429: {"description": "all replicas busy (model.busy); see Retry-After"},
            503: {"description": "metrics store unavailable; nothing recorded"},
        },
    )
    async def call_model(
        request: Request,
        access_key_param: Annotated[str | None, Query(alias="accessKey", max_length=200)] = None,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
    ) -> Response:
        """Score rows with the model; one prediction record (one uuid) per call.

        Send an `Idempotency-Key` header to make retries safe: a repeated key returns the first
        call's response and stores nothing new.
        """
        try:
            # orjson: stdlib json was a third of the CPU of a 1,000-row call; NaN/Infinity are
            # refused by it as they must be (not JSON).
            body = orjson.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ServiceError(400, f"malformed JSON body: {exc}") from None
        if not isinstance(body, dict):
            raise ServiceError(422, "body must be a JSON object with 'accessKey' and 'request'")
        access_key = access_key_param or body.get("accessKey")
        if not access_key:
            raise ServiceError(422, "no access key: put 'accessKey' in the body or '?accessKey=' in the URL")
        if not isinstance(access_key, str) or not secrets.compare_digest(
            access_key.encode(), identity.access_key.encode()
        ):
            raise ServiceError(404, "no model deployment has that access key")
        if "request" not in body:
            raise ServiceError(422, "body has no 'request' object")
        try:
            rows = parse_request(body["request"])
        except PayloadError as exc:
            raise ServiceError(422, str(exc)) from None
        try:
            await asyncio.wait_for(replicas.acquire(), timeout=options.queue_timeout_s)
        except TimeoutError:
            raise ServiceError(
                429, "model.busy: all replicas busy, try again later", headers={"Retry-After": "1"}
            ) from None
        try:
            response = await asyncio.wrap_future(scorer.submit(rows, idempotency_key))
        finally:
            replicas.release()
        return Response(orjson.dumps({"success": True, "response": response}), media_type="application/json")

    # ---- metrics, as CML's SDK does them inside a workspace ---------------------------------

    @app.post("/metrics/delayed", dependencies=authorized)
    async def track_delayed(body: DelayedMetrics) -> dict[str, Any]:
        """`cdsw.track_delayed_metrics`: merge metrics (e.g. `final_label`) into one prediction."""
        written = await run_in_threadpool(store.merge_delayed, [(body.prediction_uuid, body.metrics)])
        return {"success": True, "stored": written}

    @app.post("/metrics/delayed/bulk", dependencies=authorized)
    async def track_delayed_bulk(body: DelayedMetricsBulk) -> dict[str, Any]:
        """Many delayed metrics in one transaction: all stored, or none (404 names the unknown)."""
        items = [(item.prediction_uuid, item.metrics) for item in body.items]
        written = await run_in_threadpool(store.merge_delayed, items)
        return {"success": True, "stored": written}

    @app.post("/metrics/aggregate", dependencies=authorized)
    async def track_aggregate(
        body: AggregateMetrics,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
    ) -> dict[str, Any]:
        """`cdsw.track_aggregate_metrics`: a record with an empty prediction uuid covering a window.

        With an `Idempotency-Key` header, a repeated key stores nothing new (`stored: false`).
        """
        if body.end_timestamp_ms < body.start_timestamp_ms:
            raise ServiceError(422, "end_timestamp_ms is before start_timestamp_ms")
        crn = body.model_deployment_crn or identity.deployment_crn
        if crn != identity.deployment_crn:
            raise ServiceError(404, "unknown model_deployment_crn")
        stored = await run_in_threadpool(
            lambda: store.record_aggregate(
                body.metrics,
                body.start_timestamp_ms,
                body.end_timestamp_ms,
                model_deployment_crn=crn,
                model_crn=identity.model_crn,
                model_build_crn=identity.build_crn,
                idempotency_key=idempotency_key,
            )
        )
        return {"success": True, "stored": stored}

    @app.get("/metrics", dependencies=authorized)
    async def read_metrics(
        model_deployment_crn: Annotated[str | None, Query(max_length=300)] = None,
        start_timestamp_ms: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
        end_timestamp_ms: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
        model_crn: Annotated[str | None, Query(max_length=300)] = None,
        model_build_crn: Annotated[str | None, Query(max_length=300)] = None,
    ) -> dict[str, Any]:
        """`cdsw.read_metrics`: records in `{"metrics": [...]}`, any one CRN is enough."""
        try:
            return await run_in_threadpool(
                store.read_metrics,
                model_deployment_crn,
                start_timestamp_ms,
                end_timestamp_ms,
                model_crn,
                model_build_crn,
            )
        except ValueError as exc:
            raise ServiceError(422, str(exc)) from None

    monitoring_page.add_routes(app, store, telemetry, identity.deployment_crn, authorized, ServiceError)

    # ---- CML API v2 subset ------------------------------------------------------------------

    def check_project(project_id: str) -> None:
        if project_id != identity.project_id:
            raise APIv2Error(404, f"project {project_id!r} not found", code=5)

    def model_json() -> dict[str, Any]:
        return {
            "id": identity.model_id,
            "name": identity.model_name,
            "crn": identity.model_crn,
            "project_id": identity.project_id,
            "access_key": identity.access_key,
            "auth_enabled": options.auth,
            "created_at": identity.created_at,
            "description": "fraud classifier served by modelvigil",
        }

    @app.get("/api/v2/projects/{project_id}/models", dependencies=authorized)
    async def list_models(
        project_id: str,
        search_filter: Annotated[str | None, Query(max_length=1000)] = None,
        sort: Annotated[str | None, Query(max_length=100)] = None,
        page_size: Annotated[int, Query(ge=1, le=1000)] = 10,
        page_token: Annotated[str | None, Query(max_length=100)] = None,
    ) -> dict[str, Any]:
        check_project(project_id)
        models = [model_json()]
        if search_filter:
            try:
                wanted = json.loads(search_filter)
            except ValueError:
                raise APIv2Error(400, "search_filter must be a JSON object", code=3) from None
            if not isinstance(wanted, dict):
                raise APIv2Error(400, "search_filter must be a JSON object", code=3)
            models = [m for m in models if all(str(v) in str(m.get(k, "")) for k, v in wanted.items())]
        return {"models": models, "next_page_token": ""}

    @app.get("/api/v2/projects/{project_id}/models/{model_id}/builds", dependencies=authorized)
    async def list_builds(project_id: str, model_id: str) -> dict[str, Any]:
        check_project(project_id)
        if model_id != identity.model_id:
            raise APIv2Error(404, f"model {model_id!r} not found", code=5)
        build = {
            "id": identity.build_id,
            "crn": identity.build_crn,
            "model_id": identity.model_id,
            "status": "built",
            "created_at": identity.created_at,
        }
        return {"model_builds": [build], "next_page_token": ""}

    @app.get(
        "/api/v2/projects/{project_id}/models/{model_id}/builds/{build_id}/deployments",
        dependencies=authorized,
    )
    async def list_deployments(project_id: str, model_id: str, build_id: str) -> dict[str, Any]:
        check_project(project_id)
        if model_id != identity.model_id or build_id != identity.build_id:
            raise APIv2Error(404, "model build not found", code=5)
        deployment = {
            "id": identity.deployment_id,
            "crn": identity.deployment_crn,
            "model_id": identity.model_id,
            "build_id": identity.build_id,
            "status": "deployed",
            "replicas": options.replicas,
            "created_at": identity.created_at,
        }
        return {"model_deployments": [deployment], "next_page_token": ""}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness and what is served (no secrets). `store` is `ok` or `unavailable`."""
        try:
            await run_in_threadpool(store.ping)
            store_state = "ok"
        except StoreUnavailable:
            store_state = "unavailable"
        return {
            "status": "ok",
            "model_name": identity.model_name,
            "project_id": identity.project_id,
            "model_deployment_crn": identity.deployment_crn,
            "auth": options.auth,
            "store": store_state,
        }

    return app
