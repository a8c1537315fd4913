"""Classification quality of predictions against ground truth, per window.

Windows come from `modelvigil.analysis.windows`. Accuracy comes with a Wilson score interval (sound at
small counts and near 0 or 1, where the normal approximation is not), and windows with fewer
labelled predictions than `min_count` report counts but no rates: too few to judge.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm


def wilson_interval(
    successes: np.ndarray, n: np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    z = norm.ppf(0.5 + confidence / 2)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):  # n == 0 gives NaN, as it should
        p = np.asarray(successes, dtype=float) / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return np.where(n > 0, centre - half, np.nan), np.where(n > 0, centre + half, np.nan)


def window_quality(
    window: np.ndarray,
    predicted: np.ndarray,
    actual: np.ndarray,
    *,
    positive: object = 1,
    min_count: int = 1,
) -> pd.DataFrame:
    """Per window: `n_labelled`, `accuracy` (+ `accuracy_low`/`accuracy_high`), `precision`, `recall`, `f1`.

    Rows whose `actual` is missing (NaN/None) are not labelled and do not count. Precision, recall
    and f1 are for the `positive` class; where undefined (no predicted or no actual positives) 0.
    """
    frame = pd.DataFrame({"window": window, "pred": predicted, "true": actual})
    frame = frame[frame["true"].notna()]
    frame["hit"] = frame["pred"] == frame["true"]
    frame["tp"] = (frame["pred"] == positive) & (frame["true"] == positive)
    frame["pp"] = frame["pred"] == positive
    frame["ap"] = frame["true"] == positive
    g = frame.groupby("window").agg(
        n_labelled=("hit", "size"), hits=("hit", "sum"), tp=("tp", "sum"), pp=("pp", "sum"), ap=("ap", "sum")
    )
    g = g.reindex(pd.unique(np.asarray(window)), fill_value=0)
    g.index.name = "window"
    n = g["n_labelled"].to_numpy(dtype=float)
    enough = n >= max(min_count, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(enough, g["hits"] / n, np.nan)
        precision = np.where(enough, np.where(g["pp"] > 0, g["tp"] / g["pp"], 0.0), np.nan)
        recall = np.where(enough, np.where(g["ap"] > 0, g["tp"] / g["ap"], 0.0), np.nan)
        f1 = np.where(
            enough,
            np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0),
            np.nan,
        )
    low, high = wilson_interval(g["hits"].to_numpy(dtype=float), n)
    out = pd.DataFrame(
        {
            "n_labelled": g["n_labelled"].astype(int),
            "accuracy": accuracy,
            "accuracy_low": np.where(enough, low, np.nan),
            "accuracy_high": np.where(enough, high, np.nan),
            "precision": precision,
            "recall": recall,
            "f1": f1,
        },
        index=g.index,
    )
    return out.reset_index()
