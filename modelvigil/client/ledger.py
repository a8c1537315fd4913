"""Scoring requests against an endpoint and keeping a ledger of what happened to each one.

One ledger row per request: its number and idempotency key, the uuid and predictions the service
returned, client-side latency and timestamps, the final HTTP status, how many attempts it took,
and, when it failed for good, why. The idempotency key is derived from (simulation id, request
number), never random, so a retried call, a retried task or a resumed run asks for the same record.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from modelvigil.client.endpoint import EndpointHTTPError, ModelEndpoint, Prediction
from modelvigil.client.retry import RetryPolicy, call_with_retries
from modelvigil.data import FEATURES

LEDGER_COLUMNS = [
    "request_no",
    "idempotency_key",
    "uuid",
    "rows_sent",
    "n_predictions",
    "predictions",
    "probabilities",
    "latency_ms",
    "sent_ms",
    "received_ms",
    "status",
    "attempts",
    "error",
]


def idempotency_key(simulation_id: str, request_no: int) -> str:
    return f"{simulation_id}/{request_no}"


def _payload(rows: np.ndarray) -> dict[str, Any]:
    # The array itself, not .tolist(): the endpoint's orjson writes it straight from memory.
    return {"dataframe_split": {"columns": FEATURES, "data": np.ascontiguousarray(rows, dtype=np.float64)}}


def score_requests(
    endpoint: ModelEndpoint,
    features: np.ndarray,
    request_numbers: Sequence[int],
    rows_per_request: int,
    simulation_id: str,
    *,
    concurrency: int,
    policy: RetryPolicy,
    first_request: int = 0,
) -> pd.DataFrame:
    """Score the given requests, `concurrency` at a time; request `k` carries rows `k*R .. k*R+R-1`
    of the traffic, and `features` starts at request `first_request`'s first row (a batch sent to
    another process carries its own rows only)."""

    def one(request_no: int) -> dict[str, Any]:
        start = (request_no - first_request) * rows_per_request
        rows = features[start : start + rows_per_request]
        key = idempotency_key(simulation_id, request_no)
        sent = time.time_ns() // 1_000_000
        outcome = call_with_retries(lambda: endpoint.predict(_payload(rows), idempotency_key=key), policy)
        received = time.time_ns() // 1_000_000
        result: Prediction | None = outcome.value
        error = outcome.error
        status = result.status if result else (error.status if isinstance(error, EndpointHTTPError) else None)
        return {
            "request_no": request_no,
            "idempotency_key": key,
            "uuid": result.uuid if result else None,
            "rows_sent": len(rows),
            "n_predictions": len(result.prediction) if result else 0,
            "predictions": result.prediction if result else None,
            "probabilities": result.probability if result else None,
            # The successful attempt's own round trip; retries' waiting shows in sent/received.
            "latency_ms": result.latency_ms if result else None,
            "sent_ms": sent,
            "received_ms": received,
            "status": status,
            "attempts": outcome.attempts,
            "error": None if error is None else f"{type(error).__name__}: {error}"[:500],
        }

    with cf.ThreadPoolExecutor(max_workers=concurrency) as pool:
        rows = list(pool.map(one, request_numbers))
    return pd.DataFrame(rows, columns=LEDGER_COLUMNS)


def scored_rows(ledger: pd.DataFrame, labels: np.ndarray, rows_per_request: int) -> pd.DataFrame:
    """One row per scored row of the successful requests, with its true label (`label`)."""
    ok = ledger[ledger["uuid"].notna()]
    if ok.empty:
        return pd.DataFrame(
            columns=[
                "request_no",
                "row",
                "uuid",
                "prediction",
                "probability",
                "label",
                "sent_ms",
                "received_ms",
            ]
        )
    exploded = ok[["request_no", "uuid", "predictions", "probabilities", "sent_ms", "received_ms"]].explode(
        ["predictions", "probabilities"]
    )
    exploded["row"] = exploded.groupby(level=0).cumcount()
    exploded = exploded.reset_index(drop=True).rename(
        columns={"predictions": "prediction", "probabilities": "probability"}
    )
    position = exploded["request_no"].to_numpy(dtype=np.int64) * rows_per_request + exploded["row"].to_numpy()
    exploded["label"] = labels[position]
    exploded["probability"] = pd.to_numeric(exploded["probability"], errors="coerce")
    return exploded[
        ["request_no", "row", "uuid", "prediction", "probability", "label", "sent_ms", "received_ms"]
    ]
