"""Seaborn plots of a monitoring analysis: one figure per PNG, readable at a glance.

The lab drew two (processing time, accuracy per window); its latency was wrong. These are those
two done right plus the rest of the report's pictures. Each function returns the file it wrote,
or None when there is nothing to draw (an empty range still gets a valid report).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from modelvigil.analysis.config import Thresholds
from modelvigil.analysis.distribution_plots import feature_distribution, residuals
from modelvigil.analysis.engine import Analysis
from modelvigil.analysis.plot_style import (
    DRIFT_LINES,
    FEATURE_PLOT,
    PLOTS,
    PYPLOT,
    SCATTER_MAX_CALLS,
    figure,
    legend,
    marks,
    middles,
    save,
    threshold,
    time_axis,
    times,
    window_bars,
)
from modelvigil.analysis.time_labels import distinct_times

__all__ = ["FEATURE_PLOT", "PLOTS", "draw_all", "feature_plot_name", "plots_for"]


def latency_over_time(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    calls, total = a.sketch.calls, a.sketch.total_calls
    if not total:
        return None
    fig, ax = figure(PLOTS["latency_over_time"])
    if total <= SCATTER_MAX_CALLS:
        sns.scatterplot(
            x=times(calls["start_ms"]).to_numpy(), y=calls["latency_ms"].to_numpy(), s=8, alpha=0.5, ax=ax,
            linewidth=0, label="a call",
        )  # fmt: skip
        highest = float(calls["latency_ms"].max())
    else:
        # A million dots are one blot and cost seconds to draw: show p50/p95 and the range per bin.
        per_bin = a.sketch.latency_bins
        x = times(per_bin["t"]).to_numpy()
        ax.fill_between(x, per_bin["low"], per_bin["high"], alpha=0.15, label="min to max")
        ax.plot(x, per_bin["p50"], label="p50")
        ax.plot(x, per_bin["p95"], label="p95")
        highest = float(per_bin["high"].max())
    marks(ax, a, "latency", kinds=["latency"])
    threshold(ax, t.max_p95_latency_ms, highest, "p95 limit")
    ax.set(ylabel="server latency (ms, end - start)")
    time_axis(ax)
    legend(ax, "upper right")
    return save(fig, path)


def _measured(a: Analysis, column: str, name: str, kind: str) -> tuple | None:
    """The windows where `column` was measured, and a figure for them with the reference and the
    alerts marked: (fig, ax, windows, their middles); None when no window has it."""
    w = a.windows.dropna(subset=[column]) if column in a.windows else a.windows.iloc[:0]
    if w.empty:
        return None
    fig, ax = figure(PLOTS[name])
    marks(ax, a, kind, kinds=[kind])
    return fig, ax, w, middles(w).to_numpy()


def accuracy_band(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    drawn = _measured(a, "accuracy", "accuracy_band", "accuracy")
    if drawn is None:
        return None
    fig, ax, w, x = drawn
    ax.fill_between(x, w["accuracy_low"], w["accuracy_high"], alpha=0.25, label="95% Wilson interval")
    ax.plot(x, w["accuracy"], marker="o", label="accuracy (joined ground truth)")
    if "tracked_accuracy" in w and w["tracked_accuracy"].notna().any():
        ax.scatter(x, w["tracked_accuracy"], marker="x", s=60, color="tab:green", label="tracked aggregate")
    if "estimated_accuracy" in w and w["estimated_accuracy"].notna().any():
        ax.plot(
            x, w["estimated_accuracy"], ls="--", marker=".", color="tab:purple", label="estimated (no labels)"
        )
    if "reference_accuracy" in w and w["reference_accuracy"].notna().any():
        level = float(w["reference_accuracy"].iloc[0])
        ax.axhline(level, color="tab:gray", ls=":", lw=1, label=f"reference {level:.3f}")
    ax.axhline(t.min_accuracy, color="tab:red", ls="--", lw=1, label=f"floor {t.min_accuracy:g}")
    ax.axhspan(0, t.min_accuracy, color="tab:red", alpha=0.06, lw=0)
    low = float(np.nanmin([w["accuracy_low"].min(), t.min_accuracy]))
    ax.set(ylabel="accuracy", ylim=(max(0.0, low - 0.05), 1.01))
    time_axis(ax)
    legend(ax, "lower left")
    return save(fig, path)


def error_band(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    """A regression's MAE per window, the reference's MAE and the band noise alone keeps a window
    of that many labels within (95%)."""
    drawn = _measured(a, "mae", "error_band", "error")
    if drawn is None:
        return None
    fig, ax, w, x = drawn
    if w["mae_band_low"].notna().any():
        ax.fill_between(x, w["mae_band_low"], w["mae_band_high"], alpha=0.2, color="tab:gray",
                        label="reference, 95% noise band")  # fmt: skip
        level = float(w["reference_mae"].iloc[0])
        ax.axhline(level, color="tab:gray", ls=":", lw=1, label=f"reference MAE {level:.4g}")
    ax.plot(x, w["mae"], marker="o", label="mean absolute error")
    ax.plot(x, w["rmse"], marker=".", ls="--", color="tab:purple", label="RMSE")
    ax.plot(x, w["abs_error_p90"], marker=".", ls=":", color="tab:orange", label="90th percentile |error|")
    ax.set(ylabel="error (the model's unit)", ylim=(0, None))
    time_axis(ax)
    legend(ax, "upper left")
    return save(fig, path)


def latency_distribution(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    tally = a.sketch.latency
    values = np.array(sorted(tally), dtype=float)
    weights = np.array([tally[v] for v in sorted(tally)], dtype=float)
    if values.size == 0:
        return None
    fig, ax = figure(PLOTS["latency_distribution"])
    # Binned by numpy first: seaborn's own binning of a million values takes over a second.
    counts, edges = np.histogram(values, bins=40, weights=weights)
    binned = pd.DataFrame({"latency_ms": edges[:-1], "calls": counts})
    sns.histplot(
        binned, x="latency_ms", weights="calls", bins=len(counts), binrange=(edges[0], edges[-1]), ax=ax
    )
    for q, style in ((50, ":"), (95, "--"), (99, "-.")):
        value = a.overall.get(f"latency_p{q}_ms")
        if value is not None:
            ax.axvline(value, color="k", ls=style, lw=1, label=f"p{q} {value:.1f} ms")
    if t.max_p95_latency_ms <= 2 * edges[-1]:
        ax.axvline(t.max_p95_latency_ms, color="tab:red", ls="--", lw=1, label="p95 limit")
    ax.set(xlabel="server latency (ms)", ylabel="calls")
    legend(ax, "upper right")
    return save(fig, path)


def _bars_per_window(
    a: Analysis, name: str, values: pd.Series, color: str, ylabel: str, alert_kinds: tuple[str, ...] = ()
) -> tuple:
    """A time plot of one bar per window (as wide as the window), the reference and its alerts marked."""
    fig, ax = figure(PLOTS[name])
    marks(ax, a, name.replace("_", " "), kinds=alert_kinds)
    window_bars(ax, a.windows, values.fillna(0), color=color)
    ax.set(ylabel=ylabel)
    time_axis(ax)
    return fig, ax


def request_volume(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    if a.windows.empty:
        return None
    fig, ax = _bars_per_window(a, "request_volume", a.windows["requests"], "tab:blue", "requests")
    legend(ax, "lower right")
    return save(fig, path)


def label_coverage(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    if a.windows.empty:
        return None
    fig, ax = _bars_per_window(
        a,
        "label_coverage",
        a.windows["label_coverage"],
        "tab:purple",
        "share with ground truth",
        ("coverage",),
    )
    ax.axhline(t.min_label_coverage, color="tab:red", ls="--", lw=1, label=f"floor {t.min_label_coverage:g}")
    ax.set(ylim=(0, 1.05))
    legend(ax, "lower left")
    return save(fig, path)


def prediction_mix(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    shares = [c for c in a.windows.columns if c.startswith("share_")]
    if not shares:
        return None
    fig, ax = figure(PLOTS["prediction_mix"])
    marks(ax, a, "prediction mix", metrics=["prediction_js", "prediction_chi2", "prediction_psi"])
    bottom = np.zeros(len(a.windows))
    for i, column in enumerate(shares):
        values = a.windows[column].fillna(0).to_numpy(dtype=float)
        label = f"predicted {column.removeprefix('share_')}"
        window_bars(
            ax, a.windows, values, bottom=bottom, color=sns.color_palette("tab10")[i % 10], label=label
        )
        bottom += values
    ax.set(ylabel="share of predictions", ylim=(0, 1))
    time_axis(ax)
    legend(ax, "upper right")
    return save(fig, path)


def _decision_limit(drift: pd.DataFrame, t: Thresholds) -> pd.Series:
    """The PSI a feature must pass to count as drifted: the threshold, or the noise floor if higher."""
    return np.maximum(drift["psi_critical"].astype(float), t.max_psi)


def drift_heatmap(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    if a.drift.empty:
        return None
    grid = a.drift.pivot(index="feature", columns="window", values="psi")
    limit = a.drift.assign(limit=_decision_limit(a.drift, t)).pivot(
        index="feature", columns="window", values="limit"
    )
    fig, ax = figure(PLOTS["drift_heatmap"], size=(9, max(3.2, 0.35 * len(grid) + 1.9)))
    starts = a.windows.set_index("window")["start_ms"]
    labels = distinct_times([starts.get(w) for w in grid.columns])
    sns.heatmap(
        grid,
        cmap="rocket_r",
        vmin=0,
        vmax=max(t.max_psi * 2, 0.5),
        annot=len(grid.columns) <= 12,
        fmt=".2f",
        annot_kws={"size": 7},
        cbar_kws={"label": "PSI"},
        xticklabels=labels,
        ax=ax,
    )
    # Boxed: the cells past the decision limit (the threshold and the window's noise floor).
    for row, col in zip(*np.nonzero((grid > limit).to_numpy()), strict=True):
        ax.add_patch(plt.Rectangle((col, row), 1, 1, fill=False, edgecolor="tab:blue", lw=2))
    ax.set(xlabel="window start (UTC)", ylabel="")
    ax.set_title(
        f"{PLOTS['drift_heatmap']}\nboxed: above {t.max_psi:g} and above sampling noise", fontsize=11
    )
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.tick_params(axis="y", labelrotation=0)
    return save(fig, path)


def drift_over_time(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    if a.drift.empty:
        return None
    drift = a.drift.merge(a.windows[["window", "start_ms", "end_ms"]], on="window")
    worst = drift.groupby("feature")["psi"].max().sort_values(ascending=False)
    drifted = [f for f in worst.index if f in {al.subject for al in a.alerts if al.metric == "psi"}]
    shown = (drifted or list(worst.index))[:DRIFT_LINES]
    fig, ax = figure(PLOTS["drift_over_time"])
    marks(ax, a, "feature drift", metrics=["psi"])
    for feature in shown:
        rows = drift[drift["feature"] == feature]
        ax.plot(middles(rows).to_numpy(), rows["psi"], marker="o", ms=4, label=feature)
    per_window = drift.groupby("window").first()
    limit = _decision_limit(per_window, t)
    ax.step(middles(per_window).to_numpy(), limit, where="mid", color="tab:red", ls="--", lw=1,
            label="decision limit")  # fmt: skip
    ax.set(ylabel="PSI against the reference", ylim=(0, max(float(worst.max()), float(limit.max())) * 1.1))
    time_axis(ax)
    legend(ax, "upper left")
    return save(fig, path)


def confusion_matrix(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    if a.confusion.empty:
        return None
    fig, ax = figure(PLOTS["confusion_matrix"], size=(4.5, 4))
    sns.heatmap(a.confusion, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax)
    return save(fig, path)


DRAWERS: dict[str, Callable[[Analysis, Thresholds, Path], Path | None]] = {
    "accuracy_band": accuracy_band,
    "error_band": error_band,
    "residuals": residuals,
    "confusion_matrix": confusion_matrix,
    "drift_heatmap": drift_heatmap,
    "drift_over_time": drift_over_time,
    "prediction_mix": prediction_mix,
    "latency_over_time": latency_over_time,
    "latency_distribution": latency_distribution,
    "request_volume": request_volume,
    "label_coverage": label_coverage,
}


_CLASSIFIER_ONLY = ("accuracy_band", "confusion_matrix", "prediction_mix")
_REGRESSION_ONLY = ("error_band", "residuals")


def plots_for(task: str) -> list[str]:
    """The plots a report of this task has (when its data is there)."""
    other = _CLASSIFIER_ONLY if task == "regression" else _REGRESSION_ONLY
    return [name for name in PLOTS if name not in other]


def feature_plot_name(feature: str) -> str:
    """`feature_<name>`, with anything but letters, digits, `_` and `-` replaced: a file name that
    stays inside its folder whatever a feature is called."""
    return "feature_" + re.sub(r"[^A-Za-z0-9_-]", "_", feature)[:80]


def draw_all(
    a: Analysis, thresholds: Thresholds, folder: Path, features: Iterable[str] = ()
) -> dict[str, Path]:
    """Every plot there is data for, as `<name>.png` in `folder` (names fixed: nothing escapes it),
    then one reference-vs-current plot per feature in `features`."""
    folder.mkdir(parents=True, exist_ok=True)
    if a.empty:
        return {}
    drawn = {}
    with PYPLOT:
        sns.set_theme(style="whitegrid", context="notebook")
        for name, draw in DRAWERS.items():
            path = draw(a, thresholds, folder / f"{name}.png")
            if path is not None:
                drawn[name] = path
        for feature in features:
            name = feature_plot_name(feature)
            path = feature_distribution(a, thresholds, feature, folder / f"{name}.png")
            if path is not None:
                drawn[name] = path
    return drawn
