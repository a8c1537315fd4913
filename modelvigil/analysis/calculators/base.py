"""What every calculator is: an object fitted once on the reference, that folds blocks of records
into per-window state, and finishes into per-window columns (and rows of the drift table), with
the alert rules that read those columns.

The engine (`analysis.engine`) owns the passes over the records and the windows; a calculator
only sees prepared blocks (`Block`), each row already given its window's key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from modelvigil.analysis.alerts import Guard, Rule
from modelvigil.analysis.config import AlertKind, MonitoringConfig
from modelvigil.analysis.model_schema import FeatureSchema, Task

JUDGED = Guard("predictions", ">=", "thresholds.min_drift_rows")  # fewer predictions: noise, not drift


def psi_rule(table: str, metric: str, critical: str, message: str, subject: str) -> Rule:
    """Drift by PSI against the reference: above `max_psi` and above the PSI sampling noise alone
    passes (`critical`), in windows big enough to judge, never in the ones fitted on."""
    return Rule(AlertKind.drift, table, metric, "max_psi", ">", message, subject=subject,  # type: ignore[arg-type]
                guards=(JUDGED, Guard(metric, ">", critical)), fitted=True)  # fmt: skip


@dataclass
class Context:
    """What every calculator is fitted with: the run's configuration and the model's schema."""

    config: MonitoringConfig
    task: Task
    classes: list[object]
    positive: object | None  # the positive class of a binary task, when known
    features: FeatureSchema
    notes: list[str] = field(default_factory=list)  # what a calculator has to say about its fit


@dataclass
class Block:
    """A block of prepared records: time order, one row per scored row, and per row its window's
    key (`window`), `label` (comparable values), `arrived` (a label came, usable or not) and
    `latency_ms`."""

    records: pd.DataFrame

    @cached_property
    def windows(self) -> np.ndarray:
        return self.records["window"].to_numpy()

    @cached_property
    def labelled(self) -> np.ndarray:
        return self.records["label"].notna().to_numpy()

    @cached_property
    def correct(self) -> np.ndarray:
        """Whether each row's prediction equals its label (compared as values: 1 == 1.0, "a" == "a")."""
        records = self.records
        return records["prediction"].to_numpy(dtype=object) == records["label"].to_numpy(dtype=object)

    @cached_property
    def groups(self) -> list[tuple[int, np.ndarray]]:
        """(window key, row positions) of each window in the block, in key order: found once per
        block, for every calculator."""
        keys = self.windows
        order = np.argsort(keys, kind="stable")
        unique, starts = np.unique(keys[order], return_index=True)
        parts = np.split(order, starts[1:])
        return [(int(k), part) for k, part in zip(unique, parts, strict=True)]


class Calculator:
    """One metric (or a family computed together). Subclasses override what they need."""

    rules: tuple[Rule, ...] = ()

    def fit(self, reference: pd.DataFrame, context: Context) -> None:
        self.context = context

    def fold(self, block: Block) -> None:
        raise NotImplementedError

    def columns(self, keys: list[int]) -> pd.DataFrame:
        """Per-window columns, one row per key in `keys` (the windows in time order)."""
        return pd.DataFrame(index=range(len(keys)))

    def drift_rows(self, keys: list[int]) -> list[dict]:
        return []

    def overall(self) -> dict[str, float | int | None]:
        return {}


def add_counts(target: dict[int, np.ndarray], key: int, counts: np.ndarray) -> None:
    """Add a block's counts per bin to a window's (the first block's become the window's)."""
    target[key] = counts if key not in target else target[key] + counts
