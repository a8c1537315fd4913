"""Submitting delayed ground truth: idempotent (an upsert per uuid and key), so safe to retry whole."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelvigil import metrics_sink
from modelvigil.endpoint import ModelEndpoint
from tasks.retries import IDEMPOTENT_WRITE_RETRIES


@task(name="submit-ground-truth", cache_policy=NO_CACHE, **IDEMPOTENT_WRITE_RETRIES)
def submit_ground_truth(endpoint: ModelEndpoint, items: list[tuple[str, dict[str, Any]]]) -> int:
    sent = metrics_sink.submit_delayed(endpoint, items)
    get_run_logger().info("submitted ground truth for %d predictions", sent)
    return sent
