"""The embedded, CML-compatible model service: a FastAPI app assembled from one router per surface.

- `model`: `POST /model`, CML's model endpoint.
- `metrics`: `POST /metrics/delayed[/bulk]`, `POST /metrics/aggregate`, `GET /metrics`: CML's
  metrics SDK over HTTP, for clients outside a workspace.
- `apiv2`: the CML API v2 subset that deployment discovery uses.
- `monitoring`: the live Monitoring page and its data.
- `health`: unauthenticated liveness, no secrets.
- `shared_files`: the home's reports and Data Docs, opened from signed links (no key in a URL).

Errors: see `errors` (400 malformed JSON, 401 bad or missing token, 404 unknown access key, 413
over the size limit, 422 wrong content, 429 all replicas busy, 503 store unreachable).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from modelvigil.model import FraudModel
from modelvigil.service import apiv2, health, metrics, model, monitoring, shared_files
from modelvigil.service.added_latency import AddedLatency
from modelvigil.service.auth import BearerFirst
from modelvigil.service.deps import ServedModel, ServiceState
from modelvigil.service.errors import install_handlers
from modelvigil.service.limits import LimitBodies
from modelvigil.service.options import ServiceOptions
from modelvigil.service.parse_pool import ParsePool
from modelvigil.service.scoring import BatchScorer
from modelvigil.service.telemetry import PROCESS_SAMPLE_S, CountModelCalls, RequestTelemetry
from modelvigil.settings import ServiceIdentity
from modelvigil.shared_links import WeakSigningKey, signing_key
from modelvigil.store import MetricsStore


async def _sample_process(telemetry: RequestTelemetry) -> None:
    while True:
        telemetry.sample_process()
        await asyncio.sleep(PROCESS_SAMPLE_S)


def _link_key(home: Path | None) -> bytes | None:
    """The home's link-signing key; None (no link opens, each says why) when there is no home or
    its key file is blank: the service still serves everything else."""
    if home is None:
        return None
    try:
        return signing_key(home)
    except WeakSigningKey as exc:
        logging.getLogger(__name__).warning("shared links off: %s", exc)
        return None


def create_app(
    identity: ServiceIdentity,
    fraud_model: FraudModel,
    store: MetricsStore,
    options: ServiceOptions | None = None,
    home: Path | None = None,
    *,
    more_models: Sequence[tuple[ServiceIdentity, FraudModel]] = (),
) -> FastAPI:
    """The service of `fraud_model` as `identity` (the default model), and of each of
    `more_models` (further models of the same project), all recording into `store`."""
    options = options or ServiceOptions()
    served = [(identity, fraud_model), *more_models]
    state = ServiceState(
        models=tuple(
            ServedModel(i, BatchScorer(m, store, i, model_threads=options.model_threads)) for i, m in served
        ),
        store=store,
        options=options,
        telemetry=RequestTelemetry(),
        replicas=asyncio.Semaphore(options.replicas),
        expected_token=identity.api_key.get_secret_value().encode(),
        parse_pool=ParsePool(options.parse_workers) if options.parse_workers else None,
        home=home,
        link_key=_link_key(home),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sampler = asyncio.create_task(_sample_process(state.telemetry))
        yield
        sampler.cancel()
        for served_model in state.models:
            served_model.scorer.close()
        if state.parse_pool is not None:
            state.parse_pool.close()

    app = FastAPI(
        title="modelvigil model service",
        description="A local, CML-compatible model endpoint and Model Metrics Store.",
        version="1",
        lifespan=lifespan,
        # The interactive docs load their scripts from a CDN: off, so every page works offline and
        # the live page's CSP holds everywhere. The schema stays at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = state
    install_handlers(app)
    routers = (model, metrics, monitoring, apiv2, health, shared_files)
    for router in (module.router for module in routers):
        app.include_router(router)
    app.add_middleware(LimitBodies, options=options)
    app.add_middleware(BearerFirst, expected_token=state.expected_token if options.auth else None)
    if options.added_latency_ms > 0:
        app.add_middleware(AddedLatency, latency_ms=options.added_latency_ms)
    # Outermost, so refused calls (401 and 413 included) are counted too.
    app.add_middleware(CountModelCalls, telemetry=state.telemetry, deployment_crn=identity.deployment_crn)
    return app
