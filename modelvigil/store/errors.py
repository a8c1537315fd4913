"""The store's own errors: the service turns them into 503 and 404 answers."""

from __future__ import annotations

from collections.abc import Sequence


class StoreError(Exception):
    """Base of the store's own errors."""


class InvalidStoreUrl(StoreError, ValueError):
    """The store URL names a database this store does not support, or is not a URL."""


class StoreUnavailable(StoreError):
    """The database could not be reached or refused the write; nothing was stored."""


class UnreadableRecords(StoreError, ValueError):
    """Stored records that cannot be read back (changed outside modelvigil: a write never stores them)."""


class UnknownPredictions(StoreError):
    """Delayed metrics named prediction uuids the store has no record of."""

    def __init__(self, uuids: Sequence[str]) -> None:
        self.uuids = list(uuids)
        shown = ", ".join(self.uuids[:20]) + (" ..." if len(self.uuids) > 20 else "")
        super().__init__(f"{len(self.uuids)} unknown prediction uuid(s): {shown}")


class IdempotencyConflict(StoreError):
    """An idempotency key came again with a different request: neither stored nor replayed."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"Idempotency-Key {key!r} was used before with a different request; nothing was stored: "
            "send this request with a new key"
        )


class LimitExceeded(StoreError):
    """A write the store refuses because reading it back would fail or cost too much; nothing stored."""
