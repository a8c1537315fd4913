"""Performance against the reference's own level: fitted once on the reference, then per window.

The absolute floor (`min_accuracy`) ignores how good the model was: a model at 0.93 that drops to
0.86 stays above 0.85 and nobody hears of it. So, beside it, per window:

- `accuracy_drop`: the reference's accuracy minus the window's, with the one-sided p-value of a
  two-proportion z-test (`accuracy_drop_pvalue`): a drop beyond what sampling explains.
- `accuracy_cusum`: a Bernoulli CUSUM (`sequential`) over every labelled prediction in time
  order, for an error rate `cusum_shift` times the reference's; its largest value in the window.
  A slow ramp adds up evidence across windows that no single window holds.
- `estimated_accuracy`: accuracy expected from the model's confidence alone, before any label
  (confidence-based performance estimation, as NannyML's CBPE): P(correct | confidence) fitted on
  the reference by temperature scaling (one factor on the confidence's log-odds, so 0.5 stays a
  coin toss: steady on a thousand labels and sound beyond the reference's range, where an isotonic
  fit of 0/1 outcomes steps and clips, and a two-parameter Platt fit swings), averaged over the
  window; `estimated_drop` is the
  reference's accuracy minus it, and `estimated_drop_pvalue` tests it. It sees covariate shift; it
  cannot see concept drift (the model is as confident as before, and as wrong).
- `probability_ks`, `probability_pvalue`: two-sample KS of the predicted probability against the
  reference's: prediction drift finer than the label mix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LogisticRegression

from modelvigil.analysis import sequential

PERFORMANCE_COLUMNS = [
    "window",
    "reference_accuracy",
    "accuracy_drop",
    "accuracy_drop_pvalue",
    "accuracy_cusum",
    "cusum_limit",
    "estimated_accuracy",
    "estimated_drop",
    "estimated_drop_pvalue",
    "probability_ks",
    "probability_pvalue",
]
_MIN_REFERENCE_LABELS = 100  # fewer: no reference level to hold windows against
_KS_SAMPLE = 20_000


@dataclass(frozen=True)
class PerformanceReference:
    accuracy: float
    n_labelled: int
    probability: np.ndarray | None  # sorted sample of the reference's predicted probabilities
    calibration: LogisticRegression | None  # P(correct | confidence)

    @classmethod
    def fit(cls, reference: pd.DataFrame) -> PerformanceReference | None:
        """None when the reference holds too few labelled predictions to set a level."""
        labelled = reference[reference["label"].notna()]
        if len(labelled) < _MIN_REFERENCE_LABELS:
            return None
        correct = (labelled["prediction"].to_numpy() == labelled["label"].to_numpy()).astype(float)
        probability = pd.to_numeric(reference["probability"], errors="coerce").dropna().to_numpy(dtype=float)
        calibration = None
        confidence = _confidence(
            pd.to_numeric(labelled["probability"], errors="coerce").to_numpy(dtype=float)
        )
        known = ~np.isnan(confidence)
        if known.sum() >= _MIN_REFERENCE_LABELS and 0 < correct[known].sum() < known.sum():
            calibration = LogisticRegression(C=100.0, fit_intercept=False)
            calibration.fit(_logit(confidence[known]), correct[known])
        sample = None
        if probability.size:
            rng = np.random.default_rng(0)
            if probability.size > _KS_SAMPLE:
                probability = rng.choice(probability, _KS_SAMPLE, replace=False)
            sample = np.sort(probability)
        return cls(float(correct.mean()), len(labelled), sample, calibration)

    def per_window(
        self, records: pd.DataFrame, *, min_labels: int, cusum_shift: float, cusum_quiet_windows: float
    ) -> pd.DataFrame:
        """One row per window of `records` (which carry `window`, `prediction`, `label`,
        `probability`, in time order)."""
        windows = records["window"].to_numpy()
        labelled = records["label"].notna().to_numpy()
        correct = records["prediction"].to_numpy() == records["label"].to_numpy()
        cusum = np.full(len(records), np.nan)
        cusum[labelled] = _bernoulli_cusum(~correct[labelled], 1.0 - self.accuracy, cusum_shift)
        # The limit: noise alone passes it about once in `cusum_quiet_windows` windows of the
        # labelled predictions a window holds here (a CUSUM's false alarms come per observation).
        counts = pd.Series(labelled).groupby(windows).sum()
        per_window = max(float(counts.median()), 1.0) if labelled.any() else 1.0
        limit = cusum_limit(1.0 - self.accuracy, cusum_shift, per_window * cusum_quiet_windows)
        probability = pd.to_numeric(records["probability"], errors="coerce").to_numpy(dtype=float)
        expected = self.expected_correct(probability)
        rows = []
        for window in pd.unique(windows):
            mine = windows == window
            hits, n = correct[mine & labelled], int((mine & labelled).sum())
            rows.append(
                {
                    "window": window,
                    "reference_accuracy": self.accuracy,
                    **self.drop_test(float(hits.mean()) if n else np.nan, n, min_labels),
                    "accuracy_cusum": float(np.nanmax(cusum[mine])) if n else np.nan,
                    "cusum_limit": limit,
                    **self._estimated(expected[mine]),
                    **self._probability_drift(probability[mine]),
                }
            )
        return pd.DataFrame(rows, columns=PERFORMANCE_COLUMNS)

    def drop_test(self, accuracy: float, n: int, min_labels: int) -> dict[str, float]:
        if n < max(min_labels, 1):
            return {"accuracy_drop": np.nan, "accuracy_drop_pvalue": np.nan}
        return {
            "accuracy_drop": self.accuracy - accuracy,
            "accuracy_drop_pvalue": _drop_pvalue(accuracy, n, self.accuracy, self.n_labelled),
        }

    def expected_correct(self, probability: np.ndarray) -> np.ndarray:
        if self.calibration is None:
            return np.full(len(probability), np.nan)
        confidence = _confidence(probability)
        out = np.full(len(probability), np.nan)
        known = ~np.isnan(confidence)
        if known.any():
            out[known] = self.calibration.predict_proba(_logit(confidence[known]))[:, 1]
        return out

    def _estimated(self, expected: np.ndarray) -> dict[str, float]:
        expected = expected[~np.isnan(expected)]
        if expected.size == 0:
            return {"estimated_accuracy": np.nan, "estimated_drop": np.nan, "estimated_drop_pvalue": np.nan}
        estimate = float(expected.mean())
        # Sampling spread of the estimate (independent Bernoullis with these chances) and of the
        # reference's accuracy.
        var = float((expected * (1 - expected)).sum()) / expected.size**2
        var += self.accuracy * (1 - self.accuracy) / self.n_labelled
        z = (estimate - self.accuracy) / np.sqrt(var) if var > 0 else 0.0
        return {
            "estimated_accuracy": estimate,
            "estimated_drop": self.accuracy - estimate,
            "estimated_drop_pvalue": float(stats.norm.cdf(z)),
        }

    def _probability_drift(self, probability: np.ndarray) -> dict[str, float]:
        probability = probability[~np.isnan(probability)]
        if self.probability is None or probability.size == 0:
            return {"probability_ks": np.nan, "probability_pvalue": np.nan}
        result = stats.ks_2samp(probability, self.probability)
        return {"probability_ks": float(result.statistic), "probability_pvalue": float(result.pvalue)}


def _logit(confidence: np.ndarray) -> np.ndarray:
    c = np.clip(confidence, 0.5 + 1e-6, 1 - 1e-6)
    return np.log(c / (1 - c)).reshape(-1, 1)


def _confidence(probability: np.ndarray) -> np.ndarray:
    """The model's confidence in the label it gave: the larger of p and 1 - p."""
    return np.maximum(probability, 1.0 - probability)


def _drop_pvalue(accuracy: float, n: int, reference: float, n_reference: int) -> float:
    """One-sided p-value that a window's accuracy is below the reference's (pooled z-test)."""
    pooled = (accuracy * n + reference * n_reference) / (n + n_reference)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n_reference))
    if se == 0:
        return 1.0 if accuracy >= reference else 0.0
    return float(stats.norm.cdf((accuracy - reference) / se))


def _rates(base_rate: float, shift: float) -> tuple[float, float]:
    p0 = min(max(base_rate, 1e-3), 0.5)
    return p0, min(p0 * shift, 0.999)


def bernoulli_steps(errors: np.ndarray, base_rate: float, shift: float) -> np.ndarray:
    """Each prediction's log-likelihood ratio of an error rate `shift` x `base_rate` against `base_rate`."""
    p0, p1 = _rates(base_rate, shift)
    return np.where(errors, np.log(p1 / p0), np.log((1 - p1) / (1 - p0)))


def _bernoulli_cusum(errors: np.ndarray, base_rate: float, shift: float) -> np.ndarray:
    """CUSUM of `bernoulli_steps`."""
    return sequential.cusum(bernoulli_steps(errors, base_rate, shift))


def cusum_limit(base_rate: float, shift: float, quiet_observations: float) -> float:
    """The limit the errors' CUSUM passes by noise alone about once in `quiet_observations`."""
    p0, p1 = _rates(base_rate, shift)
    up, down = np.log(p1 / p0), np.log((1 - p1) / (1 - p0))
    mean = p0 * up + (1 - p0) * down  # negative: in control the CUSUM drifts down
    sd = float(np.sqrt(p0 * (1 - p0)) * (up - down))
    return sequential.limit_for(mean, sd, quiet_observations)
