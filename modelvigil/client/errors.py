"""What can go wrong talking to a model service, as types: "is this retryable?" and "may the call
have run?" are attribute reads, never string matching.

    EndpointError
    ├── EndpointNotConfigured        nothing to talk to: no URL, no access key (never retried)
    ├── DeploymentNotFound           discovery found no such model or no deployed build (a LookupError too)
    ├── EndpointTimeout
    │   ├── EndpointConnectTimeout   no connection within the connect timeout: nothing was sent
    │   └── EndpointReadTimeout      sent, no answer in time: the call may have run
    ├── EndpointConnectionError      refused or unreachable: nothing was sent
    │   ├── ServiceUnreachable       no service answers where one was expected (connect())
    │   └── EndpointConnectionDropped  the answer broke off: the call may have run
    ├── EndpointHTTPError            an error status, with the response attached
    └── EndpointResponseError        a 2xx that breaks the protocol (not JSON, no uuid)

`retryable`: a second try can succeed (timeouts, connection errors, 429, 5xx). `may_have_executed`:
the server may have done the work, so a retry without an idempotency key could do it twice.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import requests


class EndpointError(Exception):
    """Base of every error this client raises."""

    retryable: bool = False
    may_have_executed: bool = True  # when in doubt: assume it ran


class EndpointNotConfigured(EndpointError):
    """Nothing to call: no service URL, API v2 URL, metrics routes or access key was given or found."""

    may_have_executed = False


class DeploymentNotFound(EndpointError, LookupError):
    """Discovery found no model of that name, or none of its builds is deployed."""

    may_have_executed = False


class EndpointTimeout(EndpointError):
    retryable = True


class EndpointConnectTimeout(EndpointTimeout):
    may_have_executed = False


class EndpointReadTimeout(EndpointTimeout):
    may_have_executed = True


class EndpointConnectionError(EndpointError):
    retryable = True
    may_have_executed = False


class EndpointConnectionDropped(EndpointConnectionError):
    """The connection broke off mid-answer: the server may have done the work."""

    may_have_executed = True


class ServiceUnreachable(EndpointConnectionError):
    """No service answers at the configured (or default) address."""


class EndpointHTTPError(EndpointError):
    """The server answered with an error status; the response is attached."""

    def __init__(self, status: int, body: Any, response: requests.Response, url: str) -> None:
        self.status = status
        self.body = body
        self.response = response
        message = body.get("error") or body.get("message") if isinstance(body, dict) else None
        super().__init__(f"HTTP {status} from {url}: {message or str(body)[:300]}")

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.status == 429 or self.status >= 500

    @property
    def may_have_executed(self) -> bool:  # type: ignore[override]
        # A 4xx (429 included) is a refusal before the work; a 5xx may come from half-way through.
        return self.status >= 500

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked us to wait (`Retry-After`, seconds or an HTTP date)."""
        value = self.response.headers.get("Retry-After")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class EndpointResponseError(EndpointError):
    """A 2xx answer that is not what the protocol promises (not JSON, `success: false`, no uuid)."""
