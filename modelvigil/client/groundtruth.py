"""Delayed ground truth: which predictions get a label, and in what shape.

Labels go under `final_label`, as the CML lab does: a single value for a one-row call, a list
(one per row) for a multi-row call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelvigil.protocol import LABEL_KEY


def covered_requests(n_requests: int, coverage: float, seed: int) -> np.ndarray:
    """Which request numbers ever get ground truth: decided by request number, so failures elsewhere
    or a resumed run do not change the choice."""
    if not 0.0 <= coverage <= 1.0:
        raise ValueError(f"coverage must be within [0, 1], got {coverage}")
    rng = np.random.default_rng([seed, 0x6C6162])  # a stream of its own, apart from the traffic's
    return rng.random(n_requests) < coverage


def label_items(rows: pd.DataFrame, covered: np.ndarray) -> list[tuple[str, dict[str, Any]]]:
    """(uuid, {"final_label": ...}) for each covered, successfully scored request.

    `rows`: one row per scored row with `request_no`, `row`, `uuid`, `label` (from `ledger.scored_rows`).
    """
    mine = rows[covered[rows["request_no"].to_numpy(dtype=np.int64)]]
    items: list[tuple[str, dict[str, Any]]] = []
    for uuid_, group in mine.sort_values(["request_no", "row"]).groupby("uuid", sort=False):
        labels = [int(v) for v in group["label"]]
        items.append((str(uuid_), {LABEL_KEY: labels[0] if len(labels) == 1 else labels}))
    return items
