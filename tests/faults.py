"""A fault-injecting wrapper around a real ASGI app, for tests: the service fails some first attempts.

Which calls fail is decided by a hash of the call's idempotency key, so the faults are
repeatable and every call succeeds on its second attempt. Kinds:
- `503`: refused before the model sees it;
- `429`: refused as busy, with `Retry-After: 0`;
- `lost`: the model scores it and the record is stored, then the answer is replaced by a 503,
  as when a proxy drops a response. Only idempotency keeps this from double-counting.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from typing import Any


class FaultInjector:
    def __init__(
        self, app: Any, share_503: float = 0.1, share_429: float = 0.1, share_lost: float = 0.05
    ) -> None:
        self.app = app
        self.shares = (("503", share_503), ("429", share_429), ("lost", share_lost))
        self.seen: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _fault_for(self, key: str) -> str | None:
        with self._lock:
            self.seen[key] += 1
            if self.seen[key] > 1:
                return None
        draw = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        edge = 0.0
        for kind, share in self.shares:
            edge += share
            if draw < edge:
                with self._lock:
                    self.injected[kind] += 1
                return kind
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/model":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        key = headers.get(b"idempotency-key", b"").decode()
        fault = self._fault_for(key) if key else None
        if fault in ("503", "429"):
            await _reply(send, int(fault), {"Retry-After": "0"} if fault == "429" else {})
            return
        if fault == "lost":

            async def swallow(message: Any) -> None:  # the app's answer never reaches the client
                return None

            await self.app(scope, receive, swallow)
            await _reply(send, 503, {})
            return
        await self.app(scope, receive, send)


async def _reply(send: Any, status: int, extra: dict[str, str]) -> None:
    body = json.dumps({"success": False, "error": f"injected {status}"}).encode()
    headers = [
        (b"content-type", b"application/json"),
        *((k.lower().encode(), v.encode()) for k, v in extra.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
