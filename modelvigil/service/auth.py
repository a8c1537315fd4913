"""The API key, checked from the request's headers before any route reads a body.

As ASGI middleware, outside the body limit: an unauthenticated caller is answered 401 at once,
so it cannot make the service buffer megabytes for it first (FastAPI reads a route's JSON body
before its dependencies run, and the body limit reads the body to count it).
"""

from __future__ import annotations

import secrets

from starlette.types import ASGIApp, Receive, Scope, Send

from modelvigil.service.errors import failure

# Everything but the liveness check, the live page's own files, and the schema needs the key.
PROTECTED = ("/model", "/metrics", "/api/v2/", "/monitoring/data")


def refusal(authorization: str | None, expected_token: bytes) -> str | None:
    """Why this `Authorization` header is refused, or None when it carries the key."""
    if not authorization:
        return "missing Authorization header: send 'Authorization: Bearer <API key>'"
    scheme, _, token = authorization.partition(" ")
    token = token.strip()  # before the emptiness check: "Bearer " and spaces is no token
    if scheme.lower() != "bearer" or not token:
        return "Authorization header must be 'Bearer <API key>'"
    if not secrets.compare_digest(token.encode(), expected_token):
        return "User APikey not authorized to access model"
    return None


class BearerFirst:
    def __init__(self, app: ASGIApp, expected_token: bytes | None) -> None:
        self.app, self.expected_token = app, expected_token  # None: the service runs without auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.expected_token is not None
            and scope["path"].startswith(PROTECTED)
        ):
            header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
            reason = refusal(header.decode("latin-1") if header is not None else None, self.expected_token)
            if reason is not None:
                await failure(401, reason)(scope, receive, send)
                return
        await self.app(scope, receive, send)
