"""The accuracy the simulation tracked itself (CML aggregate records), beside the windows."""

from __future__ import annotations

import numpy as np
import pandas as pd


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
