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

What grows with the range, and why it stays small: the arrival table keeps, per labelled
prediction whose label's arrival time is known, that time and whether it was right (9 bytes;
equal-count arrival windows need them sorted); everything else grows with windows and features.

Reads: `blocks()` is called once per pass and must give the same rows in the same (time) order
each time. Passes: the rows are counted first when the windows or the reference need the total
(default count windows; a reference taken as the range's earliest share), then the reference's
rows are sampled (`reference_sample`), then everything is folded.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from modelvigil.analysis import alerts
from modelvigil.analysis.analyse import (
    ARRIVAL_COLUMNS,
    DRIFT_COLUMNS,
    FEATURE_PREFIX,
    Analysis,
    _arrival_table,
    _empty,
    _prepare,
    _span,
    _tracked_accuracy,
    feature_columns,
    fit_reference,
)
from modelvigil.analysis.config import MonitoringConfig
from modelvigil.analysis.drift import ReferenceProfile, psi_noise_floor
from modelvigil.analysis.performance import wilson_interval
from modelvigil.analysis.performance_drift import (
    PERFORMANCE_COLUMNS,
    PerformanceReference,
    _bernoulli_steps,
    cusum_limit,
)
from modelvigil.analysis.reference_sample import ReferenceSampler
from modelvigil.analysis.windows import DEFAULT_WINDOWS, WindowKind, by_time
from modelvigil.protocol import LABEL_KEY

Blocks = Callable[[], Iterable[pd.DataFrame]]
FINE_BINS = 1_000
LATENCY_TIME_BINS = 200
SCATTER_CALLS = 5_000


def percentile_from_counts(counts: Counter, q: float) -> float:
    """`np.percentile(values, q)` (linear interpolation) of the values `counts` tallies."""
    values = np.array(sorted(counts), dtype=float)
    tally = np.array([counts[v] for v in sorted(counts)], dtype=np.int64)
    n = int(tally.sum())
    position = (n - 1) * q / 100.0
    low = math.floor(position)
    ends = np.cumsum(tally)  # order statistic k (0-based) is values[first i with ends[i] > k]
    below = values[np.searchsorted(ends, low, side="right")]
    above = values[np.searchsorted(ends, min(low + 1, n - 1), side="right")]
    return float(below + (position - low) * (above - below))


def _fine_edges(sample: np.ndarray) -> np.ndarray:
    # Edges at sample values ("lower"): a bin then holds about 1/FINE_BINS of the reference (one
    # value when the sample is smaller), which is the binned KS's largest error.
    return np.unique(np.quantile(sample, np.linspace(0.0, 1.0, FINE_BINS + 1), method="lower"))


def binned_ks(counts: np.ndarray, reference_cdf: np.ndarray) -> float:
    """KS statistic at the fine edges: `counts` per bin (below the first edge, between edges,
    above the last), `reference_cdf` the reference's share at or below each edge."""
    n = counts.sum()
    if n == 0:
        return math.nan
    window_cdf = np.cumsum(counts)[:-1] / n
    return float(np.max(np.abs(window_cdf - reference_cdf)))


def _ks_pvalue(d: float, n1: int, n2: int) -> float:
    if not n1 or not n2 or not np.isfinite(d):
        return math.nan
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))


@dataclass
class _Fine:
    """A sample's fine bins, fixed by the reference: edges and the reference's CDF at them."""

    edges: np.ndarray
    reference_cdf: np.ndarray
    reference_n: int

    @classmethod
    def of(cls, sample: np.ndarray) -> _Fine:
        edges = _fine_edges(sample)
        return cls(edges, np.searchsorted(np.sort(sample), edges, side="right") / sample.size, sample.size)

    @property
    def ks_bound(self) -> float:
        """The largest share of the reference in one bin: how far a binned KS may fall short."""
        return float(np.diff(np.concatenate([[0.0], self.reference_cdf, [1.0]])).max())

    def count(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(self.edges, values, side="left"), minlength=self.edges.size + 1)


@dataclass
class _Window:
    start_ms: int
    end_ms: int
    predictions: int = 0
    requests: int = 0
    labelled: int = 0
    hits: int = 0
    tp: int = 0
    predicted_positive: int = 0
    actual_positive: int = 0
    positives: int = 0
    mix: Counter = field(default_factory=Counter)
    latency: Counter = field(default_factory=Counter)
    cusum_max: float = math.nan
    expected_sum: float = 0.0
    expected_var: float = 0.0
    expected_n: int = 0
    probability: np.ndarray | None = None
    bins: dict[str, np.ndarray] = field(default_factory=dict)
    fine: dict[str, np.ndarray] = field(default_factory=dict)
    finite: Counter = field(default_factory=Counter)
    rows_seen: Counter = field(default_factory=Counter)  # rows of each feature's column, NaN included


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


class _Fold:
    def __init__(
        self,
        config: MonitoringConfig,
        profile: ReferenceProfile | None,
        performance: PerformanceReference | None,
        total_rows: int | None,
        time_range: tuple[int, int],
    ) -> None:
        self.config, self.profile, self.performance = config, profile, performance
        windowing = config.windowing()
        self.time_window_ms = windowing.minutes * 60_000 if windowing.kind is WindowKind.time else None
        self.size = None
        if self.time_window_ms is None:
            self.size = windowing.size or max(1, math.ceil((total_rows or 0) / DEFAULT_WINDOWS))
        self.windows: dict[int, _Window] = {}
        self.row = 0
        self.features: list[str] = []
        self.notnull: Counter = Counter()
        self.invalid: list[object] = []
        self.invalid_count = 0
        self.cusum_level = 0.0
        self.arrival: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.confusion: Counter = Counter()
        self.latency: Counter = Counter()
        self.calls: list[pd.DataFrame] = []
        self.total_calls = 0
        low, high = time_range
        self.bin_edges = np.linspace(low, max(high, low + 1), LATENCY_TIME_BINS + 1)
        self.bin_latency: dict[int, Counter] = {}
        self.bin_time: Counter = Counter()
        self.bin_count: Counter = Counter()
        self.fine: dict[str, _Fine] = {}
        if profile is not None:
            self.fine = {name: _Fine.of(ref.sample) for name, ref in profile.numeric.items()}
        self.probability_fine = (
            _Fine.of(performance.probability)
            if performance is not None and performance.probability is not None
            else None
        )

    def add(self, block: pd.DataFrame) -> None:
        if block.empty:
            return
        records, invalid = _prepare(block)
        self.invalid_count += len(invalid)
        self.invalid += invalid[: max(0, 3 - len(self.invalid))]
        n = len(records)
        if self.size is not None:
            keys = (self.row + np.arange(n)) // self.size
        else:
            keys = by_time(records["start_ms"], self.time_window_ms)
        self.row += n
        records["window"] = keys
        for name in feature_columns(records):
            if name not in self.features:
                self.features.append(name)
            self.notnull[name] += int(records[name].notna().sum())
        self._fold_calls(records)
        for key, rows in records.groupby("window", sort=False):
            self._fold_window(int(key), rows)
        self._fold_cusum(records)
        self._fold_arrival(records)

    def _fold_calls(self, records: pd.DataFrame) -> None:
        calls = records[records["row"] == 0]
        latency = calls["latency_ms"].to_numpy()
        finite = latency[np.isfinite(latency)].astype(np.int64)
        self.latency.update(Counter(finite.tolist()))
        if self.total_calls < SCATTER_CALLS + 1:
            self.calls.append(calls[["start_ms", "latency_ms"]].iloc[: SCATTER_CALLS + 1 - self.total_calls])
        self.total_calls += len(calls)
        where = np.clip(
            np.searchsorted(self.bin_edges, calls["start_ms"], side="right") - 1, 0, LATENCY_TIME_BINS - 1
        )
        for b, group in calls.assign(_bin=where).groupby("_bin"):
            values = group["latency_ms"].to_numpy()
            self.bin_latency.setdefault(int(b), Counter()).update(
                Counter(values[np.isfinite(values)].astype(np.int64).tolist())
            )
            self.bin_time[int(b)] += float(group["start_ms"].sum())
            self.bin_count[int(b)] += len(group)

    def _fold_cusum(self, records: pd.DataFrame) -> None:
        if self.performance is None:
            return
        labelled = records["label"].notna().to_numpy()
        if not labelled.any():
            return
        errors = (records["prediction"].to_numpy() != records["label"].to_numpy())[labelled]
        steps = _bernoulli_steps(errors, 1.0 - self.performance.accuracy, self.config.thresholds.cusum_shift)
        running = self.cusum_level + np.cumsum(steps)
        level = running - np.minimum(np.minimum.accumulate(running), 0.0)
        self.cusum_level = float(level[-1])
        windows = records["window"].to_numpy()[labelled]
        for key in pd.unique(windows):
            top = float(level[windows == key].max())
            window = self.windows[int(key)]
            window.cusum_max = top if math.isnan(window.cusum_max) else max(window.cusum_max, top)

    def _fold_arrival(self, records: pd.DataFrame) -> None:
        if "delayed_arrived_ms" not in records:
            return
        known = records["label"].notna() & records["delayed_arrived_ms"].notna()
        if known.any():
            chosen = records[known]
            self.arrival.append(
                (
                    chosen["delayed_arrived_ms"].astype("int64").to_numpy(),
                    chosen["prediction"].to_numpy(),
                    chosen["label"].to_numpy(dtype=float),
                )
            )

    def _fold_window(self, key: int, rows: pd.DataFrame) -> None:
        start, end = int(rows["start_ms"].min()), int(rows["end_ms"].max())
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = _Window(start, end)
        window.start_ms, window.end_ms = min(window.start_ms, start), max(window.end_ms, end)
        window.predictions += len(rows)
        calls = rows[rows["row"] == 0]
        window.requests += len(calls)
        latency = calls["latency_ms"].to_numpy()
        window.latency.update(Counter(latency[np.isfinite(latency)].astype(np.int64).tolist()))
        prediction = rows["prediction"]
        window.mix.update(prediction.dropna().value_counts().to_dict())
        window.positives += int((prediction == 1).sum())
        labelled = rows[rows["label"].notna()]
        predicted, actual = labelled["prediction"], labelled["label"]
        window.labelled += len(labelled)
        window.hits += int((predicted == actual).sum())
        window.tp += int(((predicted == 1) & (actual == 1)).sum())
        window.predicted_positive += int((predicted == 1).sum())
        window.actual_positive += int((actual == 1).sum())
        if len(labelled):
            pairs = pd.DataFrame({"a": actual.astype(int).to_numpy(), "p": predicted.to_numpy()})
            self.confusion.update(Counter(dict(pairs.value_counts().items())))
        probability = pd.to_numeric(rows["probability"], errors="coerce").to_numpy(dtype=float)
        if self.performance is not None:
            expected = self.performance._expected_correct(probability)
            expected = expected[~np.isnan(expected)]
            window.expected_sum += float(expected.sum())
            window.expected_var += float((expected * (1 - expected)).sum())
            window.expected_n += expected.size
        if self.probability_fine is not None:
            counts = self.probability_fine.count(probability[~np.isnan(probability)])
            window.probability = counts if window.probability is None else window.probability + counts
        if self.profile is None:
            return
        for name, ref in self.profile.numeric.items():
            values = (
                pd.to_numeric(rows[name], errors="coerce").to_numpy(dtype=float)
                if name in rows
                else np.full(len(rows), np.nan)
            )
            finite = values[np.isfinite(values)]
            window.rows_seen[name] += values.size
            window.finite[name] += finite.size
            bins = np.bincount(np.searchsorted(ref.edges, finite, side="right"), minlength=ref.edges.size + 1)
            fine = self.fine[name].count(finite)
            window.bins[name] = bins if name not in window.bins else window.bins[name] + bins
            window.fine[name] = fine if name not in window.fine else window.fine[name] + fine

    def ordered(self) -> list[tuple[int, _Window]]:
        """(window number, sums) in time order; time windows numbered as `Windowing.assign` does."""
        return list(enumerate(self.windows[k] for k in sorted(self.windows)))


def _window_table(fold: _Fold, aggregates: pd.DataFrame, config: MonitoringConfig) -> pd.DataFrame:
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
    table["tracked_accuracy"] = _tracked_accuracy(table, aggregates)
    return table


def _sort_key(label: object) -> tuple[int, object]:
    return (0, label) if isinstance(label, int | float) else (1, str(label))


def _performance_table(fold: _Fold, config: MonitoringConfig) -> pd.DataFrame:
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
                "probability_pvalue": _ks_pvalue(
                    d, int(w.probability.sum()), fold.probability_fine.reference_n
                ),
            }
        rows.append(
            {
                "window": number,
                "reference_accuracy": performance.accuracy,
                **performance._drop(accuracy, n, t.min_labels),
                "accuracy_cusum": w.cusum_max if n else math.nan,
                "cusum_limit": limit,
                **estimated,
                **probability,
            }
        )
    return pd.DataFrame(rows, columns=PERFORMANCE_COLUMNS)


def _drift_table(fold: _Fold) -> pd.DataFrame:
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
                    "ks_pvalue": _ks_pvalue(d, finite, ref.sample.size),
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


def _confusion(fold: _Fold) -> pd.DataFrame:
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


def _latency_bins(fold: _Fold) -> pd.DataFrame:
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
) -> Analysis:
    """`analyse`'s answers, read block by block (see the module's note on passes and memory).
    `aggregates` may be a callable, asked once every pass is done (they may come with the blocks)."""
    notes: list[str] = []
    count_windows = config.windowing().kind is WindowKind.count and config.window_size is None
    total = sum(len(block) for block in blocks()) if count_windows or reference_blocks is None else None
    if total == 0:
        notes.append("no prediction records in the requested range")
        return _empty(notes)

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
    span = _span(pd.concat(span_rows, ignore_index=True)) if span_rows else None
    if reference_blocks is not None and reference.empty:
        notes.append("the reference period holds no records: drift not measured")
    if not reference.empty and "label" not in reference:
        reference, _ = _prepare(reference)

    # The features are known once the range is read; the reference is fitted on those it has.
    features = feature_columns(reference) if not reference.empty else []
    profile, performance = fit_reference(reference, features)
    if performance is None and not reference.empty:
        notes.append("the reference holds too few labels: accuracy is held against the floor only")

    fold = _Fold(config, profile, performance, total, time_range)
    for block in blocks():
        fold.add(block)
    if fold.row == 0:
        notes.append("no prediction records in the requested range")
        return _empty(notes)
    return _finish(fold, aggregates() if callable(aggregates) else aggregates, config, notes, span)


def _finish(
    fold: _Fold,
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


def _arrival(fold: _Fold, config: MonitoringConfig) -> pd.DataFrame:
    if not fold.arrival:
        return pd.DataFrame(columns=ARRIVAL_COLUMNS)
    arrived, prediction, label = (np.concatenate(parts) for parts in zip(*fold.arrival, strict=True))
    frame = pd.DataFrame({"delayed_arrived_ms": arrived, "prediction": prediction, "label": label})
    return _arrival_table(frame, config.windowing())
