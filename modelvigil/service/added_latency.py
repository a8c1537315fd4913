"""`serve --latency-ms N`: every answer leaves N ms later, as if the endpoint were across a network.

A real CML endpoint sits behind a gateway tens of milliseconds away; on loopback a call costs about
a millisecond, which hides what a client's concurrency is for. With this the same client can be
rehearsed against a remote endpoint's round trip. The wait is spent before the request reaches
the app: it holds no replica, and the record's own start and end times (the model's latency) are
untouched.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send


class AddedLatency:
    def __init__(self, app: ASGIApp, latency_ms: float) -> None:
        self.app, self.delay_s = app, latency_ms / 1000.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(self.delay_s)
        await self.app(scope, receive, send)
