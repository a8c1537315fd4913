"""What one analysis gives its callers (the report, the plots, the flow, the benchmarks): the
window and drift tables, the alerts and their incidents, and what the plots need beside them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from modelvigil.analysis.config import Alert
from modelvigil.analysis.drift import ReferenceProfile
from modelvigil.analysis.incidents import Incident
from modelvigil.analysis.model_schema import Task


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
    # (feature, window) -> (bin labels, the reference's counts, the window's counts)
    category_counts: dict[tuple[str, int], tuple[list[str], np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )
    residual_edges: np.ndarray | None = None  # regression: residuals' fine bins
    residual_counts: dict[int, np.ndarray] = field(default_factory=dict)  # window -> counts
    reference_residuals: np.ndarray | None = None


@dataclass
class Analysis:
    windows: pd.DataFrame  # one row per window
    drift: pd.DataFrame  # one row per (window, feature)
    arrival: pd.DataFrame  # accuracy per label-arrival window
    confusion: pd.DataFrame
    alerts: list[Alert]
    overall: dict[str, float | int | None]
    notes: list[str] = field(default_factory=list)
    profile: ReferenceProfile | None = None  # the reference's numeric statistics, as drift was measured
    reference_span_ms: tuple[int, int] | None = None  # when the reference's predictions were made
    sketch: StreamSketch | None = None
    task: Task = Task.binary
    positive: object | None = None  # a binary model's positive class, when known
    per_class: pd.DataFrame = field(default_factory=pd.DataFrame)  # classification, over the range
    feature_kinds: dict[str, str] = field(default_factory=dict)  # feature -> numeric/categorical
    incidents: list[Incident] = field(default_factory=list)  # the alerts by runs of windows

    @property
    def empty(self) -> bool:
        return not self.overall.get("predictions")
