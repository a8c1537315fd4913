"""Limits on a request's headers, where uvicorn's httptools parser has none: their size (64 KB)
and how long they may take to arrive (10 s from the first read that ends without them). Without
them one caller could make the service hold megabytes of header, or a connection open forever, a
byte at a time.

Counted on the raw bytes while the headers are still arriving, before the parser keeps them.
"""

from __future__ import annotations

import asyncio

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from modelvigil.service.options import HEADER_TIMEOUT_S, MAX_HEADER_BYTES


def _refusal(status: int, reason: str, message: str) -> bytes:
    body = orjson.dumps({"success": False, "error": message})
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class LimitedHeaders(HttpToolsProtocol):
    max_header_bytes = MAX_HEADER_BYTES
    header_timeout_s = HEADER_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._awaiting_headers = True  # bytes read now belong to the next request's headers
        self._in_headers = False  # a request has begun and its headers have not all come
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        counting = self._awaiting_headers
        if counting:
            self._header_bytes += len(data)
        super().data_received(data)
        if not (counting and self._in_headers):
            # The usual case: the header block came whole in one read (and the request may be
            # complete too, awaiting the next one's headers): no timer. A response that streams
            # for minutes after must not meet one.
            return
        # Still without the end of its headers after this many bytes: refused, whatever comes next.
        if self._header_bytes > self.max_header_bytes:
            self._refuse(
                431, "Request Header Fields Too Large", f"request headers over {self.max_header_bytes} bytes"
            )
        elif self._header_timer is None:  # counted from the first read, which had no end of headers
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def on_message_begin(self) -> None:
        self._in_headers = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._awaiting_headers = self._in_headers = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_headers, self._header_bytes = True, 0  # the next request on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._in_headers and not self.transport.is_closing():
            self._refuse(408, "Request Timeout", f"request headers took over {self.header_timeout_s:g} s")

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._awaiting_headers = self._in_headers = False
        if not self.transport.is_closing():
            self.transport.write(_refusal(status, reason, message))
            self.transport.close()


def limited_headers(
    max_bytes: int = MAX_HEADER_BYTES, timeout_s: float = HEADER_TIMEOUT_S
) -> type[LimitedHeaders]:
    """The protocol class uvicorn runs, with these limits."""
    return type(
        "LimitedHeaders", (LimitedHeaders,), {"max_header_bytes": max_bytes, "header_timeout_s": timeout_s}
    )
