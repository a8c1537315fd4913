"""Fleet tasks: find the project's deployments, monitor each as its own subflow run, publish the
fleet report."""

from __future__ import annotations

import os
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.utilities.importtools import import_object

from modelvigil.analysis.config import MonitoringConfig
from modelvigil.analysis.fleet import FleetMember, FleetRow, discover, worst_first
from modelvigil.service.embedded import home_service_url
from modelvigil.settings import Settings
from modelvigil.shared_links import shared_url
from tasks.retries import READ_RETRIES


@task(
    name="discover-deployments",
    cache_policy=NO_CACHE,
    **READ_RETRIES,
)
def discover_deployments(settings: Settings) -> list[FleetMember]:
    members = discover(settings)
    get_run_logger().info("%d deployment(s): %s", len(members), ", ".join(m.model_name for m in members))
    return members


def _reason(exc: BaseException) -> str:
    """One line a person can act on: the error's own words, without its traceback."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# NO_CACHE: every night reads new records. The monitoring flow is named by its import path (tasks
# never import flows; and a Flow object sent to a Dask worker arrives without the names its
# parameter annotations need); called here it is a subflow run of its own, under this task run.
@task(name="monitor-deployment", cache_policy=NO_CACHE, task_run_name="monitor {member.model_name}")
def monitor_deployment(
    monitor: str, config: MonitoringConfig, member: FleetMember, fleet_folder: Path
) -> FleetRow:
    """One deployment's monitoring by the flow at import path `monitor`; never raises: a
    deployment that cannot be monitored is a row saying why, so the others go on."""
    try:
        # Named after its model: the fleet run's subflow runs say which is which in the UI.
        summary = import_object(monitor).with_options(flow_run_name=f"monitor {member.model_name}")(config)
    except Exception as exc:
        reason = _reason(exc)
        get_run_logger().error("%s could not be monitored: %s", member.model_name, reason)
        return FleetRow.failed(member, reason)
    link = summary.report_link
    if not link.startswith("http"):
        link = os.path.relpath(summary.report, fleet_folder)  # fleet.html opens it beside itself
    return FleetRow.monitored(member, Path(summary.summary_json), link)


def publish_fleet(settings: Settings, rows: list[FleetRow], files: dict[str, Path], period: str) -> str:
    """The fleet table as a markdown artifact of the flow run, and a link to `fleet.html` (signed,
    when a service of the home runs); returns the link, or the file's URI.

    Not a task, for the reason `tasks.monitoring.publish_report` gives."""
    base = home_service_url(settings)
    link = shared_url(base, settings.home, files["html"].parent, files["html"].name) if base else None
    target = link or files["html"].resolve().as_uri()
    lines = [f"## Fleet: {period}", "", f"**[Open the fleet report]({target})**", ""]
    columns = ["alerts", "accuracy", "drifted features", "label coverage", "server p95 (ms)"]
    lines += ["| model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for r in worst_first(rows):
        name = f"[{r.model_name}]({r.report})" if r.report and r.report.startswith("http") else r.model_name
        if not r.ok:
            lines.append(f"| {name} | could not be monitored: {r.reason} |" + " |" * (len(columns) - 1))
            continue
        cells = r.cells()
        lines.append(f"| {name} | " + " | ".join(cells[c] for c in columns) + " |")
    create_markdown_artifact("\n".join(lines), key="fleet-report", description=f"Fleet: {period}")
    create_link_artifact(target, link_text=f"Fleet report: {period}", key="fleet-report-link")
    return target
