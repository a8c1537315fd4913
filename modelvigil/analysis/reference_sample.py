"""The rows a reference is fitted on: all of them up to `REFERENCE_ROWS`, else a fixed subset.

Decile edges, the KS sample and the calibration are fitted on at most `REFERENCE_ROWS` rows: the
ones whose hash (of prediction uuid and row) is smallest. The choice depends on the rows alone,
not on their order or on how they were read, so the in-memory analysis and the streamed one
(which sees the reference a block at a time and keeps only the smallest hashes so far) fit the
very same reference, and memory stays bounded however long the reference period is. Up to
`REFERENCE_ROWS` rows, every row is used, as before there was a limit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

REFERENCE_ROWS = 100_000  # deciles and a 20k KS sample are steady long before this


def _hashes(frame: pd.DataFrame) -> np.ndarray:
    keys = frame["prediction_uuid"].astype(str) + ":" + frame["row"].astype(str)
    return pd.util.hash_array(keys.to_numpy(dtype=object))


class ReferenceSampler:
    """Folds blocks of rows into the `limit` rows of smallest hash; `frame()` gives them in
    time order (as the rows came)."""

    def __init__(self, limit: int = REFERENCE_ROWS, keep: Callable[[str], bool] | None = None) -> None:
        self.limit, self.keep = limit, keep  # keep: the columns worth holding (default: all)
        self.rows = 0  # every row offered, kept or not
        self._kept: pd.DataFrame | None = None
        self._order = 0

    def add(self, block: pd.DataFrame) -> None:
        if block.empty:
            return
        self.rows += len(block)
        if self.keep is not None:
            block = block[[c for c in block.columns if self.keep(c)]]
        block = block.assign(_hash=_hashes(block), _order=np.arange(self._order, self._order + len(block)))
        self._order += len(block)
        kept = block if self._kept is None else pd.concat([self._kept, block], ignore_index=True)
        if len(kept) > self.limit:
            cut = np.argpartition(kept["_hash"].to_numpy(), self.limit - 1)[: self.limit]
            kept = kept.iloc[np.sort(cut)].reset_index(drop=True)
        self._kept = kept

    def frame(self) -> pd.DataFrame:
        if self._kept is None:
            return pd.DataFrame()
        return (
            self._kept.sort_values("_order", kind="stable")
            .drop(columns=["_hash", "_order"])
            .reset_index(drop=True)
        )


def reference_rows(reference: pd.DataFrame, limit: int = REFERENCE_ROWS) -> pd.DataFrame:
    """`reference` itself when it is small enough, else its `limit` rows of smallest hash."""
    if len(reference) <= limit:
        return reference
    sampler = ReferenceSampler(limit)
    sampler.add(reference)
    return sampler.frame()
