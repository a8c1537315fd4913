"""The retry policy pinned down: its defaults, backoff to the number, jitter that really varies,
Retry-After honoured and capped, and when call_with_retries stops."""

from __future__ import annotations

import random

import pytest

from modelvigil.client import (
    EndpointConnectionDropped,
    EndpointConnectionError,
    EndpointConnectTimeout,
    EndpointHTTPError,
    EndpointReadTimeout,
    EndpointTimeout,
)
from modelvigil.client.retry import RetryPolicy, call_with_retries, is_worth_retrying


class _Response:
    def __init__(self, status: int, retry_after: str | None = None) -> None:
        self.status_code = status
        self.headers = {"Retry-After": retry_after} if retry_after is not None else {}


def _http(status: int, retry_after: str | None = None) -> EndpointHTTPError:
    return EndpointHTTPError(status, {"error": "x"}, _Response(status, retry_after), "http://x")  # type: ignore[arg-type]


def test_the_defaults():
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.base_delay_s, policy.max_delay_s, policy.jitter) == (
        6,
        0.1,
        10.0,
        0.5,
    )
    assert policy.idempotent is True and policy.should_retry is is_worth_retrying


def test_backoff_doubles_from_the_base_and_stops_at_the_cap():
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=1.0, jitter=0.0)
    timeout = EndpointTimeout("t")
    assert [policy.delay(a, timeout) for a in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_jitter_scales_each_delay_by_a_random_factor_within_bounds():
    timeout = EndpointTimeout("t")
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=100.0, jitter=0.5, rng=random.Random(7))
    delays = [policy.delay(1, timeout) for _ in range(200)]
    assert all(0.5 <= d <= 1.5 for d in delays)
    assert len(set(delays)) == 200  # it varies: clients do not retry in step
    assert min(delays) < 0.6 and max(delays) > 1.4  # and spans the band
    again = RetryPolicy(base_delay_s=1.0, max_delay_s=100.0, jitter=0.5, rng=random.Random(7))
    assert [again.delay(1, timeout) for _ in range(200)] == delays  # seeded: reproducible
    narrow = RetryPolicy(base_delay_s=1.0, jitter=0.1, rng=random.Random(7))
    assert all(0.9 <= narrow.delay(1, timeout) <= 1.1 for _ in range(200))


@pytest.mark.parametrize(
    ("header", "expected"), [("3", 3.0), ("0", 0.0), ("-5", 0.0), ("600", 10.0), ("2.5", 2.5)]
)
def test_retry_after_wins_over_backoff_and_is_capped(header, expected):
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=10.0, jitter=0.0)
    assert policy.delay(4, _http(429, header)) == expected


def test_without_a_usable_retry_after_the_backoff_applies():
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=10.0, jitter=0.0)
    assert policy.delay(2, _http(503)) == pytest.approx(0.2)
    assert policy.delay(3, _http(429, "soon")) == pytest.approx(0.4)


def test_a_success_after_failures_returns_the_value_and_the_attempts():
    outcomes: list[object] = [EndpointTimeout("t"), _http(503), "done"]
    slept: list[float] = []

    def call() -> object:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    policy = RetryPolicy(base_delay_s=0.1, jitter=0.0)
    got = call_with_retries(call, policy, sleep=slept.append)
    assert (got.value, got.attempts, got.error) == ("done", 3, None)
    assert slept == pytest.approx([0.1, 0.2])


def test_a_first_success_sleeps_not_at_all():
    slept: list[float] = []
    got = call_with_retries(lambda: 42, RetryPolicy(), sleep=slept.append)
    assert (got.value, got.attempts, got.error, slept) == (42, 1, None, [])


def test_a_bug_is_not_retried():
    bug = ValueError("bug")
    got = call_with_retries(lambda: (_ for _ in ()).throw(bug), RetryPolicy(), sleep=lambda s: None)
    assert got.attempts == 1 and got.error is bug and got.value is None
    assert is_worth_retrying(bug) is False


def test_the_last_attempt_is_not_followed_by_a_sleep():
    slept: list[float] = []
    policy = RetryPolicy(max_attempts=4, base_delay_s=0.1, jitter=0.0)
    got = call_with_retries(
        lambda: (_ for _ in ()).throw(EndpointReadTimeout("t")), policy, sleep=slept.append
    )
    assert got.attempts == 4 and len(slept) == 3 and isinstance(got.error, EndpointReadTimeout)
    once = call_with_retries(lambda: (_ for _ in ()).throw(EndpointTimeout("t")), RetryPolicy(max_attempts=1))
    assert once.attempts == 1


def test_a_custom_rule_decides_what_is_worth_retrying():
    never = RetryPolicy(should_retry=lambda exc: False)
    got = call_with_retries(lambda: (_ for _ in ()).throw(EndpointTimeout("t")), never, sleep=lambda s: None)
    assert got.attempts == 1


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (EndpointConnectTimeout("nothing sent"), True),
        (EndpointConnectionError("refused"), True),
        (_http(429, "1"), True),
        (EndpointReadTimeout("it may have run"), False),
        (EndpointConnectionDropped("it may have run"), False),
        (_http(503), False),
        (ValueError("no such attribute: it may have run"), False),
    ],
)
def test_a_call_that_is_not_idempotent_is_retried_only_when_it_cannot_have_run(exc, retried):
    assert RetryPolicy(idempotent=False).allows(exc) is (retried and is_worth_retrying(exc))
    assert RetryPolicy(idempotent=False, should_retry=lambda e: True).allows(exc) is retried
    assert RetryPolicy(idempotent=True).allows(exc) is is_worth_retrying(exc)
