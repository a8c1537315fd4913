"""Seaborn plots of a monitoring analysis: one figure per PNG, readable at a glance.

The lab drew two (processing time, accuracy per window); its latency was wrong. These are those
two done right plus the rest of the report's pictures. Each function returns the file it wrote,
or None when there is nothing to draw (an empty range still gets a valid report).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window: runs headless in flows and CI

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from modelvigil.analysis.analyse import FEATURE_PREFIX, Analysis, first_rows
from modelvigil.analysis.config import Thresholds

DPI = 90  # small enough to inline in a Prefect artifact, sharp enough to read
SCATTER_MAX_CALLS = 5_000  # above this, latency over time is drawn as percentiles per time bin
LATENCY_BINS = 200
PLOTS: dict[str, str] = {
    "accuracy_band": "Accuracy per window, with its 95% interval and thresholds",
    "confusion_matrix": "Confusion matrix",
    "drift_heatmap": "Feature drift (PSI) per window",
    "drift_over_time": "PSI of the most drifted features, against the decision limit",
    "prediction_mix": "Prediction mix per window",
    "latency_over_time": "Server latency over time",
    "latency_distribution": "Server latency distribution",
    "request_volume": "Requests per window",
    "label_coverage": "Label coverage per window",
}
FEATURE_PLOT = "Reference vs current: {feature}"  # one per drifted feature, `feature_<name>.png`
REFERENCE_COLOR, ALERT_COLOR = "0.85", "#f4b6b6"
DRIFT_LINES = 4  # features drawn over time: the drifted ones, or the highest PSI, up to this many
# pyplot keeps global state (its figure registry, seaborn's theme): deployments monitored at once in
# one process (a fleet run's threads) draw one at a time. Their reading and analysis still overlap.
_PYPLOT = threading.Lock()


def _times(ms: pd.Series | np.ndarray) -> pd.Series:
    return pd.to_datetime(pd.Series(ms), unit="ms", utc=True)


def _time_axis(ax: plt.Axes) -> None:
    """Readable time ticks however long the range: seconds for a demo, days for a month."""
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel("time (UTC)")


def _threshold(ax: plt.Axes, value: float, data_max: float, label: str, above_is_bad: bool = True) -> None:
    # A threshold far above the data would squash it flat against the axis: say it instead.
    if value <= 2 * data_max:
        ax.axhline(value, color="tab:red", ls="--", lw=1, label=label)
        top = max(ax.get_ylim()[1], value * 1.05)
        ax.axhspan(value, top if above_is_bad else ax.get_ylim()[0], color="tab:red", alpha=0.06, lw=0)
        ax.set_ylim(top=top)
    else:
        ax.set_title(f"{ax.get_title()}\n({label} {value:g}, far above)", fontsize=11)


def _marks(ax: plt.Axes, a: Analysis) -> None:
    """The reference period shaded grey and alerting windows red, on every time plot."""
    if a.reference_span_ms is not None:
        low, high = _times(np.array(a.reference_span_ms))
        ax.axvspan(low, high, color=REFERENCE_COLOR, alpha=0.5, lw=0, label="reference", zorder=0)
    alerting = sorted({al.window for al in a.alerts})
    spans = a.windows.set_index("window")
    for i, window in enumerate(alerting):
        if window in spans.index:
            low, high = _times(spans.loc[window, ["start_ms", "end_ms"]].to_numpy(dtype="int64"))
            ax.axvspan(
                low, high, color=ALERT_COLOR, alpha=0.45, lw=0, zorder=0, label="alert" if i == 0 else None
            )


def _legend(ax: plt.Axes, loc: str = "best") -> None:
    """Below the axes on time plots, where it hides no data; inside (at `loc`) on the others."""
    handles, _ = ax.get_legend_handles_labels()
    if not handles:
        return
    if ax.xaxis.get_label_text() == "time (UTC)":
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(len(handles), 4), fontsize=8,
                  frameon=False)  # fmt: skip
    else:
        ax.legend(loc=loc, fontsize=8, framealpha=0.9)


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")  # "tight": the legends below the axes included
    plt.close(fig)
    return path


def _figure(title: str, size: tuple[float, float] = (8, 4)) -> tuple[plt.Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=size)
    ax.set_title(title)
    return fig, ax


def _window_bars(ax: plt.Axes, w: pd.DataFrame, values: pd.Series | np.ndarray, **style) -> None:
    """One bar per window, as wide as the window's time span."""
    starts, ends = _times(w["start_ms"]), _times(w["end_ms"])
    widths = (ends - starts).clip(lower=pd.Timedelta(milliseconds=1))
    ax.bar(starts, values, width=widths, align="edge", edgecolor="white", linewidth=0.5, **style)


def _middles(w: pd.DataFrame) -> pd.Series:
    return _times((w["start_ms"] + w["end_ms"]) / 2)


def _calls(a: Analysis) -> tuple[pd.DataFrame, int]:
    """(start_ms, latency_ms) of the calls there are to draw, and how many calls there were."""
    if a.sketch is not None:
        return a.sketch.calls, a.sketch.total_calls
    calls = first_rows(a.records)[["start_ms", "latency_ms"]]
    return calls, len(calls)


def _latency_bins(a: Analysis, calls: pd.DataFrame) -> pd.DataFrame:
    """p50/p95 and the range per time bin: t, p50, p95, low, high."""
    if a.sketch is not None:
        return a.sketch.latency_bins
    bins = pd.cut(calls["start_ms"], LATENCY_BINS, labels=False)
    grouped = calls.groupby(bins)
    return pd.DataFrame(
        {
            "t": grouped["start_ms"].mean(),
            "p50": grouped["latency_ms"].quantile(0.5),
            "p95": grouped["latency_ms"].quantile(0.95),
            "low": grouped["latency_ms"].min(),
            "high": grouped["latency_ms"].max(),
        }
    )


def latency_over_time(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    calls, total = _calls(a)
    if not total:
        return None
    fig, ax = _figure(PLOTS["latency_over_time"])
    if total <= SCATTER_MAX_CALLS:
        sns.scatterplot(
            x=_times(calls["start_ms"]).to_numpy(), y=calls["latency_ms"].to_numpy(), s=8, alpha=0.5, ax=ax,
            linewidth=0, label="a call",
        )  # fmt: skip
        highest = float(calls["latency_ms"].max())
    else:
        # A million dots are one blot and cost seconds to draw: show p50/p95 and the range per bin.
        per_bin = _latency_bins(a, calls)
        x = _times(per_bin["t"]).to_numpy()
        ax.fill_between(x, per_bin["low"], per_bin["high"], alpha=0.15, label="min to max")
        ax.plot(x, per_bin["p50"], label="p50")
        ax.plot(x, per_bin["p95"], label="p95")
        highest = float(per_bin["high"].max())
    _marks(ax, a)
    _threshold(ax, t.max_p95_latency_ms, highest, "p95 limit")
    ax.set(ylabel="server latency (ms, end - start)")
    _time_axis(ax)
    _legend(ax, "upper right")
    return _save(fig, path)


def accuracy_band(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    w = a.windows.dropna(subset=["accuracy"])
    if w.empty:
        return None
    fig, ax = _figure(PLOTS["accuracy_band"])
    x = _middles(w).to_numpy()
    _marks(ax, a)
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
    _time_axis(ax)
    _legend(ax, "lower left")
    return _save(fig, path)


def latency_distribution(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    if a.sketch is not None:
        tally = a.sketch.latency
        values = np.array(sorted(tally), dtype=float)
        weights = np.array([tally[v] for v in sorted(tally)], dtype=float)
    else:
        values = first_rows(a.records)["latency_ms"].dropna().to_numpy(dtype=float)
        weights = np.ones(values.size)
    if values.size == 0:
        return None
    fig, ax = _figure(PLOTS["latency_distribution"])
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
    _legend(ax, "upper right")
    return _save(fig, path)


def request_volume(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    if a.windows.empty:
        return None
    fig, ax = _figure(PLOTS["request_volume"])
    _marks(ax, a)
    _window_bars(ax, a.windows, a.windows["requests"].fillna(0), color="tab:blue")
    ax.set(ylabel="requests")
    _time_axis(ax)
    _legend(ax, "lower right")
    return _save(fig, path)


def label_coverage(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    if a.windows.empty:
        return None
    fig, ax = _figure(PLOTS["label_coverage"])
    _marks(ax, a)
    _window_bars(ax, a.windows, a.windows["label_coverage"].fillna(0), color="tab:purple")
    ax.axhline(t.min_label_coverage, color="tab:red", ls="--", lw=1, label=f"floor {t.min_label_coverage:g}")
    ax.set(ylabel="share with ground truth", ylim=(0, 1.05))
    _time_axis(ax)
    _legend(ax, "lower left")
    return _save(fig, path)


def prediction_mix(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    shares = [c for c in a.windows.columns if c.startswith("share_")]
    if not shares:
        return None
    fig, ax = _figure(PLOTS["prediction_mix"])
    _marks(ax, a)
    bottom = np.zeros(len(a.windows))
    for i, column in enumerate(shares):
        values = a.windows[column].fillna(0).to_numpy(dtype=float)
        label = f"predicted {column.removeprefix('share_')}"
        _window_bars(
            ax, a.windows, values, bottom=bottom, color=sns.color_palette("tab10")[i % 10], label=label
        )
        bottom += values
    ax.set(ylabel="share of predictions", ylim=(0, 1))
    _time_axis(ax)
    _legend(ax, "upper right")
    return _save(fig, path)


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
    fig, ax = _figure(PLOTS["drift_heatmap"], size=(9, max(3.2, 0.35 * len(grid) + 1.9)))
    starts = a.windows.set_index("window")["start_ms"]
    labels = [_times(np.array([starts[w]])).dt.strftime("%m-%d %H:%M").iloc[0] if w in starts else str(w)
              for w in grid.columns]  # fmt: skip
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
    return _save(fig, path)


def drift_over_time(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    if a.drift.empty:
        return None
    drift = a.drift.merge(a.windows[["window", "start_ms", "end_ms"]], on="window")
    worst = drift.groupby("feature")["psi"].max().sort_values(ascending=False)
    drifted = [f for f in worst.index if f in {al.subject for al in a.alerts if al.metric == "psi"}]
    shown = (drifted or list(worst.index))[:DRIFT_LINES]
    fig, ax = _figure(PLOTS["drift_over_time"])
    _marks(ax, a)
    for feature in shown:
        rows = drift[drift["feature"] == feature]
        ax.plot(_middles(rows).to_numpy(), rows["psi"], marker="o", ms=4, label=feature)
    per_window = drift.groupby("window").first()
    limit = _decision_limit(per_window, t)
    ax.step(_middles(per_window).to_numpy(), limit, where="mid", color="tab:red", ls="--", lw=1,
            label="decision limit")  # fmt: skip
    ax.set(ylabel="PSI against the reference", ylim=(0, max(float(worst.max()), float(limit.max())) * 1.1))
    _time_axis(ax)
    _legend(ax, "upper left")
    return _save(fig, path)


def confusion_matrix(a: Analysis, t: Thresholds, path: Path) -> Path | None:
    if a.confusion.empty:
        return None
    fig, ax = _figure(PLOTS["confusion_matrix"], size=(4.5, 4))
    sns.heatmap(a.confusion, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax)
    return _save(fig, path)


def feature_distribution(a: Analysis, t: Thresholds, feature: str, path: Path) -> Path | None:
    """The reference's values of `feature` against those of the window where its PSI peaked."""
    column = FEATURE_PREFIX + feature
    if a.profile is None or column not in a.profile.numeric:
        return None
    if a.sketch is None and column not in a.records:
        return None
    rows = a.drift[a.drift["feature"] == feature].dropna(subset=["psi"])
    if rows.empty:
        return None
    worst = rows.loc[rows["psi"].idxmax()]
    window = int(worst["window"])
    reference = a.profile.numeric[column].sample
    fig, ax = _figure(FEATURE_PLOT.format(feature=feature), size=(6, 3.6))
    start = _times(np.array([a.windows.set_index("window").loc[window, "start_ms"]])).iloc[0]
    label = f"window {window} (from {start:%m-%d %H:%M})"
    if a.sketch is not None:
        _binned_distribution(ax, a, feature, window, reference, label)
    else:
        current = pd.to_numeric(
            a.records.loc[a.records["window"] == window, column], errors="coerce"
        ).dropna()
        _sampled_distribution(ax, current.to_numpy(), reference, label)
    ax.set(xlabel=f"{feature} (outer 0.5% on each side not drawn)", ylabel="density")
    limit = max(t.max_psi, float(worst["psi_critical"]))
    ax.set_title(
        f"{ax.get_title()}\nPSI {worst['psi']:.3f} (limit {limit:.3f}), KS {worst['ks']:.3f}", fontsize=10
    )
    _legend(ax, "upper right")
    return _save(fig, path)


def _sampled_distribution(ax: plt.Axes, current: np.ndarray, reference: np.ndarray, label: str) -> None:
    both = np.concatenate([reference, current])
    # The outer 0.5% on each side cut: one extreme value would squeeze the rest into a few bins.
    low, high = np.quantile(both[np.isfinite(both)], [0.005, 0.995])
    edges = np.linspace(low, high, 41) if high > low else 40
    ax.hist(reference, bins=edges, density=True, alpha=0.5, color="tab:gray", label="reference")
    ax.hist(current, bins=edges, density=True, alpha=0.55, color="tab:orange", label=label)


def _binned_distribution(
    ax: plt.Axes, a: Analysis, feature: str, window: int, reference: np.ndarray, label: str
) -> None:
    """A streamed window keeps its values as counts on the reference's fine bins: drawn as a
    density over those bins, 40 at a time (its values beyond the reference's range not drawn)."""
    edges = a.sketch.feature_edges[feature]
    inside = a.sketch.feature_fine[(feature, window)][1:-1].astype(float)
    low, high = np.quantile(reference, [0.005, 0.995])
    coarse = np.linspace(low, high, 41) if high > low else np.linspace(edges[0], edges[-1], 41)
    middles = (edges[:-1] + edges[1:]) / 2
    current = np.histogram(middles, bins=coarse, weights=inside)[0]
    ref = np.histogram(reference, bins=coarse)[0]
    for values, color, name, alpha in (
        (ref, "tab:gray", "reference", 0.5),
        (current, "tab:orange", label, 0.55),
    ):
        total = values.sum()
        if total:
            ax.stairs(
                values / total / np.diff(coarse), coarse, fill=True, alpha=alpha, color=color, label=name
            )


DRAWERS: dict[str, Callable[[Analysis, Thresholds, Path], Path | None]] = {
    "accuracy_band": accuracy_band,
    "confusion_matrix": confusion_matrix,
    "drift_heatmap": drift_heatmap,
    "drift_over_time": drift_over_time,
    "prediction_mix": prediction_mix,
    "latency_over_time": latency_over_time,
    "latency_distribution": latency_distribution,
    "request_volume": request_volume,
    "label_coverage": label_coverage,
}


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
    with _PYPLOT:
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
