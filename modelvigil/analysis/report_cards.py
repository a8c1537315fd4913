"""The report's summary cards: what a reader takes in first, one card per question (alerts, the
model's quality, drift, coverage, latency, volume)."""

from __future__ import annotations

import html

from modelvigil.analysis.config import Thresholds
from modelvigil.analysis.summary import Headline


def card(key: str, value: str, detail: str, tone: str = "") -> str:
    return (
        f"<div class='card {tone}'><div class='k'>{html.escape(key)}</div>"
        f"<div class='v'>{html.escape(value)}</div><div class='d'>{html.escape(detail)}</div></div>"
    )


def summary_cards(head: Headline, t: Thresholds) -> str:
    coverage = "–" if head.label_coverage is None else f"{head.label_coverage:.0%}"
    accuracy = "–" if head.accuracy is None else f"{head.accuracy:.3f}"
    interval = (
        f"95% {head.accuracy_low:.3f} to {head.accuracy_high:.3f}; "
        if head.accuracy_low is not None and head.accuracy_high is not None
        else ""
    )
    latency = "–" if head.server_latency_p95_ms is None else f"{head.server_latency_p95_ms:,.1f} ms"
    if not head.predictions:  # nothing judged: grey, never the green of a healthy range
        return (
            "<div class='cards'>"
            + card("Verdict", "no data", "no prediction records in this range: nothing was judged", "muted")
            + card("Predictions", "0", "check the deployment and the range", "muted")
            + "</div>"
        )
    return (
        "<div class='cards'>"
        + "".join(
            [
                card(
                    "Alerts",
                    str(head.alerts),
                    ", ".join(head.alert_kinds) if head.alerts else "every window within its thresholds",
                    "bad" if head.alerts else "good",
                ),
                error_card(head)
                if head.task == "regression"
                else card(
                    "Accuracy",
                    accuracy,
                    interval
                    + (f"{head.accuracy_alerts} accuracy alert(s)" if head.accuracy_alerts else "no alert"),
                    "bad" if head.accuracy_alerts else "",
                ),
                card(
                    "Features drifted",
                    f"{len(head.drifted_features)} of {head.features}",
                    ", ".join(head.drifted_features[:6]) or "none past the decision limit",
                    "bad" if head.drifted_features else "",
                ),
                card("Label coverage", coverage, f"floor {t.min_label_coverage:.0%}"),
                card("Server latency p95", latency, f"limit {t.max_p95_latency_ms:,.0f} ms"),
                card("Predictions", f"{head.predictions:,}", f"in {head.windows} windows"),
            ]
        )
        + "</div>"
    )


def error_card(head: Headline) -> str:
    value = "–" if head.mae is None else f"{head.mae:.4g}"
    reference = f"reference {head.reference_mae:.4g}; " if head.reference_mae is not None else ""
    alerts = f"{head.error_alerts} error alert(s)" if head.error_alerts else "no alert"
    return card("Mean absolute error", value, reference + alerts, "bad" if head.error_alerts else "")
