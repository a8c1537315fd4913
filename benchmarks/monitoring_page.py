"""What the live Monitoring page costs the service.

1. Refresh cost: `GET /monitoring/data` against stores of 100k and 1M prediction records (with
   ground truth), for the page's ranges (5 min, 1 h, 24 h and one covering every record), median
   of 20 calls, service in this process on the filled store.
2. Scoring with the page open vs closed: 8 pooled clients of single-row calls against
   `modelvigil serve` in its own process, alternating closed/open runs; "open" is a poller doing
   what the page does (one `GET /monitoring/data` every 2 s, last 5 minutes).

Run: `python -m benchmarks.monitoring_page [--records 100000 1000000] [--seconds 15] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests

from benchmarks.common import BENCH_CRN, BENCH_T0_MS, fill_store
from benchmarks.simulation_bench import _payload
from modelvigil.client.connect import connect
from modelvigil.model import FraudModel
from modelvigil.service.embedded import run_in_subprocess
from modelvigil.settings import Settings
from modelvigil.testing import start_in_thread


def refresh_cost(records: int, model: FraudModel) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="mv-page-"))
    url = f"sqlite:///{home}/metrics.db"
    fill_store(url, records)
    settings = Settings(home=home, store_url=url)
    svc = start_in_thread(settings, model=model)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {svc.identity.api_key.get_secret_value()}"
    end = BENCH_T0_MS + records * 10  # fill_store: one record every 10 ms
    ranges = {"5 min": 300_000, "1 h": 3_600_000, "24 h": 86_400_000, "all records": records * 10 + 1}
    out = {}
    try:
        for name, span in ranges.items():
            params = {"deployment": BENCH_CRN, "start_ms": end - span, "end_ms": end}
            times = []
            for _ in range(20):
                t = time.perf_counter()
                r = session.get(f"{svc.url}/monitoring/data", params=params, timeout=60)
                times.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
            out[name] = round(statistics.median(times), 2)
            if name == "all records":
                assert r.json()["totals"]["calls"] == records, "the page must see every record"
    finally:
        svc.stop()
    return out


def scoring_with_page(seconds: float, rounds: int) -> dict[str, list[float]]:
    home = Path(tempfile.mkdtemp(prefix="mv-page-load-"))
    settings = Settings(home=home)
    payloads = [_payload(1, seed) for seed in range(500)]
    rates: dict[str, list[float]] = {"closed": [], "open": []}
    with run_in_subprocess(settings) as url:
        conn = connect(settings, url, pool_size=8)
        endpoint = conn.endpoint

        def load() -> float:
            deadline = time.perf_counter() + seconds
            counts = [0] * 8

            def worker(k: int) -> None:
                i = k
                while time.perf_counter() < deadline:
                    endpoint.predict(payloads[i % len(payloads)])
                    counts[k] += 1
                    i += 8

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return sum(counts) / (time.perf_counter() - start)

        def poller(stop: threading.Event) -> None:
            session = requests.Session()
            session.headers["Authorization"] = endpoint.session.headers["Authorization"]
            while not stop.is_set():
                session.get(f"{url}/monitoring/data", timeout=30).raise_for_status()
                stop.wait(2.0)

        def with_page_open() -> float:
            stop = threading.Event()
            page = threading.Thread(target=poller, args=(stop,))
            page.start()
            try:
                return load()
            finally:
                stop.set()
                page.join()

        load()  # warm-up
        # The store grows run after run: alternate which goes first so neither always gets the
        # smaller one.
        for r in range(rounds):
            order = [("closed", load), ("open", with_page_open)]
            for name, run in order if r % 2 == 0 else order[::-1]:
                rates[name].append(round(run(), 1))
        endpoint.close()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--records", type=int, nargs="*", default=[100_000, 1_000_000], help="none: skip refresh cost"
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    model = FraudModel.train()
    for n in args.records:
        print(f"refresh cost (median ms) with {n:,} records: {refresh_cost(n, model)}", flush=True)
    rates = scoring_with_page(args.seconds, args.rounds)
    closed, opened = statistics.mean(rates["closed"]), statistics.mean(rates["open"])
    print(f"single-row calls/s, page closed: {rates['closed']} (mean {closed:.1f})")
    print(
        f"single-row calls/s, page open:   {rates['open']} (mean {opened:.1f}); "
        f"open/closed {opened / closed:.3f}"
    )


if __name__ == "__main__":
    main()
