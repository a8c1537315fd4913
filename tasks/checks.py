"""The prediction checks (Great Expectations) as a task, with their table artifact."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from modelvigil.checks import CheckReport, check_predictions
from modelvigil.service.embedded import home_service_url
from modelvigil.settings import Settings
from modelvigil.shared_links import shared_url


@task(name="validate-predictions", cache_policy=NO_CACHE)
def validate_predictions(
    requests: pd.DataFrame,
    rows: pd.DataFrame,
    label_set: Sequence[int],
    docs_dir: Path,
    settings: Settings | None = None,
) -> CheckReport:
    """The checks, their table artifact, and a link artifact that opens the Data Docs in a browser
    (signed, on this home's service, when one runs and the site is under the home)."""
    report = check_predictions(requests, rows, label_set, docs_dir)
    verdict = "passed" if report.success else "FAILED"
    create_table_artifact(
        [o.as_row() for o in report.outcomes],
        key="prediction-checks",
        description=f"Great Expectations on the returned predictions: {verdict}",
    )
    if report.data_docs is not None:
        base = home_service_url(settings) if settings is not None else None
        link = shared_url(base, settings.home, docs_dir) if base and settings is not None else None
        create_link_artifact(
            link or report.data_docs.resolve().as_uri(),
            link_text=f"Data Docs of the prediction checks ({verdict})",
            key="prediction-checks-data-docs",
        )
    return report
