"""Windowed accuracy of a simulation, tracked as CML aggregate records (`track_aggregate_metrics`)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelvigil.client.backends import MetricsBackend
from modelvigil.client.delivery import Delivery
from modelvigil.simulation import WindowAccuracy, accuracy_windows
from tasks.retries import IDEMPOTENT_WRITE_RETRIES


@task(name="track-window-accuracy", cache_policy=NO_CACHE, **IDEMPOTENT_WRITE_RETRIES)
def track_window_accuracy(
    metrics_backend: MetricsBackend,
    rows: pd.DataFrame,
    window_size: int,
    deployment_crn: str,
    simulation_id: str,
    delivery: Delivery[Any],
) -> list[WindowAccuracy]:
    """One aggregate per window holding `accuracy` (as the lab) and `precision`, `recall`, `f1` beside it.

    Windows without any label are reported but not tracked: an accuracy of nothing is not 0.
    Each aggregate's idempotency key is (simulation, window), so a repeat stores nothing twice on a
    modelvigil service; `delivery` remembers the windows acknowledged across this task's tries, so
    a retry does not even send them again (CML's SDK has no key: there a repeat would store twice).
    """
    found = accuracy_windows(rows, window_size)

    def track(w: WindowAccuracy) -> None:
        metrics = {
            "accuracy": w.accuracy,
            "precision": w.precision,
            "recall": w.recall,
            "f1": w.f1,
            "labelled": w.labelled,
            "predictions": w.predictions,
        }
        metrics_backend.track_aggregate(
            metrics, w.start_ms, w.end_ms, deployment_crn, f"{simulation_id}/accuracy/{w.window}"
        )

    sent = delivery.send(((w.window, w) for w in found if w.labelled), track)
    if sent.before:
        get_run_logger().info("%d windows acknowledged by an earlier try, not sent again", sent.before)
    return found
