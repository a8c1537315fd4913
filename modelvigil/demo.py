"""The main job at its smallest: traffic through `modelvigil.cdsw`, ground truth, a summary read back.

Written the way a CML user writes it (the lab's calls, unchanged), so it doubles as the proof
that code for CML's SDK runs against the embedded service.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelvigil import cdsw
from modelvigil.data import FEATURES, LABEL, generate
from modelvigil.endpoint import DeploymentDetails
from modelvigil.store import now_ms


@dataclass(frozen=True)
class DemoSummary:
    requests: int
    records: int
    labelled: int
    accuracy: float
    latency_p50_ms: float
    latency_p95_ms: float
    aggregates: list[float]

    def lines(self) -> list[str]:
        windows = ", ".join(f"{a:.3f}" for a in self.aggregates)
        return [
            f"requests sent            {self.requests}",
            f"prediction records       {self.records}",
            f"with ground truth        {self.labelled}",
            f"accuracy                 {self.accuracy:.3f}",
            f"model latency p50 / p95  {self.latency_p50_ms:.1f} ms / {self.latency_p95_ms:.1f} ms",
            f"accuracy per window      {windows}",
        ]


def run_demo(
    deployment: DeploymentDetails, requests: int = 300, window: int = 100, seed: int = 7
) -> DemoSummary:
    if requests < 1 or window < 1:
        raise ValueError("requests and window must be >= 1")
    traffic = generate(requests, seed=seed)
    started = now_ms()
    uuids: list[str] = []
    predictions: list[int] = []
    for values in traffic[FEATURES].itertuples(index=False):
        payload = {"dataframe_split": {"columns": FEATURES, "data": [list(values)]}}
        response = cdsw.call_model(deployment.model_access_key, payload)
        uuids.append(response["response"]["uuid"])
        predictions.append(response["response"]["prediction"][0])
    labels = traffic[LABEL].tolist()
    for uuid, label in zip(uuids, labels, strict=True):
        cdsw.track_delayed_metrics({"final_label": int(label)}, uuid)

    crn = deployment.latest_deployment_crn
    records = pd.json_normalize(
        cdsw.read_metrics(model_deployment_crn=crn, start_timestamp_ms=started)["metrics"]
    )
    mine = records[records["predictionUuid"].isin(set(uuids))].sort_values("startTimeStampMs")
    for lo in range(0, len(mine), window):
        chunk = mine.iloc[lo : lo + window]
        hits = chunk["metrics.prediction"].str[0] == chunk["metrics.final_label"]
        cdsw.track_aggregate_metrics(
            {"accuracy": float(hits.mean())},
            int(chunk["startTimeStampMs"].min()),
            int(chunk["endTimeStampMs"].max()),
            model_deployment_crn=crn,
        )
    records = pd.json_normalize(
        cdsw.read_metrics(model_deployment_crn=crn, start_timestamp_ms=started)["metrics"]
    )
    is_prediction = records["predictionUuid"] != ""
    mine = records[is_prediction & records["predictionUuid"].isin(set(uuids))]
    labelled = mine["metrics.final_label"].notna()
    latency = (mine["endTimeStampMs"] - mine["startTimeStampMs"]).to_numpy(dtype=float)
    correct = mine.loc[labelled, "metrics.prediction"].str[0] == mine.loc[labelled, "metrics.final_label"]
    aggregates = records.loc[~is_prediction, "metrics.accuracy"].dropna().tolist()
    return DemoSummary(
        requests=requests,
        records=len(mine),
        labelled=int(labelled.sum()),
        accuracy=float(correct.mean()) if len(correct) else float("nan"),
        latency_p50_ms=float(np.percentile(latency, 50)) if len(latency) else float("nan"),
        latency_p95_ms=float(np.percentile(latency, 95)) if len(latency) else float("nan"),
        aggregates=aggregates[-((requests + window - 1) // window) :],
    )
