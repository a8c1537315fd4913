"""Task-level retry policy: retry a task only when its failure was a transient endpoint error.

Used by tasks whose whole body is safe to run again (idempotent writes). Scoring retries each
call on its own instead (see tasks/scoring.py), so the two layers never multiply.
"""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

from modelvigil.client.retry import is_worth_retrying


def retry_on_transient_error(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: True for timeouts, connection errors, 429 and 5xx only."""
    try:
        state.result()
    except Exception as exc:
        return is_worth_retrying(exc)
    return False


# For tasks whose writes are idempotent (upserts, keyed aggregates): retried whole, transient only.
IDEMPOTENT_WRITE_RETRIES: dict[str, Any] = {
    "retries": 4,
    "retry_delay_seconds": exponential_backoff(backoff_factor=1),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_on_transient_error,
}


# For tasks that only read (records, deployments): retried whole, transient failures only.
READ_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_condition_fn": retry_on_transient_error,
}
