"""A regression model's error per window: MAE, RMSE, bias (mean of prediction minus truth), the
absolute error's median and 90th percentile, each against the reference's; and the drift of the
predictions themselves (PSI over the reference's deciles, judged as a numeric feature's).

The rise test: a window's MAE against the reference's, one-sided, with both samples' spread of
absolute errors (Welch's z): a rise beyond sampling noise and of at least `min_error_rise` (a
share of the reference's MAE) alerts. The band drawn around the reference's MAE is the range a
window of that many labels keeps to 95% of the time by noise alone.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
from scipy import stats

from modelvigil.analysis.alerts import Guard, Rule
from modelvigil.analysis.calculators.base import Block, Calculator, Context, add_counts, psi_rule
from modelvigil.analysis.config import AlertKind
from modelvigil.analysis.drift import NumericReference, psi, psi_noise_floor
from modelvigil.analysis.fine_bins import FineBins, quantile_from_bins

_MIN_REFERENCE_LABELS = 30  # fewer: no reference error to hold windows against


def _numbers(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


class Regression(Calculator):
    rules = (
        Rule(AlertKind.error, "windows", "mae", "reference_mae", ">",
             "window {window}: mean absolute error {value:.4g}, {error_rise:.0%} above the reference's "
             "{threshold:.4g} (p = {error_rise_pvalue:.1e})", fitted=True, guards=(
                 Guard("error_rise_pvalue", "<", "thresholds.reference_alpha"),
                 Guard("error_rise", ">=", "thresholds.min_error_rise"),
                 Guard("n_labelled", ">=", "thresholds.min_labels"))),
        psi_rule("windows", "prediction_psi", "prediction_psi_critical",
                 "window {window}: predictions drifted (PSI {value:.3f} > {threshold})", "predictions"),
    )  # fmt: skip

    def __init__(self) -> None:
        self.reference_mae = math.nan
        self.reference_sd = math.nan  # of the absolute errors
        self.reference_n = 0
        self.abs_fine: FineBins | None = None
        self.residual_fine: FineBins | None = None
        self.prediction: NumericReference | None = None
        self.n: Counter = Counter()
        self.abs_sum: Counter = Counter()
        self.abs_sq: Counter = Counter()
        self.err_sum: Counter = Counter()
        self.abs_bins: dict[int, np.ndarray] = {}
        self.residual_bins: dict[int, np.ndarray] = {}
        self.prediction_bins: dict[int, np.ndarray] = {}
        self.prediction_n: Counter = Counter()
        self.reference_residuals: np.ndarray | None = None

    def fit(self, reference: pd.DataFrame, context: Context) -> None:
        super().fit(reference, context)
        if reference.empty:
            return
        predicted = _numbers(reference["prediction"])
        self.prediction = NumericReference.of(predicted, np.random.default_rng(0))
        truth = _numbers(reference["label"])
        both = np.isfinite(predicted) & np.isfinite(truth)
        if both.sum() < _MIN_REFERENCE_LABELS:
            context.notes.append("the reference holds too few labels: the error is not held against it")
            return
        error = predicted[both] - truth[both]
        self.reference_mae = float(np.abs(error).mean())
        self.reference_sd = float(np.abs(error).std(ddof=1))
        self.reference_n = int(both.sum())
        self.reference_residuals = np.sort(error)
        self.abs_fine = FineBins.with_tails(np.abs(error))
        self.residual_fine = FineBins.with_tails(error)

    def fold(self, block: Block) -> None:
        records = block.records
        predicted = _numbers(records["prediction"])
        truth = _numbers(records["label"])
        error = predicted - truth
        for key, rows in block.groups:
            e = error[rows]
            e = e[np.isfinite(e)]
            self.n[key] += e.size
            self.abs_sum[key] += float(np.abs(e).sum())
            self.abs_sq[key] += float((e * e).sum())
            self.err_sum[key] += float(e.sum())
            if self.abs_fine is not None and self.residual_fine is not None:
                add_counts(self.abs_bins, key, self.abs_fine.count(np.abs(e)))
                add_counts(self.residual_bins, key, self.residual_fine.count(e))
            if self.prediction is not None:
                p = predicted[rows]
                p = p[np.isfinite(p)]
                self.prediction_n[key] += p.size
                add_counts(self.prediction_bins, key, self.prediction.bin_counts(p))

    def columns(self, keys: list[int]) -> pd.DataFrame:
        min_labels = max(self.context.config.thresholds.min_labels, 1)
        rows = []
        for key in keys:
            n = self.n[key]
            enough = n >= min_labels
            mae = self.abs_sum[key] / n if n else math.nan
            # The sum of squared absolute errors is the sum of squared errors.
            sd = math.sqrt(max(self.abs_sq[key] / n - mae**2, 0.0) * n / (n - 1)) if n > 1 else math.nan
            row: dict[str, float] = {
                "mae": mae if enough else math.nan,
                "rmse": math.sqrt(self.abs_sq[key] / n) if enough else math.nan,
                "bias": self.err_sum[key] / n if enough else math.nan,
                "abs_error_p50": math.nan,
                "abs_error_p90": math.nan,
                "reference_mae": self.reference_mae,
                "mae_band_low": math.nan,
                "mae_band_high": math.nan,
                "error_rise": math.nan,
                "error_rise_pvalue": math.nan,
                "prediction_psi": math.nan,
                "prediction_psi_critical": math.nan,
            }
            if enough and self.abs_fine is not None and key in self.abs_bins:
                counts = self.abs_bins[key]
                row["abs_error_p50"] = quantile_from_bins(counts, self.abs_fine.edges, 0.5)
                row["abs_error_p90"] = quantile_from_bins(counts, self.abs_fine.edges, 0.9)
            if enough and self.reference_n:
                half = 1.96 * self.reference_sd / math.sqrt(n)
                row["mae_band_low"] = max(self.reference_mae - half, 0.0)
                row["mae_band_high"] = self.reference_mae + half
                se = math.sqrt(sd**2 / n + self.reference_sd**2 / self.reference_n)
                row["error_rise"] = mae / self.reference_mae - 1 if self.reference_mae > 0 else math.inf
                row["error_rise_pvalue"] = (
                    float(stats.norm.sf((mae - self.reference_mae) / se))
                    if se > 0
                    else float(mae <= self.reference_mae)
                )
            if self.prediction is not None and self.prediction_n[key]:
                ref = self.prediction
                row["prediction_psi"] = psi(self.prediction_bins[key], ref.proportions)
                row["prediction_psi_critical"] = psi_noise_floor(
                    self.prediction_n[key], ref.sample.size, ref.edges.size + 1
                )
            rows.append(row)
        return pd.DataFrame(rows)

    def overall(self) -> dict[str, float | int | None]:
        n = sum(self.n.values())
        if not n:
            return {"mae": None, "rmse": None, "bias": None, "reference_mae": None}
        return {
            "mae": sum(self.abs_sum.values()) / n,
            "rmse": math.sqrt(sum(self.abs_sq.values()) / n),
            "bias": sum(self.err_sum.values()) / n,
            "reference_mae": self.reference_mae if self.reference_n else None,
        }
