"""Great Expectations checks on the predictions a model endpoint returned.

Two suites, because the facts live at two grains:
- per request (one row per call): uuid present and unique, one prediction per row sent, latency
  present and not negative;
- per scored row: label in the model's label set, probability within [0, 1].

A fresh ephemeral context per call: GX contexts are not thread-safe (one shared by a thread pool
validated one batch's data as another's in our measurement), and a context is cheap next to the
~2 s GX import.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

MAX_FAILING_IDS = 20  # GX's SUMMARY format lists up to 20 failing rows per expectation


@dataclass(frozen=True)
class ExpectationOutcome:
    suite: str
    expectation: str
    column: str
    success: bool
    checked: int
    unexpected: int
    failing_uuids: list[str]

    def as_row(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "expectation": self.expectation,
            "column": self.column,
            "success": self.success,
            "checked": self.checked,
            "unexpected": self.unexpected,
            "failing uuids": ", ".join(self.failing_uuids),
        }


@dataclass(frozen=True)
class CheckReport:
    success: bool
    outcomes: list[ExpectationOutcome]
    data_docs: Path | None = None
    failing_uuids: list[str] = field(default_factory=list)

    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]


REQUEST_COLUMNS = ["uuid", "rows_sent", "n_predictions", "latency_ms"]
ROW_COLUMNS = ["uuid", "prediction", "probability"]


def _quiet_context(docs_dir: Path | None) -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    # TQDM_DISABLE does not reach GX's bars; this does.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        context.add_data_docs_site(
            site_name="predictions",
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
            },
        )
    return context


def check_predictions(
    requests: pd.DataFrame,
    rows: pd.DataFrame,
    label_set: Sequence[Any],
    docs_dir: Path | None = None,
) -> CheckReport:
    """Validate one run's predictions. `requests`: REQUEST_COLUMNS; `rows`: ROW_COLUMNS."""
    for name, frame, needed in (("requests", requests, REQUEST_COLUMNS), ("rows", rows, ROW_COLUMNS)):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} frame lacks column(s) {missing}")
    import great_expectations as gx
    import great_expectations.expectations as gxe

    context = _quiet_context(docs_dir)
    source = context.data_sources.add_pandas("predictions")
    suites = {
        "requests": [
            gxe.ExpectColumnValuesToNotBeNull(column="uuid"),
            gxe.ExpectColumnValuesToBeUnique(column="uuid"),
            gxe.ExpectColumnPairValuesToBeEqual(column_A="n_predictions", column_B="rows_sent"),
            gxe.ExpectColumnValuesToNotBeNull(column="latency_ms"),
            gxe.ExpectColumnValuesToBeBetween(column="latency_ms", min_value=0),
        ],
        "rows": [
            gxe.ExpectColumnValuesToBeInSet(column="prediction", value_set=list(label_set)),
            gxe.ExpectColumnValuesToNotBeNull(column="probability"),
            gxe.ExpectColumnValuesToBeBetween(column="probability", min_value=0, max_value=1),
        ],
    }
    frames = {"requests": requests, "rows": rows}
    actions = []
    if docs_dir is not None:
        from great_expectations.checkpoint import UpdateDataDocsAction

        actions.append(UpdateDataDocsAction(name="docs", site_names=["predictions"]))
    outcomes: list[ExpectationOutcome] = []
    success = True
    for name, expectations in suites.items():
        suite = context.suites.add(gx.ExpectationSuite(name=f"{name}_suite"))
        for expectation in expectations:
            suite.add_expectation(expectation)
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(f"{name}_all")
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        # One checkpoint per frame: a checkpoint passes one batch_parameters to all its definitions.
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{name}_checkpoint",
                validation_definitions=[definition],
                actions=actions,
                result_format={"result_format": "SUMMARY", "unexpected_index_column_names": ["uuid"]},
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": frames[name]})
        success = success and bool(result.success)
        for run_result in result.run_results.values():
            for r in run_result.results:
                config = r.expectation_config
                kwargs = config.kwargs
                details = r.result or {}
                ids = [
                    _uuid_text(row.get("uuid"))
                    for row in (details.get("partial_unexpected_index_list") or [])
                    if isinstance(row, dict)
                ]
                outcomes.append(
                    ExpectationOutcome(
                        suite=name,
                        expectation=config.type,
                        column=kwargs.get("column") or f"{kwargs.get('column_A')} = {kwargs.get('column_B')}",
                        success=bool(r.success),
                        checked=int(details.get("element_count") or len(frames[name])),
                        unexpected=int(details.get("unexpected_count") or 0),
                        failing_uuids=list(dict.fromkeys(ids))[:MAX_FAILING_IDS],
                    )
                )
    failing = list(dict.fromkeys(u for o in outcomes for u in o.failing_uuids))
    index = docs_dir / "index.html" if docs_dir is not None and (docs_dir / "index.html").exists() else None
    return CheckReport(success=success, outcomes=outcomes, data_docs=index, failing_uuids=failing)


def _uuid_text(value: Any) -> str:
    return "<no uuid>" if value is None or (isinstance(value, float) and value != value) else str(value)
