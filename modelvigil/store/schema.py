"""The store's tables and how to reach them (SQLite or Postgres).

CML does not publish its table schema, only the logical record (`read_metrics`' shape), so this
layout is ours:

- `mv_metric_records`: one row per prediction call (`prediction_uuid` unique) or per aggregate
  (`prediction_uuid` NULL, read back as ""), with the metrics the model call tracked as JSON.
- `mv_delayed_metrics`: one row per (prediction uuid, metric key) that arrived later, such as
  ground truth. Keeping them apart makes merging a single upsert (safe under concurrent
  writers, idempotent on retry, later value wins) and keeps each label's arrival time.
- `mv_live_counts`, `mv_live_sums`: the live page's counters (see `live_counts`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from modelvigil.protocol import private_dir, private_file
from modelvigil.store import live_counts
from modelvigil.store.errors import InvalidStoreUrl

SUPPORTED_DIALECTS = ("sqlite", "postgresql")

metadata = MetaData()
_id_type = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER only

records = Table(
    "mv_metric_records",
    metadata,
    Column("id", _id_type, primary_key=True, autoincrement=True),
    Column("model_crn", String(300), nullable=False, default=""),
    Column("model_build_crn", String(300), nullable=False, default=""),
    Column("model_deployment_crn", String(300), nullable=False),
    Column("prediction_uuid", String(64), nullable=True, unique=True),
    Column("idempotency_key", String(200), nullable=True, unique=True),
    # sha256 of the request an idempotency key first came with: the same key with another request
    # is a conflict, never a replay of the first answer. NULL on records stored before it existed.
    Column("request_hash", String(64), nullable=True),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("metrics", Text, nullable=False),
    Index("ix_mv_records_deployment_start", "model_deployment_crn", "start_ms"),
    Index("ix_mv_records_model_start", "model_crn", "start_ms"),
    Index("ix_mv_records_build_start", "model_build_crn", "start_ms"),
)

delayed = Table(
    "mv_delayed_metrics",
    metadata,
    Column("prediction_uuid", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("value", Text, nullable=False),
    Column("arrived_ms", BigInteger, nullable=False),
    Index("ix_mv_delayed_key", "key"),  # lets read_frame list the few keys without a full scan
)

live, live_sums = live_counts.define(metadata)

# The distinct delayed keys by skipping through ix_mv_delayed_key: a handful of index probes
# instead of reading every label (measured 1.5 s at 1M labels on SQLite for SELECT DISTINCT).
DELAYED_KEYS = text(
    "WITH RECURSIVE k(key) AS ("
    " SELECT MIN(key) FROM mv_delayed_metrics"
    " UNION ALL"
    " SELECT (SELECT MIN(key) FROM mv_delayed_metrics WHERE key > k.key) FROM k WHERE k.key IS NOT NULL"
    ") SELECT key FROM k WHERE key IS NOT NULL"
)


def _configure_sqlite(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the one writer; busy_timeout makes writers queue, not fail.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver we install
    dialect = parsed.get_backend_name()
    if dialect not in SUPPORTED_DIALECTS:
        raise InvalidStoreUrl(f"unsupported store dialect {dialect!r}; use one of {SUPPORTED_DIALECTS}")
    if dialect == "sqlite":
        path = parsed.database
        if path and path != ":memory:":
            # Records are the model's inputs: owner only, like service.json (SQLite gives its -wal
            # and -shm files the database file's mode).
            private_dir(Path(path).expanduser().parent)
            private_file(Path(path).expanduser())
        engine = create_engine(parsed, pool_size=8, max_overflow=32, pool_timeout=60)
        event.listen(engine, "connect", _configure_sqlite)
    else:
        engine = create_engine(parsed, pool_pre_ping=True, pool_size=8, max_overflow=32, pool_timeout=60)
    return engine


def ensure_schema(engine: Engine) -> None:
    """Create what is missing: tables, indexes, and columns added since a table was created
    (create_all never alters one). Safe when other processes do the same at the same moment."""
    try:
        metadata.create_all(engine, checkfirst=True)
        for index in delayed.indexes:  # added after the first release: older stores lack it
            index.create(engine, checkfirst=True)
    except OperationalError:
        raise
    except SQLAlchemyError:
        metadata.create_all(engine, checkfirst=True)  # another process created them just now
    if "request_hash" not in {c["name"] for c in inspect(engine).get_columns(records.name)}:
        try:
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {records.name} ADD COLUMN request_hash VARCHAR(64)"))
        except SQLAlchemyError:
            if "request_hash" not in {c["name"] for c in inspect(engine).get_columns(records.name)}:
                raise  # not another process adding it first: a real failure
    if engine.dialect.name == "postgresql":
        _compress_with_lz4(engine)


# A record's metrics can be 100 KB of JSON (a 1,000-row call): Postgres compresses such values as
# it stores them, with pglz by default, which took 15 ms per record against 4 ms with lz4
# (measured: 68k against 242k rows/s). Values stored before keep their compression.
_LZ4_CHECK = text(
    "SELECT attcompression FROM pg_attribute "
    "WHERE attrelid = CAST(:table AS regclass) AND attname = 'metrics'"
)


def _compress_with_lz4(engine: Engine) -> None:
    with engine.connect() as conn:
        if conn.execute(_LZ4_CHECK, {"table": records.name}).scalar() == "l":
            return  # already: no lock taken on a table other processes write
    try:
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {records.name} ALTER COLUMN metrics SET COMPRESSION lz4"))
    except SQLAlchemyError:
        pass  # a server built without lz4 keeps pglz: slower, not wrong
