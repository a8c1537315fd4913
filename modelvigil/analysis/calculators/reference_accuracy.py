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
from modelvigil.analysis.calculators.base import Block, Calculator, Context
from modelvigil.analysis.calculators.classification import JUDGED
from modelvigil.analysis.config import AlertKind
from modelvigil.analysis.fine_bins import FineBins, binned_ks, ks_pvalue
from modelvigil.analysis.model_schema import Task
from modelvigil.analysis.performance_drift import PerformanceReference, bernoulli_steps, cusum_limit


class ReferenceAccuracy(Calculator):
    rules = (
        # Against the model's own reference level, not only the floor: a drop beyond sampling noise.
        Rule(
            AlertKind.accuracy, "windows", "accuracy_drop", "reference_alpha", "<",
            "window {window}: accuracy {accuracy:.3f}, {value:.3f} below the reference's "
            "{reference_accuracy:.3f} (p = {accuracy_drop_pvalue:.1e})",
            compared="accuracy_drop_pvalue",
            guards=(Guard("accuracy_drop", ">=", "thresholds.min_accuracy_drop"),),
        ),
        Rule(
            AlertKind.accuracy, "windows", "accuracy_cusum", "cusum_limit", ">",
            "window {window}: errors add up beyond the reference's rate "
            "(CUSUM {value:.1f} > {threshold:.1f})",
        ),
        Rule(
            AlertKind.accuracy, "windows", "estimated_accuracy", "reference_alpha", "<",
            "window {window}: estimated accuracy {value:.3f} (from confidence, before labels) below the "
            "reference's {reference_accuracy:.3f}",
            compared="estimated_drop_pvalue",
            guards=(JUDGED, Guard("estimated_drop", ">=", "thresholds.min_accuracy_drop")),
        ),
        Rule(
            AlertKind.drift, "windows", "probability_ks", "reference_alpha", "<",
            "window {window}: predicted probabilities drifted (KS {value:.3f}, p = {probability_pvalue:.1e})",
            subject="probability",
            compared="probability_pvalue",
            guards=(JUDGED,),
        ),
    )  # fmt: skip

    def __init__(self) -> None:
        self.reference: PerformanceReference | None = None
        self.probability_fine: FineBins | None = None
        self.level = 0.0
        self.cusum_max: dict[int, float] = {}
        self.labelled: Counter = Counter()
        self.hits: Counter = Counter()
        self.expected_sum: Counter = Counter()
        self.expected_var: Counter = Counter()
        self.expected_n: Counter = Counter()
        self.probability: dict[int, np.ndarray] = {}

    def fit(self, reference: pd.DataFrame, context: Context) -> None:
        super().fit(reference, context)
        if reference.empty:
            return
        self.reference = PerformanceReference.fit(reference, calibrate=context.task is Task.binary)
        if self.reference is None:
            context.notes.append(
                "the reference holds too few labels: accuracy is held against the floor only"
            )
            return
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
        windows = block.windows
        correct = records["prediction"].to_numpy(dtype=object) == records["label"].to_numpy(dtype=object)
        if labelled.any():
            errors = ~correct[labelled]
            steps = bernoulli_steps(
                errors, 1.0 - self.reference.accuracy, self.context.config.thresholds.cusum_shift
            )
            level = sequential.cusum(steps, self.level)
            self.level = float(level[-1])
            labelled_windows = windows[labelled]
            for key in pd.unique(labelled_windows):
                top = float(level[labelled_windows == key].max())
                self.cusum_max[int(key)] = max(self.cusum_max.get(int(key), -math.inf), top)
        probability = pd.to_numeric(records["probability"], errors="coerce").to_numpy(dtype=float)
        expected = self.reference.expected_correct(probability)
        for key, rows in block.groups():
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
                self.probability[key] = (
                    counts if key not in self.probability else self.probability[key] + counts
                )

    def columns(self, keys: list[int]) -> pd.DataFrame:
        performance = self.reference
        if performance is None:
            return pd.DataFrame(index=range(len(keys)))
        t = self.context.config.thresholds
        labelled = [self.labelled[k] for k in keys]
        per_window = max(float(np.median(labelled)), 1.0) if any(labelled) else 1.0
        limit = cusum_limit(1.0 - performance.accuracy, t.cusum_shift, per_window * t.cusum_quiet_windows)
        rows = []
        for key in keys:
            n = self.labelled[key]
            accuracy = self.hits[key] / n if n else math.nan
            row = {
                "reference_accuracy": performance.accuracy,
                **performance.drop_test(accuracy, n, t.min_labels),
                "accuracy_cusum": self.cusum_max.get(key, math.nan) if n else math.nan,
                "cusum_limit": limit,
                "estimated_accuracy": math.nan,
                "estimated_drop": math.nan,
                "estimated_drop_pvalue": math.nan,
                "probability_ks": math.nan,
                "probability_pvalue": math.nan,
            }
            if self.expected_n[key]:
                estimate = self.expected_sum[key] / self.expected_n[key]
                var = (
                    self.expected_var[key] / self.expected_n[key] ** 2
                    + performance.accuracy * (1 - performance.accuracy) / performance.n_labelled
                )
                z = (estimate - performance.accuracy) / np.sqrt(var) if var > 0 else 0.0
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
