"""Window start times as a person reads them: to the minute where that tells the windows apart,
else to the second, else to the millisecond (count windows over a burst start seconds apart)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

FORMATS = ("%m-%d %H:%M", "%m-%d %H:%M:%S", "%m-%d %H:%M:%S.%f")


def distinct_times(starts_ms: Sequence[float | None]) -> list[str]:
    """Each start (UTC) at the coarsest of FORMATS under which no two distinct starts read alike;
    a missing one as "–"."""
    known = [datetime.fromtimestamp(ms / 1000, UTC) for ms in starts_ms if ms is not None and ms == ms]
    chosen = FORMATS[-1]
    for pattern in FORMATS:
        if len({t.strftime(pattern) for t in known}) == len(set(known)):
            chosen = pattern
            break
    out = []
    for ms in starts_ms:
        if ms is None or ms != ms:
            out.append("–")
            continue
        text = datetime.fromtimestamp(ms / 1000, UTC).strftime(chosen)
        out.append(text[:-3] if chosen.endswith("%f") else text)  # milliseconds, not microseconds
    return out
