"""Accuracy by when the labels arrived (the other clock), where arrival times are known.

What grows with the range, and why it stays small: with count windows, one bit per labelled
prediction (whether it was right, grouped by the label's arrival time: equal-count arrival windows
cut through those groups); with time windows, three numbers per arrival bucket.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from modelvigil.analysis.calculators.base import Block, Calculator
from modelvigil.analysis.windows import DEFAULT_WINDOWS, by_time

ARRIVAL_COLUMNS = ["arrival_window", "arrived_from_ms", "n_labelled", "accuracy"]


class Arrival(Calculator):
    def __init__(self, time_window_ms: int | None) -> None:
        self.time_window_ms = time_window_ms
        # Count windows: per arrival time (labels come in batches, a batch shares one), whether
        # each row was right, one bit per row in the rows' order (so equal-count windows over the
        # arrivals cut exactly where a stable sort would).
        self.arrival: dict[int, list[tuple[np.ndarray, int]]] = {}  # ms -> [(packed hits, rows)]
        self.buckets: dict[int, list[int]] = {}  # bucket start -> [labelled, hits, first ms]

    def fold(self, block: Block) -> None:
        records = block.records
        if "delayed_arrived_ms" not in records:
            return
        known = block.labelled & records["delayed_arrived_ms"].notna().to_numpy()
        if not known.any():
            return
        arrived = records.loc[known, "delayed_arrived_ms"].astype("int64").to_numpy()
        hits = block.correct[known].astype(bool)
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
            sums = self.buckets.setdefault(int(bucket), [0, 0, int(arrived[mine].min())])
            sums[0] += int(mine.sum())
            sums[1] += int(hits[mine].sum())
            sums[2] = min(sums[2], int(arrived[mine].min()))

    def table(self, window_size: int | None) -> pd.DataFrame:
        """Buckets summed as they came (time windows), or the arrivals sorted once and cut into
        equal counts (count windows)."""
        if self.buckets:
            rows = sorted(self.buckets.items())
            labelled = np.array([n for _, (n, _, _) in rows], dtype=np.int64)
            hits = np.array([h for _, (_, h, _) in rows], dtype=np.int64)
            first = np.array([f for _, (_, _, f) in rows], dtype=np.int64)
        elif self.arrival:
            total = sum(n for parts in self.arrival.values() for _, n in parts)
            size = window_size or max(1, math.ceil(total / DEFAULT_WINDOWS))
            windows = math.ceil(total / size)
            labelled = np.zeros(windows, dtype=np.int64)
            hits = np.zeros(windows, dtype=np.int64)
            first = np.zeros(windows, dtype=np.int64)
            rank = 0
            for ms in sorted(self.arrival):  # the arrivals in order, each time's rows as they came
                right = np.concatenate([np.unpackbits(bits, count=n) for bits, n in self.arrival[ms]])
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
