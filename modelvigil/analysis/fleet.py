"""A whole project's deployments: which there are, one row per deployment, and the fleet report.

Each deployment is monitored on its own, as a single run would (its report, its alerts); the fleet
report is built from what each of those runs wrote (`summary.json`), so its figures are theirs.
Rows are ordered worst first: deployments that could not be monitored, then by alerts, then those
with no predictions in the range, then by accuracy (lowest first): the one to look at is on top.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from modelvigil.analysis.readers import NoDeployment, project_deployments
from modelvigil.analysis.report import STYLE, json_safe
from modelvigil.settings import Settings


@dataclass(frozen=True, order=True)
class FleetMember:
    model_name: str
    deployment_crn: str

    def report_folder(self, fleet_folder: Path) -> Path:
        """This deployment's report folder: beside the fleet report's (so that each is a report
        folder of its own, which a signed link opens), named by model and the CRN's tail."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", self.model_name).strip("-.")[:24] or "model"
        tail = re.sub(r"[^A-Za-z0-9]+", "", self.deployment_crn.rsplit("/", 1)[-1])[:8]
        return fleet_folder.parent / f"{fleet_folder.name}-{slug}-{tail}"


def discover(settings: Settings) -> list[FleetMember]:
    """Every deployment of the project (`readers.project_deployments`), by model name."""
    found = project_deployments(settings)
    if not found:
        raise NoDeployment("no deployment to monitor: no model of the project has records or a deployment")
    return sorted(FleetMember(name, crn) for name, crn in found)


class FleetRow(BaseModel):
    model_name: str
    deployment_crn: str
    ok: bool
    reason: str | None = None  # why the deployment could not be monitored
    predictions: int | None = None
    task: str | None = None  # binary, multiclass or regression
    accuracy: float | None = None
    mae: float | None = None  # a regression's mean absolute error
    accuracy_low: float | None = None
    accuracy_high: float | None = None
    features: int | None = None
    drifted_features: list[str] = []
    label_coverage: float | None = None
    server_latency_p95_ms: float | None = None
    alerts: int | None = None
    report: str | None = None  # the deployment's report: a link, or a path relative to fleet.html

    @classmethod
    def monitored(cls, member: FleetMember, summary_json: Path, report: str) -> FleetRow:
        head = json.loads(summary_json.read_text())["headline"]
        fields = set(cls.model_fields) - {"model_name", "deployment_crn", "ok", "reason", "report"}
        return cls(
            model_name=member.model_name,
            deployment_crn=member.deployment_crn,
            ok=True,
            report=report,
            **{k: head.get(k) for k in fields},
        )

    @classmethod
    def failed(cls, member: FleetMember, reason: str) -> FleetRow:
        return cls(
            model_name=member.model_name, deployment_crn=member.deployment_crn, ok=False, reason=reason
        )

    @property
    def drift_text(self) -> str:
        if not self.features:
            return "–"
        return f"{len(self.drifted_features)} of {self.features}" + (
            f" ({', '.join(self.drifted_features[:3])}{' ...' if len(self.drifted_features) > 3 else ''})"
            if self.drifted_features
            else ""
        )

    def cells(self) -> dict[str, str]:
        """The row's figures as the fleet report and the run's artifact show them, by column."""
        interval = (
            f"{self.accuracy_low:.3f} to {self.accuracy_high:.3f}"
            if self.accuracy_low is not None and self.accuracy_high is not None
            else "–"
        )
        return {
            "alerts": _num(self.alerts, "d"),
            "task": self.task or "–",
            "accuracy": _num(self.accuracy, ".3f"),
            "95% interval": interval,
            "MAE": _num(self.mae, ".4g"),
            "drifted features": self.drift_text,
            "label coverage": _num(self.label_coverage, ".0%"),
            "server p95 (ms)": _num(self.server_latency_p95_ms, ",.1f"),
            "predictions": _num(self.predictions, ","),
        }


TEXT_COLUMNS = {"drifted features", "task"}  # words, read from the left; the figures align right


def worst_first(rows: list[FleetRow]) -> list[FleetRow]:
    def badness(row: FleetRow) -> tuple[int, int, int, float, str]:
        accuracy = row.accuracy if row.accuracy is not None else math.inf
        silent = 0 if not row.predictions else 1  # a model that answered nothing in the range
        return (0 if not row.ok else 1, -(row.alerts or 0), silent, accuracy, row.model_name)

    return sorted(rows, key=badness)


def write_fleet_report(rows: list[FleetRow], folder: Path, context: dict[str, Any]) -> dict[str, Path]:
    """`fleet.json` and `fleet.html` (offline, no script) in `folder`, rows worst first."""
    folder.mkdir(parents=True, exist_ok=True)
    ordered = worst_first(rows)
    body = {**context, "deployments": [r.model_dump(mode="json") for r in ordered]}
    (folder / "fleet.json").write_text(json.dumps(json_safe(body), indent=2))
    (folder / "fleet.html").write_text(_html(ordered, context))
    return {"json": folder / "fleet.json", "html": folder / "fleet.html"}


def _num(value: float | None, pattern: str) -> str:
    return "–" if value is None else format(value, pattern)


def _row_html(r: FleetRow) -> str:
    name = html.escape(r.model_name)
    if r.report:
        name = f"<a href='{html.escape(r.report, quote=True)}'>{name}</a>"
    crn = html.escape(r.deployment_crn.rsplit("/", 1)[-1][:8])  # the whole CRN in its title
    crn_cell = f"<td class='text' title='{html.escape(r.deployment_crn)}'>{crn}</td>"
    if not r.ok:
        reason = html.escape(r.reason or "")
        return (
            f"<tr class='bad'><td class='text name'>{name}</td>{crn_cell}"
            f"<td class='text' colspan='{len(r.cells())}'>could not be monitored: {reason}</td></tr>"
        )
    tone = " class='bad'" if r.alerts else ""
    cells = "".join(
        f"<td class='text'>{html.escape(v)}</td>" if k in TEXT_COLUMNS else f"<td>{html.escape(v)}</td>"
        for k, v in r.cells().items()
    )
    return f"<tr{tone}><td class='text name'>{name}</td>{crn_cell}{cells}</tr>"


def _html(rows: list[FleetRow], context: dict[str, Any]) -> str:
    failed = sum(not r.ok for r in rows)
    alerting = sum(bool(r.alerts) for r in rows if r.ok)
    outcome = f"{len(rows)} deployment(s): {alerting} with alerts" + (
        f", {failed} could not be monitored" if failed else ""
    )
    start, end = (str(context.get(k, ""))[:16].replace("T", " ") for k in ("from_utc", "to_utc"))
    when = f"{start} to {end}"
    columns = list(FleetRow(model_name="", deployment_crn="", ok=True).cells())
    head = (
        "<tr><th class='text'>model</th><th class='text'>deployment</th>"
        + "".join(
            f"<th class='text'>{html.escape(c)}</th>" if c in TEXT_COLUMNS else f"<th>{html.escape(c)}</th>"
            for c in columns
        )
        + "</tr>"
    )
    body = "".join(_row_html(r) for r in rows)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>Fleet: {html.escape(when)} UTC</title>
<style>{STYLE} td.name {{ white-space: nowrap; }}</style></head><body>
<header><h1>Fleet monitoring</h1><p class="sub">{html.escape(when)} UTC · {html.escape(outcome)}</p></header>
<p class="muted">Worst first: deployments that could not be monitored, then by alerts, then those
with no predictions, then by accuracy.
Each model's name opens its own report.</p>
<div class="wide"><table><thead>{head}</thead><tbody>{body}</tbody></table></div>
</body></html>
"""
