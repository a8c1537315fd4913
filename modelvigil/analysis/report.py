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

from modelvigil.analysis.analyse import Analysis
from modelvigil.analysis.plots import PLOTS


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
        }
    )


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float) and value.is_integer():  # counts read back as floats: 500, not 500.000
        return f"{int(value):,}"
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


def _when(ms: Any) -> str:
    return (
        datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") if ms is not None else "–"
    )


REFERENCE_COLUMNS_NOTE = """<p class="muted">accuracy_drop: the reference's accuracy minus the
window's; accuracy_cusum: the errors' running evidence against the reference's rate (alerts above
its limit); estimated_accuracy: expected from the model's confidence alone, before any label. It
sees covariate shift, and cannot see concept drift (the model is as sure as before, and wrong).</p>"""


def write_report(a: Analysis, plots: dict[str, Path], folder: Path, context: dict[str, Any]) -> Path:
    """Write `index.html` and `summary.json` into `folder`; return the HTML's path."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = summary_dict(a, context)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))

    alert_rows = "".join(
        f"<tr class='bad'><td>{html.escape(al.kind)}</td><td>{al.window}</td>"
        f"<td>{_when(al.window_start_ms)}</td>"
        f"<td>{html.escape(al.subject)}</td><td>{_fmt(al.value)}</td><td>{_fmt(al.threshold)}</td>"
        f"<td>{html.escape(al.message)}</td></tr>"
        for al in a.alerts
    )
    alerts = (
        "<table><thead><tr><th>kind</th><th>window</th><th>from</th><th>subject</th><th>value</th>"
        f"<th>threshold</th><th>what</th></tr></thead><tbody>{alert_rows}</tbody></table>"
        if a.alerts
        else "<p class='good'>No alert: every window within its thresholds.</p>"
    )
    figures = "".join(
        f"<figure><img src='{data_uri(path)}' alt='{html.escape(PLOTS[name])}' data-file='{path.name}'>"
        f"<figcaption>{html.escape(PLOTS[name])} (<a href='{path.name}'>{path.name}</a>)"
        "</figcaption></figure>"
        for name, path in plots.items()
    )
    overall = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in a.overall.items())
    ctx = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>" for k, v in context.items())
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in a.notes)
    empty = (
        "<p class='muted'>No prediction records in this range: nothing to analyse. Check the time range "
        "and the deployment.</p>"
        if a.empty
        else ""
    )
    window_cols = [
        "window",
        "requests",
        "predictions",
        "latency_p50_ms",
        "latency_p95_ms",
        "label_coverage",
        "n_labelled",
        "accuracy",
        "accuracy_low",
        "accuracy_high",
        "tracked_accuracy",
        "estimated_accuracy",
        "accuracy_drop",
        "accuracy_cusum",
        "f1",
        "positive_rate",
        "prediction_js",
        "probability_ks",
        "max_psi",
    ]
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>modelvigil monitoring report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.85rem; }}
th, td {{ border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: right; }}
th {{ background: #f4f4f4; }} tr.bad td {{ background: #fde8e8; }}
.good {{ color: #176f2c; }} .muted {{ color: #777; }}
.wide {{ overflow-x: auto; }} figure {{ margin: 1rem 0; }} img {{ max-width: 100%; border: 1px solid #eee; }}
</style></head><body>
<h1>Model monitoring report</h1>
<table>{ctx}</table>
{empty}
<h2>Alerts ({len(a.alerts)})</h2>
{alerts}
<h2>Overall</h2>
<table>{overall}</table>
{"<ul>" + notes + "</ul>" if notes else ""}
<h2>Windows</h2>
{_table(a.windows, window_cols)}
{REFERENCE_COLUMNS_NOTE if "accuracy_drop" in a.windows else ""}
<h2>Accuracy by label arrival</h2>
{_table(a.arrival, ["arrival_window", "n_labelled", "accuracy"])}
<h2>Plots</h2>
{figures or "<p class='muted'>No plots: no data in this range.</p>"}
</body></html>
"""
    index = folder / "index.html"
    index.write_text(page)
    return index
