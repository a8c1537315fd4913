"""B9: reading a whole range over `GET /metrics`: the service's memory while it answers N records,
streamed in one answer and read page by page, against the same service idle (baseline in the run).

Run alone: `.venv/bin/python -m benchmarks.metrics_read_bench [--records 1000000]`.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import requests

from benchmarks.common import BENCH_CRN, Ratio, Result, fill_store
from modelvigil.settings import Settings, load_or_create_identity


def _service_pid(port: int) -> int:
    """The `modelvigil serve --port PORT` child, found by its command line."""
    wanted = f"--port\0{port}\0".encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"serve" in (cmd := (proc / "cmdline").read_bytes()) and wanted in cmd:
                    return int(proc.name)
            except OSError:
                continue
    raise RuntimeError(f"no service process listening on port {port}")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class PeakRss:
    """The highest RSS of a process, sampled every 20 ms while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()

    def __enter__(self) -> PeakRss:
        self.peak = _rss_mb(self.pid)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mb(self.pid))

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def run(settings: Settings, url: str, records: int) -> Result:
    identity = load_or_create_identity(settings)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {identity.api_key.get_secret_value()}"
    query = {"model_deployment_crn": BENCH_CRN}
    pid = _service_pid(int(url.rsplit(":", 1)[1]))
    session.get(f"{url}/metrics", params={**query, "page_size": 10}, timeout=60).raise_for_status()
    idle = _rss_mb(pid)

    started = time.perf_counter()
    with PeakRss(pid) as streamed:
        answer = session.get(f"{url}/metrics", params=query, stream=True, timeout=600)
        answer.raise_for_status()
        size = sum(len(chunk) for chunk in answer.iter_content(1 << 20))
    stream_s = time.perf_counter() - started

    started = time.perf_counter()
    pages = seen = 0
    with PeakRss(pid) as paged:
        params = {**query, "page_size": 2_000}
        while True:
            body = session.get(f"{url}/metrics", params=params, timeout=600).json()
            pages, seen = pages + 1, seen + len(body["metrics"])
            if body["next_page_token"] is None:
                break
            params["page_token"] = body["next_page_token"]
    paged_s = time.perf_counter() - started

    growth = max(streamed.peak, paged.peak) - idle
    return Result(
        "B9",
        f"GET /metrics over {records:,} records: service memory, streamed and paged",
        figures={
            "records": records,
            "answer_mb": round(size / 1e6, 1),
            "service_rss_idle_mb": round(idle, 1),
            "service_rss_peak_streamed_mb": round(streamed.peak, 1),
            "service_rss_peak_paged_mb": round(paged.peak, 1),
            "streamed_s": round(stream_s, 2),
            "streamed_records_per_s": round(records / stream_s),
            "paged_s": round(paged_s, 2),
            "pages": pages,
            "paged_records": seen,
        },
        ratios=[
            Ratio("service RSS growth while answering (MB)", round(growth, 1), 300.0, "at most"),
            Ratio("RSS growth / answer size", round(growth / (size / 1e6), 3), 0.5, "at most"),
        ],
        notes=["RSS of the service process sampled every 20 ms; the answer is read and discarded"],
    )


def measure(records: int) -> Result:
    from modelvigil.service.embedded import run_in_subprocess

    settings = Settings(home=Path(tempfile.mkdtemp(prefix="mv-read-")))
    fill_store(settings.resolved_store_url(), records)
    with run_in_subprocess(settings) as url:
        return run(settings, url, records)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metrics_read_bench")
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    result = measure(args.records)
    print(result.text())


if __name__ == "__main__":
    main()
