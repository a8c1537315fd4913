"""Drift of every input feature against the reference, per window, and its missing share.

Numeric features: PSI over the reference's deciles, binned KS (`fine_bins`). Categorical
features (text, booleans, whole numbers of few values): PSI over the reference's categories,
its Jensen-Shannon distance and a chi-square test; values the reference never had count in a
bin of their own (`unseen_share`). A column of more than `TOP_CATEGORIES` categories is compared
on its most frequent ones plus "other" (what else it holds, seen in the reference or not: a long
tail is sampled anew by every window). Both kinds are judged by one rule: PSI above `max_psi`
and above the PSI that sampling noise alone passes (`psi_critical`, from both samples' sizes and
the number of bins).

Missing values: each window's share against the reference's, by a one-sided two-proportion test
(a feature that starts arriving empty is a broken pipeline, not a shift of its values).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelvigil.analysis.alerts import Guard, Rule
from modelvigil.analysis.calculators.base import JUDGED, Block, Calculator, Context, add_counts, psi_rule
from modelvigil.analysis.config import AlertKind
from modelvigil.analysis.drift import NOISE_ALPHA, NumericReference, psi, psi_noise_floor
from modelvigil.analysis.fine_bins import FineBins, binned_ks, ks_pvalue
from modelvigil.analysis.model_schema import FEATURE_PREFIX, FeatureKind, categories

TOP_CATEGORIES = 50
OTHER, UNSEEN = "(other)", "(unseen)"
UNSEEN_NAMES = 20  # new categories named per window in the plot; the rest are counted, unnamed
CategoryBins = tuple[list[str], np.ndarray, np.ndarray]  # labels, reference counts, window counts
DRIFT_COLUMNS = [
    "window", "feature", "kind", "psi", "psi_critical", "ks", "ks_pvalue", "js", "chi2_pvalue",
    "unseen_share", "nan_share", "reference_nan_share", "nan_pvalue",
]  # fmt: skip


@dataclass
class CategoryReference:
    kept: list[str]  # the categories compared one by one
    counts: np.ndarray  # the reference's counts over kept + [OTHER] (+ [UNSEEN])
    everything: frozenset[str]  # every category the reference had
    folded: bool  # a long tail folded into "other" (then nothing is "unseen")
    nan_share: float
    n: int

    @classmethod
    def of(cls, values: pd.Series) -> CategoryReference | None:
        text = categories(values)
        known = text.dropna()
        if known.empty:
            return None
        counts = known.value_counts()
        folded = len(counts) > TOP_CATEGORIES
        kept = [str(c) for c in counts.index[:TOP_CATEGORIES]]
        # Unfolded, nothing lies beyond the top: the sum would be 0 too. And counts are compared
        # as shares, alike from ints and floats.
        other = int(counts.iloc[TOP_CATEGORIES:].sum()) if folded else 0  # pragma: no mutate
        bins = [*counts.iloc[:TOP_CATEGORIES].to_numpy(), other] + ([] if folded else [0])
        reference = np.array(bins, dtype=float)  # pragma: no mutate
        return cls(kept, reference, frozenset(counts.index), folded, 1.0 - len(known) / len(text), len(known))

    @property
    def labels(self) -> list[str]:
        return [*self.kept, OTHER] + ([] if self.folded else [UNSEEN])

    def count(self, values: pd.Series, unseen: Counter | None = None) -> np.ndarray:
        """A window's counts over the same bins (missing values left out); the categories the
        reference never had are also tallied by name into `unseen` (up to UNSEEN_NAMES of them)."""
        tally = categories(values).dropna().value_counts()
        # Counts as ints or floats alike; each kept category comes once from value_counts, so its
        # bin is added to once.
        out = np.zeros(len(self.labels), dtype=np.int64)  # pragma: no mutate
        index = {c: i for i, c in enumerate(self.kept)}
        for category, n in tally.items():
            if category in index:
                out[index[category]] += n  # pragma: no mutate
            # Folded, a category the reference never had also lands in "other", the last bin then.
            elif self.folded or category in self.everything:  # pragma: no mutate
                out[len(self.kept)] += n
            else:
                out[-1] += n
                if unseen is not None and (category in unseen or len(unseen) < UNSEEN_NAMES):
                    unseen[category] += n
        return out


@dataclass
class _Seen:
    rows: Counter = field(default_factory=Counter)  # window key -> rows, missing ones included
    present: Counter = field(default_factory=Counter)  # window key -> rows with a value
    bins: dict[int, np.ndarray] = field(default_factory=dict)
    fine: dict[int, np.ndarray] = field(default_factory=dict)
    unseen: dict[int, Counter] = field(default_factory=dict)  # categorical: new categories by name



def _numbers(records: pd.DataFrame, column: str) -> np.ndarray:
    if column not in records:
        return np.full(len(records), np.nan)
    numbers = pd.to_numeric(records[column], errors="coerce")
    # The readers' columns are floats or objects: to_numeric makes numpy floats or ints of them,
    # measured alike.
    return numbers.to_numpy(dtype=float)  # pragma: no mutate


def missing_pvalue(share: float, n: int, reference_share: float, n_reference: int) -> float:
    """One-sided p-value that a window's missing share is above the reference's (pooled z-test)."""
    if not n or not n_reference:
        return math.nan
    pooled = (share * n + reference_share * n_reference) / (n + n_reference)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n_reference))
    if se == 0:  # both shares 0 or both 1: no rise
        return 1.0
    return float(stats.norm.sf((share - reference_share) / se))


MISSING_RISE = "thresholds.min_missing_rise"
# A window's measures of a feature's values (one kind's, the other's NaN).
MEASURES = ("psi", "psi_critical", "ks", "ks_pvalue", "js", "chi2_pvalue", "unseen_share")


class FeatureDrift(Calculator):
    rules = (
        psi_rule("drift", "psi", "psi_critical", "window {window}: feature {subject!r} drifted "
                 "(PSI {value:.3f} > {threshold})", "{feature}"),
        # Like with like: the window's missing share beside the reference's, beyond what sampling
        # explains (tested as PSI is, at the noise level of many tests per report) and by enough.
        Rule(AlertKind.missing, "drift", "nan_share", "reference_nan_share", ">",
             "window {window}: feature {subject!r} missing in {value:.0%} of rows "
             "(reference {threshold:.0%})", subject="{feature}", fitted=True,
             guards=(JUDGED, Guard("nan_pvalue", "<", NOISE_ALPHA), Guard("nan_rise", ">=", MISSING_RISE))),
    )  # fmt: skip

    def __init__(self) -> None:
        self.numeric: dict[str, NumericReference] = {}
        self.categorical: dict[str, CategoryReference] = {}
        self.fine: dict[str, FineBins] = {}
        self.seen: dict[str, _Seen] = {}
        self.notnull: Counter = Counter()
        self.order: list[str] = []  # every feature met, in the order met
        self.reference_rows = 0

    def fit(self, reference: pd.DataFrame, context: Context) -> None:
        super().fit(reference, context)
        # Any seed samples the KS reference alike; a fixed one makes reports reproducible.
        rng = np.random.default_rng(0)  # pragma: no mutate
        self.reference_rows = len(reference)
        for column, kind in context.features.kinds.items():
            if column not in reference:
                continue
            if kind is FeatureKind.numeric:
                fitted = NumericReference.of(_numbers(reference, column), rng)
                if fitted is not None:
                    self.numeric[column] = fitted
                    self.fine[column] = FineBins.with_tails(fitted.sample)
            else:
                category = CategoryReference.of(reference[column])
                if category is not None:
                    self.categorical[column] = category
                    if category.folded:
                        context.notes.append(
                            f"feature {column.removeprefix(FEATURE_PREFIX)!r}: {len(category.everything):,} "
                            f"categories; its {TOP_CATEGORIES} most frequent are compared, the rest as "
                            f"{OTHER!r}"
                        )

    def fold(self, block: Block) -> None:
        records = block.records
        for column in [c for c in records.columns if c.startswith(FEATURE_PREFIX)]:
            if column not in self.order:
                self.order.append(column)
            self.notnull[column] += int(records[column].notna().sum())
        for column in [*self.numeric, *self.categorical]:
            seen = self.seen.setdefault(column, _Seen())
            numeric = column in self.numeric
            values = _numbers(records, column) if numeric else None
            raw = records[column] if column in records else pd.Series([None] * len(records), dtype=object)
            for key, rows in block.groups:
                seen.rows[key] += rows.size
                if numeric:
                    part = values[rows]
                    finite = part[np.isfinite(part)]
                    seen.present[key] += finite.size
                    add_counts(seen.bins, key, self.numeric[column].bin_counts(finite))
                    add_counts(seen.fine, key, self.fine[column].count(finite))
                else:
                    part = raw.iloc[rows]
                    seen.present[key] += int(part.notna().sum())
                    unseen = seen.unseen.setdefault(key, Counter())
                    add_counts(seen.bins, key, self.categorical[column].count(part, unseen))

    def drift_rows(self, keys: list[int]) -> list[dict]:
        rows = []
        for number, key in enumerate(keys):
            for column in self.order:
                if column not in self.seen:
                    continue
                rows.append({"window": number, "feature": column.removeprefix(FEATURE_PREFIX),
                             **self._measure(column, key)})  # fmt: skip
        return rows

    def _measure(self, column: str, key: int) -> dict[str, object]:
        seen = self.seen[column]
        # Every window measured has rows, and every fitted feature is folded for all of them
        # (missing values included): n_rows is never 0.
        n_rows, present = seen.rows[key], seen.present[key]
        nan_share = 1.0 - present / n_rows
        numeric = column in self.numeric
        reference = self.numeric[column] if numeric else self.categorical[column]
        ref_n = reference.sample.size if numeric else reference.n
        ref_nan = reference.nan_share
        out: dict[str, object] = {
            "kind": FeatureKind.numeric.value if numeric else FeatureKind.categorical.value,
            **dict.fromkeys(MEASURES, math.nan),  # a window without a value keeps them NaN
            "nan_share": nan_share,
            "reference_nan_share": ref_nan,
            "nan_pvalue": missing_pvalue(nan_share, n_rows, ref_nan, self.reference_rows),
            "nan_rise": nan_share - ref_nan,
        }
        if present == 0:
            return out
        counts = seen.bins[key]
        if numeric:
            d = binned_ks(seen.fine[key], self.fine[column].reference_cdf)
            out.update(
                psi=psi(counts, reference.proportions),
                psi_critical=psi_noise_floor(present, ref_n, reference.edges.size + 1),
                ks=d,
                ks_pvalue=ks_pvalue(d, present, ref_n),
            )
            return out
        used = (counts > 0) | (reference.counts > 0)  # bins neither sample has say nothing
        # astype(None) would be float64 too.
        window, expected = counts[used].astype(float), reference.counts[used]  # pragma: no mutate
        out.update(
            psi=psi(window, expected / expected.sum()),
            psi_critical=psi_noise_floor(present, ref_n, int(used.sum())),
            js=float(jensenshannon(window, expected, base=2)),
            # One bin used (one category in both): no freedom left, and scipy says p = 1.
            chi2_pvalue=float(stats.chi2_contingency(np.vstack([window, expected])).pvalue),
            unseen_share=float(counts[-1] / present) if not reference.folded else math.nan,
        )
        return out

    def empty_features(self) -> list[str]:
        return [c for c in self.order if not self.notnull[c]]

    def category_counts(self, keys: list[int]) -> dict[tuple[str, int], CategoryBins]:
        """(feature, window number) -> (bin labels, the reference's counts, the window's counts),
        the categories the reference never had by name (as many as were tallied)."""
        out = {}
        for column, ref in self.categorical.items():
            seen = self.seen.get(column)
            for number, key in enumerate(keys):
                if seen is None or key not in seen.bins:
                    continue
                labels, reference, window = list(ref.labels), ref.counts, seen.bins[key]
                named = seen.unseen.get(key, Counter())
                if named and not ref.folded:
                    rest = window[-1] - sum(named.values())
                    labels = [*labels[:-1], *(f"{c} (new)" for c in named), *([UNSEEN] if rest else [])]
                    reference = np.concatenate([reference[:-1], np.zeros(len(named) + bool(rest))])
                    window = np.concatenate([window[:-1], list(named.values()), [rest] if rest else []])
                out[(column.removeprefix(FEATURE_PREFIX), number)] = (labels, reference, window)
        return out
