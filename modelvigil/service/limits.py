"""Limits on request bodies, enforced before any route reads one.

- Only a route that takes a body gets one read: a body sent to `/health`, an unknown path, the
  schema or a GET route is never buffered (the route answers; uvicorn drops what else comes).
- Its size: 413 over the limit, whether a length is declared or not.
- Its time: 408 when the whole body has not arrived `timeout_s` after the headers, so a caller
  that announces megabytes and stalls holds nothing for long.
- Bodies held at once: 503 (with Retry-After, which callers retry) when the bodies being read or
  handled would pass `budget` bytes together, so many big calls at once cannot grow the service
  without bound.
"""

from __future__ import annotations

import asyncio
import time

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelvigil.service.errors import failure
from modelvigil.service.options import ServiceOptions

_NO_BODY = {"GET", "HEAD", "OPTIONS"}


class LimitBodies:
    """ASGI middleware: the limits above, in front of every route."""

    def __init__(self, app: ASGIApp, options: ServiceOptions) -> None:
        self.app, self.limit, self.timeout_s = app, options.max_body_bytes, options.body_timeout_s
        self.budget = max(options.max_bodies_held_bytes, self.limit)  # room for one body at least
        self.held = 0  # bytes of the bodies read or being read now (one event loop: no lock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not _takes_body(scope):
            await self.app(scope, _body_then(b"", receive), send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        claim = int(declared) if declared is not None and declared.isdigit() else 0
        if claim > self.limit:
            await self._too_large(scope, send)
            return
        claimed = [0]  # this request's share of `held`, grown by `_claim`
        try:
            if not self._claim(claimed, claim):
                await self._busy(scope, send)
                return
            body = await self._read(scope, receive, send, claimed)
            if body is not None:
                await self.app(scope, _body_then(body, receive), send)
        finally:
            self.held -= claimed[0]

    def _claim(self, claimed: list[int], size: int) -> bool:
        """Grow this request's share of `held` to `size` bytes; False when that would pass the budget."""
        if size > claimed[0]:
            if self.held + size - claimed[0] > self.budget:
                return False
            self.held += size - claimed[0]
            claimed[0] = size
        return True

    async def _read(self, scope: Scope, receive: Receive, send: Send, claimed: list[int]) -> bytes | None:
        """The whole body, or None once a refusal has been sent. `claimed[0]` bytes are already
        held; a body longer than declared, or of undeclared length, claims more as it comes."""
        deadline = time.monotonic() + self.timeout_s
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                await self._refuse(408, f"request body took over {self.timeout_s:g} s to arrive", scope, send)
                return None
            if message["type"] != "http.request":
                return None  # the caller went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(scope, send)
                return None
            if not self._claim(claimed, size):
                await self._busy(scope, send)
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        await self._refuse(413, f"request body over the limit of {self.limit} bytes", scope, send)

    async def _busy(self, scope: Scope, send: Send) -> None:
        await self._refuse(
            503, "the service is receiving too many large bodies at once: retry shortly", scope, send,
            {"Retry-After": "1"},
        )  # fmt: skip

    @staticmethod
    async def _refuse(
        status: int, message: str, scope: Scope, send: Send, headers: dict[str, str] | None = None
    ) -> None:
        # Connection: close, as the rest of this body is not read: the connection ends with the answer.
        response = failure(status, message, {"Connection": "close", **(headers or {})})
        await response(scope, _nothing, send)


def _takes_body(scope: Scope) -> bool:
    """Whether a route of the app takes this request (path and method): only then is a body read."""
    if scope["method"] in _NO_BODY:
        return False
    routes = getattr(getattr(scope.get("app"), "router", None), "routes", ())
    return any(route.matches(scope)[0] is Match.FULL for route in routes)


def _body_then(body: bytes, receive: Receive) -> Receive:
    """`body` whole as the request's one message, then `receive`'s (a streaming answer waits on
    them for the caller's disconnect; body bytes they pass on past an unread body are not kept)."""
    given = False

    async def body_then_receive() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body_then_receive


async def _nothing() -> Message:
    return {"type": "http.disconnect"}  # a refusal's answer reads nothing more from the caller
