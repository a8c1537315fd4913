"""The service's own Monitoring tab: `GET /monitoring` (a page), `GET /monitoring/app.js` (its
hand-written script) and `GET /monitoring/data` (the JSON the page polls; part of the API).

The page and script are static and hold nothing secret: the page asks for the API key and sends it
as a Bearer header from the browser's session storage, never in a URL. The data route needs the
same key as the rest of the API. Its figures are sums over pre-counted 5-second buckets (HTTP
side: `telemetry`, in memory; model side: `live_counts`, in the store), so a refresh costs
the same with a thousand stored records or a million.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from modelvigil.protocol import BUCKET_MS, MAX_MS, now_ms
from modelvigil.service.deps import NO_NUL, Service
from modelvigil.service.errors import ServiceError
from modelvigil.service.telemetry import RequestTelemetry
from modelvigil.store import MetricsStore, live_counts

STATIC = Path(__file__).parent / "static"
MAX_RANGE_MS = 31 * 24 * 3600 * 1000
MAX_BUCKETS = 2_000
TARGET_BUCKETS = 120


class ServiceSeries(BaseModel):
    requests: list[int]
    requests_per_second: list[float]
    failed: dict[str, list[int]] = Field(description="HTTP status -> failed calls per bucket")
    latency_p50_ms: list[float | None]
    latency_p95_ms: list[float | None]
    request_bytes_mean: list[float | None]
    response_bytes_mean: list[float | None]
    cpu_percent: list[float | None] = Field(
        description="CPU of the service process (every deployment it serves), 100 = one core busy"
    )
    memory_rss_mb: list[float | None] = Field(description="largest resident memory of the service process")


class ModelSeries(BaseModel):
    calls: list[int] = Field(description="prediction records stored per bucket")
    predictions: dict[str, list[int]] = Field(
        description="class (as JSON text) -> predicted rows per bucket: the 20 most predicted in the "
        'range, the rest as "(other)"; a number with a fraction is not a class (see numeric)'
    )
    numeric: list[int] = Field(description="rows predicted as a number with a fraction (a regression's)")
    labelled: list[int] = Field(description="rows with ground truth, by prediction time")
    correct: list[int]
    label_coverage: list[float | None]
    accuracy: list[float | None]
    mean_prediction: list[float | None] = Field(description="mean of the numeric predictions")
    mae: list[float | None] = Field(description="mean absolute error of the numeric predictions labelled")
    rmse: list[float | None]
    estimated_accuracy: list[float | None] = Field(
        description="the model's mean confidence: the accuracy to expect before labels (uncalibrated; "
        "it sees covariate shift, not concept drift)"
    )


class Totals(BaseModel):
    requests: int
    failed: int
    calls: int
    predictions: int
    labelled: int
    correct: int
    label_coverage: float | None
    accuracy: float | None
    estimated_accuracy: float | None
    mean_prediction: float | None
    mae: float | None
    rmse: float | None


class MonitoringData(BaseModel):
    deployment_crn: str
    task: str = Field(
        description='"regression" when most predictions are numbers with a fraction, "binary '
        'classification" with at most two classes, "multi-class classification", or "unknown" '
        "(no prediction in the range)"
    )
    deployments: list[str] = Field(description="the served ones first, then others the store has")
    deployment_names: dict[str, str] = Field(description="deployment CRN -> model name, for the served ones")
    start_ms: int
    end_ms: int
    step_ms: int
    bucket_starts: list[int]
    service: ServiceSeries
    model: ModelSeries
    totals: Totals
    service_counting_since_ms: int = Field(description="HTTP figures cover calls since this time")


class RangeError(ValueError):
    pass


def choose_step(start_ms: int, end_ms: int, step_ms: int | None) -> int:
    if end_ms <= start_ms:
        raise RangeError(f"end_ms ({end_ms}) must be after start_ms ({start_ms})")
    if end_ms - start_ms > MAX_RANGE_MS:
        raise RangeError(f"range over 31 days ({(end_ms - start_ms) / 86_400_000:.1f} days): narrow it")
    if step_ms is None:
        raw = -(-(end_ms - start_ms) // TARGET_BUCKETS)
        step_ms = max(BUCKET_MS, -(-raw // BUCKET_MS) * BUCKET_MS)
    elif step_ms % BUCKET_MS:
        raise RangeError(f"step_ms must be a multiple of {BUCKET_MS} (the counting bucket), got {step_ms}")
    if (end_ms - start_ms) / step_ms > MAX_BUCKETS:
        raise RangeError(f"{(end_ms - start_ms) // step_ms} buckets: at most {MAX_BUCKETS}; raise step_ms")
    return step_ms


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _mean(total: float, rows: int) -> float | None:
    """A mean in the model's own units, unrounded (a regression's may be 1e-6 or 1e6)."""
    return total / rows if rows else None


def _root(value: float | None) -> float | None:
    return None if value is None else math.sqrt(max(value, 0.0))


def _shown_classes(predictions: dict[str, list[int]]) -> dict[str, list[int]]:
    """The most predicted classes by name, the rest (and what the store already folded) as OTHER."""
    ranked = sorted(predictions, key=lambda k: (k == live_counts.OTHER, -sum(predictions[k]), k))
    named = ranked[: live_counts.CLASSES_PER_BUCKET]
    folded = [k for k in ranked if k not in named or k == live_counts.OTHER]
    shown = {k: predictions[k] for k in sorted(named) if k != live_counts.OTHER}
    if folded:
        shown[live_counts.OTHER] = [sum(col) for col in zip(*(predictions[k] for k in folded), strict=True)]
    return shown


def _task(predictions: dict[str, list[int]], numeric: int) -> str:
    classes = sum(sum(v) for v in predictions.values())
    if not classes and not numeric:
        return "unknown"
    if numeric > classes:
        return "regression"
    binary = len(predictions) <= 2 and live_counts.OTHER not in predictions
    return "binary classification" if binary else "multi-class classification"


def monitoring_data(
    store: MetricsStore,
    telemetry: RequestTelemetry,
    crn: str,
    served: dict[str, str],
    start_ms: int,
    end_ms: int,
    step_ms: int,
) -> MonitoringData:
    first = start_ms - start_ms % step_ms
    starts = list(range(first, end_ms, step_ms))
    n = len(starts)
    service = telemetry.read(crn, starts, step_ms)
    counted, summed = store.live_series(crn, first, end_ms, step_ms)
    series: dict[str, list[int]] = {}
    predictions: dict[str, list[int]] = {}
    for b, metric, label, count in counted:
        i = (b - first) // step_ms
        if 0 <= i < n:
            target = predictions.setdefault(label, [0] * n) if metric == live_counts.PREDICTIONS else None
            (target if target is not None else series.setdefault(metric, [0] * n))[i] += count
    sums: dict[str, list[float]] = {}
    for b, metric, total in summed:
        i = (b - first) // step_ms
        if 0 <= i < n:
            sums.setdefault(metric, [0.0] * n)[i] += total

    def counts(metric: str) -> list[int]:
        return series.get(metric, [0] * n)

    def totals(metric: str) -> list[float]:
        return sums.get(metric, [0.0] * n)

    calls, labelled, correct = (
        counts(live_counts.CALLS),
        counts(live_counts.LABELLED),
        counts(live_counts.CORRECT),
    )
    confidence, scored = counts(live_counts.CONFIDENCE), counts(live_counts.SCORED)
    numeric, errors = counts(live_counts.NUMERIC), counts(live_counts.NUMERIC_LABELLED)
    prediction_sum = totals(live_counts.PREDICTION_SUM)
    abs_error, squared_error = totals(live_counts.ABS_ERROR_SUM), totals(live_counts.SQUARED_ERROR_SUM)
    predicted = [sum(s[i] for s in predictions.values()) + numeric[i] for i in range(n)]
    failed_total = sum(sum(v) for v in service["failed"].values())
    return MonitoringData(
        deployment_crn=crn,
        task=_task(predictions, sum(numeric)),
        deployments=[*served, *sorted(set(store.live_deployments()) - set(served))],
        deployment_names=served,
        start_ms=start_ms,
        end_ms=end_ms,
        step_ms=step_ms,
        bucket_starts=starts,
        service=ServiceSeries(**service),
        model=ModelSeries(
            calls=calls,
            predictions=_shown_classes(predictions),
            numeric=numeric,
            labelled=labelled,
            correct=correct,
            label_coverage=[_ratio(labelled[i], predicted[i]) for i in range(n)],
            accuracy=[_ratio(correct[i], labelled[i]) for i in range(n)],
            estimated_accuracy=[_ratio(confidence[i], 1000 * scored[i]) for i in range(n)],
            mean_prediction=[_mean(prediction_sum[i], numeric[i]) for i in range(n)],
            mae=[_mean(abs_error[i], errors[i]) for i in range(n)],
            rmse=[_root(_mean(squared_error[i], errors[i])) for i in range(n)],
        ),
        totals=Totals(
            requests=sum(service["requests"]),
            failed=failed_total,
            calls=sum(calls),
            predictions=sum(predicted),
            labelled=sum(labelled),
            correct=sum(correct),
            label_coverage=_ratio(sum(labelled), sum(predicted)),
            accuracy=_ratio(sum(correct), sum(labelled)),
            estimated_accuracy=_ratio(sum(confidence), 1000 * sum(scored)),
            mean_prediction=_mean(sum(prediction_sum), sum(numeric)),
            mae=_mean(sum(abs_error), sum(errors)),
            rmse=_root(_mean(sum(squared_error), sum(errors))),
        ),
        service_counting_since_ms=telemetry.since_ms,
    )


# The page, its script and its style come from this service only, and nothing may frame them
# (clickjacking) or reinterpret their types (sniffing); the data route answers with the same.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter()


@router.get("/monitoring", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "monitoring.html", media_type="text/html", headers=SECURITY_HEADERS)


@router.get("/monitoring/app.js", include_in_schema=False)
async def script() -> FileResponse:
    return FileResponse(STATIC / "monitoring.js", media_type="text/javascript", headers=SECURITY_HEADERS)


@router.get("/monitoring/app.css", include_in_schema=False)
async def style() -> FileResponse:
    return FileResponse(STATIC / "monitoring.css", media_type="text/css", headers=SECURITY_HEADERS)


# Asked for by every browser tab (as /favicon.ico unless the page names its own).
@router.get("/monitoring/favicon.svg", include_in_schema=False)
@router.get("/favicon.ico", include_in_schema=False)
async def icon() -> FileResponse:
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml", headers=SECURITY_HEADERS)


@router.get("/monitoring/data", response_model=MonitoringData)
async def data(
    service: Service,
    response: Response,
    deployment: Annotated[
        str | None, Query(max_length=300, pattern=NO_NUL, description="default: the served one")
    ] = None,
    start_ms: Annotated[int | None, Query(ge=0, le=MAX_MS, description="default: end - 5 min")] = None,
    end_ms: Annotated[int | None, Query(ge=0, le=MAX_MS, description="default: now")] = None,
    step_ms: Annotated[
        int | None, Query(ge=BUCKET_MS, le=MAX_RANGE_MS, description="default: about 120 buckets")
    ] = None,
) -> MonitoringData:
    """The live Monitoring page's figures for one deployment, per time bucket.

    HTTP side (`service`): every `POST /model` this process answered, refused ones included.
    Model side (`model`): prediction records and ground truth as stored, accuracy and label
    coverage by prediction time, updated as labels arrive.
    """
    end = now_ms() if end_ms is None else end_ms
    start = end - 5 * 60 * 1000 if start_ms is None else start_ms
    try:
        step = choose_step(start, end, step_ms)
    except RangeError as exc:
        raise ServiceError(422, str(exc)) from None
    served = {m.identity.deployment_crn: m.identity.model_name for m in service.models}
    response.headers.update(SECURITY_HEADERS)
    return await run_in_threadpool(
        monitoring_data,
        service.store,
        service.telemetry,
        deployment or service.identity.deployment_crn,
        served,
        start,
        end,
        step,
    )
