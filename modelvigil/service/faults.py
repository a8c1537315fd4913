"""Fault injection, for proving that clients retry the right failures and nothing is lost or doubled.

`FaultInjector`: ASGI middleware in front of every route (or the routes a plan names). For a
share of calls it answers 503, answers 429 with `Retry-After`, answers later than the client
waits (the call is still handled: scored and stored, or written), or handles the call and then
drops the connection unanswered. 429s come in bursts (`burst`).
`modelvigil serve --faults 503=0.05,429=0.02,slow=0.05,drop=0.05 [--fault-routes /model,/metrics]`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

KINDS = ("503", "429", "slow", "drop")


@dataclass
class FaultPlan:
    shares: dict[str, float] = field(default_factory=dict)  # kind -> share of model calls
    slow_seconds: float = 3.0  # how late a "slow" answer comes: set above the client's read timeout
    retry_after: int = 1
    burst: int = 1  # a drawn 429 also refuses the next burst - 1 calls: busy spells, not lone refusals
    seed: int = 0
    # Path prefixes that get faults (`/model`, `/metrics`, `/api/v2`, `/health`...); empty: every route.
    routes: tuple[str, ...] = ()

    def covers(self, path: str) -> bool:
        return not self.routes or any(path == r or path.startswith(r.rstrip("/") + "/") for r in self.routes)

    @classmethod
    def parse(cls, text: str, routes: str | None = None, **kwargs: Any) -> FaultPlan:
        """`"503=0.05,429=0.05"` (and `"/model,/metrics"`) -> a plan; says exactly what is wrong otherwise."""
        shares: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            kind, sep, value = part.partition("=")
            if not sep or kind not in KINDS:
                raise ValueError(f"fault {part!r}: expected KIND=SHARE with KIND one of {KINDS}")
            try:
                share = float(value)
            except ValueError:
                raise ValueError(f"fault {part!r}: share {value!r} is not a number") from None
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"fault {part!r}: share must be within [0, 1]")
            shares[kind] = share
        if sum(shares.values()) > 1.0:
            raise ValueError(f"fault shares add up to {sum(shares.values())}, more than 1")
        paths = tuple(filter(None, (r.strip() for r in (routes or "").split(","))))
        wrong = [r for r in paths if not r.startswith("/")]
        if wrong:
            raise ValueError(f"fault routes must be paths starting with '/', got {wrong}")
        return cls(shares=shares, routes=paths, **kwargs)


class InjectedDrop(ConnectionAbortedError):
    """Raised to make the server drop a connection on purpose."""


class _HideInjectedDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InjectedDrop))


class FaultInjector:
    """ASGI middleware: injects the plan's faults into the routes it covers; counts what it injected."""

    def __init__(self, app: Any, plan: FaultPlan) -> None:
        self.app, self.plan = app, plan
        # uvicorn logs every dropped connection with a traceback; these are on purpose.
        logging.getLogger("uvicorn.error").addFilter(_HideInjectedDrops())
        self.injected: Counter[str] = Counter()
        self.injected_paths: Counter[str] = Counter()  # path -> faults injected there
        self.calls = 0
        self._rng = random.Random(plan.seed)
        self._burst_left = 0
        self._lock = threading.Lock()

    def _draw(self) -> str | None:
        with self._lock:
            self.calls += 1
            if self._burst_left > 0:
                self._burst_left -= 1
                self.injected["429"] += 1
                return "429"
            x = self._rng.random()
            edge = 0.0
            for kind, share in self.plan.shares.items():
                edge += share
                if x < edge:
                    self.injected[kind] += 1
                    if kind == "429":
                        self._burst_left = self.plan.burst - 1
                    return kind
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.plan.covers(scope["path"]):
            await self.app(scope, receive, send)
            return
        fault = self._draw()
        if fault is not None:
            self.injected_paths[scope["path"]] += 1
        if fault == "503":
            await _reply(send, 503, {})
        elif fault == "429":
            await _reply(send, 429, {"Retry-After": str(self.plan.retry_after)})
        elif fault == "slow":
            await asyncio.sleep(self.plan.slow_seconds)
            await self.app(scope, receive, send)
        elif fault == "drop":
            started = False

            async def swallow(message: Any) -> None:
                nonlocal started
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await send(message)  # headers go out, the body never does

            await self.app(scope, receive, swallow)
            raise InjectedDrop("fault injection: connection dropped after the call was stored")
        else:
            await self.app(scope, receive, send)


async def _reply(send: Any, status: int, extra: dict[str, str]) -> None:
    body = f'{{"success": false, "error": "injected fault: {status}"}}'.encode()
    headers = [
        (b"content-type", b"application/json"),
        *((k.lower().encode(), v.encode()) for k, v in extra.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
