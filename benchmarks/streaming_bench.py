"""B6: a busy model's day. The whole monitoring flow over a store of 10M records (full mode, SQLite
and Postgres; 1M in quick mode, SQLite), streamed, beside the same flow over a tenth of them:
seconds, the flow process's peak RSS, and how that peak grows with the records (flat is the aim).

Each run is a process of its own (`monitoring_run --records N`), so each peak is its own.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import BENCH_CRN, Ratio, Result, fill_store, pg_schema, run_child

MAX_SECONDS = 60.0
MAX_PEAK_MB = 2 * 1024
MAX_GROWTH = 1.3  # peak RSS at N records over that at N/10


def _monitor(url: str, out: Path, records: int) -> dict:
    args = ["--store-url", url, "--crn", BENCH_CRN, "--path", "product", "--out", str(out)]
    return run_child("benchmarks.monitoring_run", *args, "--records", str(records), timeout=3600)


def _case(name: str, url: str, records: int, out: Path) -> tuple[dict, list[Ratio]]:
    started = time.perf_counter()
    fill_store(url, records)
    fill_s = time.perf_counter() - started
    small = _monitor(url, out / f"{name}-small", records // 10)
    big = _monitor(url, out / f"{name}-big", records)
    growth = big["peak_rss_mb"] / small["peak_rss_mb"]
    figures = {
        "fill_seconds": round(fill_s, 1),
        "flow_seconds": round(big["seconds"], 2),
        "flow_peak_rss_mb": round(big["peak_rss_mb"]),
        f"flow_seconds_at_{records // 10}": round(small["seconds"], 2),
        f"flow_peak_rss_mb_at_{records // 10}": round(small["peak_rss_mb"]),
        "records_per_second": round(records / big["seconds"]),
    }
    ratios = [
        Ratio(f"{name}: flow seconds", round(big["seconds"], 2), MAX_SECONDS, "at most"),
        Ratio(f"{name}: flow peak RSS MB", round(big["peak_rss_mb"]), MAX_PEAK_MB, "at most"),
        Ratio(
            f"{name}: peak RSS, {records:,} over {records // 10:,}", round(growth, 2), MAX_GROWTH, "at most"
        ),
    ]
    return figures, ratios


def run(*, records: int, postgres: bool) -> Result:
    out = Path(tempfile.mkdtemp(prefix="mv-bench-b6-"))
    figures: dict = {"records": records, "features": 15, "labelled": "all"}
    ratios: list[Ratio] = []
    try:
        figures["sqlite"], got = _case("sqlite", f"sqlite:///{out}/metrics.db", records, out)
        ratios += got
        if postgres:
            with pg_schema() as url:
                figures["postgres"], got = _case("postgres", url, records, out)
                ratios += got
    finally:
        shutil.rmtree(out, ignore_errors=True)  # 10M records are 13 GB on disk: nothing is kept
    return Result(
        "B6",
        "monitoring flow streamed over a busy day's records (read, analysis, drift, plots, report)",
        figures=figures,
        ratios=ratios,
        notes=["peak RSS of the process running the flow (Prefect's client included)"],
    )
