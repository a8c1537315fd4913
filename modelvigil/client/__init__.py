"""What talks to a model endpoint or CML: the endpoint client and its errors, the retry policy,
discovery (`connect`), the metrics backends, the scoring ledger and ground truth.

The client side of the house: it never imports the service or the store.
"""

from modelvigil.client.endpoint import DeploymentDetails, ModelEndpoint, Prediction
from modelvigil.client.errors import (
    DeploymentNotFound,
    EndpointConnectionDropped,
    EndpointConnectionError,
    EndpointConnectTimeout,
    EndpointError,
    EndpointHTTPError,
    EndpointNotConfigured,
    EndpointReadTimeout,
    EndpointResponseError,
    EndpointTimeout,
    ServiceUnreachable,
)

__all__ = [
    "DeploymentDetails",
    "DeploymentNotFound",
    "EndpointConnectTimeout",
    "EndpointConnectionDropped",
    "EndpointConnectionError",
    "EndpointError",
    "EndpointHTTPError",
    "EndpointNotConfigured",
    "EndpointReadTimeout",
    "EndpointResponseError",
    "EndpointTimeout",
    "ModelEndpoint",
    "Prediction",
    "ServiceUnreachable",
]
