"""Which service to talk to, with which keys: the one place that reads settings into a client.

Order: an explicit URL -> `MODELVIGIL_SERVICE_URL` -> a modelvigil service named by a plain
`http://` `CDSW_API_URL` or `CDSW_DOMAIN` (a local stand-in for a workspace) -> a real CML
workspace from `CDSW_DOMAIN` -> the embedded service on this machine's default port. Keys:
explicit settings, else the embedded service's `service.json`, else `CDSW_APIV2_KEY`; the access
key, unless given, comes from discovery of the model.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelvigil.client import backends
from modelvigil.client.backends import MetricsBackend
from modelvigil.client.endpoint import DeploymentDetails, ModelEndpoint
from modelvigil.client.errors import (
    EndpointConnectionError,
    EndpointHTTPError,
    EndpointNotConfigured,
    EndpointResponseError,
    EndpointTimeout,
    ServiceUnreachable,
)
from modelvigil.client.retry import RetryPolicy
from modelvigil.settings import CMLEnvironment, Settings, read_identity


@dataclass
class Connection:
    endpoint: ModelEndpoint
    metrics: MetricsBackend  # chosen here, once: the service's HTTP routes or CML's SDK
    project_id: str
    model_name: str
    access_key: str | None  # given explicitly; else the discovered model's
    _deployment: DeploymentDetails | None = None

    @property
    def deployment(self) -> DeploymentDetails:
        """The model's newest deployment, found through API v2 on first use (and the endpoint's
        access key with it, unless one was given)."""
        if self._deployment is None:
            self._deployment = self.endpoint.latest_deployment(self.project_id, self.model_name)
            self.endpoint.access_key = self.access_key or self._deployment.model_access_key
        return self._deployment

    def close(self) -> None:
        self.endpoint.close()


def connect(
    settings: Settings | None = None,
    base_url: str | None = None,
    *,
    pool_size: int = 32,
    retry: RetryPolicy | None = None,
    discover: bool = True,
) -> Connection:
    """Connect to the service and (unless `discover` is False: then on first use) find the
    deployment; every call but scoring is retried by `retry`.

    The model is the one `settings` names explicitly, else (a modelvigil service) the one it serves.
    """
    settings = settings or Settings()
    cml = CMLEnvironment.from_env()
    url = base_url or settings.service_url or (cml.local_service_url if cml else None)
    if url is None and cml is not None:
        if not cml.project_id:
            raise EndpointNotConfigured(
                "CDSW_DOMAIN is set but CDSW_PROJECT_ID is not: cannot discover the model"
            )
        api_key = settings.api_key or cml.api_key
        endpoint = ModelEndpoint.for_cml(
            cml.domain,
            api_key=api_key.get_secret_value() if api_key else None,
            pool_size=pool_size,
            retry=retry,
        )
        project_id, model_name = cml.project_id, settings.model_name
    else:
        url = url or f"http://127.0.0.1:{settings.port}"
        identity = read_identity(settings)
        api_key = (
            settings.api_key or (identity.api_key if identity else None) or (cml.api_key if cml else None)
        )
        endpoint = ModelEndpoint.for_service(
            url, api_key=api_key.get_secret_value() if api_key else None, pool_size=pool_size, retry=retry
        )
        try:
            health = endpoint.health()
            project_id = str(health["project_id"])
            served = str(health.get("model_name") or settings.model_name)
            model_name = settings.model_name if settings.names_model else served
        except (EndpointTimeout, EndpointConnectionError) as exc:
            endpoint.close()
            why = "no answer in time" if isinstance(exc, EndpointTimeout) else "cannot connect"
            todo = (
                "check the service URL given (--service-url or MODELVIGIL_SERVICE_URL)"
                if base_url or settings.service_url
                else "start one with `./run serve` (or set MODELVIGIL_SERVICE_URL)"
            )
            raise ServiceUnreachable(f"no modelvigil service answers at {url} ({why}): {todo}") from exc
        except (EndpointHTTPError, EndpointResponseError, KeyError) as exc:
            endpoint.close()
            raise EndpointResponseError(
                f"{url} answers, but not as a modelvigil service ({exc}): check MODELVIGIL_SERVICE_URL"
            ) from exc
    endpoint.access_key = settings.access_key
    conn = Connection(endpoint, backends.for_endpoint(endpoint), project_id, model_name, settings.access_key)
    if discover:
        try:
            conn.deployment  # noqa: B018  (found now, so that a wrong name fails here)
        except BaseException:
            conn.close()
            raise
    return conn
