"""Drift of features and predictions against a reference: fitted once, then measured per window.

Numeric features: PSI over the reference's deciles (its bins fixed at fit time) and the two-sample
Kolmogorov-Smirnov statistic with its p-value. Categorical values (predictions): Jensen-Shannon
distance (base 2, so within [0, 1]) and a chi-square test. Missing values are data: their share
is reported per window, and they are left out of the distributions, never a crash.

Default thresholds (`config.Thresholds`), and why:
- PSI > 0.25 is the common reading of "significant" (0.1-0.25 moderate): the alert threshold.
  PSI grows with sampling noise in small windows, so a window also reports `psi_critical`, the
  PSI that noise alone exceeds once in ten thousand (under no drift, PSI * n_eff is about
  chi-square with bins - 1 degrees of freedom, n_eff = 1 / (1/n_window + 1/n_reference)).
  Drift is flagged only above both.
- KS is reported, not alerted on: with a thousand rows it calls tiny, harmless shifts significant.
- Jensen-Shannon distance > 0.1 for predictions, as Evidently uses for categorical drift, and
  beyond noise: the chi-square test's p-value under NOISE_ALPHA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

_EPS = 1e-4  # floor for empty bins: PSI is infinite otherwise
# Chance that PSI from sampling noise alone passes `psi_critical`: small, because a report tests
# every feature in every window (15 x 10 = 150 tests: about 1.5% for a false alarm somewhere).
NOISE_ALPHA = 1e-4
_KS_SAMPLE = 20_000  # reference values kept for KS; enough for a stable statistic


@dataclass(frozen=True)
class NumericReference:
    edges: np.ndarray  # inner bin edges (deciles of the reference)
    proportions: np.ndarray
    sample: np.ndarray  # sorted reference values for KS
    nan_share: float

    @classmethod
    def of(cls, values: np.ndarray, rng: np.random.Generator) -> NumericReference | None:
        """Fitted on the reference's values (NaN included, for the missing share); None when it
        holds no finite value."""
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return None
        edges = np.unique(np.quantile(finite, np.linspace(0.1, 0.9, 9)))
        # Every bin is counted: the largest values always land in the top one (side="right").
        counts = np.bincount(np.searchsorted(edges, finite, side="right"))
        sample = rng.permutation(finite)[:_KS_SAMPLE]
        return cls(edges, counts / counts.sum(), np.sort(sample), 1.0 - finite.size / values.size)

    def bin_counts(self, finite: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(self.edges, finite, side="right"), minlength=self.edges.size + 1)


@dataclass(frozen=True)
class CategoricalReference:
    categories: list[object]
    counts: np.ndarray

    @property
    def proportions(self) -> np.ndarray:
        return self.counts / self.counts.sum()


@dataclass
class ReferenceProfile:
    """Statistics of the reference data, computed once and reused for every window."""

    numeric: dict[str, NumericReference] = field(default_factory=dict)
    categorical: dict[str, CategoricalReference] = field(default_factory=dict)
    rows: int = 0

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, numeric: list[str], categorical: list[str] | None = None, seed: int = 0
    ) -> ReferenceProfile:
        profile = cls(rows=len(frame))
        rng = np.random.default_rng(seed)
        for name in numeric:
            # dtype=float: pandas 3 gives floats here anyway, pandas 2 objects for a nullable column.
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)  # pragma: no mutate
            fitted = NumericReference.of(values, rng)
            if fitted is not None:  # an empty reference column: nothing to compare against
                profile.numeric[name] = fitted
        for name in categorical or []:
            values = frame[name].dropna()
            counts = values.value_counts()
            if counts.empty:
                continue
            profile.categorical[name] = CategoricalReference(list(counts.index), counts.to_numpy())
        return profile

    def numeric_drift(self, name: str, values: np.ndarray) -> dict[str, float]:
        """PSI, KS statistic and p-value, and missing share of one window's values."""
        ref = self.numeric[name]
        values = np.asarray(values, dtype=float)
        finite = values[np.isfinite(values)]
        nan_share = 1.0 - finite.size / values.size if values.size else math.nan
        if finite.size == 0:
            return {
                "psi": math.nan,
                "psi_critical": math.nan,
                "ks": math.nan,
                "ks_pvalue": math.nan,
                "nan_share": nan_share,
            }
        counts = np.bincount(np.searchsorted(ref.edges, finite, side="right"), minlength=ref.edges.size + 1)
        ks = stats.ks_2samp(finite, ref.sample, method="asymp")
        return {
            "psi": psi(counts, ref.proportions),
            "psi_critical": psi_noise_floor(finite.size, ref.sample.size, ref.edges.size + 1),
            "ks": float(ks.statistic),
            "ks_pvalue": float(ks.pvalue),
            "nan_share": nan_share,
        }

    def categorical_drift(self, name: str, values: pd.Series) -> dict[str, float]:
        """Jensen-Shannon distance of one window's value mix, and the p-value of a chi-square test
        of window against reference counts (both samples' noise counted, not just the window's)."""
        return self.categorical_counts_drift(name, values.dropna().value_counts())

    def categorical_counts_drift(self, name: str, counts: pd.Series) -> dict[str, float]:
        """`categorical_drift` from the window's counts per value (what a streamed window keeps)."""
        return categorical_counts_drift(self.categorical[name], counts)


def categorical_counts_drift(ref: CategoricalReference, counts: pd.Series) -> dict[str, float]:
    """Jensen-Shannon distance of a window's counts per value against the reference's, and the
    p-value of a chi-square test of the two (both samples' noise counted)."""
    counts = counts[counts > 0]
    if counts.empty:
        return {"js": math.nan, "chi2_pvalue": math.nan}
    categories = list(dict.fromkeys([*ref.categories, *counts.index]))
    known = dict(zip(ref.categories, ref.counts, strict=True))
    reference = np.array([known.get(c, 0.0) for c in categories], dtype=float)
    observed = np.array([counts.get(c, 0) for c in categories], dtype=float)
    js = float(jensenshannon(observed, reference, base=2))  # it normalizes both mixes itself
    if len(categories) < 2:
        return {"js": js, "chi2_pvalue": 1.0}
    chi2 = stats.chi2_contingency(np.vstack([observed, reference]))
    return {"js": js, "chi2_pvalue": float(chi2.pvalue)}


def psi(counts: np.ndarray, proportions: np.ndarray) -> float:
    """PSI of a window's counts per bin against the reference's proportions. Half a count added
    to every bin (Jeffreys): an empty bin in a small window would otherwise dominate PSI through
    log(0)."""
    actual = (counts + 0.5) / (counts.sum() + 0.5 * counts.size)
    expected = np.maximum(proportions, _EPS)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi_noise_floor(n_window: int, n_reference: int, bins: int, alpha: float = NOISE_ALPHA) -> float:
    """The PSI that sampling noise alone exceeds with probability `alpha` (no drift at all)."""
    if n_window < 1 or n_reference < 1 or bins < 2:
        return math.inf
    n_eff = 1.0 / (1.0 / n_window + 1.0 / n_reference)
    return float(stats.chi2.ppf(1.0 - alpha, bins - 1) / n_eff)
