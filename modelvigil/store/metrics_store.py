"""The Model Metrics Store: one record per prediction as CML keeps it, plus aggregate records.

Tables: see `schema`. Two read paths: `read_metrics` returns CML's `{"metrics": [...]}`;
`read_frame` returns one DataFrame row per scored row, parsed column-wise by Arrow, never one
Python dict per record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import and_, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from modelvigil.protocol import LABEL_KEY, now_ms
from modelvigil.store import live_counts, metrics_pages
from modelvigil.store.bulk import BulkWrites
from modelvigil.store.errors import IdempotencyConflict, StoreUnavailable, UnknownPredictions
from modelvigil.store.frame_query import frame_block, frame_statement, raw_cursor, rows_statement, unreadable
from modelvigil.store.limits import MAX_DELAYED_KEYS, DelayedKeys, aggregate_key, readable_keys
from modelvigil.store.metrics_pages import MetricsPage
from modelvigil.store.record_frames import aggregates_frame, dumps_json, empty_frame, metrics_objects
from modelvigil.store.schema import (
    DELAYED_KEYS,
    delayed,
    ensure_schema,
    live,
    live_sums,
    make_engine,
    records,
)

_CHUNK = 5_000  # rows per statement: under every driver's parameter limit
_READ_BLOCK = 100_000  # records parsed at a time by read_frame


@dataclass(frozen=True)
class PredictionRecord:
    model_crn: str
    model_build_crn: str
    model_deployment_crn: str
    prediction_uuid: str
    start_ms: int
    end_ms: int
    metrics: Mapping[str, Any]
    idempotency_key: str | None = None
    request_hash: str | None = None  # of the request the key came with: another request conflicts


@dataclass(frozen=True)
class StoredPrediction:
    prediction_uuid: str
    metrics: dict[str, Any]
    replayed: bool  # True when the idempotency key had been seen and nothing new was written
    conflict: bool = False  # the key was seen with another request: nothing written, nothing replayed


class MetricsStore:
    """All reads and writes of prediction and aggregate records. Thread-safe; share one per process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        # Statements built once: building them per call showed in the service's profile.
        self._count_live = live_counts.Statements(live, live_sums, self._insert)
        self._bulk = BulkWrites(self.engine.dialect.name, records, delayed)
        self._schema_ready = False
        self._delayed_keys = DelayedKeys()
        with suppress(StoreUnavailable):  # a store that is down now may be up by the first call
            self._ensure_schema()

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        try:
            ensure_schema(self.engine)
        except OperationalError as exc:
            raise unreadable(exc) or StoreUnavailable(f"metrics store unreachable: {_reason(exc)}") from exc
        self._schema_ready = True

    @contextmanager
    def _connect(self, write: bool) -> Iterator[Connection]:
        """A connection (a transaction when writing); an unreachable database is StoreUnavailable."""
        self._ensure_schema()
        try:
            with self.engine.begin() if write else self.engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise unreadable(exc) or StoreUnavailable(f"metrics store unreachable: {_reason(exc)}") from exc

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with self._connect(write=False) as conn:
            conn.execute(select(1))

    # ---- writes -------------------------------------------------------------------------------

    def record_prediction(self, rec: PredictionRecord) -> StoredPrediction:
        """Store one prediction; with an idempotency key seen before, return the first one instead."""
        return self.record_predictions([rec])[0]

    def record_predictions(self, recs: Sequence[PredictionRecord]) -> list[StoredPrediction]:
        """Store many predictions in one transaction, in order.

        A record whose idempotency key is already stored (or appears earlier in `recs`) is not
        written; its result is the first record with that key, marked `replayed`.
        """
        first_of_key: dict[str, int] = {}
        rows = []
        for i, rec in enumerate(recs):
            if rec.idempotency_key is not None:
                if rec.idempotency_key in first_of_key:
                    continue
                first_of_key[rec.idempotency_key] = i
            rows.append(
                {
                    "model_crn": rec.model_crn,
                    "model_build_crn": rec.model_build_crn,
                    "model_deployment_crn": rec.model_deployment_crn,
                    "prediction_uuid": rec.prediction_uuid,
                    "idempotency_key": rec.idempotency_key,
                    "request_hash": rec.request_hash,
                    "start_ms": rec.start_ms,
                    "end_ms": rec.end_ms,
                    "metrics": dumps_json(dict(rec.metrics)),
                }
            )
        if not rows:
            return []
        earlier: dict[str, StoredPrediction] = {}
        with self._connect(write=True) as conn:
            inserted: set[str] = set()
            for chunk in _chunks(rows, _CHUNK):
                inserted |= self._bulk.insert_records(conn, chunk, keyed=bool(first_of_key))
            counts = live_counts.prediction_counts(
                (r.model_deployment_crn, r.start_ms, r.metrics) for r in recs if r.prediction_uuid in inserted
            )
            live_counts.add(conn, self._count_live, counts)
            lost_keys = [k for k, i in first_of_key.items() if recs[i].prediction_uuid not in inserted]
            hashes: dict[str, str | None] = {}
            for chunk in _chunks(lost_keys, _CHUNK):
                wanted = ("idempotency_key", "prediction_uuid", "metrics", "request_hash")
                for key, uuid_, metrics, request_hash in self._bulk.stored_among(
                    conn, "idempotency_key", chunk, *wanted
                ):
                    earlier[key] = StoredPrediction(uuid_, json.loads(metrics), replayed=True)
                    hashes[key] = request_hash
        for key, i in first_of_key.items():
            hashes.setdefault(key, recs[i].request_hash)
        return [self._answer(i, rec, first_of_key, earlier, hashes, recs) for i, rec in enumerate(recs)]

    @staticmethod
    def _answer(
        i: int,
        rec: PredictionRecord,
        first_of_key: Mapping[str, int],
        earlier: Mapping[str, StoredPrediction],
        hashes: Mapping[str, str | None],
        recs: Sequence[PredictionRecord],
    ) -> StoredPrediction:
        """What record `i` of a batch gets: itself, the first answer to its key, or a conflict."""
        key = rec.idempotency_key
        if key is None or (key not in earlier and first_of_key[key] == i):
            return StoredPrediction(rec.prediction_uuid, dict(rec.metrics), replayed=False)
        known = hashes.get(key)
        if known is not None and rec.request_hash is not None and known != rec.request_hash:
            return StoredPrediction(rec.prediction_uuid, {}, replayed=False, conflict=True)
        if key in earlier:
            return earlier[key]
        first = recs[first_of_key[key]]  # repeated within this batch: the first one's answer
        return StoredPrediction(first.prediction_uuid, dict(first.metrics), replayed=True)

    def record_aggregate(
        self,
        metrics: Mapping[str, Any],
        start_ms: int,
        end_ms: int,
        *,
        model_deployment_crn: str,
        model_crn: str = "",
        model_build_crn: str = "",
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> bool:
        """Insert an aggregate record. Returns False when `idempotency_key` was stored before with
        the same request; raises IdempotencyConflict when it came with another one."""
        if end_ms < start_ms:
            raise ValueError(f"end_timestamp_ms ({end_ms}) is before start_timestamp_ms ({start_ms})")
        row = {
            "model_crn": model_crn,
            "model_build_crn": model_build_crn,
            "model_deployment_crn": model_deployment_crn,
            "prediction_uuid": None,
            "idempotency_key": None if idempotency_key is None else aggregate_key(idempotency_key),
            "request_hash": request_hash,
            "start_ms": start_ms,
            "end_ms": end_ms,
            "metrics": dumps_json(dict(metrics)),
        }
        stmt = self._insert(records).values(**row)
        if idempotency_key is not None:
            stmt = stmt.on_conflict_do_nothing(index_elements=["idempotency_key"])
        # RETURNING, not rowcount: psycopg reported no row count for an insert that stored one.
        with self._connect(write=True) as conn:
            if conn.execute(stmt.returning(records.c.id)).first() is not None:
                return True
            known = conn.execute(
                select(records.c.request_hash).where(records.c.idempotency_key == row["idempotency_key"])
            ).scalar_one_or_none()
        if known is not None and request_hash is not None and known != request_hash:
            raise IdempotencyConflict(str(idempotency_key))
        return False

    def merge_delayed(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Merge delayed metrics into predictions, all or nothing. Returns the number of values written.

        Raises UnknownPredictions (writing nothing) when any uuid has no prediction record.
        """
        latest: dict[tuple[str, str], str] = {}
        for uuid_, metrics in items:
            for key, value in metrics.items():
                latest[(uuid_, key)] = dumps_json(value)  # later value wins, within a batch too
        if not latest:
            return 0
        arrived = now_ms()
        rows = [
            {"prediction_uuid": u, "key": k, "value": v, "arrived_ms": arrived}
            for (u, k), v in latest.items()
        ]
        uuids = sorted({u for u, _ in latest})

        labels = {u: v for (u, k), v in latest.items() if k == LABEL_KEY}

        def write(conn: Connection) -> None:
            self._delayed_keys.admit(conn, {k for _, k in latest})
            known: set[str] = set()
            judged = []  # for the live counters: what each label replaces, on which prediction
            for chunk in _chunks(uuids, _CHUNK):
                if not labels:
                    known.update(
                        u
                        for (u,) in self._bulk.stored_among(conn, "prediction_uuid", chunk, "prediction_uuid")
                    )
                    continue
                for uuid_, crn, start_ms, metrics, previous in self._bulk.predictions_to_label(
                    conn, chunk, LABEL_KEY
                ):
                    known.add(uuid_)
                    if uuid_ in labels:
                        judged.append((crn, start_ms, metrics, previous, labels[uuid_]))
            unknown = [u for u in uuids if u not in known]
            if unknown:
                raise UnknownPredictions(unknown)
            live_counts.add(conn, self._count_live, live_counts.label_counts(judged))
            for chunk in _chunks(rows, _CHUNK):
                self._bulk.upsert_delayed(conn, chunk)

        self._write(write)
        return len(rows)

    def _write(self, work: Any) -> None:
        with self._connect(write=True) as conn:
            work(conn)

    # ---- reads --------------------------------------------------------------------------------

    def _where(
        self,
        model_deployment_crn: str | None,
        model_crn: str | None,
        model_build_crn: str | None,
        start_ms: int | None,
        end_ms: int | None,
    ) -> Any:
        if not (model_deployment_crn or model_crn or model_build_crn):
            raise ValueError("give at least one of model_deployment_crn, model_crn, model_build_crn")
        start = 0 if start_ms is None else int(start_ms)
        end = now_ms() if end_ms is None else int(end_ms)
        if end < start:
            raise ValueError(f"end_timestamp_ms ({end}) is before start_timestamp_ms ({start})")
        cond = [records.c.start_ms >= start, records.c.start_ms <= end]
        if model_deployment_crn:
            cond.append(records.c.model_deployment_crn == model_deployment_crn)
        if model_crn:
            cond.append(records.c.model_crn == model_crn)
        if model_build_crn:
            cond.append(records.c.model_build_crn == model_build_crn)
        return and_(*cond)

    def read_metrics(
        self,
        model_deployment_crn: str | None = None,
        start_timestamp_ms: int | None = None,
        end_timestamp_ms: int | None = None,
        model_crn: str | None = None,
        model_build_crn: str | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """CML's `read_metrics` result: `{"metrics": [record, ...]}` in time order."""
        query = (model_deployment_crn, start_timestamp_ms, end_timestamp_ms, model_crn, model_build_crn)
        out: list[dict[str, Any]] = []
        page = self.read_metrics_page(*query)
        out += json.loads(page.json())
        while page.next_token is not None:
            page = self.read_metrics_page(*query, page_token=page.next_token)
            out += json.loads(page.json())
        return {"metrics": out}

    def read_metrics_page(
        self,
        model_deployment_crn: str | None = None,
        start_timestamp_ms: int | None = None,
        end_timestamp_ms: int | None = None,
        model_crn: str | None = None,
        model_build_crn: str | None = None,
        *,
        page_token: str | None = None,
        page_size: int = 1_000,
    ) -> MetricsPage:
        """One page of `read_metrics`, records as JSON text; `next_token` asks for the next (see
        `metrics_pages`). An open end is fixed by the first page and carried in its token."""
        after = metrics_pages.parse_token(page_token)
        end = end_timestamp_ms if end_timestamp_ms is not None else after.end_ms if after else now_ms()
        where = self._where(model_deployment_crn, model_crn, model_build_crn, start_timestamp_ms, end)
        with self._connect(write=False) as conn:
            return metrics_pages.read_page(conn, where, after, page_size, int(end))

    def live_series(
        self, model_deployment_crn: str, start_ms: int, end_ms: int, step_ms: int
    ) -> tuple[list[tuple[int, str, str, int]], list[tuple[int, str, float]]]:
        """The live counters summed per `step_ms` bucket (see `live_counts.read`)."""
        with self._connect(write=False) as conn:
            return live_counts.read(conn, self._count_live, model_deployment_crn, start_ms, end_ms, step_ms)

    def live_deployments(self) -> list[str]:
        with self._connect(write=False) as conn:
            return live_counts.deployments(conn, live)

    def count(self, model_deployment_crn: str, *, aggregates: bool = False) -> int:
        cond = records.c.prediction_uuid.is_(None) if aggregates else records.c.prediction_uuid.is_not(None)
        with self._connect(write=False) as conn:
            return conn.execute(
                select(func.count()).where(records.c.model_deployment_crn == model_deployment_crn, cond)
            ).scalar_one()

    def read_frame(
        self,
        model_deployment_crn: str | None = None,
        start_timestamp_ms: int | None = None,
        end_timestamp_ms: int | None = None,
        model_crn: str | None = None,
        model_build_crn: str | None = None,
    ) -> pd.DataFrame:
        """Prediction records as one row per scored row, delayed metrics merged (shape: see
        `record_frames`). Read in blocks, so memory holds one block's JSON at a time."""
        parts = list(
            self.iter_frames(
                model_deployment_crn, start_timestamp_ms, end_timestamp_ms, model_crn, model_build_crn
            )
        )
        if not parts:
            return empty_frame()
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)

    def iter_frames(
        self,
        model_deployment_crn: str | None = None,
        start_timestamp_ms: int | None = None,
        end_timestamp_ms: int | None = None,
        model_crn: str | None = None,
        model_build_crn: str | None = None,
        block: int = _READ_BLOCK,
    ) -> Iterator[pd.DataFrame]:
        """`read_frame`'s rows, `block` records at a time, in time order (server-side cursor on
        Postgres): the streamed monitoring reads any range in bounded memory."""
        where = self._where(
            model_deployment_crn, model_crn, model_build_crn, start_timestamp_ms, end_timestamp_ms
        )
        where = and_(where, records.c.prediction_uuid.is_not(None))
        with self._connect(write=False) as conn:
            keys = list(conn.execute(DELAYED_KEYS).scalars())
            if len(keys) > MAX_DELAYED_KEYS:  # a store written before the limit was enforced
                keys = readable_keys(keys)
            stmt = frame_statement(keys, where, self.engine.dialect)
            # The driver's own cursor: SQLAlchemy's Row objects cost more than the parsing does.
            with raw_cursor(conn, stmt, self.engine.dialect) as cursor:
                while rows := cursor.fetchmany(block):
                    yield frame_block(rows, keys)

    def count_rows(
        self,
        model_deployment_crn: str,
        start_timestamp_ms: int | None = None,
        end_timestamp_ms: int | None = None,
    ) -> int:
        """How many rows `iter_frames` will give, counted by the database (nothing parsed here)."""
        where = and_(
            self._where(model_deployment_crn, None, None, start_timestamp_ms, end_timestamp_ms),
            records.c.prediction_uuid.is_not(None),
        )
        with self._connect(write=False) as conn:
            return int(conn.execute(rows_statement(where, self.engine.dialect)).scalar_one())

    def read_aggregates_frame(
        self,
        model_deployment_crn: str | None = None,
        start_timestamp_ms: int | None = None,
        end_timestamp_ms: int | None = None,
        model_crn: str | None = None,
        model_build_crn: str | None = None,
    ) -> pd.DataFrame:
        """Aggregate records (`track_aggregate_metrics`): `start_ms`, `end_ms` and one column per metric."""
        where = self._where(
            model_deployment_crn, model_crn, model_build_crn, start_timestamp_ms, end_timestamp_ms
        )
        with self._connect(write=False) as conn:
            rows = conn.execute(
                select(records.c.start_ms, records.c.end_ms, records.c.metrics)
                .where(where, records.c.prediction_uuid.is_(None))
                .order_by(records.c.start_ms, records.c.id)
            ).all()
        return aggregates_frame(
            [r.start_ms for r in rows],
            [r.end_ms for r in rows],
            metrics_objects([r.metrics for r in rows], [f"the aggregate at {r.start_ms} ms" for r in rows]),
        )


def _reason(exc: OperationalError) -> str:
    """The driver's own first line (psycopg's run to several, with a hint for a DBA)."""
    text = str(exc.orig).strip()
    return text.splitlines()[0] if text else type(exc.orig).__name__


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
