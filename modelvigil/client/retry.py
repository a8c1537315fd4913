"""When and how long to wait before calling an endpoint again.

Retry only what can succeed on a second try: timeouts, connection errors, 429 and 5xx
(`EndpointError.retryable`). Never a 4xx: the request itself is wrong. A 429's `Retry-After` is
honoured; otherwise exponential backoff with jitter, so many clients do not retry in step.
A call that is not idempotent is retried only when it cannot have run (`may_have_executed` false:
a connect timeout, a refused connection, a 429), never after a read timeout or a dropped answer.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from modelvigil.client.errors import EndpointError, EndpointHTTPError

T = TypeVar("T")


def is_worth_retrying(exc: BaseException) -> bool:
    return isinstance(exc, EndpointError) and exc.retryable


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay_s: float = 0.1
    max_delay_s: float = 10.0
    jitter: float = 0.5  # each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
    should_retry: Callable[[BaseException], bool] = is_worth_retrying
    # True when a repeat is harmless: an upsert, or a call carrying an idempotency key.
    idempotent: bool = True
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def allows(self, exc: BaseException) -> bool:
        """Retry after `exc`? Never a call that may have run, unless repeating it is harmless."""
        if not self.idempotent and getattr(exc, "may_have_executed", True):
            return False
        return self.should_retry(exc)

    def delay(self, attempt: int, exc: BaseException) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if isinstance(exc, EndpointHTTPError) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_delay_s)
        backoff = min(self.base_delay_s * 2 ** (attempt - 1), self.max_delay_s)
        return backoff * self.rng.uniform(1 - self.jitter, 1 + self.jitter)


@dataclass
class Attempted(Generic[T]):
    value: T | None
    attempts: int
    error: BaseException | None  # set when every attempt failed or the failure was not retryable


def call_with_retries(
    fn: Callable[[], T], policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep
) -> Attempted[T]:
    """Call `fn` until it succeeds, fails for good, or runs out of attempts. Never raises `fn`'s errors."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return Attempted(fn(), attempt, None)
        except Exception as exc:
            if attempt >= policy.max_attempts or not policy.allows(exc):
                return Attempted(None, attempt, exc)
            sleep(policy.delay(attempt, exc))
