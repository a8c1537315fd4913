"""Windowed accuracy of a simulation, tracked as CML aggregate records (`track_aggregate_metrics`)."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from modelvigil import metrics_sink
from modelvigil.endpoint import ModelEndpoint
from modelvigil.simulation import WindowAccuracy, accuracy_windows
from tasks.retries import retry_on_transient_error


@task(
    name="track-window-accuracy",
    cache_policy=NO_CACHE,
    retries=4,
    retry_delay_seconds=exponential_backoff(backoff_factor=1),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_on_transient_error,
)
def track_window_accuracy(
    endpoint: ModelEndpoint,
    rows: pd.DataFrame,
    window_size: int,
    deployment_crn: str,
    simulation_id: str,
) -> list[WindowAccuracy]:
    """One aggregate per window holding `accuracy` (as the lab) and `precision`, `recall`, `f1` beside it.

    Windows without any label are reported but not tracked: an accuracy of nothing is not 0.
    Each aggregate's idempotency key is (simulation, window), so a retry stores nothing twice.
    """
    found = accuracy_windows(rows, window_size)
    for w in found:
        if w.labelled == 0:
            continue
        metrics = {
            "accuracy": w.accuracy,
            "precision": w.precision,
            "recall": w.recall,
            "f1": w.f1,
            "labelled": w.labelled,
            "predictions": w.predictions,
        }
        metrics_sink.track_aggregate(
            endpoint, metrics, w.start_ms, w.end_ms, deployment_crn, f"{simulation_id}/accuracy/{w.window}"
        )
    return found
