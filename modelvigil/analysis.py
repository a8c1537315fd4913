"""Monitoring analysis: per window latency, volume, coverage, accuracy, prediction mix and drift.

Input is the store's frame shape (`MetricsStore.read_frame`: one row per scored row). Reference
statistics are fitted once (`drift.ReferenceProfile`), then every window is measured against
them; windows come from `modelvigil.windows`. Nothing here raises on NaN or empty data: an empty
range gives empty tables and a note saying so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from modelvigil import windows
from modelvigil.drift import NOISE_ALPHA, ReferenceProfile
from modelvigil.monitoring import Alert, AlertKind, MonitoringConfig, WindowKind
from modelvigil.performance import window_quality

LABEL = "final_label"
FEATURE_PREFIX = "input_data."
DEFAULT_WINDOWS = 10  # NannyML's default number of chunks


@dataclass
class Analysis:
    records: pd.DataFrame  # one row per scored row, with `window`, `latency_ms`, `label`
    windows: pd.DataFrame  # one row per window
    drift: pd.DataFrame  # one row per (window, feature)
    arrival: pd.DataFrame  # accuracy per label-arrival window
    confusion: pd.DataFrame
    alerts: list[Alert]
    overall: dict[str, float | int | None]
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.records.empty


def first_rows(records: pd.DataFrame) -> pd.DataFrame:
    """One row per call (its first scored row): the unit for latency and request counts."""
    return records[records["row"] == 0]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(FEATURE_PREFIX)]


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    # Time order; ties keep the source's order, which keeps a call's rows together. Both read
    # paths already deliver time order, so the sort is usually skipped (it costs seconds at 1M rows).
    if frame["start_ms"].is_monotonic_increasing:
        records = frame.reset_index(drop=True)
    else:
        records = frame.sort_values("start_ms", kind="stable").reset_index(drop=True)
    # The lab computed `(end - start).dt.microseconds * 1000`: sub-second part only, multiplied.
    records["latency_ms"] = (records["end_ms"] - records["start_ms"]).astype(float)
    records["label"] = records.get(LABEL, np.nan)
    if "probability" not in records:
        records["probability"] = np.nan
    return records


def _assign_windows(records: pd.DataFrame, config: MonitoringConfig) -> None:
    if config.window_kind is WindowKind.time:
        records["window_start_ms"] = windows.by_time(records["start_ms"], config.window_minutes * 60_000)
        records["window"] = pd.factorize(records["window_start_ms"], sort=True)[0]
    else:
        size = config.window_size or max(1, math.ceil(len(records) / DEFAULT_WINDOWS))
        records["window"] = windows.by_count(len(records), size)


def analyse(
    frame: pd.DataFrame,
    aggregates: pd.DataFrame,
    config: MonitoringConfig,
    reference: pd.DataFrame | None = None,
) -> Analysis:
    """Everything the report shows. `reference`: rows of the reference period (default: the
    earliest `config.reference_share` of `frame`)."""
    notes: list[str] = []
    if frame.empty:
        notes.append("no prediction records in the requested range")
        return _empty(notes)
    records = _prepare(frame)
    _assign_windows(records, config)
    features = feature_columns(records)
    for name in features:
        if records[name].isna().all():
            notes.append(f"feature {name.removeprefix(FEATURE_PREFIX)!r} has no values in this range")

    if reference is None:
        cut = max(1, int(len(records) * config.reference_share))
        reference = records.iloc[:cut]
        notes.append(f"reference: the earliest {cut} predictions of the range (no reference period given)")
    elif reference.empty:
        notes.append("the reference period holds no records: drift not measured")
    profile = ReferenceProfile.fit(reference, features, ["prediction"]) if not reference.empty else None

    table = _window_table(records, aggregates, config, profile)
    drift = _drift_table(records, profile, features)
    if not drift.empty:
        worst = drift.groupby("window")["psi"].max()
        table["max_psi"] = table["window"].map(worst)
    alerts = _alerts(table, drift, config)
    small = int((table["predictions"] < config.thresholds.min_drift_rows).sum())
    if small:
        notes.append(
            f"{small} window(s) under {config.thresholds.min_drift_rows} predictions: drift shown, not judged"
        )
    labelled = records["label"].notna()
    hits = (records.loc[labelled, "prediction"] == records.loc[labelled, "label"]).to_numpy()
    overall = {
        "predictions": len(records),
        "requests": int(records["prediction_uuid"].nunique()),
        "labelled": int(labelled.sum()),
        "label_coverage": float(labelled.mean()),
        "accuracy": float(hits.mean()) if hits.size else None,
        "latency_p50_ms": _pct(records, 50),
        "latency_p95_ms": _pct(records, 95),
        "latency_p99_ms": _pct(records, 99),
        "windows": len(table),
        "alerts": len(alerts),
    }
    return Analysis(
        records=records,
        windows=table,
        drift=drift,
        arrival=_arrival_table(records, config),
        confusion=_confusion(records),
        alerts=alerts,
        overall=overall,
        notes=notes,
    )


def _pct(records: pd.DataFrame, q: float) -> float | None:
    per_call = first_rows(records)["latency_ms"].dropna()
    return float(np.percentile(per_call, q)) if len(per_call) else None


def _window_table(
    records: pd.DataFrame,
    aggregates: pd.DataFrame,
    config: MonitoringConfig,
    profile: ReferenceProfile | None,
) -> pd.DataFrame:
    calls = first_rows(records)
    g = records.groupby("window")
    table = pd.DataFrame(
        {
            "start_ms": g["start_ms"].min(),
            "end_ms": g["end_ms"].max(),
            "predictions": g.size(),
            "requests": calls.groupby("window").size(),
            "latency_p50_ms": calls.groupby("window")["latency_ms"].quantile(0.5),
            "latency_p95_ms": calls.groupby("window")["latency_ms"].quantile(0.95),
            "latency_p99_ms": calls.groupby("window")["latency_ms"].quantile(0.99),
            "label_coverage": g["label"].apply(lambda s: s.notna().mean()),
        }
    ).reset_index()
    quality = window_quality(
        records["window"].to_numpy(),
        records["prediction"].to_numpy(),
        records["label"].to_numpy(dtype=float),
        min_count=config.thresholds.min_labels,
    )
    table = table.merge(quality, on="window", how="left")
    mix = pd.crosstab(records["window"], records["prediction"], normalize="index")
    for label in mix.columns:
        table[f"share_{label}"] = table["window"].map(mix[label])
    if profile is not None and "prediction" in profile.categorical:
        mix_drift = g["prediction"].apply(lambda s: pd.Series(profile.categorical_drift("prediction", s)))
        mix_drift = mix_drift.unstack() if isinstance(mix_drift.index, pd.MultiIndex) else mix_drift
        table["prediction_js"] = table["window"].map(mix_drift["js"])
        table["prediction_pvalue"] = table["window"].map(mix_drift["chi2_pvalue"])
    table["tracked_accuracy"] = _tracked_accuracy(table, aggregates)
    return table


def _tracked_accuracy(table: pd.DataFrame, aggregates: pd.DataFrame) -> pd.Series:
    """The accuracy aggregates tracked by the simulation (CML aggregate records) per window."""
    if aggregates.empty or "accuracy" not in aggregates:
        return pd.Series(np.nan, index=table.index)
    mid = (aggregates["start_ms"] + aggregates["end_ms"]) / 2
    values = []
    for start, end in zip(table["start_ms"], table["end_ms"], strict=True):
        inside = aggregates.loc[(mid >= start) & (mid <= end), "accuracy"]
        values.append(float(pd.to_numeric(inside, errors="coerce").mean()) if len(inside) else np.nan)
    return pd.Series(values, index=table.index)


def _drift_table(
    records: pd.DataFrame, profile: ReferenceProfile | None, features: list[str]
) -> pd.DataFrame:
    if profile is None:
        return pd.DataFrame(
            columns=["window", "feature", "psi", "psi_critical", "ks", "ks_pvalue", "nan_share"]
        )
    rows = []
    for window, group in records.groupby("window"):
        for name in features:
            if name not in profile.numeric:
                continue
            values = pd.to_numeric(group[name], errors="coerce").to_numpy(dtype=float)
            rows.append(
                {
                    "window": window,
                    "feature": name.removeprefix(FEATURE_PREFIX),
                    **profile.numeric_drift(name, values),
                }
            )
    return pd.DataFrame(
        rows, columns=["window", "feature", "psi", "psi_critical", "ks", "ks_pvalue", "nan_share"]
    )


def _arrival_table(records: pd.DataFrame, config: MonitoringConfig) -> pd.DataFrame:
    """Accuracy by when the labels arrived (the other clock), when arrival times are known."""
    if "delayed_arrived_ms" not in records:
        return pd.DataFrame(columns=["arrival_window", "arrived_from_ms", "n_labelled", "accuracy"])
    labelled = records[records["label"].notna() & records["delayed_arrived_ms"].notna()]
    labelled = labelled.sort_values("delayed_arrived_ms", kind="stable")
    if labelled.empty:
        return pd.DataFrame(columns=["arrival_window", "arrived_from_ms", "n_labelled", "accuracy"])
    arrived = labelled["delayed_arrived_ms"].astype("int64").to_numpy()
    if config.window_kind is WindowKind.time:
        window = pd.factorize(windows.by_time(arrived, config.window_minutes * 60_000), sort=True)[0]
    else:
        window = windows.by_count(len(labelled), max(1, math.ceil(len(labelled) / DEFAULT_WINDOWS)))
    quality = window_quality(
        window, labelled["prediction"].to_numpy(), labelled["label"].to_numpy(dtype=float)
    )
    start = pd.Series(arrived).groupby(window).min()
    return pd.DataFrame(
        {
            "arrival_window": quality["window"],
            "arrived_from_ms": quality["window"].map(start),
            "n_labelled": quality["n_labelled"],
            "accuracy": quality["accuracy"],
        }
    )


def _confusion(records: pd.DataFrame) -> pd.DataFrame:
    labelled = records[records["label"].notna()]
    if labelled.empty:
        return pd.DataFrame()
    return pd.crosstab(
        labelled["label"].astype(int).rename("actual"), labelled["prediction"].rename("predicted")
    )


def _alerts(table: pd.DataFrame, drift: pd.DataFrame, config: MonitoringConfig) -> list[Alert]:
    t = config.thresholds
    alerts: list[Alert] = []

    def add(
        kind: AlertKind,
        row: pd.Series,
        metric: str,
        subject: str,
        value: float,
        threshold: float,
        message: str,
    ) -> None:
        alerts.append(
            Alert(
                kind=kind,
                window=int(row["window"]),
                window_start_ms=int(row["start_ms"]),
                window_end_ms=int(row["end_ms"]),
                metric=metric,
                subject=subject,
                value=float(value),
                threshold=threshold,
                message=message,
            )
        )

    for _, row in table.iterrows():
        w = int(row["window"])
        # Confidently below: the whole 95% interval under the threshold, so noise in a small
        # window does not page anyone (the point estimate alone would, about 1 window in 100).
        if pd.notna(row["accuracy_high"]) and row["accuracy_high"] < t.min_accuracy:
            add(
                AlertKind.accuracy,
                row,
                "accuracy",
                "model",
                row["accuracy"],
                t.min_accuracy,
                f"window {w}: accuracy {row['accuracy']:.3f} below {t.min_accuracy} "
                f"({int(row['n_labelled'])} labels)",
            )
        if pd.notna(row["latency_p95_ms"]) and row["latency_p95_ms"] > t.max_p95_latency_ms:
            add(
                AlertKind.latency,
                row,
                "latency_p95_ms",
                "model",
                row["latency_p95_ms"],
                t.max_p95_latency_ms,
                f"window {w}: p95 latency {row['latency_p95_ms']:.0f} ms above {t.max_p95_latency_ms:.0f} ms",
            )
        if row["label_coverage"] < t.min_label_coverage:
            add(
                AlertKind.coverage,
                row,
                "label_coverage",
                "model",
                row["label_coverage"],
                t.min_label_coverage,
                f"window {w}: label coverage {row['label_coverage']:.2f} below {t.min_label_coverage}",
            )
        judged = row["predictions"] >= t.min_drift_rows  # fewer: noise, not drift
        if (
            judged
            and "prediction_js" in row
            and pd.notna(row["prediction_js"])
            and row["prediction_js"] > t.max_prediction_js
            and row["prediction_pvalue"] < NOISE_ALPHA
        ):
            add(
                AlertKind.drift,
                row,
                "prediction_js",
                "predictions",
                row["prediction_js"],
                t.max_prediction_js,
                f"window {w}: prediction mix drifted (JS {row['prediction_js']:.3f} > {t.max_prediction_js})",
            )
    if not drift.empty:
        by_window = table.set_index("window")
        big_enough = drift["window"].map(table.set_index("window")["predictions"]) >= t.min_drift_rows
        flagged = drift[big_enough & (drift["psi"] > t.max_psi) & (drift["psi"] > drift["psi_critical"])]
        for _, d in flagged.iterrows():
            row = by_window.loc[d["window"]].copy()
            row["window"] = d["window"]
            add(
                AlertKind.drift,
                row,
                "psi",
                str(d["feature"]),
                d["psi"],
                t.max_psi,
                f"window {int(d['window'])}: feature {d['feature']!r} drifted "
                f"(PSI {d['psi']:.3f} > {t.max_psi})",
            )
    return alerts


def _empty(notes: list[str]) -> Analysis:
    return Analysis(
        records=pd.DataFrame(),
        windows=pd.DataFrame(columns=["window", "start_ms", "end_ms", "predictions", "requests", "accuracy"]),
        drift=pd.DataFrame(
            columns=["window", "feature", "psi", "psi_critical", "ks", "ks_pvalue", "nan_share"]
        ),
        arrival=pd.DataFrame(columns=["arrival_window", "arrived_from_ms", "n_labelled", "accuracy"]),
        confusion=pd.DataFrame(),
        alerts=[],
        overall={
            "predictions": 0,
            "requests": 0,
            "labelled": 0,
            "label_coverage": None,
            "accuracy": None,
            "latency_p50_ms": None,
            "latency_p95_ms": None,
            "latency_p99_ms": None,
            "windows": 0,
            "alerts": 0,
        },
        notes=notes,
    )
