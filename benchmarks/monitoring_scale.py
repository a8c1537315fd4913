"""Time and peak memory of the whole monitoring flow (read, analysis, drift, plots, report) at scale.

Fills a throwaway store with N prediction records (15 input features, ground truth on every one)
the way the embedded service writes them, then runs `monitoring_flow` on them in this process.
Run: `python -m benchmarks.monitoring_scale --records 100000 [--store-url postgresql+psycopg://...]`.
Peak memory is this process's peak RSS (it includes Prefect's and the imports' share).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
import uuid

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import numpy as np

from flows.monitoring import monitoring_flow
from modelvigil.data import FEATURES, LABEL, generate
from modelvigil.model import FraudModel
from modelvigil.monitoring import MonitoringConfig
from modelvigil.store import MetricsStore, PredictionRecord

CRN = "crn:cdp:ml:bench:acct:workspace:ws/deployment"


def fill(store: MetricsStore, n: int, chunk: int = 20_000) -> None:
    model = FraudModel.train(generate(20_000, seed=1))
    traffic = generate(n, seed=2, scenario="covariate_shift", onset=0.7)
    features = traffic[FEATURES].to_numpy(dtype=float)
    scores = model.predict(features)
    t0 = 1_700_000_000_000
    for lo in range(0, n, chunk):
        hi = min(lo + chunk, n)
        recs, labels = [], []
        for i in range(lo, hi):
            u = str(uuid.uuid4())
            recs.append(
                PredictionRecord(
                    "crn:model",
                    "crn:build",
                    CRN,
                    u,
                    t0 + i * 10,
                    t0 + i * 10 + 3,
                    {
                        "prediction": [int(scores.labels[i])],
                        "probability": [round(float(scores.probabilities[i]), 6)],
                        "input_data": {f: [float(features[i, j])] for j, f in enumerate(FEATURES)},
                    },
                )
            )
            labels.append((u, {"final_label": int(traffic[LABEL].iat[i])}))
        store.record_predictions(recs)
        store.merge_delayed(labels)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--store-url", default=None)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="mv-monscale-")
    url = args.store_url or f"sqlite:///{folder}/metrics.db"
    store = MetricsStore(url)
    t = time.perf_counter()
    fill(store, args.records)
    print(f"filled {args.records} records in {time.perf_counter() - t:.1f} s")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    result = monitoring_flow(
        MonitoringConfig(
            start="2023-01-01T00:00:00Z",
            end="2030-01-01T00:00:00Z",
            deployment_crn=CRN,
            store_url=url,
            output_dir=f"{folder}/report",
        )
    )
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"monitoring flow over {result.overall['predictions']} records: {seconds:.1f} s, "
        f"peak RSS {peak:.0f} MB (before the flow: {before:.0f} MB), {len(result.alerts)} alerts"
    )
    if np.isfinite(seconds):
        print(f"report: {result.report}")


if __name__ == "__main__":
    main()
