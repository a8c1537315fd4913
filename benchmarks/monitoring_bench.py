"""B3 and B5: the whole monitoring flow over stores of 1M records (SQLite and Postgres), beside the
lab's read path, and how its time grows from 10k to 1M records.

Each run is a process of its own, so its peak RSS is its own. B5 reads the first 10k, 100k, ...
records of the same SQLite store by time range, so nothing is filled twice.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import BENCH_CRN, Ratio, Result, fill_store, fit_exponent, pg_schema, run_child

MAX_SECONDS = 30.0
MAX_PEAK_MB = 3 * 1024


def _monitor(url: str, path: str, out: Path, records: list[int] | None = None) -> dict:
    args = ["--store-url", url, "--crn", BENCH_CRN, "--path", path, "--out", str(out)]
    if records:
        args += ["--records", *map(str, records)]
    return run_child("benchmarks.monitoring_run", *args)


def _store_case(name: str, url: str, n: int, out: Path) -> tuple[dict, dict, dict, float]:
    t = time.perf_counter()
    fill_store(url, n)
    fill_s = time.perf_counter() - t
    product = _monitor(url, "product", out / f"{name}-product")
    lab = _monitor(url, "lab", out / f"{name}-lab")
    return product, lab, {"fill_seconds": round(fill_s, 1)}, lab["seconds"] / product["seconds"]


def run(*, records: int, scaling: list[int]) -> list[Result]:
    out = Path(tempfile.mkdtemp(prefix="mv-bench-mon-"))
    sqlite_url = f"sqlite:///{out}/metrics.db"
    results = []
    figures: dict = {"records": records, "features": 15, "labelled": "all"}
    ratios = []
    for name, url_cm in (("sqlite", None), ("postgres", pg_schema())):
        if url_cm is None:
            product, lab, extra, speedup = _store_case(name, sqlite_url, records, out)
        else:
            with url_cm as pg_url:
                product, lab, extra, speedup = _store_case(name, pg_url, records, out)
        figures[name] = {
            "flow_seconds": round(product["seconds"], 2),
            "flow_peak_rss_mb": round(product["peak_rss_mb"]),
            "lab_seconds": round(lab["seconds"], 2),
            "lab_peak_rss_mb": round(lab["peak_rss_mb"]),
            **extra,
        }
        ratios += [
            Ratio(f"{name}: flow seconds", round(product["seconds"], 2), MAX_SECONDS, "at most"),
            Ratio(f"{name}: flow peak RSS MB", round(product["peak_rss_mb"]), MAX_PEAK_MB, "at most"),
            Ratio(f"{name}: flow vs lab read path", round(speedup, 2), 3.0),
        ]
    results.append(
        Result(
            "B3",
            "monitoring flow at scale (read, analysis, drift, all plots, report)",
            figures=figures,
            ratios=ratios,
            notes=["peak RSS of the process running the flow (Prefect's client included)"],
        )
    )

    smaller = [n for n in scaling if n != records]
    got = _monitor(sqlite_url, "product", out / "scaling", records=smaller)["seconds"] if smaller else []
    by_size = dict(zip(smaller, got if isinstance(got, list) else [got], strict=True))
    by_size[records] = figures["sqlite"]["flow_seconds"]
    seconds = [float(by_size[n]) for n in scaling]
    exponent = fit_exponent(scaling, seconds)
    results.append(
        Result(
            "B5",
            "monitoring flow scaling on SQLite (time against records)",
            figures={"records": scaling, "seconds": [round(s, 2) for s in seconds]},
            ratios=[Ratio("fitted exponent of time vs records", round(exponent, 3), 1.1, "at most")],
            notes=["fixed costs (plots, report, Prefect task runs) make small sizes relatively slow"],
        )
    )
    return results
