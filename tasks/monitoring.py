"""Monitoring tasks: read the records, analyse them, render the report, raise the alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.runtime import flow_run
from prefect.tasks import exponential_backoff

from modelvigil.analysis.alerts import RUN_EVENT, resource_id, run_payload
from modelvigil.analysis.analyse import Analysis, analyse
from modelvigil.analysis.config import Alert, MonitoringConfig
from modelvigil.analysis.plots import PLOTS, draw_all
from modelvigil.analysis.readers import Records, read_records
from modelvigil.analysis.report import data_uri, json_safe, write_report
from modelvigil.settings import Settings
from tasks.retries import retry_on_transient_error

INLINE_PLOTS = ("accuracy_band", "drift_heatmap", "latency_over_time")


@task(
    name="read-records",
    cache_policy=NO_CACHE,
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=retry_on_transient_error,
)
def load_records(settings: Settings, config: MonitoringConfig, time_range: tuple[int, int]) -> Records:
    records = read_records(
        settings,
        deployment_crn=config.deployment_crn,
        time_range=time_range,
        reference_range=config.reference_range_ms(),
    )
    get_run_logger().info(
        "read %d scored rows and %d aggregates of %s from the %s",
        len(records.frame),
        len(records.aggregates),
        records.deployment_crn,
        records.source,
    )
    return records


@task(name="analyse", cache_policy=NO_CACHE)
def analyse_records(records: Records, config: MonitoringConfig) -> Analysis:
    return analyse(records.frame, records.aggregates, config, records.reference)


@task(name="render-report", cache_policy=NO_CACHE)
def render_report(
    analysis: Analysis, config: MonitoringConfig, folder: Path, context: dict[str, Any]
) -> Path:
    plots = draw_all(analysis, config.thresholds, folder)
    index = write_report(analysis, plots, folder, context)
    lines = [f"# Monitoring {context.get('deployment_crn', '')}", ""]
    lines += [f"**{len(analysis.alerts)} alert(s)**", ""]
    lines += [f"- {alert.message}" for alert in analysis.alerts[:20]]
    lines += [f"- {note}" for note in analysis.notes]
    for name in INLINE_PLOTS:
        if name in plots:
            lines += ["", f"![{PLOTS[name]}]({data_uri(plots[name])})"]
    create_markdown_artifact("\n".join(lines), key="monitoring-report", description="Key plots and alerts")
    if not analysis.windows.empty:
        columns = [
            "window",
            "requests",
            "latency_p95_ms",
            "label_coverage",
            "accuracy",
            "estimated_accuracy",
            "accuracy_drop",
            "max_psi",
        ]
        table = analysis.windows[[c for c in columns if c in analysis.windows]]
        create_table_artifact(json_safe(table.to_dict("records")), key="monitoring-windows")
    create_link_artifact(
        index.resolve().as_uri(), link_text="Full report (index.html)", key="monitoring-report-link"
    )
    return index


@task(name="raise-alerts", cache_policy=NO_CACHE)
def raise_alerts(alerts: list[Alert], deployment_crn: str, report: Path, model_name: str) -> list[str]:
    """One Prefect event for the run (`modelvigil.alerts`), every breach in its payload, for one
    automation to page on once; nothing when nothing breached."""
    if not alerts:
        return []
    payload = run_payload(
        alerts,
        model_name=model_name,
        deployment_crn=deployment_crn,
        report=Path(report).resolve().as_uri(),
        flow_run=flow_run.ui_url,
    )
    event = emit_event(
        event=RUN_EVENT,
        resource={
            "prefect.resource.id": resource_id(deployment_crn),
            "prefect.resource.name": f"{model_name} ({deployment_crn.rsplit('/', 1)[-1][:8]})",
        },
        payload=payload,
    )
    get_run_logger().warning("%d alert(s): %s", len(alerts), "; ".join(a.message for a in alerts[:5]))
    return [event.event] if event is not None else []
