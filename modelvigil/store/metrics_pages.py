"""`read_metrics` a page at a time, each record already as CML's JSON text.

Pages follow the records' order (start time, then id) from a cursor, so a reader holds one page
whatever the range, and no page waits on a connection held between pages. A record's stored
metrics text is copied as it is; its delayed metrics are appended to that text unless one of their
names appears in it, in which case the record is parsed and merged (a later value wins, as CML's
store answers). Parsing only then keeps every value exact (orjson would turn integers beyond 64
bits into floats) without paying stdlib json's price on every record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from modelvigil.store.schema import delayed, records

MAX_PAGE = 10_000
# A page stops once its records' metrics pass this many characters (or at one record, if that one
# alone is larger): records may be megabytes each, so a count of records bounds nothing.
PAGE_BUDGET_CHARS = 8_000_000
TOKEN_PATTERN = r"^[0-9]{1,16}\.[0-9]{1,19}\.[0-9]{1,16}$"
_TOKEN = re.compile(TOKEN_PATTERN)
_MAX_ID = 2**63 - 1  # a record id is a BIGINT


@dataclass(frozen=True)
class MetricsPage:
    records: list[str]  # each record as CML's JSON object text
    next_token: str | None  # where the next page starts; None after the last

    def json(self) -> str:
        return "[" + ",".join(self.records) + "]"


@dataclass(frozen=True)
class Cursor:
    start_ms: int  # the last record read: its start time and id
    id: int
    end_ms: int  # the range's end as the first page resolved it, so an open end does not move


def parse_token(token: str | None) -> Cursor | None:
    if token is None:
        return None
    if not _TOKEN.match(token):
        raise ValueError(f"page_token {token[:40]!r} is not one this service gave out")
    start, id_, end = (int(part) for part in token.split("."))
    if id_ > _MAX_ID:  # 19 digits may pass a BIGINT: the database would fail, not say why
        raise ValueError(f"page_token {token[:40]!r} is not one this service gave out")
    return Cursor(start, id_, end)


def read_page(conn: Connection, where: Any, after: Cursor | None, limit: int, end_ms: int) -> MetricsPage:
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"page size must be 1 to {MAX_PAGE}, got {limit}")
    if after is not None:
        later = records.c.start_ms > after.start_ms
        where = and_(where, or_(later, and_(records.c.start_ms == after.start_ms, records.c.id > after.id)))
    order = (records.c.start_ms, records.c.id)
    sizes = conn.execute(select(func.length(records.c.metrics)).where(where).order_by(*order).limit(limit))
    taken = _within_budget([size for (size,) in sizes])
    if not taken.count:
        return MetricsPage([], None)
    rows = conn.execute(select(records).where(where).order_by(*order).limit(taken.count)).all()
    uuids = [r.prediction_uuid for r in rows if r.prediction_uuid]
    late: dict[str, list[tuple[str, str]]] = {}
    if uuids:
        found = conn.execute(
            select(delayed.c.prediction_uuid, delayed.c.key, delayed.c.value)
            .where(delayed.c.prediction_uuid.in_(uuids))
            .order_by(delayed.c.prediction_uuid, delayed.c.key)
        )
        for uuid_, key, value in found:
            late.setdefault(uuid_, []).append((key, value))
    texts = [_record_json(r, late.get(r.prediction_uuid or "", ())) for r in rows]
    more = taken.cut or taken.count == limit
    token = f"{rows[-1].start_ms}.{rows[-1].id}.{end_ms}" if more else None
    return MetricsPage(texts, token)


@dataclass(frozen=True)
class _Taken:
    count: int
    cut: bool  # records beyond the budget were left for the next page


def _within_budget(sizes: list[int]) -> _Taken:
    total = 0
    for i, size in enumerate(sizes):
        total += size
        if total > PAGE_BUDGET_CHARS and i > 0:
            return _Taken(i, True)
    return _Taken(len(sizes), False)


def _record_json(row: Any, late: Sequence[tuple[str, str]]) -> str:
    envelope = orjson.dumps(
        {
            "modelCrn": row.model_crn,
            "modelBuildCrn": row.model_build_crn,
            "modelDeploymentCrn": row.model_deployment_crn,
            "startTimeStampMs": row.start_ms,
            "endTimeStampMs": row.end_ms,
            "predictionUuid": row.prediction_uuid or "",
        }
    ).decode()
    return f'{envelope[:-1]},"metrics":{_merged(row.metrics, late)}}}'


def _merged(text: str, late: Sequence[tuple[str, str]]) -> str:
    if not late:
        return text
    names = [orjson.dumps(key).decode() for key, _ in late]
    if text.endswith("}") and not any(name in text for name in names):
        added = ",".join(f"{name}:{value}" for name, (_, value) in zip(names, late, strict=True))
        return f"{text[:-1]}{',' if text != '{}' else ''}{added}}}"
    metrics = json.loads(text)
    metrics.update((key, json.loads(value)) for key, value in late)
    return json.dumps(metrics, separators=(",", ":"), allow_nan=False)
