"""`python -m benchmarks [--quick] [--only B1,B3] [--out FILE]`: run B1...B10, print a table,
write JSON (default `benchmarks/results/latest.json`). B1 brings B1-rtt (the same against a service
that answers 20 ms late), B2 brings B2-postgres (the service's store on Postgres); B10 is B1's
scoring on loopback against the service before and after the single-row path work.

Every ratio is measured against its baseline in the same run on this machine. Nothing here
asserts: a missed target is reported, beside its value, for someone to profile and fix.
Full mode takes about 15 minutes on 2 cores (most of it filling two 1M-record stores);
quick mode uses small sizes and stays under 2 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
import flows  # noqa: F401  (Prefect's environment defaults)
from benchmarks.common import Result, fill_store, machine, shared_prefect_server

SIZES = {
    "full": {
        "requests_b1": 10_000,
        "lab_sample": 2_000,
        "requests_b1_rtt": 4_000,
        "lab_sample_rtt": 300,
        "calls_b2": 1_000,
        "labels_b4": 100_000,
        "per_uuid_sample": 2_000,
        "records_b3": 1_000_000,
        "scaling_b5": [10_000, 100_000, 1_000_000],
        "edges_seconds_b8": 10,
        "records_b9": 1_000_000,
        "records_b6": 10_000_000,
        "records_b7": 100_000,
        "requests_b10": 6_000,
        "rounds_b10": 3,
    },
    "quick": {
        "requests_b1": 500,
        "lab_sample": 100,
        "requests_b1_rtt": 200,
        "lab_sample_rtt": 20,
        "calls_b2": 20,
        "labels_b4": 5_000,
        "per_uuid_sample": 150,
        "records_b3": 10_000,
        "scaling_b5": [1_000, 3_000, 10_000],
        "edges_seconds_b8": 2,
        "records_b9": 10_000,
        "records_b6": 1_000_000,
        "records_b7": 5_000,
        "requests_b10": 400,
        "rounds_b10": 3,
    },
}
BENCHMARKS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10")
DEFAULT_OUT = Path(__file__).parent / "results" / "latest.json"
REMOTE_LATENCY_MS = 20  # B1-rtt: a gateway and a network between client and endpoint


def _run_service_benchmarks(sizes: dict, only: set[str]) -> list[Result]:
    from benchmarks import edges_bench, ground_truth_bench, simulation_bench
    from modelvigil.service.embedded import run_in_subprocess
    from modelvigil.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="mv-bench-home-"))
    os.environ["MODELVIGIL_HOME"] = str(home)  # the flows' own Settings() read it
    settings = Settings(home=home)
    results: list[Result] = []
    with run_in_subprocess(settings) as url:
        if only & {"B1", "B2"}:
            got = simulation_bench.run(
                settings,
                url,
                requests_b1=sizes["requests_b1"],
                lab_sample=sizes["lab_sample"],
                calls_b2=sizes["calls_b2"],
            )
            results += [r for r in got if r.id in only]
        if "B4" in only:
            # Predictions to label, written straight into the service's own store.
            uuids = fill_store(settings.resolved_store_url(), sizes["labels_b4"], with_labels=False)
            results.append(
                ground_truth_bench.run(settings, url, uuids, per_uuid_sample=sizes["per_uuid_sample"])
            )
        if "B8" in only:
            results.append(edges_bench.run(settings, url, seconds=sizes["edges_seconds_b8"]))
    if "B2" in only:
        results.append(_b2_on_postgres(sizes, next((r for r in results if r.id == "B2"), None)))
    if "B1" in only:
        results.append(_b1_remote(sizes))
    return results


def _b1_remote(sizes: dict) -> Result:
    """B1 against a service that answers every call 20 ms late (`serve --latency-ms 20`)."""
    from benchmarks.simulation_bench import measure_b1
    from modelvigil.service.embedded import run_in_subprocess
    from modelvigil.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="mv-bench-rtt-home-"))
    os.environ["MODELVIGIL_HOME"] = str(home)
    settings = Settings(home=home)
    with run_in_subprocess(settings, serve_args=["--latency-ms", str(REMOTE_LATENCY_MS)]) as url:
        return measure_b1(
            settings,
            url,
            sizes["requests_b1_rtt"],
            sizes["lab_sample_rtt"],
            home / "b1-rtt",
            added_latency_ms=REMOTE_LATENCY_MS,
        )


def _b2_on_postgres(sizes: dict, sqlite_b2: Result | None) -> Result:
    """B2 again, the service's store on the machine's Postgres (a fresh schema), beside SQLite's."""
    from benchmarks.common import Ratio, pg_schema
    from benchmarks.simulation_bench import measure_b2
    from modelvigil.service.embedded import run_in_subprocess
    from modelvigil.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="mv-bench-pg-home-"))
    os.environ["MODELVIGIL_HOME"] = str(home)
    with pg_schema() as store_url:
        settings = Settings(home=home, store_url=store_url)
        with run_in_subprocess(settings) as url:
            result = measure_b2(settings, url, sizes["calls_b2"], home / "b2", store="postgres")
    if sqlite_b2 is not None:
        ratio = result.figures["flow_rows_per_s"] / sqlite_b2.figures["flow_rows_per_s"]
        result.ratios.append(Ratio("vs the SQLite-backed B2 (same run)", round(ratio, 2), 0.8))
    return result


def _run(only: set[str], sizes: dict, mode: str) -> list[Result]:
    results: list[Result] = []
    if only & {"B1", "B2", "B4", "B8"}:
        results += _run_service_benchmarks(sizes, only)
    if only & {"B3", "B5"}:
        from benchmarks import monitoring_bench

        got = monitoring_bench.run(records=sizes["records_b3"], scaling=sizes["scaling_b5"])
        results += [r for r in got if r.id in only]
    if "B6" in only:
        from benchmarks import streaming_bench

        results.append(streaming_bench.run(records=sizes["records_b6"], postgres=mode == "full"))
    if "B7" in only:
        from benchmarks import fleet_bench

        results.append(fleet_bench.run(records_each=sizes["records_b7"]))
    if "B9" in only:
        from benchmarks import metrics_read_bench

        results.append(metrics_read_bench.measure(sizes["records_b9"]))
    if "B10" in only:
        from benchmarks import single_row_before_after

        results.append(single_row_before_after.run(sizes["requests_b10"], sizes["rounds_b10"]))
    return results


def _table(results: list[Result]) -> str:
    return "\n".join(r.text() for r in results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset, e.g. B3,B5")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON results")
    args = parser.parse_args(argv)
    only = {b.strip().upper() for b in args.only.split(",") if b.strip()}
    unknown = only - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(BENCHMARKS)}")
    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    started = time.perf_counter()
    stamp = datetime.now(UTC).isoformat(timespec="seconds")

    with shared_prefect_server():
        results = _run(only, sizes, mode)
    results.sort(key=lambda r: (len(r.id.split("-")[0]), r.id))

    report = {
        "mode": mode,
        "started_utc": stamp,
        "duration_seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
        "sizes": sizes,
        "benchmarks": [r.to_json() for r in results],
    }
    print(_table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{mode} run in {report['duration_seconds']} s; results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
