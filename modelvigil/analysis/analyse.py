"""Monitoring analysis: per window latency, volume, coverage, accuracy, prediction mix and drift.

Input is the store's frame shape (`MetricsStore.read_frame`: one row per scored row). Reference
statistics are fitted once (`drift.ReferenceProfile`), then every window is measured against
them; windows come from `modelvigil.analysis.windows`. Nothing here raises on NaN or empty data: an empty
range gives empty tables and a note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelvigil.analysis import alerts
from modelvigil.analysis.config import Alert, MonitoringConfig
from modelvigil.analysis.drift import ReferenceProfile
from modelvigil.analysis.performance import wilson_interval, window_quality
from modelvigil.analysis.performance_drift import PerformanceReference
from modelvigil.analysis.reference_sample import reference_rows
from modelvigil.analysis.windows import Windowing
from modelvigil.protocol import LABEL_KEY

FEATURE_PREFIX = "input_data."
DRIFT_COLUMNS = ["window", "feature", "psi", "psi_critical", "ks", "ks_pvalue", "nan_share"]
ARRIVAL_COLUMNS = ["arrival_window", "arrived_from_ms", "n_labelled", "accuracy"]
WINDOW_COLUMNS = ["window", "start_ms", "end_ms", "predictions", "requests", "accuracy"]


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
    profile: ReferenceProfile | None = None  # the reference's statistics, as drift was measured against
    reference_span_ms: tuple[int, int] | None = None  # when the reference's predictions were made
    sketch: Any = None  # a streamed analysis's `StreamSketch` (it keeps no `records`) for the plots

    @property
    def empty(self) -> bool:
        return not self.overall.get("predictions")


def first_rows(records: pd.DataFrame) -> pd.DataFrame:
    """One row per call (its first scored row): the unit for latency and request counts."""
    return records[records["row"] == 0]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(FEATURE_PREFIX)]


def prepare_records(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[object]]:
    # Time order; ties keep the source's order, which keeps a call's rows together. Both read
    # paths already deliver time order, so the sort is usually skipped (it costs seconds at 1M rows).
    if frame["start_ms"].is_monotonic_increasing:
        records = frame.reset_index(drop=True)
    else:
        records = frame.sort_values("start_ms", kind="stable").reset_index(drop=True)
    # The lab computed `(end - start).dt.microseconds * 1000`: sub-second part only, multiplied.
    records["latency_ms"] = (records["end_ms"] - records["start_ms"]).astype(float)
    records["label"], invalid = usable_labels(records.get(LABEL_KEY))
    if "probability" not in records:
        records["probability"] = np.nan
    return records, invalid


def usable_labels(raw: pd.Series | None) -> tuple[pd.Series | float, list[object]]:
    """Ground truth as numbers (the model's labels are numbers), and the values that are not:
    an object, a list, text or a boolean sent as a label is left out and reported, never a crash."""
    if raw is None:
        return np.nan, []
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw.astype(float), []
    values = raw.to_numpy(dtype=object)
    number = (int, float, np.integer, np.floating)
    usable = np.array(
        [isinstance(v, number) and not isinstance(v, bool | np.bool_) for v in values], dtype=bool
    )
    present = ~pd.isna(raw).to_numpy() & ~usable
    invalid = [values[i] for i in np.flatnonzero(present)]
    labels = np.full(len(values), np.nan)
    labels[usable] = values[usable].astype(float)
    return pd.Series(labels, index=raw.index), invalid


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
        return empty_analysis(notes)
    records, invalid = prepare_records(frame)
    windowing = config.windowing()
    records["window"] = windowing.assign(records["start_ms"])
    features = feature_columns(records)
    if invalid:
        shown = ", ".join(repr(v)[:40] for v in invalid[:3])
        notes.append(f"{len(invalid)} label(s) not usable for accuracy (not numbers), left out: {shown}")
    for name in features:
        if records[name].isna().all():
            notes.append(f"feature {name.removeprefix(FEATURE_PREFIX)!r} has no values in this range")

    if reference is None:
        cut = max(1, int(len(records) * config.reference_share))
        reference = records.iloc[:cut]
        notes.append(f"reference: the earliest {cut} predictions of the range (no reference period given)")
    elif reference.empty:
        notes.append("the reference period holds no records: drift not measured")
    span = time_span(reference)
    if not reference.empty and "label" not in reference:
        reference, _ = prepare_records(reference)
    profile, performance = fit_reference(reference, features)
    if performance is None and not reference.empty:
        notes.append("the reference holds too few labels: accuracy is held against the floor only")

    table = _window_table(records, aggregates, config, profile)
    if performance is not None:
        thresholds = config.thresholds
        against = performance.per_window(
            records,
            min_labels=thresholds.min_labels,
            cusum_shift=thresholds.cusum_shift,
            cusum_quiet_windows=thresholds.cusum_quiet_windows,
        )
        table = table.merge(against, on="window", how="left")
    drift = _drift_table(records, profile, features)
    if not drift.empty:
        worst = drift.groupby("window")["psi"].max()
        table["max_psi"] = table["window"].map(worst)
    raised = alerts.evaluate(table, drift, config.thresholds)
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
        "invalid_labels": len(invalid),
        "label_coverage": float(labelled.mean()),
        "accuracy": float(hits.mean()) if hits.size else None,
        "latency_p50_ms": _pct(records, 50),
        "latency_p95_ms": _pct(records, 95),
        "latency_p99_ms": _pct(records, 99),
        "windows": len(table),
        "alerts": len(raised),
    }
    return Analysis(
        records=records,
        windows=table,
        drift=drift,
        arrival=arrival_table(records, windowing),
        confusion=_confusion(records),
        alerts=raised,
        overall=overall,
        notes=notes,
        profile=profile,
        reference_span_ms=span,
    )


def fit_reference(
    reference: pd.DataFrame, features: list[str]
) -> tuple[ReferenceProfile | None, PerformanceReference | None]:
    """Drift and performance references, fitted on the reference's rows (at most
    `REFERENCE_ROWS` of them, chosen as `reference_sample` says: the streamed analysis fits the same)."""
    if reference.empty:
        return None, None
    rows = reference_rows(reference)
    return ReferenceProfile.fit(rows, features, ["prediction"]), PerformanceReference.fit(rows)


def time_span(reference: pd.DataFrame) -> tuple[int, int] | None:
    if reference.empty or "start_ms" not in reference:
        return None
    return int(reference["start_ms"].min()), int(reference["start_ms"].max())


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
    # The predicted positive rate with its 95% interval: the mix as a rate one can hold a line to.
    positives = (records["prediction"] == 1).groupby(records["window"]).sum()
    low, high = wilson_interval(table["window"].map(positives).to_numpy(dtype=float), table["predictions"])
    table["positive_rate"] = table["window"].map(positives) / table["predictions"]
    table["positive_rate_low"], table["positive_rate_high"] = low, high
    if profile is not None and "prediction" in profile.categorical:
        mix_drift = g["prediction"].apply(lambda s: pd.Series(profile.categorical_drift("prediction", s)))
        mix_drift = mix_drift.unstack() if isinstance(mix_drift.index, pd.MultiIndex) else mix_drift
        table["prediction_js"] = table["window"].map(mix_drift["js"])
        table["prediction_pvalue"] = table["window"].map(mix_drift["chi2_pvalue"])
    table["tracked_accuracy"] = tracked_accuracy(table, aggregates)
    return table


def tracked_accuracy(table: pd.DataFrame, aggregates: pd.DataFrame) -> pd.Series:
    """The accuracy aggregates tracked by the simulation (CML aggregate records) per window.

    An aggregate's predictions are taken as spread evenly over its range, so it counts in each
    window by the share of its range that falls there (times its `predictions`, when it says).
    One slow answer stretches an aggregate's end into the next windows; weighing by share keeps
    it beside its own window instead of moving it wholly to a longer neighbour. An aggregate that
    overlaps no window (the sender's clock runs apart from the service's) counts in the nearest.
    """
    if aggregates.empty or "accuracy" not in aggregates or table.empty:
        return pd.Series(np.nan, index=table.index, dtype=float)
    accuracy = pd.to_numeric(aggregates["accuracy"], errors="coerce").to_numpy(dtype=float)
    known = ~np.isnan(accuracy)
    if not known.any():
        return pd.Series(np.nan, index=table.index)
    starts, ends = table["start_ms"].to_numpy(dtype=float), table["end_ms"].to_numpy(dtype=float)
    a_start = aggregates["start_ms"].to_numpy(dtype=float)[known, None]
    a_end = aggregates["end_ms"].to_numpy(dtype=float)[known, None]
    overlap = np.minimum(a_end, ends) - np.maximum(a_start, starts)
    gap = np.maximum(starts - a_end, a_start - ends)  # > 0: apart by this much
    spread = np.clip(overlap, 0, None)
    nearest = np.zeros_like(spread)
    nearest[np.arange(len(spread)), np.where(overlap >= 0, overlap, -gap).argmax(axis=1)] = 1.0
    total = spread.sum(axis=1, keepdims=True)
    # A point-like aggregate (start == end) or one outside every window: all of it in its best window.
    share = np.where(total > 0, spread / np.where(total > 0, total, 1), nearest)
    if "predictions" in aggregates:
        counts = pd.to_numeric(aggregates["predictions"], errors="coerce").to_numpy(dtype=float)[known]
        share = share * np.where(np.isnan(counts) | (counts <= 0), 1.0, counts)[:, None]
    weight = share.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_window = (share * accuracy[known, None]).sum(axis=0) / weight
    return pd.Series(np.where(weight > 0, per_window, np.nan), index=table.index)


def _drift_table(
    records: pd.DataFrame, profile: ReferenceProfile | None, features: list[str]
) -> pd.DataFrame:
    if profile is None:
        return pd.DataFrame(columns=DRIFT_COLUMNS)
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
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS)


def arrival_table(records: pd.DataFrame, windowing: Windowing) -> pd.DataFrame:
    """Accuracy by when the labels arrived (the other clock), when arrival times are known."""
    if "delayed_arrived_ms" not in records:
        return pd.DataFrame(columns=ARRIVAL_COLUMNS)
    labelled = records[records["label"].notna() & records["delayed_arrived_ms"].notna()]
    labelled = labelled.sort_values("delayed_arrived_ms", kind="stable")
    if labelled.empty:
        return pd.DataFrame(columns=ARRIVAL_COLUMNS)
    arrived = labelled["delayed_arrived_ms"].astype("int64").to_numpy()
    window = windowing.assign(arrived)
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


def empty_analysis(notes: list[str]) -> Analysis:
    return Analysis(
        records=pd.DataFrame(),
        windows=pd.DataFrame(columns=WINDOW_COLUMNS),
        drift=pd.DataFrame(columns=DRIFT_COLUMNS),
        arrival=pd.DataFrame(columns=ARRIVAL_COLUMNS),
        confusion=pd.DataFrame(),
        alerts=[],
        overall={
            "predictions": 0,
            "requests": 0,
            "labelled": 0,
            "invalid_labels": 0,
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
