"""B8: what one caller can do to everybody else: a call naming 40,000 unknown columns, and /health
while 5 MB calls are being handled, against the same service idle (baseline in the same run).

Run alone: `.venv/bin/python -m benchmarks.edges_bench [--seconds 10]` (starts its own service).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import orjson
import requests

from benchmarks.common import Ratio, Result
from modelvigil.data import FEATURES, generate
from modelvigil.settings import Settings, load_or_create_identity

BIG_BODY_BYTES = 4_800_000  # just under the 5 MB limit


def _big_payload(access_key: str) -> bytes:
    rows = np.ascontiguousarray(generate(120_000, seed=1)[FEATURES].round(2).to_numpy())
    body = b""
    n = len(rows)
    while True:  # the most rows that stay under the limit
        body = orjson.dumps(
            {
                "accessKey": access_key,
                "request": {"dataframe_split": {"columns": FEATURES, "data": rows[:n]}},
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        if len(body) <= BIG_BODY_BYTES:
            return body
        n = int(n * BIG_BODY_BYTES / len(body) * 0.99)


def _health_ms(url: str, seconds: float, session: requests.Session) -> list[float]:
    took = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        session.get(f"{url}/health", timeout=30).raise_for_status()
        took.append((time.perf_counter() - started) * 1000)
        time.sleep(0.02)
    return took


def run(settings: Settings, url: str, *, seconds: float) -> Result:
    identity = load_or_create_identity(settings)
    headers = {
        "Authorization": f"Bearer {identity.api_key.get_secret_value()}",
        "Content-Type": "application/json",
    }
    session = requests.Session()

    columns = [*FEATURES, *(f"c{i}" for i in range(40_000))]
    wide = {
        "accessKey": identity.access_key,
        "request": {"dataframe_split": {"columns": columns, "data": [[0] * len(columns)]}},
    }
    one = {
        "accessKey": identity.access_key,
        "request": {"dataframe_split": {"columns": FEATURES, "data": [[0.0] * 15]}},
    }
    refuse_ms, single_ms = [], []
    for _ in range(5):
        started = time.perf_counter()
        r = session.post(f"{url}/model", json=wide, headers=headers, timeout=120)
        refuse_ms.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 422, r.text[:200]
        started = time.perf_counter()
        session.post(f"{url}/model", json=one, headers=headers, timeout=30).raise_for_status()
        single_ms.append((time.perf_counter() - started) * 1000)

    idle = _health_ms(url, seconds / 2, session)
    big = _big_payload(identity.access_key)
    stop = threading.Event()
    big_calls = []

    def send_big() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                started = time.perf_counter()
                s.post(f"{url}/model", data=big, headers=headers, timeout=300).raise_for_status()
                big_calls.append(time.perf_counter() - started)

    senders = [threading.Thread(target=send_big) for _ in range(2)]
    for t in senders:
        t.start()
    time.sleep(1.0)
    busy = _health_ms(url, seconds, session)
    stop.set()
    for t in senders:
        t.join()

    def p99(values: list[float]) -> float:
        return float(np.percentile(values, 99))

    refuse = statistics.median(refuse_ms)
    return Result(
        "B8",
        "one caller against the others: 40,000 unknown columns, /health under 5 MB calls",
        figures={
            "refuse_40k_columns_ms_median": round(refuse, 1),
            "single_row_call_ms_median": round(statistics.median(single_ms), 2),
            "big_call_mb": round(len(big) / 1e6, 2),
            "big_calls_done": len(big_calls),
            "big_call_s_median": round(statistics.median(big_calls), 2) if big_calls else None,
            "health_p50_ms_idle": round(statistics.median(idle), 2),
            "health_p99_ms_idle": round(p99(idle), 2),
            "health_p50_ms_busy": round(statistics.median(busy), 2),
            "health_p99_ms_busy": round(p99(busy), 2),
            "health_samples_busy": len(busy),
        },
        ratios=[
            Ratio("time to refuse 40k unknown columns (ms)", round(refuse, 1), 50.0, "at most"),
            Ratio("/health p99 while 5 MB calls run (ms)", round(p99(busy), 1), 50.0, "at most"),
            Ratio("/health p99 busy vs idle", round(p99(busy) / p99(idle), 1), 10.0, "at most"),
        ],
        notes=["two clients send 5 MB calls back to back while /health is polled every 20 ms"],
    )


def main() -> None:
    from modelvigil.service.embedded import run_in_subprocess

    parser = argparse.ArgumentParser(prog="python -m benchmarks.edges_bench")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    settings = Settings(home=Path(tempfile.mkdtemp(prefix="mv-edges-")))
    with run_in_subprocess(settings) as url:
        result = run(settings, url, seconds=args.seconds)
    print(result.text())


if __name__ == "__main__":
    main()
