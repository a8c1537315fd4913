"""B7: fleet monitoring of 8 deployments (100k records each in full mode), the default runner (the
deployments on the flow's threads) against Dask (a 2-process `LocalCluster`, one deployment's
monitoring per worker at a time), each run a process of its own: seconds, speed-up, peak RSS.

On 2 cores little is to be won: reading, analysis and drawing already share the cores between the
default runner's threads, and a cluster costs its start and its workers' imports. The figure is
for users with more cores (or workers on other machines): there the deployments' analyses run
side by side, where the default runner's threads share one GIL.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from benchmarks.common import BENCH_CRN, Ratio, Result, fill_store, run_child

DEPLOYMENTS = 8


def run(*, records_each: int) -> Result:
    out = Path(tempfile.mkdtemp(prefix="mv-bench-b7-"))
    url = f"sqlite:///{out}/metrics.db"
    try:
        for i in range(DEPLOYMENTS):
            fill_store(url, records_each, seed=100 + i, crn=f"{BENCH_CRN}-{i}")
        runs = {
            runner: run_child(
                "benchmarks.fleet_run", "--store-url", url, "--runner", runner, "--out", str(out / runner)
            )
            for runner in ("default", "dask")
        }
    finally:
        shutil.rmtree(out, ignore_errors=True)
    default, dask = runs["default"], runs["dask"]
    return Result(
        "B7",
        f"fleet monitoring, {DEPLOYMENTS} deployments x {records_each:,} records: default runner vs Dask",
        figures={
            "deployments": default["deployments"],
            "predictions": default["predictions"],
            "default_seconds": round(default["seconds"], 1),
            "default_peak_rss_mb": round(default["peak_rss_mb"]),
            "dask_seconds": round(dask["seconds"], 1),
            "dask_flow_peak_rss_mb": round(dask["peak_rss_mb"]),
            "dask_largest_worker_peak_rss_mb": round(dask["largest_child_peak_rss_mb"]),
        },
        ratios=[
            Ratio(
                "Dask speed-up (default seconds / Dask seconds)",
                round(default["seconds"] / dask["seconds"], 2),
                1.0,
            )
        ],
        notes=[
            "2 cores here: expect little; with more cores (or remote workers) deployments run side by side",
            "Dask's seconds include starting its 2-process cluster (about 15-25 s here)",
        ],
    )
