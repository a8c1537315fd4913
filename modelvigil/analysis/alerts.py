"""The alert rules, as data: one row per rule, evaluated by one loop over the window and drift tables.

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
from modelvigil.analysis.drift import NOISE_ALPHA

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
    alerts: list[Alert], *, model_name: str, deployment_crn: str, report: str, flow_run: str | None
) -> dict[str, Any]:
    """What a person paged for one monitoring run needs: which model, when, what breached by how
    much, and where to look (the flow run in the Prefect UI, the report)."""
    return {
        "model_name": model_name,
        "deployment_crn": deployment_crn,
        "alerts": len(alerts),
        "kinds": sorted({str(a.kind) for a in alerts}),
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
    metric: str  # the column reported as the alert's value
    threshold: str  # the `Thresholds` field it is held against, else a column of the row (a derived limit)
    breach: Literal["<", ">"]  # the metric breaches when it is below (<) or above (>) the threshold
    message: str  # str.format with window, value, threshold, subject and the row's columns
    subject: str = "model"  # what breached; "{feature}" takes the drift row's feature
    compared: str | None = None  # the column held against the threshold, when it is not the metric
    guards: tuple[Guard, ...] = ()


_JUDGED = Guard("predictions", ">=", "thresholds.min_drift_rows")  # fewer predictions: noise, not drift

RULES: tuple[Rule, ...] = (
    # Confidently below: the whole 95% interval under the floor, so noise in a small window does
    # not page anyone (the point estimate alone would, about 1 window in 100).
    Rule(
        AlertKind.accuracy, "windows", "accuracy", "min_accuracy", "<",
        "window {window}: accuracy {value:.3f} below {threshold} ({n_labelled:.0f} labels)",
        compared="accuracy_high",
    ),
    # Against the model's own reference level, not only the floor: a drop beyond sampling noise.
    Rule(
        AlertKind.accuracy, "windows", "accuracy_drop", "reference_alpha", "<",
        "window {window}: accuracy {accuracy:.3f}, {value:.3f} below the reference's "
        "{reference_accuracy:.3f} (p = {accuracy_drop_pvalue:.1e})",
        compared="accuracy_drop_pvalue",
        guards=(Guard("accuracy_drop", ">=", "thresholds.min_accuracy_drop"),),
    ),
    Rule(
        AlertKind.accuracy, "windows", "accuracy_cusum", "cusum_limit", ">",
        "window {window}: errors add up beyond the reference's rate (CUSUM {value:.1f} > {threshold:.1f})",
    ),
    Rule(
        AlertKind.accuracy, "windows", "estimated_accuracy", "reference_alpha", "<",
        "window {window}: estimated accuracy {value:.3f} (from confidence, before labels) below the "
        "reference's {reference_accuracy:.3f}",
        compared="estimated_drop_pvalue",
        guards=(_JUDGED, Guard("estimated_drop", ">=", "thresholds.min_accuracy_drop")),
    ),
    Rule(
        AlertKind.latency, "windows", "latency_p95_ms", "max_p95_latency_ms", ">",
        "window {window}: p95 latency {value:.0f} ms above {threshold:.0f} ms",
    ),
    Rule(
        AlertKind.coverage, "windows", "label_coverage", "min_label_coverage", "<",
        "window {window}: label coverage {value:.2f} below {threshold}",
    ),
    Rule(
        AlertKind.drift, "windows", "prediction_js", "max_prediction_js", ">",
        "window {window}: prediction mix drifted (JS {value:.3f} > {threshold})",
        subject="predictions",
        guards=(_JUDGED, Guard("prediction_pvalue", "<", NOISE_ALPHA)),
    ),
    Rule(
        AlertKind.drift, "windows", "probability_ks", "reference_alpha", "<",
        "window {window}: predicted probabilities drifted (KS {value:.3f}, p = {probability_pvalue:.1e})",
        subject="probability",
        compared="probability_pvalue",
        guards=(_JUDGED,),
    ),
    Rule(
        AlertKind.drift, "drift", "psi", "max_psi", ">",
        "window {window}: feature {subject!r} drifted (PSI {value:.3f} > {threshold})",
        subject="{feature}",
        guards=(_JUDGED, Guard("psi", ">", "psi_critical")),
    ),
)  # fmt: skip


def evaluate(
    windows: pd.DataFrame, drift: pd.DataFrame, thresholds: Thresholds, rules: Iterable[Rule] = RULES
) -> list[Alert]:
    """Every breach, window by window in rule order, then the drift table's."""
    rules = list(rules)
    # A drift row is judged with its window's figures (size, time span) beside it: joined on the
    # one column the two tables share, and every drift row has its window.
    judged_drift = drift.merge(
        windows.drop(columns=drift.columns.intersection(windows.columns).drop("window"))
    )
    alerts: list[Alert] = []
    for table_name, table in (("windows", windows), ("drift", judged_drift)):
        mine = [r for r in rules if r.table == table_name]
        if not mine:
            continue
        for row in table.to_dict("records"):  # pragma: no mutate (pandas reads "RECORDS" alike)
            alerts += [alert for rule in mine if (alert := _fire(rule, row, thresholds)) is not None]
    return alerts


def _fire(rule: Rule, row: Mapping[str, Any], thresholds: Thresholds) -> Alert | None:
    threshold = getattr(thresholds, rule.threshold, None)
    if threshold is None:
        threshold = row.get(rule.threshold)
    compared = row.get(rule.compared or rule.metric)
    if not (pd.notna(compared) and _OPS[rule.breach](compared, threshold)):
        return None
    if not all(guard.holds(row, thresholds) for guard in rule.guards):
        return None
    value = float(row[rule.metric])
    # int(): a window number read back as a float would otherwise print as "window 3.0".
    facts = {**row, "window": int(row["window"]), "value": value, "threshold": threshold}
    subject = rule.subject.format(**facts)
    return Alert(
        kind=rule.kind,
        window=facts["window"],
        window_start_ms=int(row["start_ms"]),
        window_end_ms=int(row["end_ms"]),
        metric=rule.metric,
        subject=subject,
        value=value,
        threshold=threshold,
        message=rule.message.format(**facts, subject=subject),
    )


def _operand(against: str | float, row: Mapping[str, Any], thresholds: Thresholds) -> Any:
    if isinstance(against, str):
        if against.startswith("thresholds."):
            return getattr(thresholds, against.removeprefix("thresholds."))
        return row.get(against)
    return against
