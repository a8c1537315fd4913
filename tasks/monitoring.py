"""Monitoring tasks: read the records, analyse them, render the report, raise the alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.runtime import flow_run

from modelvigil.analysis.alerts import RUN_EVENT, resource_id, run_payload
from modelvigil.analysis.config import Alert, MonitoringConfig
from modelvigil.analysis.engine import Analysis, analyse_blocks
from modelvigil.analysis.incidents import Incident
from modelvigil.analysis.plots import draw_all
from modelvigil.analysis.readers import Records, read_records
from modelvigil.analysis.report import SHOWN_ALERTS, data_uri, json_safe, plot_title, write_report
from modelvigil.analysis.summary import headline
from modelvigil.service.embedded import home_service_url
from modelvigil.settings import Settings
from modelvigil.shared_links import LINK_TTL_S, shared_url
from tasks.retries import READ_RETRIES


@task(
    name="read-records",
    cache_policy=NO_CACHE,
    **READ_RETRIES,
)
def load_records(settings: Settings, config: MonitoringConfig, time_range: tuple[int, int]) -> Records:
    records = read_records(
        settings,
        deployment_crn=config.deployment_crn,
        time_range=time_range,
        reference_range=config.reference_range_ms(),
    )
    get_run_logger().info("streaming the records of %s from the %s", records.deployment_crn, records.source)
    return records


@task(
    name="analyse",
    cache_policy=NO_CACHE,
    **READ_RETRIES,
)
def analyse_records(records: Records, config: MonitoringConfig, time_range: tuple[int, int]) -> Analysis:
    """Streamed: memory holds one block of records and the calculators' state (`analysis.engine`).
    The reading happens here, so the transient failures worth retrying are retried here (the
    whole analysis again: it only reads); each page over HTTP is retried on its own already."""
    return analyse_blocks(
        records.blocks, records.aggregates, config, time_range, records.reference_blocks, records.count_rows
    )


@task(name="render-report", cache_policy=NO_CACHE)
def render_report(
    analysis: Analysis, config: MonitoringConfig, folder: Path, context: dict[str, Any]
) -> dict[str, Path]:
    """The plots (every feature's distribution with `plot_all_features`, else the drifted ones')
    and the report; returns the plots by name, `index.html` under "index"."""
    features = (
        list(analysis.drift["feature"].unique())
        if config.plot_all_features
        else headline(analysis).drifted_features
    )
    plots = draw_all(analysis, config.thresholds, folder, features)
    index = write_report(analysis, plots, folder, context, config.thresholds)
    return {**plots, "index": index}


def publish_report(
    settings: Settings, analysis: Analysis, files: dict[str, Path], context: dict[str, Any]
) -> str:
    """The report where the Prefect UI shows it: a markdown artifact with the summary and every
    plot, the window table, and a link that opens the full report in a browser (a signed link on
    this home's service); returns the link, or the file's URI when no service can open it.

    Not a task: called from the flow itself, so the artifacts belong to the flow run. Made in a
    task, the run's Artifacts tab files them under that task and shows "Flow run: None"."""
    plots = {name: path for name, path in files.items() if name != "index"}
    index = files["index"]
    base = home_service_url(settings)
    link = shared_url(base, settings.home, index.parent) if base else None
    head = headline(analysis)
    period = f"{context['from_utc'][:16]} to {context['to_utc'][:16]}".replace("T", " ") + " UTC"
    title = f"{context['model_name']}: {period}"
    lines = [f"## {title}", "", head.sentence(), ""]
    if link:
        lines += [f"**[Open the full report]({link})** (signed link, valid {LINK_TTL_S // 86400} days)", ""]
    else:
        lines += [
            f"Full report: `{index}` (start `modelvigil serve` on this machine to get a link that opens "
            "it from here)",
            "",
        ]
    lines += [f"- **{i.summary}** ({i.alerts} alert(s))" for i in analysis.incidents[:SHOWN_ALERTS]]
    if len(analysis.incidents) > SHOWN_ALERTS:
        lines.append(f"- ... and {len(analysis.incidents) - SHOWN_ALERTS} more incidents in the report")
    lines += [f"- {note}" for note in analysis.notes]
    lines += ["", f"Deployment `{context['deployment_crn']}`, read from the {context['source']}."]
    for name, path in plots.items():
        lines += ["", f"### {plot_title(name)}", "", f"![{plot_title(name)}]({data_uri(path)})"]
    create_markdown_artifact("\n".join(lines), key="monitoring-report", description=title)
    if not analysis.windows.empty:
        create_table_artifact(
            json_safe(artifact_rows(analysis.windows)),
            key="monitoring-windows",
            description=f"Per window: {title}",
        )
    target = link or index.resolve().as_uri()
    create_link_artifact(
        target,
        link_text=f"Full report: {title}",
        key="monitoring-report-link",
        description="Opens the whole report (every plot and table) in the browser"
        if link
        else "The report's file on the machine that ran the flow (no service of its home was running)",
    )
    return target


def artifact_rows(windows: pd.DataFrame) -> list[dict[str, Any]]:
    """The window table for the UI: start times beside indices, figures rounded to what they mean."""
    columns = {
        "window": "window",
        "from": "from (UTC)",
        "requests": "requests",
        "latency_p95_ms": "server p95 ms",
        "label_coverage": "coverage",
        "accuracy": "accuracy",
        "estimated_accuracy": "estimated",
        "accuracy_drop": "drop",
        "max_psi": "max PSI",
    }
    table = windows.assign(from_=[_minute(ms) for ms in windows["start_ms"]]).rename(
        columns={"from_": "from"}
    )
    table = table[[c for c in columns if c in table]].rename(columns=columns)
    return table.round({"server p95 ms": 1, "coverage": 3, "accuracy": 3, "estimated": 3, "drop": 3,
                        "max PSI": 3}).to_dict("records")  # fmt: skip


def _minute(ms: Any) -> str | None:
    if ms is None or ms != ms:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M")


@task(name="raise-alerts", cache_policy=NO_CACHE)
def raise_alerts(
    alerts: list[Alert],
    deployment_crn: str,
    report: str,
    model_name: str,
    task: str | None = None,
    incidents: list[Incident] | None = None,
) -> list[str]:
    """One Prefect event for the run (`modelvigil.alerts`), every breach in its payload, for one
    automation to page on once; nothing when nothing breached."""
    if not alerts:
        return []
    payload = run_payload(
        alerts,
        model_name=model_name,
        deployment_crn=deployment_crn,
        report=report,
        flow_run=flow_run.ui_url,
        task=task,
        incidents=[i.model_dump(mode="json") for i in incidents or []],
    )
    event = emit_event(
        event=RUN_EVENT,
        resource={
            "prefect.resource.id": resource_id(deployment_crn),
            "prefect.resource.name": f"{model_name} ({deployment_crn.rsplit('/', 1)[-1][:8]})",
        },
        payload=payload,
    )
    told = [i.summary for i in incidents or []][:5] or [a.message for a in alerts[:5]]
    get_run_logger().warning("%d alert(s): %s", len(alerts), "; ".join(told))
    return [event.event] if event is not None else []
