"""Traffic: each window's extent, predictions and calls, server latency (exact percentiles:
latencies are whole milliseconds, so a histogram of them is exact) and label coverage (every
label that arrived counts, usable or not)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from modelvigil.analysis.alerts import Rule
from modelvigil.analysis.calculators.base import Block, Calculator
from modelvigil.analysis.config import AlertKind

LATENCY_TIME_BINS = 200
SCATTER_CALLS = 5_000


def percentile_from_counts(counts: Counter, q: float) -> float:
    """`np.percentile(values, q)` (linear interpolation) of the values `counts` tallies."""
    # The dtypes only say what numpy would infer from whole-millisecond counts anyway.
    values = np.array(sorted(counts), dtype=float)  # pragma: no mutate
    tally = np.array([counts[v] for v in sorted(counts)], dtype=np.int64)  # pragma: no mutate
    n = int(tally.sum())
    position = (n - 1) * q / 100.0
    low = math.floor(position)
    ends = np.cumsum(tally)  # order statistic k (0-based) is values[first i with ends[i] > k]
    below = values[np.searchsorted(ends, low, side="right")]
    above = values[np.searchsorted(ends, min(low + 1, n - 1), side="right")]
    return float(below + (position - low) * (above - below))


@dataclass
class _Window:
    start_ms: int
    end_ms: int
    last_start_ms: int
    predictions: int = 0
    requests: int = 0
    arrived: int = 0
    labelled: int = 0
    latency: Counter = field(default_factory=Counter)


def _tally(latency: np.ndarray) -> Counter:
    # Whole milliseconds as ints; as floats they would count alike (5.0 == 5), only wider.
    return Counter(latency[np.isfinite(latency)].astype(np.int64).tolist())  # pragma: no mutate


class Traffic(Calculator):
    rules = (
        Rule(
            AlertKind.latency, "windows", "latency_p95_ms", "max_p95_latency_ms", ">",
            "window {window}: p95 latency {value:.0f} ms above {threshold:.0f} ms",
        ),
        Rule(
            AlertKind.coverage, "windows", "label_coverage", "min_label_coverage", "<",
            "window {window}: label coverage {value:.2f} below {threshold}",
        ),
    )  # fmt: skip

    def __init__(self, time_range: tuple[int, int], reference_span: tuple[int, int] | None = None) -> None:
        self.reference_span = reference_span  # first and last prediction of the reference
        self.windows: dict[int, _Window] = {}
        self.latency: Counter = Counter()
        self.calls: list[pd.DataFrame] = []
        self.total_calls = 0
        self.rows = 0
        self.arrived = 0
        self.labelled = 0
        low, high = time_range
        self.bin_edges = np.linspace(low, max(high, low + 1), LATENCY_TIME_BINS + 1)
        self.bin_latency: dict[int, Counter] = {}
        self.bin_time: Counter = Counter()
        self.bin_count: Counter = Counter()

    def fold(self, block: Block) -> None:
        records = block.records
        self.rows += len(records)
        self.arrived += int(records["arrived"].sum())
        self.labelled += int(block.labelled.sum())
        calls = records[records["row"] == 0]
        self.latency.update(_tally(calls["latency_ms"].to_numpy()))
        if self.total_calls < SCATTER_CALLS + 1:
            self.calls.append(calls[["start_ms", "latency_ms"]].iloc[: SCATTER_CALLS + 1 - self.total_calls])
        self.total_calls += len(calls)
        where = np.clip(
            np.searchsorted(self.bin_edges, calls["start_ms"], side="right") - 1, 0, LATENCY_TIME_BINS - 1
        )
        for b, group in calls.assign(_bin=where).groupby("_bin"):
            self.bin_latency.setdefault(int(b), Counter()).update(_tally(group["latency_ms"].to_numpy()))
            self.bin_time[int(b)] += float(group["start_ms"].sum())
            self.bin_count[int(b)] += len(group)
        labelled, arrived = block.labelled, records["arrived"].to_numpy()
        for key, rows in block.groups:
            part = records.iloc[rows]
            start, end = int(part["start_ms"].min()), int(part["end_ms"].max())
            last = int(part["start_ms"].max())
            w = self.windows.get(key)
            if w is None:
                w = self.windows[key] = _Window(start, end, last)
            w.start_ms, w.end_ms = min(w.start_ms, start), max(w.end_ms, end)
            w.last_start_ms = max(w.last_start_ms, last)
            w.predictions += len(rows)
            first = part["row"].to_numpy() == 0
            w.requests += int(first.sum())
            w.latency.update(_tally(part["latency_ms"].to_numpy()[first]))
            w.arrived += int(arrived[rows].sum())
            w.labelled += int(labelled[rows].sum())

    def keys(self) -> list[int]:
        return sorted(self.windows)

    def columns(self, keys: list[int]) -> pd.DataFrame:
        rows = []
        for number, key in enumerate(keys):
            w = self.windows[key]
            rows.append(
                {
                    "window": number,
                    "start_ms": w.start_ms,
                    "end_ms": w.end_ms,
                    "predictions": w.predictions,
                    "requests": w.requests if w.requests else math.nan,
                    "latency_p50_ms": percentile_from_counts(w.latency, 50) if w.latency else math.nan,
                    "latency_p95_ms": percentile_from_counts(w.latency, 95) if w.latency else math.nan,
                    "latency_p99_ms": percentile_from_counts(w.latency, 99) if w.latency else math.nan,
                    "label_coverage": w.arrived / w.predictions,
                    "n_labelled": w.labelled,
                    # Every prediction of the window made within the reference's span: a window
                    # the reference was fitted on.
                    "in_reference": self.reference_span is not None
                    and self.reference_span[0] <= w.start_ms
                    and w.last_start_ms <= self.reference_span[1],
                }
            )
        return pd.DataFrame(rows)

    def overall(self) -> dict[str, float | int | None]:
        def pct(q: float) -> float | None:
            return percentile_from_counts(self.latency, q) if self.latency else None

        return {
            "predictions": self.rows,
            "requests": self.total_calls,
            "labelled": self.labelled,
            "label_coverage": self.arrived / self.rows if self.rows else None,
            "latency_p50_ms": pct(50),
            "latency_p95_ms": pct(95),
            "latency_p99_ms": pct(99),
        }

    def call_sample(self) -> pd.DataFrame:
        if not self.calls:
            return pd.DataFrame(columns=["start_ms", "latency_ms"])
        return pd.concat(self.calls, ignore_index=True)

    def latency_bins(self) -> pd.DataFrame:
        rows = [
            {
                "t": self.bin_time[b] / self.bin_count[b],
                "p50": percentile_from_counts(counts, 50),
                "p95": percentile_from_counts(counts, 95),
                "low": float(min(counts)),
                "high": float(max(counts)),
            }
            for b, counts in sorted(self.bin_latency.items())
            if counts
        ]
        return pd.DataFrame(rows, columns=["t", "p50", "p95", "low", "high"])
