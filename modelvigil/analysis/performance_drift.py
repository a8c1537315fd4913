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

PERFORMANCE_COLUMNS = [  # the columns `ReferenceAccuracy` adds to the window table
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
    def fit(cls, reference: pd.DataFrame, calibrate: bool = True) -> PerformanceReference | None:
        """None when the reference holds too few labelled predictions to set a level. `calibrate`:
        fit P(correct | confidence), which reads `probability` as a binary model's."""
        labelled = reference[reference["label"].notna()]
        if len(labelled) < _MIN_REFERENCE_LABELS:
            return None
        correct = (
            labelled["prediction"].to_numpy(dtype=object) == labelled["label"].to_numpy(dtype=object)
        ).astype(float)
        probability = pd.to_numeric(reference["probability"], errors="coerce").dropna().to_numpy(dtype=float)
        calibration = None
        confidence = _confidence(
            pd.to_numeric(labelled["probability"], errors="coerce").to_numpy(dtype=float)
        )
        known = ~np.isnan(confidence)
        if calibrate and known.sum() >= _MIN_REFERENCE_LABELS and 0 < correct[known].sum() < known.sum():
            calibration = LogisticRegression(C=100.0, fit_intercept=False)
            calibration.fit(_logit(confidence[known]), correct[known])
        sample = None
        if probability.size:
            rng = np.random.default_rng(0)
            if probability.size > _KS_SAMPLE:
                probability = rng.choice(probability, _KS_SAMPLE, replace=False)
            sample = np.sort(probability)
        return cls(float(correct.mean()), len(labelled), sample, calibration)

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


CUSUM_MIN_REFERENCE_LABELS = 500  # fewer: the reference's own error swamps the CUSUM's limit


def cusum_base_rate(accuracy: float, n_labelled: int, z: float = 1.645) -> float:
    """The error rate the CUSUM holds windows to: the reference's, raised by its own sampling
    error (its one-sided 95% upper bound). Taken as exact, a reference that
    happened to err less than the model does makes the CUSUM climb on quiet traffic, a small
    reference most of all (false alarms per 100 quiet windows: `benchmarks/detection_quality.py`)."""
    error = 1.0 - accuracy
    return min(error + z * np.sqrt(max(error * (1 - error), 1.0 / n_labelled) / n_labelled), 0.5)


def cusum_limit(base_rate: float, shift: float, quiet_observations: float) -> float:
    """The limit the errors' CUSUM passes by noise alone about once in `quiet_observations`."""
    p0, p1 = _rates(base_rate, shift)
    up, down = np.log(p1 / p0), np.log((1 - p1) / (1 - p0))
    mean = p0 * up + (1 - p0) * down  # negative: in control the CUSUM drifts down
    sd = float(np.sqrt(p0 * (1 - p0)) * (up - down))
    return sequential.limit_for(mean, sd, quiet_observations)
