"""Seaborn plots of a monitoring analysis: one figure per PNG, readable at a glance.

The lab drew two (processing time, accuracy per window); its latency was wrong. These are those
two done right plus the rest of the report's pictures. Each function returns the file it wrote,
or None when there is nothing to draw (an empty range still gets a valid report).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window: runs headless in flows and CI

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from modelvigil.analysis.analyse import Analysis, first_rows
from modelvigil.analysis.config import Thresholds

DPI = 90  # small enough to inline in a Prefect artifact, sharp enough to read
SCATTER_MAX_CALLS = 5_000  # above this, latency over time is drawn as percentiles per time bin
LATENCY_BINS = 200
PLOTS: dict[str, str] = {
    "latency_over_time": "Model latency over time",
    "accuracy_per_window": "Accuracy per window",
    "accuracy_band": "Accuracy with 95% interval and threshold",
    "latency_distribution": "Latency distribution",
    "request_volume": "Requests per window",
    "label_coverage": "Label coverage per window",
    "prediction_mix": "Prediction mix per window",
    "drift_heatmap": "Feature drift (PSI) per window",
    "confusion_matrix": "Confusion matrix",
}


def _times(ms: pd.Series) -> pd.Series:
    return pd.to_datetime(ms, unit="ms", utc=True)


def _time_axis(ax: plt.Axes) -> None:
    """Readable time ticks however long the range: seconds for a demo, days for a month."""
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _threshold(ax: plt.Axes, value: float, data_max: float, label: str) -> None:
    # A threshold far above the data would squash it flat against the axis: say it instead.
    if value <= 2 * data_max:
        ax.axhline(value, color="tab:red", ls="--", lw=1, label=label)
    else:
        ax.set_title(f"{ax.get_title()} ({label} {value:g}, far above)")


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _figure(title: str, size: tuple[float, float] = (8, 4)) -> tuple[plt.Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=size)
    ax.set_title(title)
    return fig, ax


def latency_over_time(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    calls = first_rows(a.records)
    if calls.empty:
        return None
    fig, ax = _figure(PLOTS["latency_over_time"])
    if len(calls) <= SCATTER_MAX_CALLS:
        sns.scatterplot(
            x=_times(calls["start_ms"]), y=calls["latency_ms"], s=8, alpha=0.5, ax=ax, linewidth=0
        )
    else:
        # A million dots are one blot and cost seconds to draw: show p50/p95 and the range per bin.
        bins = pd.cut(calls["start_ms"], LATENCY_BINS, labels=False)
        grouped = calls.groupby(bins)
        per_bin = pd.DataFrame(
            {
                "t": grouped["start_ms"].mean(),
                "p50": grouped["latency_ms"].quantile(0.5),
                "p95": grouped["latency_ms"].quantile(0.95),
                "low": grouped["latency_ms"].min(),
                "high": grouped["latency_ms"].max(),
            }
        )
        x = _times(per_bin["t"])
        ax.fill_between(x, per_bin["low"], per_bin["high"], alpha=0.15, label="min to max")
        sns.lineplot(x=x, y=per_bin["p50"], ax=ax, label="p50")
        sns.lineplot(x=x, y=per_bin["p95"], ax=ax, label="p95")
    _threshold(ax, t.max_p95_latency_ms, float(calls["latency_ms"].max()), "p95 threshold")
    ax.set(xlabel="time (UTC)", ylabel="latency (ms, end - start)")
    _time_axis(ax)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right")
    return _save(fig, path)


def accuracy_per_window(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    w = a.windows.dropna(subset=["accuracy"])
    if w.empty:
        return None
    fig, ax = _figure(PLOTS["accuracy_per_window"])
    sns.lineplot(x=w["window"], y=w["accuracy"], marker="o", ax=ax)
    ax.set(xlabel="window", ylabel="accuracy", ylim=(max(0.0, w["accuracy"].min() - 0.1), 1.0))
    return _save(fig, path)


def accuracy_band(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    w = a.windows.dropna(subset=["accuracy"])
    if w.empty:
        return None
    fig, ax = _figure(PLOTS["accuracy_band"])
    x = _times((w["start_ms"] + w["end_ms"]) / 2)
    ax.fill_between(x, w["accuracy_low"], w["accuracy_high"], alpha=0.25, label="95% Wilson interval")
    sns.lineplot(x=x, y=w["accuracy"], marker="o", ax=ax, label="accuracy (joined ground truth)")
    if "tracked_accuracy" in w and w["tracked_accuracy"].notna().any():
        sns.scatterplot(
            x=x,
            y=w["tracked_accuracy"],
            marker="x",
            s=60,
            color="tab:green",
            ax=ax,
            label="tracked aggregate accuracy",
        )
    if "estimated_accuracy" in w and w["estimated_accuracy"].notna().any():
        ax.plot(
            x, w["estimated_accuracy"], ls="--", marker=".", color="tab:purple", label="estimated (no labels)"
        )
    if "reference_accuracy" in w and w["reference_accuracy"].notna().any():
        level = float(w["reference_accuracy"].iloc[0])
        ax.axhline(level, color="tab:gray", ls=":", lw=1, label=f"reference {level:.3f}")
    ax.axhline(t.min_accuracy, color="tab:red", ls="--", lw=1, label=f"threshold {t.min_accuracy}")
    ax.set(xlabel="window middle (UTC)", ylabel="accuracy", ylim=(0, 1.02))
    _time_axis(ax)
    ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def latency_distribution(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    calls = first_rows(a.records)["latency_ms"].dropna()
    if calls.empty:
        return None
    fig, ax = _figure(PLOTS["latency_distribution"])
    # Binned by numpy first: seaborn's own binning of a million values takes over a second.
    counts, edges = np.histogram(calls, bins=40)
    binned = pd.DataFrame({"latency_ms": edges[:-1], "calls": counts})
    sns.histplot(
        binned, x="latency_ms", weights="calls", bins=len(counts), binrange=(edges[0], edges[-1]), ax=ax
    )
    for q, style in ((50, ":"), (95, "--"), (99, "-.")):
        ax.axvline(calls.quantile(q / 100), color="k", ls=style, lw=1, label=f"p{q}")
    ax.set(xlabel="latency (ms)", ylabel="calls")
    ax.legend()
    return _save(fig, path)


def request_volume(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    if a.windows.empty:
        return None
    fig, ax = _figure(PLOTS["request_volume"])
    sns.barplot(x=a.windows["window"], y=a.windows["requests"], color="tab:blue", ax=ax)
    ax.set(xlabel="window", ylabel="requests")
    return _save(fig, path)


def label_coverage(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    if a.windows.empty:
        return None
    fig, ax = _figure(PLOTS["label_coverage"])
    sns.barplot(x=a.windows["window"], y=a.windows["label_coverage"], color="tab:purple", ax=ax)
    ax.axhline(t.min_label_coverage, color="tab:red", ls="--", lw=1, label="threshold")
    ax.set(xlabel="window", ylabel="share with ground truth", ylim=(0, 1.05))
    ax.legend()
    return _save(fig, path)


def prediction_mix(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    shares = [c for c in a.windows.columns if c.startswith("share_")]
    if not shares:
        return None
    fig, ax = _figure(PLOTS["prediction_mix"])
    mix = a.windows.set_index("window")[shares].rename(columns=lambda c: c.removeprefix("share_"))
    mix.plot(kind="bar", stacked=True, ax=ax, colormap="tab10", width=0.85)
    ax.set(xlabel="window", ylabel="share of predictions", ylim=(0, 1))
    ax.legend(title="predicted", loc="upper right", fontsize=8)
    return _save(fig, path)


def drift_heatmap(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    if a.drift.empty:
        return None
    grid = a.drift.pivot(index="feature", columns="window", values="psi")
    fig, ax = _figure(PLOTS["drift_heatmap"], size=(9, 0.35 * len(grid) + 1.5))
    sns.heatmap(
        grid,
        cmap="rocket_r",
        vmin=0,
        vmax=max(t.max_psi * 2, 0.5),
        annot=len(grid.columns) <= 12,
        fmt=".2f",
        annot_kws={"size": 7},
        cbar_kws={"label": "PSI"},
        ax=ax,
    )
    ax.set(xlabel="window", ylabel="")
    return _save(fig, path)


def confusion_matrix(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    if a.confusion.empty:
        return None
    fig, ax = _figure(PLOTS["confusion_matrix"], size=(4.5, 4))
    sns.heatmap(a.confusion, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax)
    return _save(fig, path)


DRAWERS: dict[str, Callable[[Analysis, Thresholds, Path], Path | None]] = {
    "latency_over_time": latency_over_time,
    "accuracy_per_window": accuracy_per_window,
    "accuracy_band": accuracy_band,
    "latency_distribution": latency_distribution,
    "request_volume": request_volume,
    "label_coverage": label_coverage,
    "prediction_mix": prediction_mix,
    "drift_heatmap": drift_heatmap,
    "confusion_matrix": confusion_matrix,
}


def draw_all(a: Analysis, thresholds: Thresholds, folder: Path) -> dict[str, Path]:
    """Every plot there is data for, as `<name>.png` in `folder` (names fixed: nothing escapes it)."""
    folder.mkdir(parents=True, exist_ok=True)
    if a.empty:
        return {}
    sns.set_theme(style="whitegrid", context="notebook")
    drawn = {}
    for name, draw in DRAWERS.items():
        path = draw(a, thresholds, folder / f"{name}.png")
        if path is not None:
            drawn[name] = path
    return drawn
