"""Task-level retry policy: retry a task only when its failure was a transient endpoint error.

Used by tasks whose whole body is safe to run again (idempotent writes). Scoring retries each
call on its own instead (see tasks/scoring.py), so the two layers never multiply.
"""

from __future__ import annotations

from typing import Any

from modelvigil.retry import is_worth_retrying


def retry_on_transient_error(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: True for timeouts, connection errors, 429 and 5xx only."""
    try:
        state.result()
    except Exception as exc:
        return is_worth_retrying(exc)
    return False
