"""One fleet monitoring run over a filled store, in a process of its own; prints one JSON line:
seconds, this process's peak RSS and, on Dask, the largest worker's (the cluster's processes are
this one's children, measured once they have exited).

Run: `python -m benchmarks.fleet_run --store-url URL --runner default|dask --out DIR`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
import flows  # noqa: F401  (Prefect's environment defaults)
from benchmarks.common import peak_rss_mb
from benchmarks.monitoring_run import END, START, _warm_up
from flows.fleet_monitoring import fleet_monitoring_flow
from modelvigil.analysis.config import MonitoringConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store-url", required=True)
    parser.add_argument("--runner", choices=["default", "dask"], required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    _warm_up()  # Prefect's temporary server up before the clock starts, as a deployed run finds it
    config = MonitoringConfig(
        start=START,
        end=END,
        store_url=args.store_url,
        output_dir=str(args.out / "fleet"),
        window_size=10_000,
        task_runner=args.runner,
        dask_workers=args.workers,
    )
    started = time.perf_counter()
    summary = fleet_monitoring_flow(config)
    seconds = time.perf_counter() - started
    workers_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": peak_rss_mb(),
                "largest_child_peak_rss_mb": workers_mb,
                "deployments": len(summary.deployments),
                "predictions": sum(r.predictions or 0 for r in summary.deployments),
            }
        )
    )


if __name__ == "__main__":
    main()
