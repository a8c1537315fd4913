"""What every monitoring plot shares: the titles, the time axis, thresholds, the reference and
alert marks, legends and saving, so that all of them read alike."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window: runs headless in flows and CI

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from modelvigil.analysis.engine import Analysis

DPI = 90  # small enough to inline in a Prefect artifact, sharp enough to read
SCATTER_MAX_CALLS = 5_000  # above this, latency over time is drawn as percentiles per time bin
PLOTS: dict[str, str] = {
    "accuracy_band": "Accuracy per window, with its 95% interval and thresholds",
    "error_band": "Mean absolute error per window, against the reference's",
    "residuals": "Errors (prediction minus truth): reference against the worst window",
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
PYPLOT = threading.Lock()


def times(ms: pd.Series | np.ndarray) -> pd.Series:
    return pd.to_datetime(pd.Series(ms), unit="ms", utc=True)


def time_axis(ax: plt.Axes) -> None:
    """Readable time ticks however long the range: seconds for a demo, days for a month."""
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    # Ticks a minute or less apart read as wall-clock times (10:33:46), not as bare seconds (46).
    formats = ["%Y", "%b", "%d", "%H:%M", "%H:%M:%S", "%H:%M:%S.%f"]
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, formats=formats))
    ax.set_xlabel("time (UTC)")


def threshold(ax: plt.Axes, value: float, data_max: float, label: str, above_is_bad: bool = True) -> None:
    # A threshold far above the data would squash it flat against the axis: say it instead.
    if value <= 2 * data_max:
        ax.axhline(value, color="tab:red", ls="--", lw=1, label=label)
        top = max(ax.get_ylim()[1], value * 1.05)
        ax.axhspan(value, top if above_is_bad else ax.get_ylim()[0], color="tab:red", alpha=0.06, lw=0)
        ax.set_ylim(top=top)
    else:
        ax.set_title(f"{ax.get_title()}\n({label} {value:g}, far above)", fontsize=11)


def marks(
    ax: plt.Axes, a: Analysis, what: str, kinds: Iterable[str] = (), metrics: Iterable[str] = ()
) -> None:
    """The reference period shaded grey and, red, the windows with an alert about what this plot
    shows (`kinds` of alert, or alerts by `metrics`): a drift alert is not drawn on the latency plot."""
    alerting = sorted(
        {al.window for al in a.alerts if str(al.kind) in set(kinds) or al.metric in set(metrics)}
    )
    spans = a.windows.set_index("window")
    for i, window in enumerate(alerting):
        if window in spans.index:
            low, high = times(spans.loc[window, ["start_ms", "end_ms"]].to_numpy(dtype="int64"))
            ax.axvspan(
                low, high, color=ALERT_COLOR, alpha=0.45, lw=0, zorder=0,
                label=f"{what} alert" if i == 0 else None, gid="alert-span",
            )  # fmt: skip
    if a.reference_span_ms is not None:  # over any alert span: the reference stays visible
        low, high = times(np.array(a.reference_span_ms))
        ax.axvspan(low, high, color=REFERENCE_COLOR, alpha=0.5, lw=0, label="reference", zorder=0)


def legend(ax: plt.Axes, loc: str = "best") -> None:
    """Below the axes on time plots, where it hides no data; inside (at `loc`) on the others."""
    handles, _ = ax.get_legend_handles_labels()
    if not handles:
        return
    if ax.xaxis.get_label_text() == "time (UTC)":
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(len(handles), 4), fontsize=8,
                  frameon=False)  # fmt: skip
    else:
        ax.legend(loc=loc, fontsize=8, framealpha=0.9)


def save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight")  # "tight": the legends below the axes included
    plt.close(fig)
    return path


def figure(title: str, size: tuple[float, float] = (8, 4)) -> tuple[plt.Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=size)
    ax.set_title(title)
    return fig, ax


def window_bars(ax: plt.Axes, w: pd.DataFrame, values: pd.Series | np.ndarray, **style) -> None:
    """One bar per window, as wide as the window's time span."""
    starts, ends = times(w["start_ms"]), times(w["end_ms"])
    widths = (ends - starts).clip(lower=pd.Timedelta(milliseconds=1))
    ax.bar(starts, values, width=widths, align="edge", edgecolor="white", linewidth=0.5, **style)


def middles(w: pd.DataFrame) -> pd.Series:
    return times((w["start_ms"] + w["end_ms"]) / 2)
