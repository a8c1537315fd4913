"""Scoring one batch of requests: a task per batch (Prefect costs ~2.5 ms per task run), never per row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelvigil.client import ModelEndpoint
from modelvigil.client.ledger import score_requests
from modelvigil.client.retry import RetryPolicy, is_worth_retrying


def retry_transient_request(exc: BaseException) -> bool:
    """Per call: retry timeouts, connection errors, 429 (after its Retry-After) and 5xx; never a 4xx.

    Retries happen per call inside the task, not as Prefect task retries: a task retry would
    resend the whole batch and could not honour one call's Retry-After.
    """
    return is_worth_retrying(exc)


# NO_CACHE: the endpoint holds a session (unhashable) and the feature matrix is large.
@task(name="score-batch", cache_policy=NO_CACHE)
def score_batch(
    endpoint: ModelEndpoint,
    features: np.ndarray,
    request_numbers: Sequence[int],
    rows_per_request: int,
    simulation_id: str,
    concurrency: int,
    max_attempts: int,
    first_request: int = 0,
) -> pd.DataFrame:
    """`features` starts at request `first_request` (0: the whole traffic's matrix)."""
    policy = RetryPolicy(max_attempts=max_attempts, should_retry=retry_transient_request)
    ledger = score_requests(
        endpoint,
        features,
        request_numbers,
        rows_per_request,
        simulation_id,
        concurrency=concurrency,
        policy=policy,
        first_request=first_request,
    )
    failed = int(ledger["uuid"].isna().sum())
    retries = int((ledger["attempts"] - 1).sum())
    get_run_logger().info(
        "scored requests %d-%d: %d failed for good, %d retries",
        request_numbers[0],
        request_numbers[-1],
        failed,
        retries,
    )
    return ledger
