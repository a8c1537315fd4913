"""`GET /health`: unauthenticated liveness and what is served, no secrets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from modelvigil.service.deps import Options, Service, Store
from modelvigil.store import StoreUnavailable

router = APIRouter()


@router.get("/health")
async def health(store: Store, service: Service, options: Options) -> dict[str, Any]:
    """Liveness and what is served (no secrets). `store` is `ok` or `unavailable`; `model_name`
    and `model_deployment_crn` name the default model, `models` every one."""
    identity = service.identity
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
        "models": [
            {"model_name": m.identity.model_name, "model_deployment_crn": m.identity.deployment_crn}
            for m in service.models
        ],
        "auth": options.auth,
        "store": store_state,
    }
