"""Where this home's service listens while it runs: `serve` writes it, `info` and the demo read
it, so that a service started on another port is still found and shown as it is.

The record names the process; a record whose process is gone (a killed service) is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from modelvigil.protocol import private_dir, private_file
from modelvigil.settings import Settings

RUNNING_FILE = "running.json"


def _path(settings: Settings) -> Path:
    return settings.home / RUNNING_FILE


@contextmanager
def recorded(settings: Settings, url: str, models: list[str]) -> Iterator[None]:
    """Record `url` as this home's service, serving `models` (its default first), for as long as
    the block runs."""
    private_dir(settings.home)
    path = private_file(_path(settings))
    record = {"url": url, "pid": os.getpid(), "models": models, "store": _store_tag(settings)}
    path.write_text(json.dumps(record))
    try:
        yield
    finally:
        with suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == os.getpid():  # not a later service's
                path.unlink()


def running_url(settings: Settings) -> str | None:
    """The URL this home's service recorded, if its process still runs."""
    record = _record(settings)
    return None if record is None else str(record["url"])


def served_models(settings: Settings, *, same_store: bool = False) -> list[str]:
    """The models this home's running service serves, its default first; [] when none runs (or,
    `same_store`, when it writes another store than the one `settings` name)."""
    record = _record(settings)
    models = record.get("models") if record is not None else None
    if not isinstance(models, list) or (same_store and record.get("store") != _store_tag(settings)):
        return []
    return [str(m) for m in models]


def _store_tag(settings: Settings) -> str:
    """Which store, without its URL (which may hold a password) in the file."""
    return hashlib.sha256(settings.resolved_store_url().encode()).hexdigest()


def _record(settings: Settings) -> dict | None:
    """What the running service recorded, if its process still runs."""
    try:
        record = json.loads(_path(settings).read_text())
        pid, _url = int(record["pid"]), str(record["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # another user's process of that number: not our service
        return None
    # A killed service leaves its record; its number may since belong to another program.
    with suppress(OSError):
        if b"serve" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    return record
