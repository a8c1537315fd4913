"""A classifier's accuracy against the reference's own level (`performance_drift`): the drop test,
the errors' CUSUM over every labelled prediction in time order, the accuracy estimated from the
model's confidence before any label (binary models that record probabilities), and the drift of
the predicted probabilities (binned KS)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
from scipy import stats

from modelvigil.analysis import sequential
from modelvigil.analysis.alerts import Guard, Rule
from modelvigil.analysis.calculators.base import JUDGED, Block, Calculator, Context, add_counts
from modelvigil.analysis.config import AlertKind
from modelvigil.analysis.fine_bins import FineBins, binned_ks, ks_pvalue
from modelvigil.analysis.model_schema import Task
from modelvigil.analysis.performance_drift import (
    CUSUM_MIN_REFERENCE_LABELS,
    PerformanceReference,
    bernoulli_steps,
    cusum_base_rate,
    cusum_limit,
)

# What is judged before labels arrive, from the model's probabilities (NaN without them).
BEFORE_LABELS = (
    "estimated_accuracy", "estimated_drop", "estimated_drop_pvalue", "probability_ks", "probability_pvalue",
)  # fmt: skip


class ReferenceAccuracy(Calculator):
    rules = (
        # Against the model's own reference level, not only the floor: a drop beyond sampling noise.
        Rule(AlertKind.accuracy, "windows", "accuracy_drop", "reference_alpha", "<",
             "window {window}: accuracy {value:.3f}, {accuracy_drop:.3f} below the reference's "
             "{threshold:.3f} (p = {accuracy_drop_pvalue:.1e})", compared="accuracy_drop_pvalue",
             shown=("accuracy", "reference_accuracy"),
             guards=(Guard("accuracy_drop", ">=", "thresholds.min_accuracy_drop"),), fitted=True),
        Rule(AlertKind.accuracy, "windows", "accuracy_cusum", "cusum_limit", ">",
             "window {window}: errors add up beyond the reference's rate since window {cusum_since:.0f} "
             "(CUSUM {value:.1f} > {threshold:.1f})", fitted=True, once_per="cusum_since"),
        Rule(AlertKind.accuracy, "windows", "estimated_accuracy", "reference_alpha", "<",
             "window {window}: estimated accuracy {value:.3f} (from confidence, before labels) below the "
             "reference's {threshold:.3f}", compared="estimated_drop_pvalue", fitted=True,
             shown=("estimated_accuracy", "reference_accuracy"),
             guards=(JUDGED, Guard("estimated_drop", ">=", "thresholds.min_accuracy_drop"))),
        Rule(AlertKind.drift, "windows", "probability_ks", "reference_alpha", "<",
             "window {window}: predicted probabilities drifted "
             "(KS {probability_ks:.3f}, p = {value:.1e} < {threshold})", subject="probability",
             compared="probability_pvalue", shown=("probability_pvalue", "thresholds.reference_alpha"),
             guards=(JUDGED,), fitted=True),
    )  # fmt: skip

    def __init__(self) -> None:
        # Set by `fit` before any fold reads them (and without a reference, never read).
        self.reference: PerformanceReference | None = None  # pragma: no mutate
        self.probability_fine: FineBins | None = None
        self.level = 0.0
        self.base_rate = 0.0  # pragma: no mutate
        self.cusum_held = False  # the reference too small for the CUSUM to judge anything
        # The window key where the CUSUM's current excursion began (read only once it is above 0).
        self.run_start: int | None = None  # pragma: no mutate
        self.cusum_max: dict[int, float] = {}
        self.cusum_since: dict[int, int] = {}
        self.labelled: Counter = Counter()
        self.hits: Counter = Counter()
        self.expected_sum: Counter = Counter()
        self.expected_var: Counter = Counter()
        self.expected_n: Counter = Counter()
        self.probability: dict[int, np.ndarray] = {}

    def fit(self, reference: pd.DataFrame, context: Context) -> None:
        super().fit(reference, context)  # pragma: no mutate (the base keeps only the context)
        if reference.empty:
            return
        self.reference = PerformanceReference.fit(reference, calibrate=context.task is Task.binary)
        if self.reference is None:
            context.notes.append(
                "the reference holds too few labels: accuracy is held against the floor only"
            )
            return
        self.base_rate = cusum_base_rate(self.reference.accuracy, self.reference.n_labelled)
        self.cusum_held = self.reference.n_labelled < CUSUM_MIN_REFERENCE_LABELS
        if self.cusum_held:
            context.notes.append(
                f"the reference's {self.reference.n_labelled} labels are too few for the accuracy CUSUM "
                f"({CUSUM_MIN_REFERENCE_LABELS} needed): shown, not alerted on"
            )
        if self.reference.probability is not None:
            self.probability_fine = FineBins.of(self.reference.probability)
        elif context.task is Task.binary:
            context.notes.append(
                "no predicted probabilities recorded: accuracy is not estimated before labels arrive"
            )
        if context.task is Task.multiclass:
            context.notes.append(
                "a multi-class model: accuracy is not estimated before labels (confidence-based "
                "estimation is for binary models here)"
            )

    def fold(self, block: Block) -> None:
        if self.reference is None:
            return
        records = block.records
        labelled = block.labelled
        correct = block.correct
        if labelled.any():
            self._fold_cusum(~correct[labelled], block.windows[labelled])
        probability = pd.to_numeric(records["probability"], errors="coerce").to_numpy(dtype=float)
        expected = self.reference.expected_correct(probability)
        for key, rows in block.groups:
            mine = labelled[rows]
            self.labelled[key] += int(mine.sum())
            self.hits[key] += int(correct[rows][mine].sum())
            e = expected[rows]
            e = e[~np.isnan(e)]
            self.expected_sum[key] += float(e.sum())
            self.expected_var[key] += float((e * (1 - e)).sum())
            self.expected_n[key] += e.size
            if self.probability_fine is not None:
                p = probability[rows]
                counts = self.probability_fine.count(p[~np.isnan(p)])
                add_counts(self.probability, key, counts)

    def _fold_cusum(self, errors: np.ndarray, windows: np.ndarray) -> None:
        """The CUSUM over these labelled rows in time order, and per window its highest level
        and the window where that excursion above zero began."""
        steps = bernoulli_steps(errors, self.base_rate, self.context.config.thresholds.cusum_shift)
        level = sequential.cusum(steps, self.level)
        at = np.arange(level.size)
        # Any negative stands for "no zero yet in this block".
        last_zero = np.maximum.accumulate(np.where(level <= 0, at, -1))  # pragma: no mutate
        carried = self.run_start if self.level > 0 and self.run_start is not None else int(windows[0])
        start = np.where(last_zero >= 0, windows[np.minimum(last_zero + 1, level.size - 1)], carried)
        self.level = float(level[-1])
        self.run_start = int(start[-1]) if self.level > 0 else None
        for key in pd.unique(windows):
            mine = np.flatnonzero(windows == key)
            top = mine[np.argmax(level[mine])]
            if level[top] > self.cusum_max.get(int(key), -math.inf):
                self.cusum_max[int(key)] = float(level[top])
                self.cusum_since[int(key)] = int(start[top])

    def columns(self, keys: list[int]) -> pd.DataFrame:
        performance = self.reference
        if performance is None:
            return super().columns(keys)  # no columns of its own
        t = self.context.config.thresholds
        per_window = max(float(np.median([self.labelled[k] for k in keys])), 1.0)  # windows without labels: 1
        limit = cusum_limit(self.base_rate, t.cusum_shift, per_window * t.cusum_quiet_windows)
        number = {key: i for i, key in enumerate(keys)}
        rows = []
        for key in keys:
            n = self.labelled[key]
            accuracy = self.hits[key] / n if n else math.nan
            since = self.cusum_since.get(key)  # the CUSUM has a level in labelled windows only
            row = {
                "reference_accuracy": performance.accuracy,
                **performance.drop_test(accuracy, n, t.min_labels),
                "accuracy_cusum": self.cusum_max[key] if since is not None else math.nan,
                "cusum_limit": limit if not self.cusum_held else math.nan,
                "cusum_since": number[since] if since is not None else math.nan,
                **dict.fromkeys(BEFORE_LABELS, math.nan),
            }
            if self.expected_n[key]:
                estimate = self.expected_sum[key] / self.expected_n[key]
                var = (
                    self.expected_var[key] / self.expected_n[key] ** 2
                    + performance.accuracy * (1 - performance.accuracy) / performance.n_labelled
                )
                # var is 0 only for a perfect reference whose calibration says 0 or 1 exactly.
                z = (estimate - performance.accuracy) / np.sqrt(var) if var > 0 else 0.0  # pragma: no mutate
                row.update(
                    estimated_accuracy=estimate,
                    estimated_drop=performance.accuracy - estimate,
                    estimated_drop_pvalue=float(stats.norm.cdf(z)),
                )
            counts = self.probability.get(key)
            if self.probability_fine is not None and counts is not None and counts.sum():
                d = binned_ks(counts, self.probability_fine.reference_cdf)
                row.update(
                    probability_ks=d,
                    probability_pvalue=ks_pvalue(d, int(counts.sum()), self.probability_fine.reference_n),
                )
            rows.append(row)
        return pd.DataFrame(rows)
