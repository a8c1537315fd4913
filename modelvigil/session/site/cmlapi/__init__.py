"""`cmlapi` in a `modelvigil session`: the calls of CML's API v2 client that discovery code makes
(the lab's `ApiUtility` among them), over HTTP to the local service's `/api/v2` routes.

As the generated client does: `default_client(url, cml_api_key)` with both read from the session's
environment when left out; results whose fields are attributes and which `.to_dict()`; with
`async_req=True`, a handle whose `.get()` gives the result; errors as `ApiException` with the status.
"""

from __future__ import annotations

import json
import os
from typing import Any

from modelvigil.session.api_records import ApiException, AsyncResult, Record

__all__ = ["ApiException", "CMLServiceApi", "default_client"]


class CMLServiceApi:
    def __init__(self, base_url: str, api_key: str | None) -> None:
        import requests

        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def _get(self, path: str, params: dict[str, Any], async_req: bool = False) -> Any:
        wanted = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items() if v is not None}
        answer = self.session.get(f"{self.base_url}/api/v2{path}", params=wanted, timeout=30)
        if answer.status_code >= 400:
            raise ApiException(answer.status_code, answer.reason, answer.text)
        result = Record(answer.json())
        return AsyncResult(result) if async_req else result

    # Query parameters pass as the generated client takes them (search_filter, sort, page_size,
    # page_token, ...); the service ignores those it does not know, as CML's does.
    def list_projects(self, async_req: bool = False, **params: Any) -> Any:
        return self._get("/projects", params, async_req)

    def list_models(self, project_id: str, async_req: bool = False, **params: Any) -> Any:
        return self._get(f"/projects/{project_id}/models", params, async_req)

    def list_model_builds(
        self, project_id: str, model_id: str, async_req: bool = False, **params: Any
    ) -> Any:
        return self._get(f"/projects/{project_id}/models/{model_id}/builds", params, async_req)

    def list_model_deployments(
        self, project_id: str, model_id: str, build_id: str, async_req: bool = False, **params: Any
    ) -> Any:
        path = f"/projects/{project_id}/models/{model_id}/builds/{build_id}/deployments"
        return self._get(path, params, async_req)

    def __getattr__(self, name: str) -> Any:
        """Any other call of CML's API (create_model, get_project, ...): a 501 that says so."""
        if name.startswith("_"):
            raise AttributeError(name)

        def not_here(*_: Any, **__: Any) -> Any:
            why = f"{name} is not emulated: the embedded service serves one model build and lists it"
            raise ApiException(501, "Not Implemented", why)

        return not_here


def default_client(url: str | None = None, cml_api_key: str | None = None) -> CMLServiceApi:
    """The client for this session's workspace: CDSW_API_URL without `/api/v1`, CDSW_APIV2_KEY."""
    base = url or os.environ.get("CDSW_API_URL", "").removesuffix("/api/v1")
    if not base:
        raise ValueError("no workspace URL: give url= or set CDSW_API_URL (modelvigil session sets it)")
    return CMLServiceApi(base, cml_api_key or os.environ.get("CDSW_APIV2_KEY"))
