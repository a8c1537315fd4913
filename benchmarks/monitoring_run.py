"""One monitoring run over a filled store, in a process of its own; prints one JSON line.

`--path product`: the monitoring flow (Prefect engine, store read, analysis, drift, all plots,
report, alerts). The ephemeral Prefect server is started before the clock starts, as a deployed
flow finds its server already running.
`--path lab`: the lab's read path: `read_metrics` (a dict per record), `pd.json_normalize`, then
the same analysis, plots and report without Prefect.
Run: `python -m benchmarks.monitoring_run --store-url URL --crn CRN --path product|lab --out DIR`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
import pandas as pd
from prefect import flow

import flows  # noqa: F401  (Prefect's environment defaults)
from benchmarks.common import BENCH_T0_MS, peak_rss_mb
from modelvigil.analysis.config import MonitoringConfig
from modelvigil.analysis.engine import analyse
from modelvigil.analysis.plots import draw_all
from modelvigil.analysis.report import write_report
from modelvigil.store import MetricsStore

START, END = "2023-01-01T00:00:00Z", "2030-01-01T00:00:00Z"


@flow(name="warm-up")
def _warm_up() -> int:
    return 1


def lab_frame(result: dict) -> pd.DataFrame:
    """The lab's way: flatten every record with json_normalize, then unwrap the one-row lists."""
    flat = pd.json_normalize(result["metrics"])
    flat = flat[flat["predictionUuid"] != ""].reset_index(drop=True)
    flat = flat.rename(
        columns={
            "predictionUuid": "prediction_uuid",
            "startTimeStampMs": "start_ms",
            "endTimeStampMs": "end_ms",
        }
    )
    flat.columns = [c.removeprefix("metrics.") for c in flat.columns]
    for name in flat.columns:
        if flat[name].dtype == object and len(flat) and isinstance(flat[name].iat[0], list):
            flat[name] = flat[name].str[0]
    flat.insert(1, "row", 0)
    return flat


def run_lab(url: str, crn: str, config: MonitoringConfig, out: Path) -> int:
    start_ms, end_ms = config.time_range_ms()
    store = MetricsStore(url)
    try:
        result = store.read_metrics(crn, start_ms, end_ms)
    finally:
        store.close()
    frame = lab_frame(result)
    del result
    analysis = analyse(frame, pd.DataFrame(columns=["start_ms", "end_ms"]), config)
    plots = draw_all(analysis, config.thresholds, out)
    write_report(analysis, plots, out, {"deployment_crn": crn, "source": "read_metrics + json_normalize"})
    return int(analysis.overall.get("predictions") or 0)


def run_product(config: MonitoringConfig) -> int:
    from flows.monitoring import monitoring_flow

    result = monitoring_flow(config)
    return int(result.overall.get("predictions") or 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store-url", required=True)
    parser.add_argument("--crn", required=True)
    parser.add_argument("--path", choices=["product", "lab"], required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--records",
        type=int,
        nargs="*",
        default=None,
        help="only the first N (by time); several: one run each",
    )
    args = parser.parse_args()
    if args.path == "product":
        _warm_up()
    before = peak_rss_mb()
    seconds, rows = [], []
    for n in args.records or [None]:
        end = END
        if n is not None:  # fill_store writes one record every 10 ms from BENCH_T0_MS
            end = datetime.fromtimestamp((BENCH_T0_MS + n * 10 - 1) / 1000, UTC).isoformat()
        out = Path(args.out) / str(n or "all")
        config = MonitoringConfig(
            start=START, end=end, deployment_crn=args.crn, store_url=args.store_url, output_dir=str(out)
        )
        t = time.perf_counter()
        rows.append(
            run_product(config) if args.path == "product" else run_lab(args.store_url, args.crn, config, out)
        )
        seconds.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "seconds": seconds[0] if len(seconds) == 1 else seconds,
                "rows": rows[0] if len(rows) == 1 else rows,
                "peak_rss_mb": peak_rss_mb(),
                "rss_before_mb": before,
            }
        )
    )


if __name__ == "__main__":
    main()
