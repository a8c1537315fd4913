"""Batch writes in one statement with a fixed text: arrays and `unnest` on Postgres.

A multi-row `VALUES` insert of 5,000 records carries 45,000 placeholders; psycopg parses and
converts such a query text anew for every batch (texts that long are not cached), which cost more
than the insert itself (measured: 60% of `record_predictions` on Postgres). With one array per
column the statement has nine parameters whatever the batch size, its text never changes, and the
rows go in one round trip. SQLite has no arrays: it keeps SQLAlchemy's multi-row inserts, which
it runs in-process at no such cost.

Row order is kept (`WITH ORDINALITY`): ids follow the batch's order, as the keyset pages and the
ledger expect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, and_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

RECORD_COLUMNS = (
    ("model_crn", "varchar"),
    ("model_build_crn", "varchar"),
    ("model_deployment_crn", "varchar"),
    ("prediction_uuid", "varchar"),
    ("idempotency_key", "varchar"),
    ("request_hash", "varchar"),
    ("start_ms", "bigint"),
    ("end_ms", "bigint"),
    ("metrics", "text"),
)
DELAYED_COLUMNS = (
    ("prediction_uuid", "varchar"),
    ("key", "varchar"),
    ("value", "text"),
    ("arrived_ms", "bigint"),
)


def _unnest_insert(table: str, columns: Sequence[tuple[str, str]], tail: str) -> str:
    names = ", ".join(name for name, _ in columns)
    arrays = ", ".join(f"%b::{kind}[]" for _, kind in columns)
    return (
        f"INSERT INTO {table} ({names}) SELECT {names} FROM unnest({arrays}) WITH ORDINALITY "
        f"AS batch({names}, ord) ORDER BY ord {tail}"
    )


class BulkWrites:
    """The store's batch statements for its dialect, built once."""

    def __init__(self, dialect: str, records: Table, delayed: Table) -> None:
        self.postgres = dialect == "postgresql"
        self.records, self.delayed = records, delayed
        insert = postgresql.insert if self.postgres else sqlite.insert
        self._plain = insert(records).returning(records.c.prediction_uuid)
        self._keyed = (
            insert(records)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(records.c.prediction_uuid)
        )
        upsert = insert(delayed)
        self._delayed = upsert.on_conflict_do_update(
            index_elements=["prediction_uuid", "key"],
            set_={"value": upsert.excluded.value, "arrived_ms": upsert.excluded.arrived_ms},
        )
        self._pg_records_plain = _unnest_insert(records.name, RECORD_COLUMNS, "RETURNING prediction_uuid")
        self._pg_records_keyed = _unnest_insert(
            records.name, RECORD_COLUMNS, "ON CONFLICT (idempotency_key) DO NOTHING RETURNING prediction_uuid"
        )
        self._pg_delayed = _unnest_insert(
            delayed.name,
            DELAYED_COLUMNS,
            "ON CONFLICT (prediction_uuid, key) DO UPDATE "
            "SET value = EXCLUDED.value, arrived_ms = EXCLUDED.arrived_ms",
        )

    def insert_records(self, conn: Connection, rows: Sequence[dict[str, Any]], keyed: bool) -> set[str]:
        """Insert prediction records (dicts of `RECORD_COLUMNS`); the uuids actually stored (a
        record whose idempotency key is stored already is skipped when `keyed`)."""
        if not self.postgres:
            return set(conn.execute(self._keyed if keyed else self._plain, list(rows)).scalars().all())
        sql = self._pg_records_keyed if keyed else self._pg_records_plain
        arrays = tuple([row[name] for row in rows] for name, _ in RECORD_COLUMNS)
        return {uuid for (uuid,) in conn.exec_driver_sql(sql, arrays).fetchall()}

    def upsert_delayed(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert delayed metrics, a later value replacing an earlier one for the same key."""
        if not self.postgres:
            conn.execute(self._delayed, list(rows))
            return
        arrays = tuple([row[name] for row in rows] for name, _ in DELAYED_COLUMNS)
        conn.exec_driver_sql(self._pg_delayed, arrays)

    def predictions_to_label(
        self, conn: Connection, uuids: Sequence[str], label_key: str
    ) -> list[tuple[str, str, int, str, str | None]]:
        """(uuid, deployment, start_ms, metrics, current label or None) of the stored predictions
        among `uuids`, locked for update (one label update per prediction at a time).

        On Postgres the uuids drive the join (a nested loop over the unique indexes): a planner
        that believes a freshly filled table tiny would otherwise hash the whole label table for
        every batch."""
        old = self.delayed.alias("old")
        r = self.records
        if not self.postgres:
            query = (
                select(r.c.prediction_uuid, r.c.model_deployment_crn, r.c.start_ms, r.c.metrics, old.c.value)
                .select_from(
                    r.outerjoin(
                        old, and_(old.c.prediction_uuid == r.c.prediction_uuid, old.c.key == label_key)
                    )
                )
                .where(r.c.prediction_uuid.in_(uuids))
            )
            return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]
        sql = (
            f"SELECT r.prediction_uuid, r.model_deployment_crn, r.start_ms, r.metrics, old.value "
            f"FROM unnest(%b::varchar[]) AS wanted(uuid) "
            f"JOIN {r.name} r ON r.prediction_uuid = wanted.uuid "
            f"LEFT JOIN {self.delayed.name} old ON old.prediction_uuid = r.prediction_uuid AND old.key = %s "
            f"FOR UPDATE OF r"
        )
        return [tuple(row) for row in conn.exec_driver_sql(sql, (list(uuids), label_key)).fetchall()]

    def stored_among(self, conn: Connection, column: str, values: Sequence[str], *wanted: str) -> list[Any]:
        """Columns `wanted` of the records whose `column` (a unique one) is among `values`."""
        table = self.records
        if not self.postgres:
            query = select(*(table.c[name] for name in wanted)).where(table.c[column].in_(values))
            return [tuple(row) for row in conn.execute(query)]
        names = ", ".join(f"r.{name}" for name in wanted)
        sql = (
            f"SELECT {names} FROM unnest(%b::varchar[]) AS wanted(v) "
            f"JOIN {table.name} r ON r.{column} = wanted.v"
        )
        return [tuple(row) for row in conn.exec_driver_sql(sql, (list(values),)).fetchall()]
