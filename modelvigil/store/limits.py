"""What the store accepts, enforced when it is written, so a read never fails on what a write let in.

`read_frame` joins one table per distinct delayed metric key (SQLite joins at most 64), so the
store holds at most MAX_DELAYED_KEYS of them; the write that would add one more is refused with
what is already there, and every deployment keeps reading. Keys and values are bounded too.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.engine import Connection

from modelvigil.protocol import LABEL_KEY
from modelvigil.store.errors import LimitExceeded
from modelvigil.store.schema import DELAYED_KEYS

log = logging.getLogger(__name__)

MAX_DELAYED_KEYS = 60
MAX_KEY_CHARS = 200  # the delayed key column's width
MAX_VALUE_BYTES = 256 * 1024  # one delayed value as JSON: a label list for 50,000 rows fits

# The store's lock for delayed writes, taken before they read anything: on Postgres an advisory
# lock held to the transaction's end; on SQLite a write that changes nothing, which takes the one
# write lock (a read first would begin on a snapshot that another writer may already have passed).
_LOCK = {
    "postgresql": text("SELECT pg_advisory_xact_lock(5319107334)"),
    "sqlite": text("DELETE FROM mv_delayed_metrics WHERE 0"),
}


class DelayedKeys:
    """The store's distinct delayed keys, remembered once read from the database (keys are never
    removed), so a write with known keys asks the database nothing. A key this process admits is
    not remembered until the database shows it: its write may still fail, and a remembered key
    skips the check."""

    def __init__(self) -> None:
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def admit(self, conn: Connection, keys: Iterable[str]) -> None:
        """Take the store's lock for delayed writes (one at a time, across processes, so two can
        neither pass the key limit together nor judge a label against one the other replaces),
        then raise LimitExceeded, before anything is written, if `keys` would pass the limit."""
        conn.execute(_LOCK[conn.dialect.name])
        new = set(keys) - self._known
        if not new:
            return
        present = set(conn.execute(DELAYED_KEYS).scalars())
        with self._lock:
            self._known |= present
        adding = sorted(new - present)
        if adding and len(present) + len(adding) > MAX_DELAYED_KEYS:
            raise LimitExceeded(
                f"this store holds {len(present)} distinct delayed metric keys and takes at most "
                f"{MAX_DELAYED_KEYS}; this call would add {len(adding)} more ({adding[:5]}): "
                "send the metric under a key the store has, or put several values under one key"
            )


def readable_keys(keys: list[str]) -> list[str]:
    """Of a store past the limit (written before it was enforced), the keys a read joins: the
    label first, then the others in order up to the limit; the rest are named in a warning, so
    monitoring goes on without them rather than failing for every deployment."""
    ordered = sorted(keys, key=lambda k: (k != LABEL_KEY, k))
    kept, left = ordered[:MAX_DELAYED_KEYS], ordered[MAX_DELAYED_KEYS:]
    log.warning(
        "this store holds %d distinct delayed metric keys, more than the %d a read joins: "
        "reading without %s", len(keys), MAX_DELAYED_KEYS, ", ".join(repr(k) for k in left[:10])
        + (f" and {len(left) - 10} more" if len(left) > 10 else ""),
    )  # fmt: skip
    return kept


def aggregate_key(key: str) -> str:
    """An aggregate's idempotency key in a namespace of its own (never a prediction's); a key the
    prefix would push past the column's 200 characters is kept as its digest, still one per key."""
    named = f"aggregate:{key}"
    return named if len(named) <= 200 else f"aggregate:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
