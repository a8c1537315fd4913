"""A write sent in pieces, and which pieces the receiver acknowledged.

A task retried whole (the outer net, after each call's own retries gave up) sends only the pieces
nobody acknowledged yet. That matters most where a repeat is not harmless: CML's SDK has no
idempotency key for aggregates, so a re-sent aggregate would be stored twice.

The same `Delivery` must be handed to every try of the work; a task that creates its own would
start from nothing on each try.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Piece = TypeVar("Piece")


@dataclass(frozen=True)
class Sent:
    now: int  # pieces this try sent and had acknowledged
    before: int  # pieces an earlier try had acknowledged: not sent again


@dataclass
class Delivery(Generic[Piece]):
    acknowledged: set[Hashable] = field(default_factory=set)

    def send(self, pieces: Iterable[tuple[Hashable, Piece]], deliver: Callable[[Piece], Any]) -> Sent:
        """`deliver` each piece not yet acknowledged, in order; a piece counts as acknowledged once
        `deliver` returns. The first failure propagates, with every piece before it remembered."""
        now = before = 0
        for name, piece in pieces:
            if name in self.acknowledged:
                before += 1
                continue
            deliver(piece)
            self.acknowledged.add(name)
            now += 1
        return Sent(now, before)


def chunked(items: list[Any], size: int) -> Iterable[tuple[int, list[Any]]]:
    """(chunk number, chunk) of `size` items each: numbers stay the same on every try."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    for number, start in enumerate(range(0, len(items), size)):
        yield number, items[start : start + size]
