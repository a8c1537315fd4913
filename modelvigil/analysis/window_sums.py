"""Per-window sums of a monitoring range, folded a block of rows at a time (`Fold`): what
`analysis.streaming` computes the report's figures from, so that memory holds one block and the
sums, never the range.

Exact where a sum is exact: counts, confusion counts, class mix, latency histograms (latencies
are whole milliseconds), feature counts on the reference's decile bins, the CUSUM's running
level. KS statistics come from counts on 1,000 bins at the reference sample's quantiles
(`FineBins`): evaluated at the bin edges, a binned KS is never above the exact statistic and at
most one bin's share of the reference below it (`FineBins.ks_bound`).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from modelvigil.analysis.analyse import feature_columns, prepare_records
from modelvigil.analysis.config import MonitoringConfig
from modelvigil.analysis.drift import ReferenceProfile
from modelvigil.analysis.performance_drift import PerformanceReference, bernoulli_steps
from modelvigil.analysis.windows import DEFAULT_WINDOWS, WindowKind, by_time

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


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    if not n1 or not n2 or not np.isfinite(d):
        return math.nan
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))


@dataclass
class FineBins:
    """A sample's fine bins, fixed by the reference: edges and the reference's CDF at them."""

    edges: np.ndarray
    reference_cdf: np.ndarray
    reference_n: int

    @classmethod
    def of(cls, sample: np.ndarray) -> FineBins:
        edges = _fine_edges(sample)
        return cls(edges, np.searchsorted(np.sort(sample), edges, side="right") / sample.size, sample.size)

    @property
    def ks_bound(self) -> float:
        """The largest share of the reference in one bin: how far a binned KS may fall short."""
        return float(np.diff(np.concatenate([[0.0], self.reference_cdf, [1.0]])).max())

    def count(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(self.edges, values, side="left"), minlength=self.edges.size + 1)


@dataclass
class WindowSums:
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


class Fold:
    """Everything a monitoring range folds into, window by window; `add` one block at a time."""

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
        self.windows: dict[int, WindowSums] = {}
        self.row = 0
        self.features: list[str] = []
        self.notnull: Counter = Counter()
        self.invalid: list[object] = []
        self.invalid_count = 0
        self.cusum_level = 0.0
        # Labels by arrival time, for the arrival table: per arrival time (labels come in batches,
        # a batch shares one), whether each row was right, one bit per row in the rows' order (so
        # equal-count windows over the arrivals cut exactly where a stable sort would); per
        # arrival bucket for time windows.
        self.arrival: dict[int, list[tuple[np.ndarray, int]]] = {}  # ms -> [(packed hits, rows)]
        self.arrival_buckets: dict[int, list[int]] = {}  # bucket start -> [labelled, hits, first ms]
        self.confusion: Counter = Counter()
        self.latency: Counter = Counter()
        self.calls: list[pd.DataFrame] = []
        self.total_calls = 0
        low, high = time_range
        self.bin_edges = np.linspace(low, max(high, low + 1), LATENCY_TIME_BINS + 1)
        self.bin_latency: dict[int, Counter] = {}
        self.bin_time: Counter = Counter()
        self.bin_count: Counter = Counter()
        self.fine: dict[str, FineBins] = {}
        if profile is not None:
            self.fine = {name: FineBins.of(ref.sample) for name, ref in profile.numeric.items()}
        self.probability_fine = (
            FineBins.of(performance.probability)
            if performance is not None and performance.probability is not None
            else None
        )

    def add(self, block: pd.DataFrame) -> None:
        if block.empty:
            return
        records, invalid = prepare_records(block)
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
        steps = bernoulli_steps(errors, 1.0 - self.performance.accuracy, self.config.thresholds.cusum_shift)
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
        if not known.any():
            return
        chosen = records[known]
        arrived = chosen["delayed_arrived_ms"].astype("int64").to_numpy()
        hits = (chosen["prediction"] == chosen["label"]).to_numpy(dtype=bool)
        if self.time_window_ms is None:
            order = np.argsort(arrived, kind="stable")
            arrived, hits = arrived[order], hits[order]
            times, starts = np.unique(arrived, return_index=True)
            for ms, part in zip(times, np.split(hits, starts[1:]), strict=True):
                self.arrival.setdefault(int(ms), []).append((np.packbits(part), part.size))
            return
        buckets = by_time(arrived, self.time_window_ms)
        for bucket in np.unique(buckets):
            mine = buckets == bucket
            sums = self.arrival_buckets.setdefault(int(bucket), [0, 0, int(arrived[mine].min())])
            sums[0] += int(mine.sum())
            sums[1] += int(hits[mine].sum())
            sums[2] = min(sums[2], int(arrived[mine].min()))

    def _fold_window(self, key: int, rows: pd.DataFrame) -> None:
        start, end = int(rows["start_ms"].min()), int(rows["end_ms"].max())
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = WindowSums(start, end)
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
            expected = self.performance.expected_correct(probability)
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

    def ordered(self) -> list[tuple[int, WindowSums]]:
        """(window number, sums) in time order; time windows numbered as `Windowing.assign` does."""
        return list(enumerate(self.windows[k] for k in sorted(self.windows)))
