"""Throughput of the embedded service for single-row and 1,000-row calls, against the lab's loop.

Run: `.venv/bin/python -m benchmarks.service_throughput [--seconds 5]`. Starts `modelvigil serve`
in its own process on a free port with a throwaway home, so client and server do not share a GIL.
Baseline in the same run: the lab's loop (sequential `requests.post`, no session).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import socket
import subprocess
import sys
import tempfile
import time

import requests

from modelvigil.client.connect import connect
from modelvigil.data import FEATURES, generate
from modelvigil.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rate(fn, workers: int, seconds: float) -> float:
    deadline = time.perf_counter() + seconds

    def loop(_: int) -> int:
        n = 0
        while time.perf_counter() < deadline:
            fn()
            n += 1
        return n

    start = time.perf_counter()
    with cf.ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(loop, range(workers)))
    return total / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="mv-bench-")
    port = _free_port()
    env = {**os.environ, "MODELVIGIL_HOME": home, "MODELVIGIL_PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-m", "modelvigil", "serve"], env=env, stdout=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        conn = connect(Settings(home=home, port=port), url, pool_size=16)
        one = {
            "dataframe_split": {"columns": FEATURES, "data": generate(1, seed=1)[FEATURES].values.tolist()}
        }
        thousand = {
            "dataframe_split": {"columns": FEATURES, "data": generate(1000, seed=2)[FEATURES].values.tolist()}
        }
        headers = dict(conn.endpoint.session.headers)
        envelope = {"accessKey": conn.endpoint.access_key, "request": one}

        def lab_call() -> None:
            requests.post(
                conn.endpoint.model_url, json=envelope, headers=headers, timeout=30
            ).raise_for_status()

        rows = []
        lab = _rate(lab_call, 1, args.seconds)
        rows.append(("single-row, lab loop (no session, sequential)", lab, 1))
        for workers in (1, 4, 8):
            r = _rate(lambda: conn.endpoint.predict(one), workers, args.seconds)
            rows.append((f"single-row, pooled client, concurrency {workers}", r, 1))
        for workers in (1, 4):
            r = _rate(lambda: conn.endpoint.predict(thousand), workers, args.seconds)
            rows.append((f"1,000-row calls, pooled client, concurrency {workers}", r, 1000))
        print(f"{'case':52} {'calls/s':>9} {'rows/s':>10} {'vs lab':>7}")
        for name, rate, per in rows:
            print(f"{name:52} {rate:9.1f} {rate * per:10.0f} {rate * per / lab:6.1f}x")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
