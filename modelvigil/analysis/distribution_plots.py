"""Distributions of one window against the reference: a feature's values (numeric: density over
the reference's fine bins; categorical: shares per category) and a regression's errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from modelvigil.analysis.config import Thresholds
from modelvigil.analysis.engine import Analysis
from modelvigil.analysis.model_schema import FEATURE_PREFIX
from modelvigil.analysis.plot_style import FEATURE_PLOT, PLOTS, figure, legend, save, times


def residuals(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    """The reference's errors against those of the window with the largest MAE, on the same bins
    (the reference's fine bins; errors beyond them in the outer bins, drawn at the edges)."""
    sketch = a.sketch
    if sketch is None or sketch.residual_edges is None or "mae" not in a.windows:
        return None
    if not a.windows["mae"].notna().any():
        return None
    worst = int(a.windows.loc[a.windows["mae"].idxmax(), "window"])
    if worst not in sketch.residual_counts:
        return None
    edges = sketch.residual_edges
    reference = sketch.reference_residuals
    current = sketch.residual_counts[worst].astype(float)
    # Drawn over both samples' range: the reference's values and the window's occupied bins.
    occupied = np.flatnonzero(current)
    inner = np.concatenate([[edges[0]], edges, [edges[-1]]])
    low, high = float(reference.min()), float(reference.max())
    if occupied.size:
        low, high = min(low, float(inner[occupied[0]])), max(high, float(inner[occupied[-1] + 1]))
    coarse = np.linspace(low, high, 41) if high > low else np.linspace(low - 1, high + 1, 41)
    middles = np.concatenate([[edges[0]], (edges[:-1] + edges[1:]) / 2, [edges[-1]]])
    fig, ax = figure(PLOTS["residuals"], size=(6, 3.6))
    ref_counts = np.histogram(reference, bins=coarse)[0]
    cur_counts = np.histogram(middles, bins=coarse, weights=current)[0]
    for values, color, name, alpha in (
        (ref_counts, "tab:gray", "reference", 0.5),
        (cur_counts, "tab:orange", f"window {worst} (largest MAE)", 0.55),
    ):
        if values.sum():
            ax.stairs(values / values.sum() / np.diff(coarse), coarse, fill=True, alpha=alpha, color=color,
                      label=name)  # fmt: skip
    ax.axvline(0, color="k", lw=0.8)
    ax.set(xlabel="prediction minus truth", ylabel="density")
    legend(ax, "upper right")
    return save(fig, path)


def feature_distribution(a: Analysis, t: Thresholds, feature: str, path: Path) -> Path | None:
    """The reference's values of `feature` against those of the window where its PSI peaked."""
    column = FEATURE_PREFIX + feature
    if a.feature_kinds.get(feature) == "categorical":
        return _category_distribution(a, t, feature, path)
    if a.profile is None or column not in a.profile.numeric:
        return None
    rows = a.drift[a.drift["feature"] == feature].dropna(subset=["psi"])
    if rows.empty:
        return None
    worst = rows.loc[rows["psi"].idxmax()]
    window = int(worst["window"])
    reference = a.profile.numeric[column].sample
    fig, ax = figure(FEATURE_PLOT.format(feature=feature), size=(6, 3.6))
    start = times(np.array([a.windows.set_index("window").loc[window, "start_ms"]])).iloc[0]
    label = f"window {window} (from {start:%m-%d %H:%M})"
    left_out = _binned_distribution(ax, a, feature, window, reference, label)
    cut = "reference: outer 0.5% each side not drawn; window: every value drawn"
    if left_out:
        cut = f"reference: outer 0.5% each side not drawn; window: {left_out:,} far outliers not drawn"
    ax.set(xlabel=f"{feature}\n({cut})", ylabel="density")
    limit = max(t.max_psi, float(worst["psi_critical"]))
    ax.set_title(
        f"{ax.get_title()}\nPSI {worst['psi']:.3f} (limit {limit:.3f}), KS {worst['ks']:.3f}", fontsize=10
    )
    legend(ax, "upper right")
    return save(fig, path)


def _worst_window(a: Analysis, feature: str) -> pd.Series | None:
    rows = a.drift[a.drift["feature"] == feature].dropna(subset=["psi"])
    return None if rows.empty else rows.loc[rows["psi"].idxmax()]


def _category_distribution(a: Analysis, t: Thresholds, feature: str, path: Path) -> Path | None:
    """A categorical feature's shares in the reference against the window where its PSI peaked:
    side-by-side bars per category (the reference's order), "(unseen)" for what it never had."""
    worst = _worst_window(a, feature)
    if worst is None or a.sketch is None:
        return None
    window = int(worst["window"])
    counts = a.sketch.category_counts.get((feature, window))
    if counts is None:
        return None
    labels, reference, current = counts
    ref_share = reference / reference.sum() if reference.sum() else reference
    cur_share = current / current.sum() if current.sum() else current.astype(float)
    keep = (ref_share > 0) | (cur_share > 0)
    shown = [lab for lab, k in zip(labels, keep, strict=True) if k]
    frame = pd.DataFrame(
        {
            "category": shown * 2,
            "share": np.concatenate([ref_share[keep], cur_share[keep]]),
            "sample": ["reference"] * len(shown) + [f"window {window}"] * len(shown),
        }
    )
    fig, ax = figure(FEATURE_PLOT.format(feature=feature), size=(max(6.0, 0.45 * len(shown) + 2), 3.6))
    sns.barplot(frame, x="category", y="share", hue="sample", palette=["tab:gray", "tab:orange"], ax=ax)
    ax.set(xlabel=f"{feature} (categories)", ylabel="share of the sample")
    ax.tick_params(axis="x", labelrotation=45 if len(shown) > 6 else 0, labelsize=8)
    limit = max(t.max_psi, float(worst["psi_critical"]))
    js = f", JS {worst['js']:.3f}" if pd.notna(worst.get("js")) else ""
    ax.set_title(f"{ax.get_title()}\nPSI {worst['psi']:.3f} (limit {limit:.3f}){js}", fontsize=10)
    legend(ax, "upper right")
    return save(fig, path)


def window_bins(
    a: Analysis, feature: str, window: int, reference: np.ndarray, bins: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(edges, the reference's counts, the window's counts, the window's values not drawn) on
    `bins` equal bins over the reference's middle 99% and every value of the window.

    A streamed window keeps its values as counts on the reference's fine bins (with tails beyond
    its range); each bin's count is spread over that bin's own extent, so values in a gap of the
    reference are drawn across the gap, never piled up at its middle. Only values beyond the
    outermost tail bins (a thousand times the reference's range away) are left out, and counted."""
    edges = a.sketch.feature_edges[feature]
    fine = a.sketch.feature_fine[(feature, window)].astype(float)
    inside = fine[1:-1]
    low, high = (float(v) for v in np.quantile(reference, [0.005, 0.995]))
    occupied = np.flatnonzero(inside)
    if occupied.size:
        low, high = min(low, float(edges[occupied[0]])), max(high, float(edges[occupied[-1] + 1]))
    if high <= low:  # one value throughout: a bin around it
        low, high = low - 0.5, high + 0.5
    coarse = np.linspace(low, high, bins + 1)
    cdf = np.concatenate([[0.0], np.cumsum(inside)])  # the window's count below each fine edge
    current = np.diff(np.interp(coarse, edges, cdf))
    ref = np.histogram(reference, bins=coarse)[0].astype(float)
    return coarse, ref, current, int(fine[0] + fine[-1])


def _binned_distribution(
    ax: Axes, a: Analysis, feature: str, window: int, reference: np.ndarray, label: str
) -> int:
    """The window against the reference as densities (see `window_bins`); returns the window's
    values not drawn."""
    coarse, ref, current, left_out = window_bins(a, feature, window, reference)
    for values, color, name, alpha in (
        (ref, "tab:gray", "reference", 0.5),
        (current, "tab:orange", label, 0.55),
    ):
        total = values.sum()
        if total:
            ax.stairs(
                values / total / np.diff(coarse), coarse, fill=True, alpha=alpha, color=color, label=name
            )
    return left_out
