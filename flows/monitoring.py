"""Monitoring flow: read a time range of the metrics store -> latency, accuracy, coverage, drift per
window -> seaborn plots and an offline HTML report -> alerts as Prefect events.

The lab's `07_model_monitoring.py` done properly. Run on its own: `python -m flows.monitoring`
(the last 24 hours of the embedded default's deployment).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import Completed, State
from pydantic import BaseModel

from modelvigil.analysis.config import Alert, MonitoringConfig
from modelvigil.analysis.readers import Records
from modelvigil.analysis.summary import headline
from modelvigil.settings import Settings
from tasks.monitoring import analyse_records, load_records, publish_report, raise_alerts, render_report
from tasks.runners import fan_out

# Named completed states, so the Prefect UI tells these runs from a quiet one at a glance.
ALERTING = "Alerting"  # alerts were raised (and the run was not asked to fail on them)
NO_PREDICTIONS = "No predictions"  # the range held no prediction records: nothing was judged


class AlertsRaised(RuntimeError):
    """Alerts fired and the run was asked to fail on them (`fail_on_alert`)."""


def alerting(result: BaseModel, alerts: int, report: str) -> State:
    """A completed run that raised alerts, named so in the Prefect UI (not a green "Completed");
    its result is `result` all the same."""
    return Completed(data=result, name=ALERTING, message=f"{alerts} alert(s); report: {report}")


class MonitoringSummary(BaseModel):
    deployment_crn: str
    report: str
    report_link: str  # opens the report in a browser: a signed link when a service of the home runs
    summary_json: str
    alerts: list[Alert]
    overall: dict[str, float | int | None]
    notes: list[str]


@flow(name="monitoring")
def monitoring_flow(config: MonitoringConfig = MonitoringConfig()) -> MonitoringSummary:  # noqa: B008
    logger = get_run_logger()
    settings = Settings().overridden(
        model_name=config.model_name, service_url=config.service_url, store_url=config.store_url
    )
    time_range = config.time_range_ms()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(config.output_dir) if config.output_dir else settings.home / "reports" / stamp

    records = load_records(settings, config, time_range)
    # On Dask the analysis, which reads the records itself, runs on a worker: the flow's process
    # only draws and publishes.
    with fan_out(config) as runner:
        (analysis,) = runner.in_order(
            analyse_records, [{"records": records, "config": config, "time_range": time_range}]
        )
    model_name = _model_name(settings, records)
    context = {
        "model_name": model_name,
        "deployment_crn": records.deployment_crn,
        "from_utc": datetime.fromtimestamp(time_range[0] / 1000, UTC).isoformat(),
        "to_utc": datetime.fromtimestamp(time_range[1] / 1000, UTC).isoformat(),
        "source": records.source,
        "windows": config.windowing().describe(),
    }
    files = render_report(analysis, config, folder, context)
    report = files["index"]
    link = publish_report(settings, analysis, files, context)
    raise_alerts(
        analysis.alerts, records.deployment_crn, link, model_name, str(analysis.task), analysis.incidents
    )
    logger.info("%s: %s", model_name, headline(analysis).sentence())
    logger.info("report: %s", link if link.startswith("http") else report)
    summary = MonitoringSummary(
        deployment_crn=records.deployment_crn,
        report=str(report),
        report_link=link,
        summary_json=str(folder / "summary.json"),
        alerts=analysis.alerts,
        overall=analysis.overall,
        notes=analysis.notes,
    )
    if analysis.empty:  # its own verdict (the CLI's exit 10), not a healthy run nor an alerting one
        return Completed(
            data=summary, name=NO_PREDICTIONS, message=f"no predictions in this range; report: {link}"
        )
    if analysis.alerts:
        if config.fail_on_alert:
            raise AlertsRaised(f"{len(analysis.alerts)} alert(s); report: {report}")
        return alerting(summary, len(analysis.alerts), link)
    return summary


def _model_name(settings: Settings, records: Records) -> str:
    """The model's name as its backend knows the deployment read, else the one asked for, else
    the deployment's own id: never the home's default model for another model's deployment."""
    if records.model_name:
        return records.model_name
    if settings.names_model:
        return settings.model_name
    return f"deployment {records.deployment_crn.rsplit('/', 1)[-1]}"


if __name__ == "__main__":
    result = monitoring_flow(MonitoringConfig())
    print(f"{len(result.alerts)} alert(s); report: {result.report}")
