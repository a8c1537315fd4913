"""The monitoring report: a self-contained `index.html` (images inlined, opens offline) and `summary.json`.

`summary.json` carries the headline figures, the window table and an `alerts` list (each alert
with its `kind`, window, value and threshold), for machines; `index.html` is for people.
"""

from __future__ import annotations

import base64
import html
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from modelvigil.analysis.config import Thresholds
from modelvigil.analysis.engine import Analysis
from modelvigil.analysis.plots import FEATURE_PLOT, PLOTS
from modelvigil.analysis.report_cards import summary_cards
from modelvigil.analysis.summary import Headline, feature_verdicts, headline
from modelvigil.analysis.time_labels import distinct_times


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary_dict(a: Analysis, context: dict[str, Any]) -> dict[str, Any]:
    return json_safe(
        {
            **context,
            "overall": a.overall,
            "notes": a.notes,
            "alerts": [alert.model_dump(mode="json") for alert in a.alerts],
            "windows": a.windows.to_dict("records"),
            "drift": a.drift.to_dict("records"),
            "accuracy_by_label_arrival": a.arrival.to_dict("records"),
            "incidents": [incident.model_dump(mode="json") for incident in a.incidents],
            "task": str(a.task),
            "positive_label": a.positive,
            "per_class": a.per_class.to_dict("records"),
            "confusion": a.confusion.to_numpy().tolist(),
            "confusion_classes": {
                "actual": list(a.confusion.index),
                "predicted": list(a.confusion.columns),
            },
        }
    )


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float) and value.is_integer():  # counts read back as floats: 500, not 500.000
        return f"{int(value):,}"
    if isinstance(value, float) and 0 < abs(value) < 0.001:  # a p-value: 1.2e-09, not 0.000
        return f"{value:.1e}"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return html.escape(str(value))


def _table(frame: pd.DataFrame, columns: list[str]) -> str:
    if frame.empty:
        return "<p class='muted'>nothing to show</p>"
    cols = [c for c in columns if c in frame.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(row[c])}</td>" for c in cols) + "</tr>" for _, row in frame.iterrows()
    )
    # In a box that scrolls sideways: a wide table never pushes the page past the window.
    return f"<div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _minute(iso: Any) -> str:
    """`2026-11-28T04:15:00+00:00` as `2026-11-28 04:15`."""
    return str(iso or "")[:16].replace("T", " ")


def _when(ms: Any) -> str:
    return (
        datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") if ms is not None else "–"
    )


REFERENCE_COLUMNS_NOTE = """<p class="muted">drop: the reference's accuracy minus the window's;
CUSUM: the errors' running evidence against the reference's rate (alerts above its limit);
estimated: the accuracy expected from the model's confidence alone, before any label. It sees
covariate shift, and cannot see concept drift (the model is as sure as before, and wrong).</p>"""

LATENCY_NOTE = """<p class="muted">Server latency: the time the model service spent on a call, as its
prediction record stores it (end minus start). The client's latency (network, queueing and retries
included) is what a caller feels, and is in the simulation's summary, not here.</p>"""

# The window table as people read it: a short header per column, figures kept in `summary.json`.
WINDOW_COLUMNS = {
    "window": "window",
    "from": "from (UTC)",
    "requests": "requests",
    "predictions": "predictions",
    "latency_p50_ms": "server p50 ms",
    "latency_p95_ms": "server p95 ms",
    "label_coverage": "coverage",
    "n_labelled": "labelled",
    "accuracy": "accuracy",
    "accuracy_95": "95% interval",
    "tracked_accuracy": "tracked",
    "estimated_accuracy": "estimated",
    "accuracy_drop": "drop",
    "accuracy_cusum": "CUSUM",
    "cusum_limit": "CUSUM limit",
    "mae": "MAE",
    "rmse": "RMSE",
    "bias": "bias",
    "abs_error_p90": "p90 |error|",
    "reference_mae": "reference MAE",
    "error_rise": "MAE rise",
    "f1": "F1",
    "positive_rate": "positive rate",
    "max_psi": "max PSI",
}
VERDICT_HEADERS = {
    "feature": "feature",
    "kind": "kind",
    "verdict": "verdict",
    "drifted_windows": "drifted windows",
    "first_drifted_window": "first drifted window",
    "max_psi": "max PSI",
    "psi_limit": "limit there",
    "max_ks": "max KS",
    "max_unseen_share": "max unseen share",
    "max_missing_share": "max missing share",
    "missing_windows": "windows missing more",
}
SECTIONS = {
    "summary": "Summary",
    "alerts": "Alerts",
    "accuracy": "Accuracy",
    "drift": "Drift",
    "latency": "Server latency",
    "traffic": "Traffic and labels",
    "windows": "Windows",
    "details": "Details",
}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 1rem 2rem 3rem; color: #222;
       max-width: 1400px; }
header h1 { margin-bottom: 0.2rem; } .sub { color: #555; margin-top: 0; }
nav { position: sticky; top: 0; background: #fff; padding: 0.4rem 0; border-bottom: 1px solid #ddd;
      z-index: 1; } nav a { margin-right: 1rem; color: #1f5fa8; text-decoration: none; }
section { scroll-margin-top: 2.5rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #eee; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 0.8rem; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6rem 0.8rem; }
.card .k { color: #666; font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.03em; }
.card .v { font-size: 1.4rem; font-weight: 600; margin: 0.2rem 0; } .card .d { font-size: 0.85rem; }
.card.bad { border-color: #d33; background: #fff5f5; } .card.good { border-color: #3a3; }
.card.muted { border-color: #98a2b3; background: #f2f4f7; color: #475467; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 1rem; }
figure { margin: 0; } figure.full { grid-column: 1 / -1; }
img { max-width: 100%; border: 1px solid #eee; } figcaption { font-size: 0.85rem; color: #555; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.85rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; white-space: normal; }
td.text:last-child { min-width: 18rem; }
tr.bad td { background: #fde8e8; } .good { color: #176f2c; } .muted { color: #666; }
.wide { overflow-x: auto; max-width: 100%; }
@media (max-width: 700px) { body { padding: 1rem; } .grid { grid-template-columns: 1fr; } }
"""


SHOWN_CLASSES = 50  # per-class rows in the page; summary.json has them all
SHOWN_ALERTS = 10  # the rest folded: a drifting day raises dozens, and the plots come after


def _alert_table(rows: list[str]) -> str:
    return (
        "<div class='wide'><table><thead><tr><th>kind</th><th>window</th><th>from (UTC)</th><th>subject</th>"
        f"<th>value</th><th>threshold</th><th>what</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _incident_table(a: Analysis) -> str:
    rows = "".join(
        f"<tr class='bad'><td>{_when(i.start_ms)}</td><td>{_when(i.end_ms)}</td>"
        f"<td class='text'>{html.escape(', '.join(i.kinds))}</td><td>{i.alerts}</td>"
        f"<td class='text'>{html.escape(i.summary)}</td></tr>"
        for i in a.incidents
    )
    return (
        f"<p>{len(a.incidents)} incident(s): each a run of consecutive windows with alerts, told by its "
        "causes.</p><div class='wide'><table><thead><tr><th>from (UTC)</th><th>to (UTC)</th>"
        f"<th>kinds</th><th>alerts</th><th>what happened</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


TASKS = {
    "binary": "binary classification",
    "multiclass": "multi-class classification",
    "regression": "regression",
}


def _performance_section(a: Analysis, head: Headline, plots: dict[str, Path]) -> str:
    """The model's quality: accuracy and its tables for a classifier, error for a regression."""
    lead = (
        f"<p>{html.escape(head.accuracy_text)}. Grey: the reference period; red: windows with an alert.</p>"
    )
    if a.task == "regression":
        return (
            "<section id='accuracy'><h2>Error</h2>" + lead
            + _figures(plots, ["error_band", "residuals"])
            + "<p class='muted'>MAE: mean absolute error of prediction against truth; bias: the mean of "
            "prediction minus truth (above 0: the model predicts high); the band: where a window of "
            "that many labels keeps the reference's MAE by noise alone, 95% of the time.</p></section>"
        )  # fmt: skip
    positive = (
        f"<p class='muted'>Precision, recall and F1 in the windows table are for the positive class "
        f"{html.escape(repr(a.positive))}.</p>"
        if a.positive is not None
        else "<p class='muted'>Precision, recall and F1 in the windows table are macro-averaged over the "
        "classes.</p>"
    )
    # In class order; too many to show, the classes with the most labels.
    shown = (
        a.per_class.sort_values("labels", ascending=False, kind="stable").head(SHOWN_CLASSES)
        if len(a.per_class) > SHOWN_CLASSES
        else a.per_class
    )
    more = (
        f"<p class='muted'>The {SHOWN_CLASSES} classes with the most labels of {len(a.per_class):,}; "
        "every class is in summary.json.</p>"
        if len(a.per_class) > SHOWN_CLASSES
        else ""
    )
    per_class = (
        "<h3>Per class, over the range</h3>"
        + _table(shown, ["class", "labels", "predicted", "precision", "recall", "f1"])
        + more
        if not a.per_class.empty
        else ""
    )
    return (
        "<section id='accuracy'><h2>Accuracy</h2>" + lead
        + _figures(plots, ["accuracy_band", "confusion_matrix"]) + positive + per_class
        + "<h3>Accuracy by label arrival</h3>"
        + _table(a.arrival, ["arrival_window", "n_labelled", "accuracy"]) + "</section>"
    )  # fmt: skip


def _figures(plots: dict[str, Path], names: list[str], full: tuple[str, ...] = ()) -> str:
    shown = [n for n in names if n in plots]
    if not shown:
        return "<p class='muted'>No plot: no data for it in this range.</p>"
    return (
        "<div class='grid'>"
        + "".join(
            f"<figure class='{'full' if n in full else ''}'><img src='{data_uri(plots[n])}' "
            f"alt='{html.escape(plot_title(n))}' data-file='{plots[n].name}'>"
            f"<figcaption>{html.escape(plot_title(n))} (<a href='{plots[n].name}'>{plots[n].name}</a>)"
            "</figcaption></figure>"
            for n in shown
        )
        + "</div>"
    )


def plot_title(name: str) -> str:
    if name in PLOTS:
        return PLOTS[name]
    return FEATURE_PLOT.format(feature=name.removeprefix("feature_"))


def _windows_table(windows: pd.DataFrame) -> pd.DataFrame:
    frame = windows.copy()
    if "start_ms" in frame:
        frame["from"] = distinct_times(frame["start_ms"].tolist())
    if "accuracy_low" in frame:
        frame["accuracy_95"] = [
            f"{low:.3f} to {high:.3f}" if low == low and high == high else None
            for low, high in zip(frame["accuracy_low"], frame["accuracy_high"], strict=True)
        ]
    columns = [c for c in WINDOW_COLUMNS if c in frame.columns]
    return frame[columns].rename(columns=WINDOW_COLUMNS)


def write_report(
    a: Analysis,
    plots: dict[str, Path],
    folder: Path,
    context: dict[str, Any],
    thresholds: Thresholds | None = None,
) -> Path:
    """Write `index.html` and `summary.json` into `folder`; return the HTML's path."""
    t = thresholds or Thresholds()
    folder.mkdir(parents=True, exist_ok=True)
    head = headline(a)
    verdicts = feature_verdicts(a, t)
    summary = summary_dict(a, context)
    summary["headline"] = json_safe(head.__dict__ | {"sentence": head.sentence()})
    summary["features"] = json_safe(verdicts.to_dict("records"))
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))

    starts = a.windows.set_index("window")["start_ms"] if not a.windows.empty else pd.Series(dtype=float)
    alert_rows = [
        f"<tr class='bad'><td class='text'>{html.escape(al.kind)}</td><td>{al.window}</td>"
        f"<td>{_when(al.window_start_ms)}</td>"
        f"<td class='text'>{html.escape(al.subject)}</td>"
        f"<td>{_fmt(al.value)}</td><td>{_fmt(al.threshold)}</td>"
        f"<td class='text'>{html.escape(al.message)}</td></tr>"
        for al in a.alerts
    ]
    alerts = (
        _incident_table(a)
        + f"<details><summary>the {len(alert_rows)} alert row(s) behind them</summary>"
        f"{_alert_table(alert_rows)}</details>"
        if a.alerts
        else "<p class='good'>No alert: every window within its thresholds.</p>"
    )
    verdict_frame = verdicts.assign(
        first_drifted_window=[
            f"{int(w)} ({_when(starts.get(w))[5:16]})" if w == w and w is not None else None
            for w in verdicts["first_drifted_window"]
        ]
    ).rename(columns=VERDICT_HEADERS)
    drifted_plots = [n for n in plots if n.startswith("feature_")]
    overall = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in a.overall.items())
    ctx = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td class='text'>{_fmt(v)}</td></tr>" for k, v in context.items()
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in a.notes)
    empty = (
        "<p class='muted'>No prediction records in this range: nothing to analyse. Check the time range "
        "and the deployment.</p>"
        if a.empty
        else ""
    )
    title = str(context.get("model_name") or "Model")
    period = f"{_minute(context.get('from_utc'))} to {_minute(context.get('to_utc'))} UTC"
    task = TASKS.get(str(a.task), str(a.task)) if not a.empty else "–"
    subtitle = f"{period} · {task} · windows: {context.get('windows', '')}"
    per_feature = (
        "<h3>Reference vs current, per drifted feature</h3>" + _figures(plots, drifted_plots)
        if drifted_plots
        else ""
    )
    nav = "".join(f"<a href='#{key}'>{html.escape(name)}</a>" for key, name in SECTIONS.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>{html.escape(title)}: monitoring report</title>
<style>{STYLE}</style></head><body>
<header><h1>{html.escape(title)}: monitoring report</h1>
<p class="sub">{html.escape(subtitle)}</p></header>
<nav>{nav}</nav>
<section id="summary"><h2>Summary</h2>
{empty}
{summary_cards(head, t)}
{"<ul>" + notes + "</ul>" if notes else ""}
</section>
<section id="alerts"><h2>Alerts ({len(a.alerts)})</h2>
{alerts}
</section>
{_performance_section(a, head, plots)}
<section id="drift"><h2>Drift</h2>
<p>{html.escape(head.drift_text)}. A feature drifts in a window when its PSI against the reference
(over its deciles for a number, over its categories for a categorical feature) passes the decision
limit: {t.max_psi:g}, or the PSI that sampling noise alone passes once in ten thousand windows of that
size, whichever is higher. Unseen: the share of a window's values the reference never had.</p>
{_table(verdict_frame, list(VERDICT_HEADERS.values()))}
{_figures(plots, ["drift_over_time", "prediction_mix", "drift_heatmap"], full=("drift_heatmap",))}
{per_feature}
</section>
<section id="latency"><h2>Server latency</h2>
{LATENCY_NOTE}
{_figures(plots, ["latency_over_time", "latency_distribution"])}
</section>
<section id="traffic"><h2>Traffic and labels</h2>
{_figures(plots, ["request_volume", "label_coverage"])}
</section>
<section id="windows"><h2>Windows</h2>
{_table(_windows_table(a.windows), list(WINDOW_COLUMNS.values()))}
{REFERENCE_COLUMNS_NOTE if "accuracy_drop" in a.windows else ""}
</section>
<section id="details"><h2>Details</h2>
<table>{ctx}</table>
<table>{overall}</table>
<p>Every figure, per window and per feature: <a href="summary.json">summary.json</a>.</p>
</section>
</body></html>
"""
    index = folder / "index.html"
    index.write_text(page)
    return index
