"""Simulation flow: drifting traffic -> batched scoring -> checks -> ground truth -> windowed accuracy.

The lab's `06_model_simulation.py` done properly: pooled, bounded-concurrency calls that retry
what is worth retrying without double-counting, Great Expectations on what came back, and
accuracy aggregates the monitoring flow (and CML) can read.

Run on its own: `python -m flows.simulation` (200 requests on the embedded default).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.runtime import flow_run
from prefect.utilities.annotations import quote

from modelvigil import progress
from modelvigil.client import ModelEndpoint
from modelvigil.client.connect import connect
from modelvigil.client.delivery import Delivery
from modelvigil.client.groundtruth import covered_requests, label_items
from modelvigil.client.ledger import scored_rows
from modelvigil.client.retry import RetryPolicy
from modelvigil.data import FEATURES, LABEL
from modelvigil.protocol import masked
from modelvigil.service.embedded import ensure_service
from modelvigil.settings import Settings
from modelvigil.simulation import (
    CheckPolicy,
    SimulationConfig,
    SimulationSummary,
    check_resume,
    latency_percentiles,
)
from tasks.accuracy import track_window_accuracy
from tasks.checks import validate_predictions
from tasks.ground_truth import submit_ground_truth
from tasks.runners import fan_out
from tasks.scoring import score_batch
from tasks.traffic import generate_traffic


class PredictionChecksFailed(RuntimeError):
    """The returned predictions broke an expectation and the policy is `fail`."""


def _simulation_id(config: SimulationConfig) -> str:
    # From the flow run, not random: a retried flow run keeps its idempotency keys.
    return config.simulation_id or f"sim-{str(flow_run.get_id() or 'local').replace('-', '')[:12]}"


def _batches(
    config: SimulationConfig, endpoint: ModelEndpoint, features: np.ndarray, simulation_id: str
) -> Iterator[dict[str, Any]]:
    """`score_batch`'s parameters, batch by batch: each carries its own rows only, which is all a
    Dask worker needs to be sent."""
    rows = config.rows_per_request
    for first in range(0, config.requests, config.batch_size):
        numbers = list(range(first, min(first + config.batch_size, config.requests)))
        yield {
            "endpoint": endpoint,
            "features": features[first * rows : (numbers[-1] + 1) * rows],
            "request_numbers": numbers,
            "rows_per_request": rows,
            "simulation_id": simulation_id,
            "concurrency": config.concurrency,
            "max_attempts": config.max_attempts,
            "first_request": first,
        }


@flow(name="simulation")
def simulation_flow(config: SimulationConfig = SimulationConfig()) -> SimulationSummary:  # noqa: B008
    logger = get_run_logger()
    simulation_id = _simulation_id(config)
    settings = Settings().overridden(model_name=config.model_name, service_url=config.service_url)
    out = Path(config.output_dir) if config.output_dir else settings.home / "runs" / simulation_id
    out.mkdir(parents=True, exist_ok=True)
    # A rerun under the same id resumes (the same keys replay); with other traffic it would mix two
    # simulations under one id (and the service would answer 409 to each reused key): refused here.
    saved = out / "config.json"
    check_resume(config, simulation_id, json.loads(saved.read_text()) if saved.exists() else None)
    saved.write_text(json.dumps(config.model_dump(mode="json"), indent=2))

    with ensure_service(settings) as url:
        # Discovery, ground truth and aggregates retry each call as often as scoring does.
        conn = connect(
            settings, url, pool_size=config.concurrency, retry=RetryPolicy(max_attempts=config.max_attempts)
        )
        conn.endpoint.timeout = (min(3.05, config.request_timeout_seconds), config.request_timeout_seconds)
        logger.info(
            "simulation %s: %d requests to %s",
            simulation_id,
            config.requests,
            masked(conn.endpoint.model_url),
        )
        traffic = generate_traffic(
            config.requests * config.rows_per_request,
            config.seed,
            config.scenario,
            config.drift_onset,
            config.drift_magnitude,
            config.shifted_features,
        )
        features = traffic[FEATURES].to_numpy(dtype=float)
        labels = traffic[LABEL].to_numpy()

        progress_id = create_progress_artifact(
            0.0,
            key="simulation-progress",
            description=f"Share of the {config.requests:,} calls scored (simulation {simulation_id})",
        )
        ledgers = []
        started = time.perf_counter()
        batches = _batches(config, conn.endpoint, features, simulation_id)
        with fan_out(config) as runner:
            for ledger in runner.in_order(score_batch, batches):
                ledgers.append(ledger)
                done = int(ledger["request_no"].iloc[-1]) + 1
                update_progress_artifact(progress_id, 100.0 * done / config.requests)
                progress.report(done, config.requests)
        scoring_seconds = time.perf_counter() - started
        ledger = pd.concat(ledgers, ignore_index=True)
        ledger.to_parquet(out / "ledger.parquet", index=False)

        rows = scored_rows(ledger, labels, config.rows_per_request)
        checks = validate_predictions(ledger, rows, config.label_set, out / "data_docs", settings)
        if not checks.success:
            message = (
                f"prediction checks failed: {[f'{o.expectation}({o.column})' for o in checks.failures()]}; "
                f"failing uuids: {checks.failing_uuids}"
            )
            if config.check_policy is CheckPolicy.fail:
                raise PredictionChecksFailed(message)
            logger.warning("%s (policy 'warn': continuing)", message)

        if config.label_delay_seconds:
            logger.info("waiting %.1f s before the ground truth arrives", config.label_delay_seconds)
            time.sleep(config.label_delay_seconds)
        covered = covered_requests(config.requests, config.label_coverage, config.seed)
        # quote: Prefect would otherwise walk every label of every item, twice (measured 5.6 s of
        # a 13 s run at 300k rows); the items are data, not task futures.
        # One Delivery per write, shared by the task's tries: a retry sends only what is unacknowledged.
        submitted = submit_ground_truth(conn.metrics, quote(label_items(rows, covered)), Delivery())
        rows["labelled"] = covered[rows["request_no"].to_numpy(dtype=np.int64)]
        windows = track_window_accuracy(
            conn.metrics,
            rows,
            config.accuracy_window,
            conn.deployment.latest_deployment_crn,
            simulation_id,
            Delivery(),
        )
        deployment = conn.deployment
        conn.close()

    p50, p95, p99 = latency_percentiles(ledger)
    failed = ledger[ledger["uuid"].isna()]
    summary = SimulationSummary(
        simulation_id=simulation_id,
        requests=config.requests,
        rows=int(ledger["n_predictions"].sum()),
        succeeded=int(len(ledger) - len(failed)),
        failed=len(failed),
        retries=int((ledger["attempts"] - 1).sum()),
        labels_submitted=submitted,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        latency_p99_ms=p99,
        scoring_seconds=scoring_seconds,
        requests_per_second=config.requests / scoring_seconds if scoring_seconds else 0.0,
        checks_passed=checks.success,
        failing_uuids=checks.failing_uuids,
        failures=failed[["request_no", "status", "attempts", "error"]].to_dict("records"),
        windows=windows,
        output_dir=str(out),
        model_name=deployment.model_name,
        deployment_crn=deployment.latest_deployment_crn,
    )
    (out / "summary.json").write_text(json.dumps(summary.model_dump(mode="json"), indent=2))
    create_table_artifact(summary.table(), key="simulation-summary", description=summary.outcome())
    logger.info("%s", summary.outcome())
    return summary


if __name__ == "__main__":
    result = simulation_flow(SimulationConfig(requests=200))
    for row in result.table():
        print(f"{row['figure']:32} {row['value']}")
