"""Submitting delayed ground truth, one chunk per call: a retried task sends only the chunks no
earlier try had acknowledged (each call also retries on its own first)."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelvigil.client.backends import MetricsBackend
from modelvigil.client.delivery import Delivery, chunked
from tasks.retries import IDEMPOTENT_WRITE_RETRIES


@task(name="submit-ground-truth", cache_policy=NO_CACHE, **IDEMPOTENT_WRITE_RETRIES)
def submit_ground_truth(
    metrics_backend: MetricsBackend, items: list[tuple[str, dict[str, Any]]], delivery: Delivery[Any]
) -> int:
    """In bulk to a modelvigil service (all or nothing per chunk), one call per uuid inside CML.
    `delivery` remembers acknowledged chunks across this task's tries: pass the same one to each."""
    sent = delivery.send(chunked(items, metrics_backend.bulk_chunk), metrics_backend.track_delayed_bulk)
    logger = get_run_logger()
    if sent.before:
        logger.info("%d chunks acknowledged by an earlier try, not sent again", sent.before)
    logger.info("submitted ground truth for %d predictions", len(items))
    return len(items)
