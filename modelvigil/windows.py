"""Windowing ("chunking"), in one place: every analysis that works per window asks this module.

Two kinds: by count (every `size` consecutive items, in time order, the last may be short) and
by time (fixed-length intervals aligned to the epoch, so windows line up across runs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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
