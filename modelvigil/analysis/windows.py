"""Windowing ("chunking"), in one place: every analysis that works per window asks this module.

Two kinds: by count (every `size` consecutive items, in time order, the last may be short;
without a size, `DEFAULT_WINDOWS` equal windows) and by time (fixed-length intervals aligned to
the epoch, so windows line up across runs). One `Windowing` is applied to the records by
prediction time and to the labels by arrival time alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import pandas as pd

DEFAULT_WINDOWS = 10  # NannyML's default number of chunks


class WindowKind(StrEnum):
    count = "count"
    time = "time"


def by_count(n: int, size: int) -> np.ndarray:
    """Window number of each of `n` items taken in order, `size` per window."""
    if size < 1:
        raise ValueError(f"window size must be >= 1, got {size}")
    return np.arange(n) // size


def by_time(timestamps_ms: np.ndarray | pd.Series, length_ms: int) -> np.ndarray:
    """Start (ms since the epoch) of the fixed-length window each timestamp falls in."""
    if length_ms < 1:
        raise ValueError(f"window length must be >= 1 ms, got {length_ms}")
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    return (ts // length_ms) * length_ms


@dataclass(frozen=True)
class Windowing:
    kind: WindowKind = WindowKind.count
    size: int | None = None  # items per count window; None: DEFAULT_WINDOWS equal windows
    minutes: int = 60  # length of a time window

    def assign(self, timestamps_ms: np.ndarray | pd.Series) -> np.ndarray:
        """Window number (0, 1, ...) of each item; items come in time order."""
        if self.kind is WindowKind.time:
            return pd.factorize(by_time(timestamps_ms, self.minutes * 60_000), sort=True)[0]
        n = len(timestamps_ms)
        return by_count(n, self.size or max(1, math.ceil(n / DEFAULT_WINDOWS)))

    def describe(self) -> str:
        if self.kind is WindowKind.time:
            return f"time: {self.minutes} min"
        return f"count: {self.size or f'{DEFAULT_WINDOWS} equal'}"
