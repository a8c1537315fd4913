"""A task retried whole by Prefect (after each call's own retries gave up) sends only what no
earlier try had acknowledged: counted at the service, through the real engine."""

import numpy as np
import pytest
from prefect import flow
from prefect.logging import disable_run_logger

from modelvigil.client.connect import connect
from modelvigil.client.delivery import Delivery, chunked
from modelvigil.client.ledger import scored_rows
from modelvigil.client.retry import RetryPolicy
from modelvigil.data import FEATURES, LABEL, generate
from modelvigil.service.faults import FaultPlan
from modelvigil.testing import start_in_thread
from tasks.accuracy import track_window_accuracy
from tasks.ground_truth import submit_ground_truth
from tasks.scoring import score_batch


def fault(injector, plan: FaultPlan) -> None:
    injector.plan, injector.calls = plan, 0
    injector.injected.clear()


def handled(injector) -> int:
    """Calls to the faulted route that reached the service's routes (not answered by a fault)."""
    return injector.calls - sum(injector.injected.values())


@pytest.fixture
def faulty(settings, trained_model):
    svc = start_in_thread(settings, model=trained_model[0], faults=FaultPlan.parse("503=0"))
    yield svc
    svc.stop()


def scored(svc, n: int):
    conn = connect(base_url=svc.url)
    traffic = generate(n, seed=3)
    features = traffic[FEATURES].to_numpy(dtype=float)
    with disable_run_logger():
        ledger = score_batch.fn(conn.endpoint, features, list(range(n)), 1, "t", 4, 3)
    rows = scored_rows(ledger, traffic[LABEL].to_numpy(), 1)
    rows["labelled"] = np.ones(len(rows), dtype=bool)
    conn.close()
    return rows


def test_a_retried_accuracy_task_sends_each_window_once(faulty, prefect_harness):

    rows = scored(faulty, 40)
    injector = faulty.server.config.app
    fault(injector, FaultPlan.parse("503=0.35", routes="/metrics/aggregate", seed=4))
    # No retries per call: every fault ends the try, and Prefect's task retries are the only net.
    conn = connect(base_url=faulty.url, retry=RetryPolicy(max_attempts=1))
    crn = faulty.identity.deployment_crn

    @flow
    def track() -> list:
        task = track_window_accuracy.with_options(retries=30, retry_delay_seconds=0)
        return task(conn.metrics, rows, 4, crn, "retried", Delivery())

    windows = track()
    assert len(windows) == 10
    assert sum(injector.injected.values()) >= 3  # the task needed several tries
    assert handled(injector) == 10  # each window reached the service exactly once
    assert faulty.store.count(crn, aggregates=True) == 10


def test_a_retried_ground_truth_task_sends_each_chunk_once(faulty, prefect_harness):
    rows = scored(faulty, 30)
    injector = faulty.server.config.app
    fault(injector, FaultPlan.parse("503=0.35", routes="/metrics/delayed", seed=5))
    conn = connect(base_url=faulty.url, retry=RetryPolicy(max_attempts=1))
    conn.metrics.bulk_chunk = 3  # ten chunks, so that a try can fail after others were acknowledged
    items = [(u, {"final_label": int(g["label"].iloc[0])}) for u, g in rows.groupby("uuid", sort=False)]

    @flow
    def submit() -> int:
        task = submit_ground_truth.with_options(retries=30, retry_delay_seconds=0)
        return task(conn.metrics, items, Delivery())

    assert submit() == 30
    assert sum(injector.injected.values()) >= 3
    assert handled(injector) == 10
    frame = faulty.store.read_frame(faulty.identity.deployment_crn)
    labels = frame.set_index("prediction_uuid")["final_label"]
    assert {u: labels[u] for u, _ in items} == {u: m["final_label"] for u, m in items}


def test_a_delivery_remembers_what_was_acknowledged_before_a_failure():
    sent: list[int] = []

    def deliver(piece: list[int]) -> None:
        if piece == [4, 5] and -1 not in sent:
            raise ConnectionError("dropped")
        sent.extend(piece)

    delivery: Delivery[list[int]] = Delivery()
    with pytest.raises(ConnectionError):
        delivery.send(chunked([0, 1, 2, 3, 4, 5, 6], 2), deliver)
    assert delivery.acknowledged == {0, 1}
    sent.append(-1)  # the next try may pass
    again = delivery.send(chunked([0, 1, 2, 3, 4, 5, 6], 2), deliver)
    assert (again.now, again.before) == (2, 2)
    assert sent == [0, 1, 2, 3, -1, 4, 5, 6]
    with pytest.raises(ValueError, match="at least 1"):
        list(chunked([1], 0))
