"""The prediction checks (Great Expectations) as a task, with their table artifact."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from modelvigil.checks import CheckReport, check_predictions


@task(name="validate-predictions", cache_policy=NO_CACHE)
def validate_predictions(
    requests: pd.DataFrame, rows: pd.DataFrame, label_set: Sequence[int], docs_dir: Path
) -> CheckReport:
    report = check_predictions(requests, rows, label_set, docs_dir)
    verdict = "passed" if report.success else "FAILED"
    docs = f" Data Docs: {report.data_docs}" if report.data_docs else ""
    create_table_artifact(
        [o.as_row() for o in report.outcomes],
        key="prediction-checks",
        description=f"Great Expectations on the returned predictions: {verdict}.{docs}",
    )
    return report
