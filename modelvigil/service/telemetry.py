"""What the service saw of its model calls, per 5-second bucket, in memory: the HTTP side of the
live Monitoring page (requests, failures by status, latency, request and response sizes), and the
service process's CPU and memory, sampled every second as CML's tab shows a replica's.

CML's Monitoring tab shows these for a deployment; they are not prediction records (a refused
call stores nothing), so they are counted here, as the calls pass, by an ASGI middleware.
Latency percentiles come from a log-spaced histogram (48 bins from 0.1 ms to 60 s, each about
1.33x the last), so a percentile is the geometric middle of its bin: within about 15%.
Kept for 25 hours; a restarted service starts counting again.
"""

from __future__ import annotations

import bisect
import math
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelvigil.protocol import bucket_of, now_ms

KEEP_MS = 25 * 3600 * 1000
# The ASGI scope key under which `/model` names the deployment a call reached; a call refused
# before its access key was read is counted for the default deployment.
CALLED_DEPLOYMENT = "modelvigil.deployment_crn"
PROCESS_SAMPLE_S = 1.0
LATENCY_EDGES_MS = [0.1 * (600_000 ** (i / 47)) for i in range(48)]  # 0.1 ms ... 60 s


@dataclass
class _Bucket:
    requests: int = 0
    failed: Counter = field(default_factory=Counter)  # status -> calls
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_EDGES_MS) + 1))
    request_bytes: int = 0
    response_bytes: int = 0


@dataclass
class _ProcessBucket:
    cpu_s: float = 0.0  # CPU time the process used ...
    wall_s: float = 0.0  # ... over this much time
    rss_bytes: int | None = None  # the largest resident size sampled


def rss_bytes(pid: int | str = "self") -> int | None:
    """Resident memory of a process now (Linux; None where /proc is not there or it has gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _percentile(histogram: list[int], q: float) -> float | None:
    total = sum(histogram)
    if not total:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(histogram):
        seen += n
        if seen >= rank:
            low = LATENCY_EDGES_MS[i - 1] if i > 0 else 0.0
            high = LATENCY_EDGES_MS[i] if i < len(LATENCY_EDGES_MS) else LATENCY_EDGES_MS[-1] * 1.33
            return math.sqrt(low * high) if low > 0 else high / 2
    return LATENCY_EDGES_MS[-1]


class RequestTelemetry:
    """Thread-safe counters of model calls per (deployment, bucket)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, int], _Bucket] = {}
        self._process: dict[int, _ProcessBucket] = {}
        self._last_sample: tuple[float, float] | None = None  # (process CPU s, monotonic s)
        self._newest = 0
        self.since_ms = now_ms()

    def sample_process(self) -> None:
        """Add the CPU used since the last sample, and the resident memory now, to this bucket.

        CPU counts every thread of the process (scoring, store writes, HTTP); 100 = one core busy.
        """
        cpu, wall, rss = time.process_time(), time.monotonic(), rss_bytes()
        b = bucket_of(now_ms())
        with self._lock:
            bucket = self._process.get(b)
            if bucket is None:
                bucket = self._process[b] = _ProcessBucket()
                self._advance(b)
            if self._last_sample is not None:
                bucket.cpu_s += cpu - self._last_sample[0]
                bucket.wall_s += wall - self._last_sample[1]
            self._last_sample = (cpu, wall)
            if rss is not None:
                bucket.rss_bytes = max(bucket.rss_bytes or 0, rss)

    def record(
        self, crn: str, at_ms: int, status: int, latency_ms: float, request_bytes: int, response_bytes: int
    ) -> None:
        b = bucket_of(at_ms)  # the store's counters use the same buckets: one time axis
        slot = bisect.bisect_left(LATENCY_EDGES_MS, latency_ms)
        with self._lock:
            bucket = self._buckets.get((crn, b))
            if bucket is None:
                bucket = self._buckets[(crn, b)] = _Bucket()
                self._advance(b)
            bucket.requests += 1
            if status >= 400:
                bucket.failed[status] += 1
            bucket.latency[slot] += 1
            bucket.request_bytes += request_bytes
            bucket.response_bytes += response_bytes

    def _advance(self, b: int) -> None:
        """A new bucket `b` was opened: when it is the newest yet, forget what is older than KEEP_MS."""
        if b <= self._newest:
            return
        self._newest = b
        oldest = b - KEEP_MS
        for key in [k for k in self._buckets if k[1] < oldest]:
            del self._buckets[key]
        for old in [k for k in self._process if k < oldest]:
            del self._process[old]

    def read(self, crn: str, starts: list[int], step_ms: int) -> dict[str, Any]:
        """Series over the buckets starting at `starts` (each `step_ms` long)."""
        n = len(starts)
        first = starts[0] if starts else 0
        merged = [_Bucket() for _ in range(n)]
        with self._lock:
            for (c, b), bucket in self._buckets.items():
                i = (b - first) // step_ms
                if c != crn or not 0 <= i < n:
                    continue
                m = merged[i]
                m.requests += bucket.requests
                m.failed.update(bucket.failed)
                m.latency = [x + y for x, y in zip(m.latency, bucket.latency, strict=True)]
                m.request_bytes += bucket.request_bytes
                m.response_bytes += bucket.response_bytes
            process = [_ProcessBucket() for _ in range(n)]
            for b, sampled in self._process.items():
                i = (b - first) // step_ms
                if 0 <= i < n:
                    p = process[i]
                    p.cpu_s += sampled.cpu_s
                    p.wall_s += sampled.wall_s
                    if sampled.rss_bytes is not None:
                        p.rss_bytes = max(p.rss_bytes or 0, sampled.rss_bytes)
        statuses = sorted({s for m in merged for s in m.failed})
        seconds = step_ms / 1000
        return {
            "requests": [m.requests for m in merged],
            "requests_per_second": [round(m.requests / seconds, 3) for m in merged],
            "failed": {str(s): [m.failed.get(s, 0) for m in merged] for s in statuses},
            "latency_p50_ms": [_round(_percentile(m.latency, 0.50)) for m in merged],
            "latency_p95_ms": [_round(_percentile(m.latency, 0.95)) for m in merged],
            "request_bytes_mean": [_mean(m.request_bytes, m.requests) for m in merged],
            "response_bytes_mean": [_mean(m.response_bytes, m.requests) for m in merged],
            "cpu_percent": [round(100 * p.cpu_s / p.wall_s, 1) if p.wall_s > 0 else None for p in process],
            "memory_rss_mb": [_mb(p.rss_bytes) for p in process],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _mb(size: int | None) -> float | None:
    return None if size is None else round(size / 2**20, 1)


def _mean(total: int, n: int) -> float | None:
    return round(total / n, 1) if n else None


class CountModelCalls:
    """ASGI middleware: every `POST /model` (refused ones included) into a RequestTelemetry."""

    def __init__(self, app: ASGIApp, telemetry: RequestTelemetry, deployment_crn: str) -> None:
        self.app, self.telemetry, self.crn = app, telemetry, deployment_crn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/model" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        at = now_ms()
        sizes = {"in": 0, "out": 0}
        status = 500  # what the client sees if the app fails before answering

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                sizes["in"] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sizes["out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            latency = (time.perf_counter() - started) * 1000
            crn = scope.get(CALLED_DEPLOYMENT, self.crn)
            self.telemetry.record(crn, at, status, latency, sizes["in"], sizes["out"])
