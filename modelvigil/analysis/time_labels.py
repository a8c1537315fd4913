"""Window start times as a person reads them: to the minute where that tells the windows apart,
else to the second, else to the millisecond (count windows over a burst start seconds apart)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

FORMATS = ("%m-%d %H:%M", "%m-%d %H:%M:%S", "%m-%d %H:%M:%S.%f")


def distinct_times(starts_ms: Sequence[float | None]) -> list[str]:
    """Each start (UTC) at the coarsest of FORMATS under which no two distinct starts read alike;
    a missing one as "–"."""
    moments = [None if ms is None or ms != ms else datetime.fromtimestamp(ms / 1000, UTC) for ms in starts_ms]
    known = {t for t in moments if t is not None}
    chosen = next((p for p in FORMATS if len({t.strftime(p) for t in known}) == len(known)), FORMATS[-1])
    # Milliseconds, not the microseconds %f gives.
    cut = -3 if chosen.endswith("%f") else None
    return ["–" if t is None else t.strftime(chosen)[:cut] for t in moments]
