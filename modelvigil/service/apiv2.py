"""The subset of CML API v2 that deployment discovery uses, in its routes, field names and errors.

`GET /api/v2/projects[/{project}/models[/{model}/builds[/{build}/deployments]]]` for the served
models: one project, each model with one build and one deployment, as CML lists them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query

from modelvigil.service.deps import Identity, Options, Service, ServiceState
from modelvigil.service.errors import APIv2Error
from modelvigil.settings import ServiceIdentity

router = APIRouter(prefix="/api/v2/projects")


def _check_project(identity: ServiceIdentity, project_id: str) -> None:
    if project_id != identity.project_id:
        raise APIv2Error(404, f"project {project_id!r} not found", code=5)


@router.get("")
async def list_projects(
    identity: Identity,
    search_filter: Annotated[str | None, Query(max_length=1000)] = None,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 10,
    page_token: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """The one project the embedded service's model lives in."""
    project = {
        "id": identity.project_id,
        "name": "modelvigil",
        "description": "the embedded service's project",
        "created_at": identity.created_at,
    }
    return {"projects": _matching([project], search_filter), "next_page_token": ""}


def _matching(items: list[dict[str, Any]], search_filter: str | None) -> list[dict[str, Any]]:
    """CML's `search_filter`: a JSON object of field -> text the field contains."""
    if not search_filter:
        return items
    try:
        wanted = json.loads(search_filter)
    except ValueError:
        raise APIv2Error(400, "search_filter must be a JSON object", code=3) from None
    if not isinstance(wanted, dict):
        raise APIv2Error(400, "search_filter must be a JSON object", code=3)
    return [m for m in items if all(str(v) in str(m.get(k, "")) for k, v in wanted.items())]


@router.get("/{project_id}/models")
async def list_models(
    project_id: str,
    service: Service,
    search_filter: Annotated[str | None, Query(max_length=1000)] = None,
    sort: Annotated[str | None, Query(max_length=100)] = None,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 10,
    page_token: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    _check_project(service.identity, project_id)
    models = [
        {
            "id": m.identity.model_id,
            "name": m.identity.model_name,
            "crn": m.identity.model_crn,
            "project_id": m.identity.project_id,
            "access_key": m.identity.access_key,
            "auth_enabled": service.options.auth,
            "created_at": m.identity.created_at,
            "description": "fraud classifier served by modelvigil",
        }
        for m in service.models
    ]
    return {"models": _matching(models, search_filter), "next_page_token": ""}


def _model(service: ServiceState, project_id: str, model_id: str) -> ServiceIdentity:
    _check_project(service.identity, project_id)
    found = next((m.identity for m in service.models if m.identity.model_id == model_id), None)
    if found is None:
        raise APIv2Error(404, f"model {model_id!r} not found", code=5)
    return found


@router.get("/{project_id}/models/{model_id}/builds")
async def list_builds(project_id: str, model_id: str, service: Service) -> dict[str, Any]:
    identity = _model(service, project_id, model_id)
    build = {
        "id": identity.build_id,
        "crn": identity.build_crn,
        "model_id": identity.model_id,
        "status": "built",
        "created_at": identity.created_at,
    }
    return {"model_builds": [build], "next_page_token": ""}


@router.get("/{project_id}/models/{model_id}/builds/{build_id}/deployments")
async def list_deployments(
    project_id: str, model_id: str, build_id: str, service: Service, options: Options
) -> dict[str, Any]:
    identity = _model(service, project_id, model_id)
    if build_id != identity.build_id:
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
