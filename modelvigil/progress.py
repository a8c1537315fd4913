"""Progress of long work, for whoever is watching (the CLI's progress bar); no-op when nobody is."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Reporter = Callable[[int, int], None]  # (done, total)

_lock = threading.Lock()
_reporters: list[Reporter] = []


@contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    with _lock:
        _reporters.append(reporter)
    try:
        yield
    finally:
        with _lock:
            _reporters.remove(reporter)


def report(done: int, total: int) -> None:
    with _lock:
        listeners = list(_reporters)
    for listener in listeners:
        listener(done, total)
