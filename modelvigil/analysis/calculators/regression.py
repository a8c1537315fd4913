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
            if self.abs_fine is not None and self.residual_fine is not None:  # fitted together
                add_counts(self.abs_bins, key, self.abs_fine.count(np.abs(e)))
                add_counts(self.residual_bins, key, self.residual_fine.count(e))
            if self.prediction is not None:
                p = predicted[rows]
                p = p[np.isfinite(p)]
                self.prediction_n[key] += p.size
                add_counts(self.prediction_bins, key, self.prediction.bin_counts(p))

    def columns(self, keys: list[int]) -> pd.DataFrame:
        min_labels = self.context.config.thresholds.min_labels  # >= 1: a judged window has errors
        return pd.DataFrame([self._row(key, self.n[key] >= min_labels) for key in keys])

    def _row(self, key: int, judged: bool) -> dict[str, float]:
        n = self.n[key]
        mae = self.abs_sum[key] / n if judged else math.nan
        p50 = p90 = math.nan
        if judged and self.abs_fine is not None and key in self.abs_bins:
            p50 = quantile_from_bins(self.abs_bins[key], self.abs_fine.edges, 0.5)
            p90 = quantile_from_bins(self.abs_bins[key], self.abs_fine.edges, 0.9)
        low = high = rise = pvalue = math.nan
        if judged and self.reference_n:
            half = 1.96 * self.reference_sd / math.sqrt(n)
            low, high = max(self.reference_mae - half, 0.0), self.reference_mae + half
            rise = mae / self.reference_mae - 1 if self.reference_mae > 0 else math.inf
            pvalue = self._rise_pvalue(key, mae)
        psi_value = psi_critical = math.nan
        if self.prediction is not None and self.prediction_n[key]:
            psi_value = psi(self.prediction_bins[key], self.prediction.proportions)
            psi_critical = psi_noise_floor(
                self.prediction_n[key], self.prediction.sample.size, self.prediction.edges.size + 1
            )
        return {
            "mae": mae,
            "rmse": math.sqrt(self.abs_sq[key] / n) if judged else math.nan,
            "bias": self.err_sum[key] / n if judged else math.nan,
            "abs_error_p50": p50,
            "abs_error_p90": p90,
            "reference_mae": self.reference_mae,
            "mae_band_low": low,
            "mae_band_high": high,
            "error_rise": rise,
            "error_rise_pvalue": pvalue,
            "prediction_psi": psi_value,
            "prediction_psi_critical": psi_critical,
        }

    def _rise_pvalue(self, key: int, mae: float) -> float:
        """One-sided: how likely noise alone gives a window MAE this far above the reference's.
        A window of one label has no spread of its own: the reference's stands in for it."""
        n = self.n[key]
        # The sum of squared absolute errors is the sum of squared errors.
        var = max(self.abs_sq[key] / n - mae**2, 0.0) * n / (n - 1) if n > 1 else self.reference_sd**2
        se = math.sqrt(var / n + self.reference_sd**2 / self.reference_n)
        if se == 0:  # no spread anywhere: any rise is real, none is none
            return float(mae <= self.reference_mae)
        return float(stats.norm.sf((mae - self.reference_mae) / se))

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
