"""A `/model` call's body: its JSON, its access key and its rows, or why it is refused.

No FastAPI here: big bodies are parsed in a process of their own (`parse_pool`), which imports
only this and the payload rules.
"""

from __future__ import annotations

import secrets

import numpy as np
import orjson

from modelvigil.service.payload import PayloadError, parse_request


class CallRefused(Exception):
    """The call cannot be scored: `status` and `message` become the service's error answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)  # both in args: the exception crosses a process boundary
        self.status, self.message = status, message


def call_rows(
    raw: bytes, access_key_param: str | None, served_keys: tuple[str, ...]
) -> tuple[np.ndarray, str]:
    """The call's feature matrix and the access key (one of `served_keys`) of the model it calls,
    or CallRefused saying what is wrong with it."""
    try:
        # orjson: stdlib json was a third of the CPU of a 1,000-row call; NaN/Infinity are
        # refused by it as they must be (not JSON).
        body = orjson.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CallRefused(400, f"malformed JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise CallRefused(422, "body must be a JSON object with 'accessKey' and 'request'")
    access_key = access_key_param or body.get("accessKey")
    if not access_key:
        raise CallRefused(422, "no access key: put 'accessKey' in the body or '?accessKey=' in the URL")
    if not isinstance(access_key, str) or not _served(access_key, served_keys):
        raise CallRefused(404, "no model deployment has that access key")
    if "request" not in body:
        raise CallRefused(422, "body has no 'request' object")
    try:
        return parse_request(body["request"]), access_key
    except PayloadError as exc:
        raise CallRefused(422, str(exc)) from None


def _served(access_key: str, served_keys: tuple[str, ...]) -> bool:
    """Whether `access_key` is one of `served_keys`, compared with each in constant time."""
    given = access_key.encode()
    matches = [secrets.compare_digest(given, key.encode()) for key in served_keys]
    return any(matches)
