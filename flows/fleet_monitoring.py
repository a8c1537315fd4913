"""Fleet monitoring flow: every deployment of the project, each monitored as its own subflow run
(its report, its alerts), at once; then one fleet report (`fleet.html`, `fleet.json`), worst first.

One deployment that cannot be read does not stop the others: its row says why, and the run ends
Failed once the others are done. Run on its own: `python -m flows.fleet_monitoring` (the last 24
hours of every model of the embedded default).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger
from pydantic import BaseModel

from flows.monitoring import AlertsRaised, alerting, monitoring_flow
from modelvigil.analysis.config import MonitoringConfig
from modelvigil.analysis.fleet import FleetMember, FleetRow, write_fleet_report
from modelvigil.scaleout import TaskRunnerKind
from modelvigil.settings import Settings
from tasks.fleet import discover_deployments, monitor_deployment, publish_fleet
from tasks.runners import fan_out

MONITORING_FLOW = f"{monitoring_flow.fn.__module__}.{monitoring_flow.fn.__name__}"


class FleetIncomplete(RuntimeError):
    """Some deployments could not be monitored (the others were, and the fleet report says which)."""


class FleetSummary(BaseModel):
    report: str
    report_json: str
    report_link: str
    deployments: list[FleetRow]


def _for_member(
    config: MonitoringConfig, member: FleetMember, time_range: tuple[int, int], fleet: Path
) -> MonitoringConfig:
    """One deployment's monitoring: the fleet's settings and time range (one for all, fixed before
    any starts), that deployment, its own folder. Alerts fail the fleet run, not the subflow run."""
    start, end = (datetime.fromtimestamp(ms / 1000, UTC) for ms in time_range)
    return config.model_copy(
        update={
            "deployment_crn": member.deployment_crn,
            "model_name": member.model_name,
            "start": start,
            "end": end,
            "output_dir": str(member.report_folder(fleet)),
            "fail_on_alert": False,
            # Already where the fleet's runner put it (a Dask worker, or a thread of the flow).
            "task_runner": TaskRunnerKind.default,
            "dask_address": None,
        }
    )


@flow(name="fleet-monitoring")
def fleet_monitoring_flow(config: MonitoringConfig = MonitoringConfig()) -> FleetSummary:  # noqa: B008
    if config.deployment_crn or config.model_name:
        raise ValueError(
            "fleet monitoring watches every deployment of the project: leave deployment_crn and "
            "model_name empty (to watch one, run the monitoring flow)"
        )
    logger = get_run_logger()
    settings = Settings().overridden(service_url=config.service_url, store_url=config.store_url)
    time_range = config.time_range_ms()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(config.output_dir) if config.output_dir else settings.home / "reports" / f"fleet-{stamp}"

    members = discover_deployments(settings)
    calls = [
        {"monitor": MONITORING_FLOW, "config": _for_member(config, m, time_range, folder), "member": m,
         "fleet_folder": folder}
        for m in members
    ]  # fmt: skip
    if config.task_runner is TaskRunnerKind.dask:
        with fan_out(config) as runner:
            rows = list(runner.in_order(monitor_deployment, calls))
    else:  # all at once on the flow's threads
        rows = [future.result() for future in [monitor_deployment.submit(**call) for call in calls]]

    start, end = (datetime.fromtimestamp(ms / 1000, UTC).isoformat() for ms in time_range)
    files = write_fleet_report(rows, folder, {"from_utc": start, "to_utc": end})
    period = f"{start[:16]} to {end[:16]}".replace("T", " ") + " UTC"
    link = publish_fleet(settings, rows, files, period)
    failed = [r for r in rows if not r.ok]
    alerts = sum(r.alerts or 0 for r in rows)
    logger.info(
        "%d deployment(s): %d alert(s), %d could not be monitored; fleet report: %s",
        len(rows),
        alerts,
        len(failed),
        link,
    )
    if failed:
        reasons = "; ".join(f"{r.model_name}: {r.reason}" for r in failed)
        raise FleetIncomplete(
            f"{len(failed)} of {len(rows)} deployment(s) could not be monitored ({reasons})"
        )
    if config.fail_on_alert and alerts:
        raise AlertsRaised(f"{alerts} alert(s) across the fleet; report: {files['html']}")
    summary = FleetSummary(
        report=str(files["html"]), report_json=str(files["json"]), report_link=link, deployments=rows
    )
    return alerting(summary, alerts, link) if alerts else summary


if __name__ == "__main__":
    result = fleet_monitoring_flow(MonitoringConfig())
    print(f"fleet report: {result.report}")
