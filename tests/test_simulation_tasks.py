"""Task logic through `.fn()` and the plain retry policy, without the Prefect engine."""

import random

import numpy as np
import pytest
from prefect.logging import disable_run_logger
from prefect.states import Completed, Failed

from modelvigil.client import EndpointConnectionError, EndpointHTTPError, EndpointTimeout
from modelvigil.client.connect import connect
from modelvigil.client.delivery import Delivery
from modelvigil.client.ledger import scored_rows
from modelvigil.client.retry import RetryPolicy, call_with_retries, is_worth_retrying
from modelvigil.data import FEATURES, LABEL, generate
from tasks.accuracy import track_window_accuracy
from tasks.ground_truth import submit_ground_truth
from tasks.retries import retry_on_transient_error
from tasks.scoring import retry_transient_request, score_batch


class FakeResponse:
    def __init__(self, status, retry_after=None):
        self.status_code = status
        self.headers = {"Retry-After": retry_after} if retry_after is not None else {}


def http_error(status, retry_after=None):
    return EndpointHTTPError(status, {"error": "x"}, FakeResponse(status, retry_after), "http://x")


@pytest.mark.parametrize(
    ("exc", "worth"),
    [
        (EndpointTimeout("t"), True),
        (EndpointConnectionError("c"), True),
        (http_error(429), True),
        (http_error(500), True),
        (http_error(503), True),
        (http_error(400), False),
        (http_error(401), False),
        (http_error(422), False),
        (ValueError("bug"), False),
    ],
)
def test_only_transient_failures_are_worth_retrying(exc, worth):
    assert is_worth_retrying(exc) is worth
    assert retry_transient_request(exc) is worth
    assert retry_on_transient_error(None, None, Failed(data=exc)) is worth


def test_a_completed_task_is_not_retried():
    assert retry_on_transient_error(None, None, Completed(data=1)) is False


def test_retry_after_is_honoured_and_backoff_grows_with_jitter():
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=5, jitter=0.5, rng=random.Random(1))
    assert policy.delay(1, http_error(429, "3")) == 3.0
    assert policy.delay(1, http_error(429, "600")) == 5  # capped
    delays = [policy.delay(a, EndpointTimeout("t")) for a in (1, 2, 3, 4)]
    for attempt, d in enumerate(delays, start=1):
        base = 0.1 * 2 ** (attempt - 1)
        assert 0.5 * base <= d <= 1.5 * base


def test_call_with_retries_stops_at_a_4xx_and_counts_attempts():
    calls, slept = [], []
    errors = [http_error(503), http_error(429, "0"), http_error(404)]

    def fn():
        calls.append(1)
        raise errors[len(calls) - 1]

    out = call_with_retries(fn, RetryPolicy(max_attempts=10), sleep=slept.append)
    assert out.attempts == 3 and out.value is None and out.error.status == 404
    assert len(slept) == 2 and slept[1] == 0.0


def test_call_with_retries_gives_up_after_max_attempts():
    out = call_with_retries(
        lambda: (_ for _ in ()).throw(EndpointTimeout("t")), RetryPolicy(max_attempts=3), sleep=lambda s: None
    )
    assert out.attempts == 3 and isinstance(out.error, EndpointTimeout)


@pytest.fixture
def no_run_logger():
    with disable_run_logger():  # Prefect's way to call .fn() of a task that logs
        yield


def test_score_batch_fn_ledger_and_resubmission_is_idempotent(service, no_run_logger):
    conn = connect(base_url=service.url)
    traffic = generate(30, seed=1)
    features = traffic[FEATURES].to_numpy(dtype=float)
    ledger = score_batch.fn(conn.endpoint, features, list(range(10)), 3, "unit", 4, 3)
    assert ledger["request_no"].tolist() == list(range(10))
    assert (ledger["n_predictions"] == 3).all() and (ledger["attempts"] == 1).all()
    assert ledger["idempotency_key"].tolist() == [f"unit/{i}" for i in range(10)]
    again = score_batch.fn(conn.endpoint, features, list(range(10)), 3, "unit", 4, 3)
    assert again["uuid"].tolist() == ledger["uuid"].tolist()
    assert service.store.count(service.identity.deployment_crn) == 10

    rows = scored_rows(ledger, traffic[LABEL].to_numpy(), 3)
    assert len(rows) == 30 and rows["label"].tolist() == traffic[LABEL].tolist()
    items = [(u, {"final_label": g["label"].tolist()}) for u, g in rows.groupby("uuid", sort=False)]
    assert submit_ground_truth.fn(conn.metrics, items, Delivery()) == 10
    assert submit_ground_truth.fn(conn.metrics, items, Delivery()) == 10  # an upsert: nothing doubles
    frame = service.store.read_frame(service.identity.deployment_crn)
    assert frame["final_label"].notna().all() and len(frame) == 30

    rows["labelled"] = np.ones(len(rows), dtype=bool)
    crn = service.identity.deployment_crn
    first = track_window_accuracy.fn(conn.metrics, rows, 10, crn, "unit", Delivery())
    second = track_window_accuracy.fn(conn.metrics, rows, 10, crn, "unit", Delivery())
    assert len(first) == 3 and first == second
    assert service.store.count(crn, aggregates=True) == 3
