"""Monitoring in bounded memory: the range read a block at a time, each block folded into
per-window sums, and the report's figures computed from the sums.

`analyse` (in memory) stays the reference implementation; this gives its answers without holding
the range. Exactly equal: counts, coverage, accuracy and its interval, precision/recall/F1,
confusion matrix, class mix and its drift, positive rate, PSI and its noise floor, missing
shares, latency percentiles (latencies are whole milliseconds: a histogram of them is exact),
the accuracy CUSUM, the drop tests; equal up to float summation order: estimated accuracy.
Approximate, with a stated bound: KS statistics (feature and probability) are taken at the
edges of 1,000 bins at the reference sample's quantiles, so a binned KS is at most one bin's
share of the reference (0.001, more where the reference repeats a value) below the exact one,
and never above it; their p-values use the asymptotic distribution.

What grows with the range, and why it stays small: with count windows, the arrival table keeps
one bit per labelled prediction (whether it was right, grouped by the label's arrival time:
equal-count arrival windows cut through those groups); everything else grows with windows,
features and distinct arrival times.

Reads: `blocks()` is called once per pass and must give the same rows in the same (time) order
each time. Passes: the rows are counted first when the windows or the reference need the total
(default count windows; a reference taken as the range's earliest share), then the reference's
rows are sampled (`reference_sample`), then everything is folded.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from modelvigil.analysis import alerts
from modelvigil.analysis.analyse import (
    ARRIVAL_COLUMNS,
    DRIFT_COLUMNS,
    FEATURE_PREFIX,
    Analysis,
    empty_analysis,
    feature_columns,
    fit_reference,
    prepare_records,
    time_span,
    tracked_accuracy,
)
from modelvigil.analysis.config import MonitoringConfig
from modelvigil.analysis.drift import psi_noise_floor
from modelvigil.analysis.performance import wilson_interval
from modelvigil.analysis.performance_drift import PERFORMANCE_COLUMNS, cusum_limit
from modelvigil.analysis.reference_sample import ReferenceSampler
from modelvigil.analysis.window_sums import Fold, binned_ks, ks_pvalue, percentile_from_counts
from modelvigil.analysis.windows import DEFAULT_WINDOWS, WindowKind
from modelvigil.protocol import LABEL_KEY

Blocks = Callable[[], Iterable[pd.DataFrame]]


@dataclass
class StreamSketch:
    """What the plots need that the window table does not hold."""

    latency: Counter  # per call, whole ms
    calls: pd.DataFrame  # start_ms, latency_ms of the first calls (all of them up to SCATTER_CALLS)
    total_calls: int
    latency_bins: pd.DataFrame  # t, p50, p95, low, high per time bin
    feature_fine: dict[tuple[str, int], np.ndarray]  # (feature, window) -> fine counts
    feature_edges: dict[str, np.ndarray]
    ks_bounds: dict[str, float]  # feature (and "probability") -> how far its binned KS may fall short


def _window_table(fold: Fold, aggregates: pd.DataFrame, config: MonitoringConfig) -> pd.DataFrame:
    min_labels = max(config.thresholds.min_labels, 1)
    rows = []
    labels = sorted({label for _, w in fold.ordered() for label in w.mix}, key=_sort_key)
    for number, w in fold.ordered():
        n = w.labelled
        enough = n >= min_labels
        precision = (w.tp / w.predicted_positive if w.predicted_positive else 0.0) if enough else math.nan
        recall = (w.tp / w.actual_positive if w.actual_positive else 0.0) if enough else math.nan
        f1 = (
            (2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0)
            if enough
            else math.nan
        )
        low, high = wilson_interval(np.array([w.hits], dtype=float), np.array([n], dtype=float))
        pos_low, pos_high = wilson_interval(np.array([w.positives], dtype=float), np.array([w.predictions]))
        row = {
            "window": number,
            "start_ms": w.start_ms,
            "end_ms": w.end_ms,
            "predictions": w.predictions,
            "requests": w.requests if w.requests else math.nan,
            "latency_p50_ms": percentile_from_counts(w.latency, 50) if w.latency else math.nan,
            "latency_p95_ms": percentile_from_counts(w.latency, 95) if w.latency else math.nan,
            "latency_p99_ms": percentile_from_counts(w.latency, 99) if w.latency else math.nan,
            "label_coverage": w.labelled / w.predictions,
            "n_labelled": n,
            "accuracy": w.hits / n if enough else math.nan,
            "accuracy_low": float(low[0]) if enough else math.nan,
            "accuracy_high": float(high[0]) if enough else math.nan,
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }
        predicted = sum(w.mix.values())  # rows with a prediction: the mix's whole
        for label in labels:
            row[f"share_{label}"] = w.mix.get(label, 0) / predicted if predicted else math.nan
        row["positive_rate"] = w.positives / w.predictions
        row["positive_rate_low"], row["positive_rate_high"] = float(pos_low[0]), float(pos_high[0])
        if fold.profile is not None and "prediction" in fold.profile.categorical:
            counts = pd.Series(dict(w.mix.most_common()), dtype=float)
            mix_drift = fold.profile.categorical_counts_drift("prediction", counts)
            row["prediction_js"], row["prediction_pvalue"] = mix_drift["js"], mix_drift["chi2_pvalue"]
        rows.append(row)
    table = pd.DataFrame(rows)
    table["tracked_accuracy"] = tracked_accuracy(table, aggregates)
    return table


def _sort_key(label: object) -> tuple[int, object]:
    return (0, label) if isinstance(label, int | float) else (1, str(label))


def _performance_table(fold: Fold, config: MonitoringConfig) -> pd.DataFrame:
    performance = fold.performance
    assert performance is not None
    t = config.thresholds
    windows = fold.ordered()
    labelled = [w.labelled for _, w in windows]
    per_window = max(float(np.median(labelled)), 1.0) if any(labelled) else 1.0
    limit = cusum_limit(1.0 - performance.accuracy, t.cusum_shift, per_window * t.cusum_quiet_windows)
    rows = []
    for number, w in windows:
        n = w.labelled
        accuracy = w.hits / n if n else math.nan
        estimated = {
            "estimated_accuracy": math.nan,
            "estimated_drop": math.nan,
            "estimated_drop_pvalue": math.nan,
        }
        if w.expected_n:
            estimate = w.expected_sum / w.expected_n
            var = (
                w.expected_var / w.expected_n**2
                + performance.accuracy * (1 - performance.accuracy) / performance.n_labelled
            )
            z = (estimate - performance.accuracy) / np.sqrt(var) if var > 0 else 0.0
            estimated = {
                "estimated_accuracy": estimate,
                "estimated_drop": performance.accuracy - estimate,
                "estimated_drop_pvalue": float(stats.norm.cdf(z)),
            }
        probability = {"probability_ks": math.nan, "probability_pvalue": math.nan}
        if fold.probability_fine is not None and w.probability is not None and w.probability.sum():
            d = binned_ks(w.probability, fold.probability_fine.reference_cdf)
            probability = {
                "probability_ks": d,
                "probability_pvalue": ks_pvalue(
                    d, int(w.probability.sum()), fold.probability_fine.reference_n
                ),
            }
        rows.append(
            {
                "window": number,
                "reference_accuracy": performance.accuracy,
                **performance.drop_test(accuracy, n, t.min_labels),
                "accuracy_cusum": w.cusum_max if n else math.nan,
                "cusum_limit": limit,
                **estimated,
                **probability,
            }
        )
    return pd.DataFrame(rows, columns=PERFORMANCE_COLUMNS)


def _drift_table(fold: Fold) -> pd.DataFrame:
    profile = fold.profile
    if profile is None:
        return pd.DataFrame(columns=DRIFT_COLUMNS)
    rows = []
    for number, w in fold.ordered():
        for name in fold.features:
            if name not in profile.numeric:
                continue
            ref = profile.numeric[name]
            seen, finite = w.rows_seen[name], w.finite[name]
            nan_share = 1.0 - finite / seen if seen else math.nan
            if finite == 0:
                drift = {"psi": math.nan, "psi_critical": math.nan, "ks": math.nan, "ks_pvalue": math.nan}
            else:
                counts = w.bins[name]
                actual = (counts + 0.5) / (counts.sum() + 0.5 * counts.size)
                expected = np.maximum(ref.proportions, 1e-4)
                d = binned_ks(w.fine[name], fold.fine[name].reference_cdf)
                drift = {
                    "psi": float(np.sum((actual - expected) * np.log(actual / expected))),
                    "psi_critical": psi_noise_floor(finite, ref.sample.size, ref.edges.size + 1),
                    "ks": d,
                    "ks_pvalue": ks_pvalue(d, finite, ref.sample.size),
                }
            rows.append(
                {
                    "window": number,
                    "feature": name.removeprefix(FEATURE_PREFIX),
                    **drift,
                    "nan_share": nan_share,
                }
            )
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS)


def _confusion(fold: Fold) -> pd.DataFrame:
    if not fold.confusion:
        return pd.DataFrame()
    actual = sorted({a for a, _ in fold.confusion})
    predicted = sorted({p for _, p in fold.confusion}, key=_sort_key)
    grid = pd.DataFrame(
        [[fold.confusion.get((a, p), 0) for p in predicted] for a in actual],
        index=pd.Index(actual, name="actual"),
        columns=pd.Index(predicted, name="predicted"),
    )
    return grid.astype(np.int64)


def _latency_bins(fold: Fold) -> pd.DataFrame:
    rows = [
        {
            "t": fold.bin_time[b] / fold.bin_count[b],
            "p50": percentile_from_counts(counts, 50),
            "p95": percentile_from_counts(counts, 95),
            "low": float(min(counts)),
            "high": float(max(counts)),
        }
        for b, counts in sorted(fold.bin_latency.items())
        if counts
    ]
    return pd.DataFrame(rows, columns=["t", "p50", "p95", "low", "high"])


# What a reference is fitted on (and its sampler keeps): the rest of a record is not held.
_REFERENCE_BASE = {"prediction_uuid", "row", "start_ms", "end_ms", "prediction", "probability", LABEL_KEY}


def _reference_column(name: str) -> bool:
    return name in _REFERENCE_BASE or name.startswith(FEATURE_PREFIX)


def analyse_blocks(
    blocks: Blocks,
    aggregates: pd.DataFrame | Callable[[], pd.DataFrame],
    config: MonitoringConfig,
    time_range: tuple[int, int],
    reference_blocks: Blocks | None = None,
    count_rows: Callable[[], int] | None = None,
) -> Analysis:
    """`analyse`'s answers, read block by block (see the module's note on passes and memory).
    `aggregates` may be a callable, asked once every pass is done (they may come with the blocks);
    `count_rows`, when the source can count its rows without reading them, saves a pass."""
    notes: list[str] = []
    count_windows = config.windowing().kind is WindowKind.count and config.window_size is None
    total = None
    if count_windows or reference_blocks is None:  # a pass of its own, unless the source can count
        total = count_rows() if count_rows is not None else sum(len(block) for block in blocks())
    if total == 0:
        notes.append("no prediction records in the requested range")
        return empty_analysis(notes)

    sampler = ReferenceSampler(keep=_reference_column)
    span_rows: list[pd.DataFrame] = []
    if reference_blocks is None:
        assert total is not None
        cut = max(1, int(total * config.reference_share))
        taken = 0
        for block in blocks():
            part = block.iloc[: cut - taken]
            sampler.add(part)
            span_rows.append(part[["start_ms"]])
            taken += len(part)
            if taken >= cut:
                break
        notes.append(f"reference: the earliest {cut} predictions of the range (no reference period given)")
    else:
        for block in reference_blocks():
            sampler.add(block)
            span_rows.append(block[["start_ms"]])
    reference = sampler.frame()
    span = time_span(pd.concat(span_rows, ignore_index=True)) if span_rows else None
    if reference_blocks is not None and reference.empty:
        notes.append("the reference period holds no records: drift not measured")
    if not reference.empty and "label" not in reference:
        reference, _ = prepare_records(reference)

    # The features are known once the range is read; the reference is fitted on those it has.
    features = feature_columns(reference) if not reference.empty else []
    profile, performance = fit_reference(reference, features)
    if performance is None and not reference.empty:
        notes.append("the reference holds too few labels: accuracy is held against the floor only")

    fold = Fold(config, profile, performance, total, time_range)
    for block in blocks():
        fold.add(block)
    if fold.row == 0:
        notes.append("no prediction records in the requested range")
        return empty_analysis(notes)
    return _finish(fold, aggregates() if callable(aggregates) else aggregates, config, notes, span)


def _finish(
    fold: Fold,
    aggregates: pd.DataFrame,
    config: MonitoringConfig,
    notes: list[str],
    span: tuple[int, int] | None,
) -> Analysis:
    empty_features = [
        f"feature {name.removeprefix(FEATURE_PREFIX)!r} has no values in this range"
        for name in fold.features
        if not fold.notnull[name]
    ]
    notes[:0] = empty_features  # in `analyse`'s order: labels, features, then the reference
    if fold.invalid_count:
        shown = ", ".join(repr(v)[:40] for v in fold.invalid[:3])
        notes.insert(
            0, f"{fold.invalid_count} label(s) not usable for accuracy (not numbers), left out: {shown}"
        )
    table = _window_table(fold, aggregates, config)
    if fold.performance is not None:
        table = table.merge(_performance_table(fold, config), on="window", how="left")
    drift = _drift_table(fold)
    if not drift.empty:
        table["max_psi"] = table["window"].map(drift.groupby("window")["psi"].max())
    raised = alerts.evaluate(table, drift, config.thresholds)
    small = int((table["predictions"] < config.thresholds.min_drift_rows).sum())
    if small:
        notes.append(
            f"{small} window(s) under {config.thresholds.min_drift_rows} predictions: drift shown, not judged"
        )
    labelled = sum(w.labelled for w in fold.windows.values())
    hits = sum(w.hits for w in fold.windows.values())
    overall = {
        "predictions": fold.row,
        "requests": fold.total_calls,
        "labelled": labelled,
        "invalid_labels": fold.invalid_count,
        "label_coverage": labelled / fold.row,
        "accuracy": hits / labelled if labelled else None,
        "latency_p50_ms": percentile_from_counts(fold.latency, 50) if fold.latency else None,
        "latency_p95_ms": percentile_from_counts(fold.latency, 95) if fold.latency else None,
        "latency_p99_ms": percentile_from_counts(fold.latency, 99) if fold.latency else None,
        "windows": len(table),
        "alerts": len(raised),
    }
    calls = (
        pd.concat(fold.calls, ignore_index=True)
        if fold.calls
        else pd.DataFrame(columns=["start_ms", "latency_ms"])
    )
    sketch = StreamSketch(
        latency=fold.latency,
        calls=calls,
        total_calls=fold.total_calls,
        latency_bins=_latency_bins(fold),
        feature_fine={
            (name.removeprefix(FEATURE_PREFIX), number): w.fine[name]
            for number, w in fold.ordered()
            for name in w.fine
        },
        feature_edges={name.removeprefix(FEATURE_PREFIX): f.edges for name, f in fold.fine.items()},
        ks_bounds={
            **{name.removeprefix(FEATURE_PREFIX): f.ks_bound for name, f in fold.fine.items()},
            **({"probability": fold.probability_fine.ks_bound} if fold.probability_fine is not None else {}),
        },
    )
    return Analysis(
        records=pd.DataFrame(),
        windows=table,
        drift=drift,
        arrival=_arrival(fold, config),
        confusion=_confusion(fold),
        alerts=raised,
        overall=overall,
        notes=notes,
        profile=fold.profile,
        reference_span_ms=span,
        sketch=sketch,
    )


def _arrival(fold: Fold, config: MonitoringConfig) -> pd.DataFrame:
    """`arrival_table`'s answer from the fold: buckets summed as they came (time windows), or the
    arrivals sorted once and cut into equal counts (count windows)."""
    if fold.arrival_buckets:
        rows = sorted(fold.arrival_buckets.items())
        labelled = np.array([n for _, (n, _, _) in rows], dtype=np.int64)
        hits = np.array([h for _, (_, h, _) in rows], dtype=np.int64)
        first = np.array([f for _, (_, _, f) in rows], dtype=np.int64)
    elif fold.arrival:
        total = sum(n for parts in fold.arrival.values() for _, n in parts)
        size = config.window_size or max(1, math.ceil(total / DEFAULT_WINDOWS))
        windows = math.ceil(total / size)
        labelled = np.zeros(windows, dtype=np.int64)
        hits = np.zeros(windows, dtype=np.int64)
        first = np.zeros(windows, dtype=np.int64)
        rank = 0
        for ms in sorted(fold.arrival):  # the arrivals in order, each time's rows as they came
            right = np.concatenate([np.unpackbits(bits, count=n) for bits, n in fold.arrival[ms]])
            window = (rank + np.arange(right.size)) // size
            labelled += np.bincount(window, minlength=windows)
            hits += np.bincount(window, weights=right, minlength=windows).astype(np.int64)
            opened = window[(rank + np.arange(right.size)) % size == 0]
            first[opened] = ms
            rank += right.size
    else:
        return pd.DataFrame(columns=ARRIVAL_COLUMNS)
    return pd.DataFrame(
        {
            "arrival_window": np.arange(labelled.size),
            "arrived_from_ms": first,
            "n_labelled": labelled,
            "accuracy": hits / labelled,
        }
    )
