"""B4: delayed ground truth for N predictions through the bulk route (the flow's path) against one
call per uuid (the lab's `track_delayed_metrics` loop, here on a pooled session), same service."""

from __future__ import annotations

import time

from benchmarks.common import Ratio, Result
from modelvigil.client.backends import BULK_CHUNK
from modelvigil.client.connect import connect
from modelvigil.settings import Settings


def run(settings: Settings, url: str, uuids: list[str], *, per_uuid_sample: int) -> Result:
    conn = connect(settings, url)
    endpoint = conn.endpoint
    try:
        items = [(u, {"final_label": i % 2}) for i, u in enumerate(uuids)]
        started = time.perf_counter()
        conn.metrics.track_delayed_bulk(items)
        bulk_s = time.perf_counter() - started

        sample = items[:per_uuid_sample]
        started = time.perf_counter()
        for uuid_, metrics in sample:
            endpoint.track_delayed_metrics(metrics, uuid_)
        single_s = time.perf_counter() - started
    finally:
        conn.close()
    bulk_rate, single_rate = len(items) / bulk_s, len(sample) / single_s
    return Result(
        "B4",
        "ground truth: bulk route against one call per uuid",
        figures={
            "labels": len(items),
            "bulk_chunk": BULK_CHUNK,
            "bulk_seconds": round(bulk_s, 2),
            "bulk_labels_per_s": round(bulk_rate),
            "per_uuid_sample": len(sample),
            "per_uuid_labels_per_s": round(single_rate, 1),
        },
        ratios=[Ratio("bulk vs one call per uuid", round(bulk_rate / single_rate, 1), 20.0)],
        notes=[f"one call per uuid timed on {len(sample)} labels"],
    )
