"""Alert rules as data, evaluated by one loop over the window and drift tables; each rule belongs
to the calculator whose columns it reads (`analysis.calculators`).

A rule fires for a row when its column breaches the threshold (a field of `Thresholds`) and every
guard holds: guards keep noise from paging anyone (an accuracy's whole 95% interval under the
floor, drift only in windows big enough to judge and beyond what sampling explains). The event
names alerts are published under are defined here too, for the tasks and the automations alike.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pandas as pd

from modelvigil.analysis.config import Alert, AlertKind, Thresholds

EVENT_PREFIX = "modelvigil.alert."
RESOURCE_PREFIX = "modelvigil.deployment."
# One event per monitoring run that alerts, with every breach in it: one page per run, not one per
# window and rule.
RUN_EVENT = "modelvigil.alerts"

_OPS: dict[str, Callable[[Any, Any], bool]] = {"<": operator.lt, ">": operator.gt, ">=": operator.ge}


def event_name(kind: AlertKind | str) -> str:
    """The Prefect event an alert of this kind is emitted as (`modelvigil.alert.accuracy`, ...)."""
    return f"{EVENT_PREFIX}{AlertKind(kind)}"


def resource_id(deployment_crn: str) -> str:
    return f"{RESOURCE_PREFIX}{deployment_crn}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def run_payload(
    alerts: list[Alert],
    *,
    model_name: str,
    deployment_crn: str,
    report: str,
    flow_run: str | None,
    task: str | None = None,
    incidents: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What a person paged for one monitoring run needs: which model, when, what breached by how
    much, and where to look (the flow run in the Prefect UI, the report)."""
    return {
        "model_name": model_name,
        "deployment_crn": deployment_crn,
        "task": task,
        "alerts": len(alerts),
        "kinds": sorted({str(a.kind) for a in alerts}),
        # One line per run of alerting windows, told by its causes; every breach stays below.
        "incidents": incidents or [],
        "from": _iso(min(a.window_start_ms for a in alerts)) if alerts else None,
        "to": _iso(max(a.window_end_ms for a in alerts)) if alerts else None,
        "breaches": [
            {
                "kind": str(a.kind),
                "rule": a.metric,
                "subject": a.subject,
                "window": a.window,
                "window_start": _iso(a.window_start_ms),
                "window_end": _iso(a.window_end_ms),
                "value": a.value,
                "threshold": a.threshold,
                "message": a.message,
            }
            for a in alerts
        ],
        "flow_run": flow_run,
        "report": report,
    }


@dataclass(frozen=True)
class Guard:
    """`column op against`: `against` is a number, another column, or `thresholds.<field>`."""

    column: str
    op: Literal["<", ">", ">="]
    against: str | float

    def holds(self, row: Mapping[str, Any], thresholds: Thresholds) -> bool:
        other = _operand(self.against, row, thresholds)
        value = row.get(self.column)
        return bool(pd.notna(value) and pd.notna(other) and _OPS[self.op](value, other))


@dataclass(frozen=True)
class Rule:
    kind: AlertKind
    table: Literal["windows", "drift"]  # which table's rows it reads
    metric: str  # the rule's own column: its name and, unless `shown` says otherwise, its reported value
    threshold: str  # the `Thresholds` field it is held against, else a column of the row (a derived limit)
    breach: Literal["<", ">"]  # the metric breaches when it is below (<) or above (>) the threshold
    message: str  # str.format with window, value, threshold, subject and the row's columns
    subject: str = "model"  # what breached; "{feature}" takes the drift row's feature
    compared: str | None = None  # the column held against the threshold, when it is not the metric
    # Like with like, when the test is on another quantity (a p-value against its level): the
    # column reported as the alert's value and the limit of that same quantity (a column, or
    # `thresholds.<field>` as in a guard), so an accuracy is shown beside the accuracy it fell below.
    shown: tuple[str, str] | None = None
    guards: tuple[Guard, ...] = ()
    # Measured against the reference: never judged in the windows the reference was fitted on
    # (`in_reference`), where it would only find the reference's own noise.
    fitted: bool = False
    # A sequential rule's evidence carries over windows: it alerts once per value of this column
    # (the window its excursion began in), not again in every later window of the same change.
    once_per: str | None = None


def default_rules() -> tuple[Rule, ...]:
    """Every rule the calculators of a classifier's and a regression's analysis carry, in the
    order they are evaluated (each calculator owns its rules: `analysis.calculators`)."""
    from modelvigil.analysis.calculators import CALCULATOR_TYPES  # they import Rule from here

    return tuple(rule for kind in CALCULATOR_TYPES for rule in kind.rules)


def evaluate(
    windows: pd.DataFrame, drift: pd.DataFrame, thresholds: Thresholds, rules: Iterable[Rule] | None = None
) -> list[Alert]:
    """Every breach, window by window in rule order, then the drift table's. `rules`: by default
    every calculator's (a rule whose columns a table lacks never fires)."""
    rules = list(default_rules() if rules is None else rules)
    # A drift row is judged with its window's figures (size, time span) beside it: joined on the
    # one column the two tables share, and every drift row has its window.
    judged_drift = drift.merge(
        windows.drop(columns=drift.columns.intersection(windows.columns).drop("window"))
    )
    alerts: list[Alert] = []
    raised: set[tuple[int, object]] = set()  # (rule, value of its `once_per`) already alerted on
    for table_name, table in (("windows", windows), ("drift", judged_drift)):
        mine = [r for r in rules if r.table == table_name]
        if not mine:
            continue
        for row in table.to_dict("records"):  # pragma: no mutate (pandas reads "RECORDS" alike)
            for rule in mine:
                alert = _fire(rule, row, thresholds)
                if alert is None:
                    continue
                if rule.once_per is not None:
                    key = (id(rule), row.get(rule.once_per))
                    if key in raised:
                        continue
                    raised.add(key)
                alerts.append(alert)
    return alerts


def _fire(rule: Rule, row: Mapping[str, Any], thresholds: Thresholds) -> Alert | None:
    if rule.fitted and row.get("in_reference") in (True, 1):
        return None
    threshold = getattr(thresholds, rule.threshold, None)
    if threshold is None:
        threshold = row.get(rule.threshold)
    compared = row.get(rule.compared or rule.metric)
    if not (pd.notna(compared) and _OPS[rule.breach](compared, threshold)):
        return None
    if not all(guard.holds(row, thresholds) for guard in rule.guards):
        return None
    value, limit = float(row[rule.metric]), threshold
    if rule.shown is not None:
        value, limit = float(row[rule.shown[0]]), float(_operand(rule.shown[1], row, thresholds))
    # int(): a window number read back as a float would otherwise print as "window 3.0".
    facts = {**row, "window": int(row["window"]), "value": value, "threshold": limit}
    subject = rule.subject.format(**facts)
    return Alert(
        kind=rule.kind,
        window=facts["window"],
        window_start_ms=int(row["start_ms"]),
        window_end_ms=int(row["end_ms"]),
        metric=rule.metric,
        subject=subject,
        value=value,
        threshold=limit,
        message=rule.message.format(**facts, subject=subject),
    )


def _operand(against: str | float, row: Mapping[str, Any], thresholds: Thresholds) -> Any:
    if isinstance(against, str):
        if against.startswith("thresholds."):
            return getattr(thresholds, against.removeprefix("thresholds."))
        return row.get(against)
    return against
