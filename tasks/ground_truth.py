"""Submitting delayed ground truth: idempotent (an upsert per uuid and key), so safe to retry whole."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelvigil.client.backends import MetricsBackend
from tasks.retries import IDEMPOTENT_WRITE_RETRIES


@task(name="submit-ground-truth", cache_policy=NO_CACHE, **IDEMPOTENT_WRITE_RETRIES)
def submit_ground_truth(metrics_backend: MetricsBackend, items: list[tuple[str, dict[str, Any]]]) -> int:
    """In bulk to a modelvigil service (all or nothing per chunk), one call per uuid inside CML."""
    sent = metrics_backend.track_delayed_bulk(items)
    get_run_logger().info("submitted ground truth for %d predictions", sent)
    return sent
