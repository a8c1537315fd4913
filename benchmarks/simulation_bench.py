"""B1 and B2: the simulation flow against the embedded service, beside the lab's loop and a bare
pooled client (the ceiling), all hitting the same service in its own process in the same run.

B1 counts whole requests per second: scoring, prediction checks, ground truth and accuracy
aggregates for the flow; scoring then one delayed-metrics call per uuid for the lab; scoring
only for the ceiling. B2 counts rows per second with 1,000 rows per call.
"""

from __future__ import annotations

import concurrent.futures as cf
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import requests

from benchmarks.common import Ratio, Result
from modelvigil.client.connect import connect
from modelvigil.data import FEATURES, generate
from modelvigil.settings import Settings

CONCURRENCY = 8
BATCHED_CONCURRENCY = 4


def _payload(rows: int, seed: int) -> dict[str, Any]:
    frame = generate(rows, seed=seed)
    return {"dataframe_split": {"columns": FEATURES, "data": frame[FEATURES].values.tolist()}}


def _simulate(url: str, out: Path, **config: Any) -> tuple[float, Any]:
    from flows.simulation import simulation_flow
    from modelvigil.simulation import SimulationConfig

    started = time.perf_counter()
    summary = simulation_flow(SimulationConfig(service_url=url, output_dir=str(out), **config))
    return time.perf_counter() - started, summary


def _lab_loop(model_url: str, metrics_url: str, key: str, headers: dict[str, str], n: int) -> float:
    """The lab: sequential `requests.post` without a session, then one delayed call per uuid."""
    payloads = [_payload(1, seed) for seed in range(n)]
    started = time.perf_counter()
    uuids = []
    for p in payloads:
        r = requests.post(model_url, json={"accessKey": key, "request": p}, headers=headers, timeout=30)
        r.raise_for_status()
        uuids.append(r.json()["response"]["uuid"])
    for u in uuids:
        requests.post(
            f"{metrics_url}/metrics/delayed",
            json={"prediction_uuid": u, "metrics": {"final_label": 0}},
            headers=headers,
            timeout=30,
        ).raise_for_status()
    return time.perf_counter() - started


def _ceiling(model_url: str, key: str, headers: dict[str, str], payloads: list[dict], workers: int) -> float:
    """A bare pooled session per thread, no retries, no ledger, bodies encoded before the clock
    starts: the fastest a Python client gets from this service."""
    local: dict[int, requests.Session] = {}
    bodies = [orjson.dumps({"accessKey": key, "request": p}) for p in payloads]
    sent = {**headers, "Content-Type": "application/json"}

    def call(i: int) -> None:
        session = local.setdefault(i % workers, requests.Session())
        session.post(model_url, data=bodies[i], headers=sent, timeout=60).raise_for_status()

    started = time.perf_counter()
    with cf.ThreadPoolExecutor(workers) as pool:
        list(pool.map(call, range(len(payloads))))
    return time.perf_counter() - started


def run(settings: Settings, url: str, *, requests_b1: int, lab_sample: int, calls_b2: int) -> list[Result]:
    out = Path(tempfile.mkdtemp(prefix="mv-bench-sim-"))
    _simulate(url, out / "warm-up", requests=50, seed=99)  # starts Prefect's server, warms the model
    b1 = measure_b1(settings, url, requests_b1, lab_sample, out / "b1")
    b2 = measure_b2(settings, url, calls_b2, out / "b2")
    return [b1, b2]


def measure_b1(
    settings: Settings, url: str, requests_n: int, lab_sample: int, out: Path, added_latency_ms: float = 0
) -> Result:
    """B1 on the service at `url`: the simulation flow against the lab's loop and the bare pooled
    client. With `added_latency_ms` the service answers that much later (`serve --latency-ms`),
    as a remote endpoint would: there concurrency, not CPU, sets the pace (8x is the bound)."""
    conn = connect(settings, url)
    model_url, metrics_url = conn.endpoint.model_url, conn.endpoint.metrics_url or url
    key = conn.endpoint.access_key or ""
    headers = {k: v for k, v in conn.endpoint.session.headers.items() if k.lower() == "authorization"}
    conn.endpoint.close()
    flow_s, summary = _simulate(url, out, requests=requests_n, concurrency=CONCURRENCY, seed=1)
    lab_s = _lab_loop(model_url, metrics_url, key, headers, lab_sample)
    singles = [_payload(1, seed) for seed in range(requests_n)]
    ceiling_s = _ceiling(model_url, key, headers, singles, CONCURRENCY)
    flow_rate, lab_rate, ceiling_rate = requests_n / flow_s, lab_sample / lab_s, requests_n / ceiling_s
    remote = added_latency_ms > 0
    return Result(
        "B1-rtt" if remote else "B1",
        "simulation, single-row calls (scoring + checks + ground truth + accuracy aggregates)"
        + (f", every answer {added_latency_ms:g} ms later (a remote endpoint)" if remote else ""),
        figures={
            "requests": requests_n,
            "concurrency": CONCURRENCY,
            "flow_seconds": round(flow_s, 2),
            "flow_requests_per_s": round(flow_rate, 1),
            "lab_sample_requests": lab_sample,
            "lab_requests_per_s": round(lab_rate, 1),
            "ceiling_requests_per_s": round(ceiling_rate, 1),
            "flow_failed": summary.failed,
            "flow_labels": summary.labels_submitted,
        },
        ratios=[
            Ratio("flow vs lab loop", round(flow_rate / lab_rate, 2), 6.0 if remote else 5.0),
            Ratio("flow vs bare pooled scoring (ceiling)", round(flow_rate / ceiling_rate, 2), 0.7),
        ],
        notes=[f"lab loop timed on {lab_sample} requests (it scores and labels one at a time)"],
    )


def measure_b2(settings: Settings, url: str, calls: int, out: Path, store: str = "sqlite") -> Result:
    """B2 on the service at `url`: the simulation flow with 1,000-row calls, against the bare
    pooled client's rate on the same service."""
    conn = connect(settings, url)
    model_url, key = conn.endpoint.model_url, conn.endpoint.access_key or ""
    headers = {k: v for k, v in conn.endpoint.session.headers.items() if k.lower() == "authorization"}
    conn.endpoint.close()
    rows = 1000
    flow2_s, summary2 = _simulate(
        url,
        out,
        requests=calls,
        rows_per_request=rows,
        concurrency=BATCHED_CONCURRENCY,
        batch_size=50,
        accuracy_window=10_000,
        seed=2,
    )
    batch = [_payload(rows, 1000 + i) for i in range(min(calls, 50))]
    ceiling2_s = _ceiling(model_url, key, headers, batch, BATCHED_CONCURRENCY)
    rows_per_s = calls * rows / flow2_s
    ceiling_rows = len(batch) * rows / ceiling2_s
    return Result(
        "B2" if store == "sqlite" else f"B2-{store}",
        f"simulation, 1,000-row calls, end to end ({store} store)",
        figures={
            "rows": calls * rows,
            "concurrency": BATCHED_CONCURRENCY,
            "flow_seconds": round(flow2_s, 2),
            "flow_rows_per_s": round(rows_per_s),
            "ceiling_rows_per_s": round(ceiling_rows),
            "flow_vs_ceiling": round(rows_per_s / ceiling_rows, 2),
            "flow_failed": summary2.failed,
        },
        ratios=[Ratio("flow rows/s (absolute)", round(rows_per_s), 50_000)],
    )
