"""HTTP client for a CML model endpoint (real or embedded), its metrics routes and API v2 discovery.

One pooled `requests.Session`, explicit (connect, read) timeouts, and the small error hierarchy of
`errors` so "is this retryable?" is a type check: timeouts, connection errors, 429 and 5xx are;
any other 4xx is the caller's mistake and never is.

Every call but scoring is retried here, each on its own, with the endpoint's `retry` policy: a
failed ground-truth chunk, aggregate, metrics read or discovery page is sent again by itself, not
with everything before it. A call that may already have run is sent again only when repeating it
is harmless (a GET, an upsert, a keyed aggregate). Scoring (`predict`) is never retried here: its
caller retries each call with its own policy and idempotency key, and two layers would multiply.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError

from modelvigil.client.errors import (
    DeploymentNotFound,
    EndpointConnectionDropped,
    EndpointConnectionError,
    EndpointConnectTimeout,
    EndpointHTTPError,
    EndpointNotConfigured,
    EndpointReadTimeout,
    EndpointResponseError,
)
from modelvigil.client.retry import RetryPolicy, call_with_retries

DEFAULT_TIMEOUT = (3.05, 30.0)  # CML's default model request timeout is 30 s
READ_PAGE = 2_000  # records per `GET /metrics` call (the service also ends a page after ~8 MB)


class _Session(requests.Session):
    """A `requests.Session` that looks up the environment's proxy and CA settings once per host.

    requests reads them again on every call (scanning every environment variable twice): 82 us
    of the ~600 us of client CPU a single-row model call costs here. The answer depends only on
    the scheme and host, and on environment variables a running client does not see change.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        if proxies or stream is not None or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        host = urlsplit(url)[:2]
        found = self._environment.get(host)
        if found is None:
            found = self._environment[host] = super().merge_environment_settings(url, {}, None, None, None)
        return {**found, "proxies": dict(found["proxies"])}  # requests may edit what it is given

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Unpickled in another process (a Dask worker): that process's environment is looked up anew.
        super().__setstate__(state)
        self._environment = {}


@dataclass(frozen=True)
class Prediction:
    prediction: list[Any]
    uuid: str
    model_deployment_crn: str | None
    probability: list[float] | None
    latency_ms: float
    status: int


@dataclass(frozen=True)
class DeploymentDetails:
    """What the lab's `ApiUtility.get_latest_deployment_details(model_name)` returned."""

    model_name: str
    model_id: str
    model_crn: str
    model_access_key: str
    latest_build_id: str
    latest_deployment_crn: str


class ModelEndpoint:
    """Talks to one model service. Thread-safe for concurrent calls (one pooled session)."""

    def __init__(
        self,
        model_url: str,
        *,
        access_key: str | None = None,
        api_key: str | None = None,
        api_url: str | None = None,
        metrics_url: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        pool_size: int = 32,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.model_url = model_url
        self.api_url = api_url
        self.metrics_url = metrics_url
        self.access_key = access_key
        self.timeout = timeout
        self.retry = retry or RetryPolicy()  # for every call but predict (see the module docstring)
        self.session = _Session()
        # No urllib3 retries: retrying is the caller's decision (see the module docstring).
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    @classmethod
    def for_service(cls, base_url: str, **kwargs: Any) -> ModelEndpoint:
        """A modelvigil service (or anything speaking its routes) at `base_url`."""
        base = base_url.rstrip("/")
        return cls(f"{base}/model", api_url=f"{base}/api/v2", metrics_url=base, **kwargs)

    @classmethod
    def for_cml(cls, domain: str, **kwargs: Any) -> ModelEndpoint:
        """A real CML workspace: models at `modelservice.<domain>`, API v2 at `<domain>/api/v2`.

        Metrics routes do not exist over HTTP in CML (its SDK writes them from inside the
        workspace), so `metrics_url` stays unset and the metrics methods refuse.
        """
        host = domain.removeprefix("https://").removeprefix("http://").rstrip("/")
        return cls(f"https://modelservice.{host}/model", api_url=f"https://{host}/api/v2", **kwargs)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ModelEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never show the key
        return f"ModelEndpoint(model_url={self.model_url!r})"

    # ---- transport -----------------------------------------------------------------------------

    def _send(
        self, method: str, url: str, *, idempotent: bool, **kwargs: Any
    ) -> tuple[Any, requests.Response]:
        """One call, retried on its own by the endpoint's policy (see the module docstring)."""
        policy = replace(self.retry, idempotent=idempotent)
        outcome = call_with_retries(lambda: self._send_once(method, url, **kwargs), policy)
        if outcome.error is not None:
            raise outcome.error
        assert outcome.value is not None
        return outcome.value

    def _send_once(self, method: str, url: str, **kwargs: Any) -> tuple[Any, requests.Response]:
        if "json" in kwargs:  # orjson: a 1,000-row body costs a fifth of what requests' json does
            headers = {**(kwargs.pop("headers", None) or {}), "Content-Type": "application/json"}
            body = kwargs.pop("json")
            try:
                kwargs["data"] = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
            except TypeError:  # what orjson refuses and JSON allows, such as integers beyond 64 bits
                kwargs["data"] = json.dumps(body).encode()
            kwargs["headers"] = headers
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.ConnectTimeout as exc:  # before ConnectionError: it is one of those too
            raise EndpointConnectTimeout(
                f"{method} {url}: no connection within {self.timeout[0]} s: {exc}"
            ) from exc
        except requests.Timeout as exc:
            raise EndpointReadTimeout(f"{method} {url} timed out after {self.timeout}: {exc}") from exc
        except requests.ConnectionError as exc:
            if _answer_broke_off(exc):
                raise EndpointConnectionDropped(
                    f"{method} {url}: connection dropped mid-answer: {exc}"
                ) from exc
            raise EndpointConnectionError(f"{method} {url}: cannot connect: {exc}") from exc
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
            # The answer broke off mid-way: the server may have done the work. Retryable, and
            # safe to retry only with an idempotency key.
            raise EndpointConnectionDropped(f"{method} {url}: connection dropped mid-answer: {exc}") from exc
        try:
            # stdlib, not orjson: orjson turns integers beyond 64 bits into floats without a word.
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise EndpointHTTPError(response.status_code, body, response, url)
        if not isinstance(body, dict):
            raise EndpointResponseError(f"{method} {url}: expected a JSON object, got {str(body)[:200]!r}")
        return body, response

    # ---- the model endpoint ------------------------------------------------------------------

    def call_model(
        self, ipt: Mapping[str, Any], *, access_key: str | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """POST CML's envelope; return the whole parsed envelope, as `cdsw.call_model` does.

        Retried here (this is the lab's and the facade's path): without an idempotency key only
        where the call cannot have run, so a retry never scores a request twice.
        """
        return self._call(ipt, access_key, idempotency_key, retried=True)[0]

    def predict(self, ipt: Mapping[str, Any], *, idempotency_key: str | None = None) -> Prediction:
        """Call the model and check the answer is a metrics-enabled response (uuid, prediction)."""
        started = time.perf_counter()
        body, response = self._call(ipt, None, idempotency_key, retried=False)
        latency = (time.perf_counter() - started) * 1000.0
        inner = body.get("response")
        if body.get("success") is not True or not isinstance(inner, dict):
            raise EndpointResponseError(f"model call did not succeed: {str(body)[:300]}")
        if not isinstance(inner.get("uuid"), str) or "prediction" not in inner:
            raise EndpointResponseError(
                "model response has no 'uuid' and 'prediction': is metrics tracking enabled for this model?"
            )
        prediction = inner["prediction"]
        return Prediction(
            prediction=prediction if isinstance(prediction, list) else [prediction],
            uuid=inner["uuid"],
            model_deployment_crn=inner.get("model_deployment_crn"),
            probability=inner.get("probability"),
            latency_ms=latency,
            status=response.status_code,
        )

    def _call(
        self, ipt: Mapping[str, Any], access_key: str | None, idempotency_key: str | None, *, retried: bool
    ) -> tuple[dict[str, Any], requests.Response]:
        key = access_key or self.access_key
        if not key:
            raise EndpointNotConfigured(
                "no model access key: set MODELVIGIL_ACCESS_KEY or discover it by model name"
            )
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body = {"accessKey": key, "request": dict(ipt)}
        if not retried:
            return self._send_once("POST", self.model_url, json=body, headers=headers)
        return self._send(
            "POST", self.model_url, idempotent=bool(idempotency_key), json=body, headers=headers
        )

    # ---- metrics (modelvigil service only) ----------------------------------------------------

    def _metrics(self, path: str) -> str:
        if not self.metrics_url:
            raise EndpointNotConfigured(
                "this endpoint has no metrics routes (a real CML workspace writes metrics through its "
                "own SDK inside the workspace: use modelvigil.cdsw there)"
            )
        return f"{self.metrics_url}{path}"

    def track_delayed_metrics(self, metrics: Mapping[str, Any], prediction_uuid: str) -> None:
        body = {"prediction_uuid": prediction_uuid, "metrics": dict(metrics)}
        self._send("POST", self._metrics("/metrics/delayed"), idempotent=True, json=body)  # an upsert

    def track_delayed_metrics_bulk(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """All-or-nothing merge of many predictions' delayed metrics; returns values written."""
        payload = {"items": [{"prediction_uuid": u, "metrics": dict(m)} for u, m in items]}
        url = self._metrics("/metrics/delayed/bulk")
        return int(self._send("POST", url, idempotent=True, json=payload)[0]["stored"])

    def track_aggregate_metrics(
        self,
        metrics: Mapping[str, Any],
        start_timestamp_ms: int,
        end_timestamp_ms: int,
        model_deployment_crn: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        payload = {
            "metrics": dict(metrics),
            "start_timestamp_ms": int(start_timestamp_ms),
            "end_timestamp_ms": int(end_timestamp_ms),
            "model_deployment_crn": model_deployment_crn,
        }
        url = self._metrics("/metrics/aggregate")
        self._send("POST", url, idempotent=idempotency_key is not None, json=payload, headers=headers)

    def read_metrics(
        self,
        model_deployment_crn: str | None = None,
        start_timestamp_ms: int | None = None,
        end_timestamp_ms: int | None = None,
        model_crn: str | None = None,
        model_build_crn: str | None = None,
    ) -> dict[str, Any]:
        """CML's `{"metrics": [...]}`, read a page per call (each call retried on its own)."""
        query = (model_deployment_crn, start_timestamp_ms, end_timestamp_ms, model_crn, model_build_crn)
        return {"metrics": list(self.iter_metrics(*query))}

    def iter_metrics(
        self,
        model_deployment_crn: str | None = None,
        start_timestamp_ms: int | None = None,
        end_timestamp_ms: int | None = None,
        model_crn: str | None = None,
        model_build_crn: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """`read_metrics`' records one at a time, a page read (and retried) at a time: a reader
        that folds them as they come holds one page, whatever the range."""
        params = {
            "model_deployment_crn": model_deployment_crn,
            "start_timestamp_ms": start_timestamp_ms,
            "end_timestamp_ms": end_timestamp_ms,
            "model_crn": model_crn,
            "model_build_crn": model_build_crn,
        }
        params = {k: v for k, v in params.items() if v is not None}
        params["page_size"] = READ_PAGE
        return self._pages(self._metrics("/metrics"), "metrics", params)

    def health(self) -> dict[str, Any]:
        base = self.metrics_url or self.model_url.rsplit("/", 1)[0]
        return self._send("GET", f"{base}/health", idempotent=True)[0]

    # ---- CML API v2 discovery ----------------------------------------------------------------

    def _api(self, path: str) -> str:
        if not self.api_url:
            raise EndpointNotConfigured("no API v2 URL configured for discovery")
        return f"{self.api_url}{path}"

    def _pages(
        self, url: str, list_key: str, params: dict[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a paged list (`next_page_token`, as CML's API v2 and `/metrics` page)."""
        params = dict(params or {})
        seen_tokens: set[str] = set()
        while True:
            body = self._send("GET", url, idempotent=True, params=params)[0]
            yield from body.get(list_key) or []
            token = body.get("next_page_token") or ""
            if not token or token in seen_tokens:  # a repeated token would loop forever
                return
            seen_tokens.add(token)
            params["page_token"] = token

    def list_models(self, project_id: str, model_name: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"page_size": 100}
        if model_name:
            # As the text it is: escaped, a CJK name of 170 characters would pass the filter's 1,000.
            params["search_filter"] = json.dumps({"name": model_name}, ensure_ascii=False)
        return list(self._pages(self._api(f"/projects/{project_id}/models"), "models", params))

    def list_builds(self, project_id: str, model_id: str) -> list[dict[str, Any]]:
        path = f"/projects/{project_id}/models/{model_id}/builds"
        return list(self._pages(self._api(path), "model_builds", {"sort": "created_at"}))

    def list_deployments(self, project_id: str, model_id: str, build_id: str) -> list[dict[str, Any]]:
        path = f"/projects/{project_id}/models/{model_id}/builds/{build_id}/deployments"
        return list(self._pages(self._api(path), "model_deployments", {"page_size": 100}))

    def latest_deployment(self, project_id: str, model_name: str) -> DeploymentDetails:
        """The newest `deployed` deployment of the model named exactly `model_name`.

        Sorted by `created_at` ourselves: the public examples take `[-1]` of the default order,
        which is not guaranteed to be the newest.
        """
        models = [m for m in self.list_models(project_id, model_name) if m.get("name") == model_name]
        if not models:
            known = [str(m.get("name")) for m in self.list_models(project_id)]
            shown = ", ".join(repr(n) for n in known[:10])
            shown += f" and {len(known) - 10} more" if len(known) > 10 else ""
            raise DeploymentNotFound(
                f"no model named {model_name!r} in project {project_id} "
                + (f"(its models: {shown})" if known else "(it has no model)")
            )
        model = max(models, key=lambda m: m.get("created_at") or "")
        candidates: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        for build in self.list_builds(project_id, model["id"]):
            for dep in self.list_deployments(project_id, model["id"], build["id"]):
                if dep.get("status") == "deployed":
                    candidates.append((dep.get("created_at") or "", build, dep))
        if not candidates:
            raise DeploymentNotFound(f"model {model_name!r} has no deployment with status 'deployed'")
        _, build, dep = max(candidates, key=lambda c: c[0])
        return DeploymentDetails(
            model_name=model["name"],
            model_id=model["id"],
            model_crn=model["crn"],
            model_access_key=model["access_key"],
            latest_build_id=build["id"],
            latest_deployment_crn=dep["crn"],
        )


def _answer_broke_off(exc: requests.ConnectionError) -> bool:
    """A connection that closed after the request went out (no answer) comes as urllib3's
    ProtocolError ("Connection aborted"); a refused or unreachable one as MaxRetryError."""
    return bool(exc.args) and isinstance(exc.args[0], ProtocolError)
