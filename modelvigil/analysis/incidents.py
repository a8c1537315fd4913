"""Incidents, not alert rows: a run of consecutive alerting windows is one incident, told in one
line by its causes ("from window 5: accuracy 0.861 against the reference's 0.905, 2 of 15
features drifted (age, latitude), prediction mix moved"), the alert rows behind it kept."""

from __future__ import annotations

import pandas as pd
from pydantic import BaseModel

from modelvigil.analysis.config import Alert, AlertKind


class Incident(BaseModel):
    first_window: int
    last_window: int
    start_ms: int
    end_ms: int
    kinds: list[str]
    alerts: int  # the alert rows it groups
    summary: str


def _range(values: pd.Series, digits: str) -> str:
    low, high = float(values.min()), float(values.max())
    return f"{low:{digits}}" if low == high else f"{low:{digits}} to {high:{digits}}"


def _causes(alerts: list[Alert], windows: pd.DataFrame, features: int) -> list[str]:
    kinds = {a.kind for a in alerts}
    mine = windows[windows["window"].isin({a.window for a in alerts})]
    causes = []
    if AlertKind.accuracy in kinds and "accuracy" in mine and mine["accuracy"].notna().any():
        reference = mine["reference_accuracy"].dropna() if "reference_accuracy" in mine else pd.Series()
        against = f" against the reference's {reference.iloc[0]:.3f}" if len(reference) else ""
        causes.append(f"accuracy {_range(mine['accuracy'].dropna(), '.3f')}{against}")
    elif AlertKind.accuracy in kinds:
        causes.append("accuracy estimated below the reference's (before labels)")
    if AlertKind.error in kinds and "mae" in mine:
        causes.append(
            f"mean absolute error {_range(mine['mae'].dropna(), '.4g')} against the reference's "
            f"{float(mine['reference_mae'].iloc[0]):.4g}"
        )
    drifted = sorted({a.subject for a in alerts if a.kind is AlertKind.drift and a.metric == "psi"})
    if drifted:
        names = ", ".join(drifted[:4]) + (" ..." if len(drifted) > 4 else "")
        causes.append(f"{len(drifted)} of {features} features drifted ({names})")
    if any(a.metric == "prediction_js" for a in alerts):
        causes.append("prediction mix moved")
    if any(a.metric == "prediction_psi" for a in alerts):
        causes.append("predictions moved")
    if any(a.subject == "probability" for a in alerts):
        causes.append("predicted probabilities moved")
    missing = sorted({a.subject for a in alerts if a.kind is AlertKind.missing})
    if missing:
        causes.append(f"values missing more often in {', '.join(missing[:4])}")
    if AlertKind.latency in kinds:
        causes.append(f"server p95 latency {_range(mine['latency_p95_ms'].dropna(), ',.0f')} ms")
    if AlertKind.coverage in kinds:
        causes.append(f"label coverage {_range(mine['label_coverage'].dropna(), '.0%')}")
    if AlertKind.no_data in kinds:
        causes.append("no prediction records in this range")
    return causes


def incidents(alerts: list[Alert], windows: pd.DataFrame, features: int) -> list[Incident]:
    """The alerts grouped by runs of consecutive windows, in time order."""
    if not alerts:
        return []
    by_window: dict[int, list[Alert]] = {}
    for alert in alerts:
        by_window.setdefault(alert.window, []).append(alert)
    runs: list[list[int]] = []
    for window in sorted(by_window):
        if runs and window == runs[-1][-1] + 1:
            runs[-1].append(window)
        else:
            runs.append([window])
    out = []
    for run in runs:
        grouped = [a for w in run for a in by_window[w]]
        first, last = run[0], run[-1]
        where = f"window {first}" if first == last else f"windows {first} to {last}"
        if all(a.kind is AlertKind.no_data for a in grouped):
            where = "the whole range"
        out.append(
            Incident(
                first_window=first,
                last_window=last,
                start_ms=min(a.window_start_ms for a in grouped),
                end_ms=max(a.window_end_ms for a in grouped),
                kinds=sorted({str(a.kind) for a in grouped}),
                alerts=len(grouped),
                summary=f"{where}: " + ", ".join(_causes(grouped, windows, features)),
            )
        )
    return out
