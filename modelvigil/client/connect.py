"""Which service to talk to, with which keys: the one place that reads settings into a client.

Order: `MODELVIGIL_SERVICE_URL` (or an explicit URL) -> a real CML workspace from `CDSW_DOMAIN`
-> the embedded service on this machine's default port. Keys: explicit settings, else the
embedded service's `service.json`, else (access key only) discovery by model name.
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
    deployment: DeploymentDetails
    metrics: MetricsBackend  # chosen here, once: the service's HTTP routes or CML's SDK

    def close(self) -> None:
        self.endpoint.close()


def connect(
    settings: Settings | None = None,
    base_url: str | None = None,
    *,
    pool_size: int = 32,
    retry: RetryPolicy | None = None,
) -> Connection:
    """Discover the deployment and connect to it; every call but scoring is retried by `retry`."""
    settings = settings or Settings()
    cml = CMLEnvironment.from_env()
    url = base_url or settings.service_url
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
        project_id = cml.project_id
    else:
        url = url or f"http://127.0.0.1:{settings.port}"
        identity = read_identity(settings)
        api_key = settings.api_key or (identity.api_key if identity else None)
        endpoint = ModelEndpoint.for_service(
            url, api_key=api_key.get_secret_value() if api_key else None, pool_size=pool_size, retry=retry
        )
        try:
            project_id = str(endpoint.health()["project_id"])
        except (EndpointTimeout, EndpointConnectionError) as exc:
            endpoint.close()
            raise ServiceUnreachable(
                f"no modelvigil service answers at {url}: start one with `modelvigil serve` "
                f"or set MODELVIGIL_SERVICE_URL ({exc})"
            ) from exc
        except (EndpointHTTPError, EndpointResponseError, KeyError) as exc:
            endpoint.close()
            raise EndpointResponseError(
                f"{url} answers, but not as a modelvigil service ({exc}): check MODELVIGIL_SERVICE_URL"
            ) from exc
    deployment = endpoint.latest_deployment(project_id, settings.model_name)
    endpoint.access_key = settings.access_key or deployment.model_access_key
    return Connection(endpoint, deployment, backends.for_endpoint(endpoint))
