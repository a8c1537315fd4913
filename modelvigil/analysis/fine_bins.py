"""Fine bins fixed by a reference sample: what a window keeps of a continuous value so that its
distribution can be compared (KS) and drawn without holding the values.

KS statistics come from counts on 1,000 bins at the reference sample's quantiles: evaluated at
the bin edges, a binned KS is never above the exact statistic and at most one bin's share of the
reference below it (`FineBins.ks_bound`); p-values use the asymptotic distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

FINE_BINS = 1_000


def _fine_edges(sample: np.ndarray) -> np.ndarray:
    # Edges at sample values ("lower"): a bin then holds about 1/FINE_BINS of the reference (one
    # value when the sample is smaller), which is the binned KS's largest error.
    return np.unique(np.quantile(sample, np.linspace(0.0, 1.0, FINE_BINS + 1), method="lower"))


def binned_ks(counts: np.ndarray, reference_cdf: np.ndarray) -> float:
    """KS statistic at the fine edges: `counts` per bin (below the first edge, between edges,
    above the last), `reference_cdf` the reference's share at or below each edge."""
    n = counts.sum()
    if n == 0:
        return math.nan
    window_cdf = np.cumsum(counts)[:-1] / n
    return float(np.max(np.abs(window_cdf - reference_cdf)))


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    if not n1 or not n2 or not np.isfinite(d):
        return math.nan
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))


def quantile_from_bins(counts: np.ndarray, edges: np.ndarray, q: float) -> float:
    """The q-th quantile (0..1) of values counted on `edges`' bins, linear within a bin; values
    below the first edge or above the last are taken at that edge."""
    n = counts.sum()
    if n == 0:
        return math.nan
    target = q * n
    cumulative = np.cumsum(counts)
    i = int(np.searchsorted(cumulative, target, side="left"))
    if i == 0 or i >= counts.size - 1:
        return float(edges[0] if i == 0 else edges[-1])
    low, high = edges[i - 1], edges[i]
    before = cumulative[i - 1]
    share = (target - before) / counts[i] if counts[i] else 0.0
    return float(low + share * (high - low))


@dataclass
class FineBins:
    """A sample's fine bins, fixed by the reference: edges and the reference's CDF at them."""

    edges: np.ndarray
    reference_cdf: np.ndarray
    reference_n: int

    @classmethod
    def of(cls, sample: np.ndarray) -> FineBins:
        edges = _fine_edges(sample)
        return cls(edges, np.searchsorted(np.sort(sample), edges, side="right") / sample.size, sample.size)

    @classmethod
    def with_tails(cls, sample: np.ndarray, tails: int = 300) -> FineBins:
        """`of(sample)`, plus `tails` bins on each side beyond the reference's range, growing
        geometrically to a thousand times its width: a window's values far outside the reference
        (an error grown fivefold) are still placed to within a few percent, not piled up in the
        outermost bin."""
        inner = cls.of(sample)
        low, high = float(inner.edges[0]), float(inner.edges[-1])
        span = max(high - low, abs(high), 1e-9)
        steps = span * np.geomspace(0.02, 1_000.0, tails)
        edges = np.concatenate([low - steps[::-1], inner.edges, high + steps])
        cdf = np.concatenate([np.zeros(tails), inner.reference_cdf, np.ones(tails)])
        return cls(edges, cdf, inner.reference_n)

    @property
    def ks_bound(self) -> float:
        """The largest share of the reference in one bin: how far a binned KS may fall short."""
        return float(np.diff(np.concatenate([[0.0], self.reference_cdf, [1.0]])).max())

    def count(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(self.edges, values, side="left"), minlength=self.edges.size + 1)
