"""What a reader takes in first: the headline of a monitoring run and the verdict per feature.

Shared by the report's summary block, the Prefect artifact's first lines and the flow's last log
line, so that all three say the same thing in the same words.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelvigil.analysis.config import AlertKind, Thresholds
from modelvigil.analysis.engine import Analysis
from modelvigil.analysis.performance import wilson_interval

VERDICT_COLUMNS = [
    "feature",
    "kind",
    "verdict",
    "drifted_windows",
    "first_drifted_window",
    "max_psi",
    "psi_limit",
    "max_ks",
    "max_unseen_share",
    "max_missing_share",
    "missing_windows",
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
    missing = Counter(al.subject for al in a.alerts if al.kind == AlertKind.missing)
    rows = []
    for feature, group in a.drift.groupby("feature", sort=False):
        windows = sorted(drifted.loc[drifted["feature"] == feature, "window"])
        psi = group["psi"].astype(float)
        worst = group.loc[psi.idxmax()] if psi.notna().any() else None
        judged = worst is not None
        unseen = group["unseen_share"].astype(float) if "unseen_share" in group else pd.Series(dtype=float)
        rows.append(
            {
                "feature": feature,
                "kind": a.feature_kinds.get(feature, "numeric"),
                "verdict": "drifted" if windows else ("stable" if judged else "not measured"),
                "drifted_windows": len(windows),
                "first_drifted_window": windows[0] if windows else None,
                "max_psi": float(worst["psi"]) if judged else None,
                "psi_limit": max(t.max_psi, float(worst["psi_critical"])) if judged else None,
                "max_ks": float(group["ks"].max()) if group["ks"].notna().any() else None,
                "max_unseen_share": float(unseen.max()) if unseen.notna().any() else None,
                "max_missing_share": float(group["nan_share"].max()),
                "missing_windows": missing.get(feature, 0),
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
    task: str = "binary"
    mae: float | None = None  # regression: mean absolute error over the range
    reference_mae: float | None = None
    window_mae_min: float | None = None
    window_mae_max: float | None = None
    error_alerts: int = 0
    incidents: int = 0  # runs of consecutive alerting windows

    @property
    def performance_alerts(self) -> int:
        return self.accuracy_alerts + self.error_alerts

    @property
    def drift_text(self) -> str:
        if not self.features:
            return "drift not measured"
        names = ", ".join(self.drifted_features[:4]) + (" ..." if len(self.drifted_features) > 4 else "")
        drifted = len(self.drifted_features)
        return f"{drifted} of {self.features} features drifted" + (f" ({names})" if drifted else "")

    @property
    def accuracy_text(self) -> str:
        """The model's quality in a phrase: accuracy for a classifier, error for a regression."""
        if self.task == "regression":
            return self._error_text
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

    @property
    def _error_text(self) -> str:
        if self.mae is None:
            return "error unknown (no ground truth yet)"
        verdict = f"{self.error_alerts} error alert(s)" if self.error_alerts else "within thresholds"
        reference = f", reference {self.reference_mae:.4g}" if self.reference_mae is not None else ""
        spread = (
            f", windows {self.window_mae_min:.4g} to {self.window_mae_max:.4g}"
            if self.window_mae_min is not None and self.window_mae_max is not None
            else ""
        )
        return f"mean absolute error {self.mae:.4g}{reference}{spread}: {verdict}"

    def sentence(self) -> str:
        """The outcome in one line, for a log."""
        if not self.predictions:
            return "no prediction records in this range"
        alerts = (
            f"{self.alerts} alert(s) in {self.incidents} incident(s) ({', '.join(self.alert_kinds)})"
            if self.alerts
            else "no alert"
        )
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
    mae = a.windows["mae"].dropna() if "mae" in a.windows else pd.Series(dtype=float)
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
        task=str(a.task),
        mae=overall.get("mae"),
        reference_mae=overall.get("reference_mae"),
        window_mae_min=float(mae.min()) if len(mae) else None,
        window_mae_max=float(mae.max()) if len(mae) else None,
        error_alerts=sum(al.kind == AlertKind.error for al in a.alerts),
        incidents=len(a.incidents),
    )
