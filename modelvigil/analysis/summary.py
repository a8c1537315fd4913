"""What a reader takes in first: the headline of a monitoring run and the verdict per feature.

Shared by the report's summary block, the Prefect artifact's first lines and the flow's last log
line, so that all three say the same thing in the same words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelvigil.analysis.analyse import Analysis
from modelvigil.analysis.config import AlertKind, Thresholds
from modelvigil.analysis.performance import wilson_interval

VERDICT_COLUMNS = [
    "feature",
    "verdict",
    "drifted_windows",
    "first_drifted_window",
    "max_psi",
    "psi_limit",
    "max_ks",
    "max_missing_share",
]


def feature_verdicts(a: Analysis, t: Thresholds) -> pd.DataFrame:
    """One row per feature, drifted ones first: in how many windows PSI passed the decision limit
    (the larger of `max_psi` and that window's noise-adjusted critical value), its worst PSI and
    the limit it was held to there."""
    if a.drift.empty:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    drifted = pd.DataFrame(
        [(al.subject, al.window) for al in a.alerts if al.kind == AlertKind.drift and al.metric == "psi"],
        columns=["feature", "window"],
    )
    rows = []
    for feature, group in a.drift.groupby("feature", sort=False):
        windows = sorted(drifted.loc[drifted["feature"] == feature, "window"])
        psi = group["psi"].astype(float)
        worst = group.loc[psi.idxmax()] if psi.notna().any() else None
        judged = worst is not None
        rows.append(
            {
                "feature": feature,
                "verdict": "drifted" if windows else ("stable" if judged else "not measured"),
                "drifted_windows": len(windows),
                "first_drifted_window": windows[0] if windows else None,
                "max_psi": float(worst["psi"]) if judged else None,
                "psi_limit": max(t.max_psi, float(worst["psi_critical"])) if judged else None,
                "max_ks": float(group["ks"].max()) if group["ks"].notna().any() else None,
                "max_missing_share": float(group["nan_share"].max()),
            }
        )
    table = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    order = table["verdict"].map({"drifted": 0, "stable": 1}).fillna(2)
    return (
        table.assign(_order=order, _psi=table["max_psi"].fillna(-1))
        .sort_values(["_order", "_psi"], ascending=[True, False])
        .drop(columns=["_order", "_psi"])
        .reset_index(drop=True)
    )


@dataclass(frozen=True)
class Headline:
    predictions: int
    windows: int
    alerts: int
    alert_kinds: list[str]
    features: int
    drifted_features: list[str]
    accuracy: float | None
    accuracy_low: float | None
    accuracy_high: float | None
    window_accuracy_min: float | None
    window_accuracy_max: float | None
    accuracy_alerts: int
    label_coverage: float | None
    server_latency_p95_ms: float | None

    @property
    def drift_text(self) -> str:
        if not self.features:
            return "drift not measured"
        names = ", ".join(self.drifted_features[:4]) + (" ..." if len(self.drifted_features) > 4 else "")
        drifted = len(self.drifted_features)
        return f"{drifted} of {self.features} features drifted" + (f" ({names})" if drifted else "")

    @property
    def accuracy_text(self) -> str:
        if self.accuracy is None:
            return "accuracy unknown (no ground truth yet)"
        verdict = f"{self.accuracy_alerts} accuracy alert(s)" if self.accuracy_alerts else "within thresholds"
        spread = (
            f", windows {self.window_accuracy_min:.3f} to {self.window_accuracy_max:.3f}"
            if self.window_accuracy_min is not None and self.window_accuracy_max is not None
            else ""
        )
        return (
            f"accuracy {self.accuracy:.3f} (95% {self.accuracy_low:.3f} to {self.accuracy_high:.3f}"
            f"{spread}): {verdict}"
        )

    def sentence(self) -> str:
        """The outcome in one line, for a log."""
        if not self.predictions:
            return "no prediction records in this range"
        alerts = f"{self.alerts} alert(s) ({', '.join(self.alert_kinds)})" if self.alerts else "no alert"
        coverage = "–" if self.label_coverage is None else f"{self.label_coverage:.0%}"
        return (
            f"{self.predictions:,} predictions in {self.windows} windows; {self.accuracy_text}; "
            f"{self.drift_text}; label coverage {coverage}; {alerts}"
        )


def headline(a: Analysis) -> Headline:
    overall = a.overall
    labelled = int(overall.get("labelled") or 0)
    accuracy = overall.get("accuracy")
    low = high = None
    if accuracy is not None and labelled:
        lows, highs = wilson_interval(np.array([accuracy * labelled]), np.array([labelled]))
        low, high = float(lows[0]), float(highs[0])
    per_window = a.windows["accuracy"].dropna() if "accuracy" in a.windows else pd.Series(dtype=float)
    drifted = sorted({al.subject for al in a.alerts if al.kind == AlertKind.drift and al.metric == "psi"})
    return Headline(
        predictions=int(overall.get("predictions") or 0),
        windows=int(overall.get("windows") or 0),
        alerts=len(a.alerts),
        alert_kinds=sorted({str(al.kind) for al in a.alerts}),
        features=int(a.drift["feature"].nunique()) if not a.drift.empty else 0,
        drifted_features=drifted,
        accuracy=accuracy,
        accuracy_low=low,
        accuracy_high=high,
        window_accuracy_min=float(per_window.min()) if len(per_window) else None,
        window_accuracy_max=float(per_window.max()) if len(per_window) else None,
        accuracy_alerts=sum(al.kind == AlertKind.accuracy for al in a.alerts),
        label_coverage=overall.get("label_coverage"),
        server_latency_p95_ms=overall.get("latency_p95_ms"),
    )
