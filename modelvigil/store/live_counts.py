"""Counters per deployment and 5-second bucket, kept beside the records for the live Monitoring page.

A page that refreshes every two seconds cannot parse a million JSON records each time; so the
store counts as it writes, in the same transaction as the records themselves (a crash loses
both or neither, a replayed idempotent call counts nothing): calls and predictions per class
when predictions are stored (and the model's summed confidence, for an accuracy estimated before
any label), labelled and correct rows when ground truth (`final_label`) is merged, with the
previous label's contribution taken back when a label is replaced. Reading a range is then a
range scan over the primary key, whatever the number of records.
Counting starts when this table exists: records stored before it are not in it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, MetaData, String, Table, and_, func, literal_column, select
from sqlalchemy.engine import Connection

from modelvigil.protocol import bucket_of

CALLS, PREDICTIONS, LABELLED, CORRECT = "calls", "predictions", "labelled", "correct"
# The model's confidence (the larger of p and 1 - p) summed in thousandths, over the rows that have
# a probability (SCORED): their ratio is the accuracy expected before any label arrives.
CONFIDENCE, SCORED = "confidence_milli", "scored"


def define(metadata: MetaData) -> Table:
    return Table(
        "mv_live_counts",
        metadata,
        Column("model_deployment_crn", String(300), primary_key=True),
        Column("bucket_ms", BigInteger, primary_key=True, autoincrement=False),
        Column("metric", String(32), primary_key=True),
        Column("label", String(200), primary_key=True),  # a class as JSON text, "" when none
        Column("count", BigInteger, nullable=False),
    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _key(value: Any) -> str:
    return orjson.dumps(value).decode()[:200]


def _tally(predictions: list[Any]) -> Counter:
    """Predicted rows per class, classes named as JSON text."""
    try:
        raw = Counter(predictions)  # numbers and strings: counted at C speed, then named once
    except TypeError:  # unhashable classes (lists, objects): name each one
        return Counter(_key(p) for p in predictions)
    named: Counter = Counter()
    for p, n in raw.items():
        named[_key(p)] += n
    return named


def prediction_counts(rows: Iterable[tuple[str, int, Mapping[str, Any]]]) -> Counter:
    """(deployment, start_ms, metrics) of newly stored predictions -> counter increments."""
    counts: Counter = Counter()
    for crn, start_ms, metrics in rows:
        b = bucket_of(start_ms)
        counts[(crn, b, CALLS, "")] += 1
        if "prediction" in metrics:
            for key, n in _tally(_as_list(metrics["prediction"])).items():
                counts[(crn, b, PREDICTIONS, key)] += n
        if "probability" in metrics:
            milli, scored = _confidence(_as_list(metrics["probability"]))
            counts[(crn, b, CONFIDENCE, "")] += milli
            counts[(crn, b, SCORED, "")] += scored
    return counts


def _confidence(probabilities: list[Any]) -> tuple[int, int]:
    """(confidence in thousandths, summed; rows) over the probabilities that are numbers in [0, 1]."""
    usable = [
        p for p in probabilities if isinstance(p, int | float) and not isinstance(p, bool) and 0.0 <= p <= 1.0
    ]
    return sum(round(1000 * max(p, 1.0 - p)) for p in usable), len(usable)


def _judged(prediction: Any, label: Any) -> tuple[int, int]:
    """(labelled rows, correct rows) of one call: a list label goes row by row, a single value
    labels the first row (as the monitoring analysis reads it)."""
    if label is None:
        return 0, 0
    preds = _as_list(prediction)
    pairs = [(p, q) for p, q in zip(preds, _as_list(label), strict=False) if q is not None]
    return len(pairs), sum(1 for p, q in pairs if p == q)


def label_counts(rows: Iterable[tuple[str, int, str, str | None, str]]) -> Counter:
    """(deployment, start_ms, metrics JSON, old label JSON or None, new label JSON) of merged
    labels -> counter deltas (negative where a replaced label counted before)."""
    counts: Counter = Counter()
    for crn, start_ms, metrics_text, old, new in rows:
        prediction = orjson.loads(metrics_text).get("prediction")
        if prediction is None:
            continue
        before = _judged(prediction, orjson.loads(old)) if old is not None else (0, 0)
        after = _judged(prediction, orjson.loads(new))
        b = bucket_of(start_ms)
        counts[(crn, b, LABELLED, "")] += after[0] - before[0]
        counts[(crn, b, CORRECT, "")] += after[1] - before[1]
    return counts


def upsert(table: Table, insert: Any) -> Any:
    """The statement `add` runs: insert, or sum into the existing count (built once per store)."""
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=["model_deployment_crn", "bucket_ms", "metric", "label"],
        set_={"count": table.c.count + stmt.excluded.count},
    )


def add(conn: Connection, statement: Any, counts: Counter) -> None:
    """Add the increments (`statement`: from `upsert`), a chunk of rows per execution."""
    rows = [
        {"model_deployment_crn": crn, "bucket_ms": b, "metric": m, "label": lab, "count": n}
        for (crn, b, m, lab), n in counts.items()
        if n
    ]
    for i in range(0, len(rows), 2_000):
        conn.execute(statement, rows[i : i + 2_000])


def read(
    conn: Connection, table: Table, crn: str, start_ms: int, end_ms: int, step_ms: int
) -> list[tuple[int, str, str, int]]:
    """(bucket start, metric, label, count) summed into `step_ms` buckets within [start, end)."""
    step = literal_column(str(int(step_ms)))  # an int we made: inlined, so the GROUP BY matches
    bucket = ((table.c.bucket_ms // step) * step).label("b")
    stmt = (
        select(bucket, table.c.metric, table.c.label, func.sum(table.c.count))
        .where(
            and_(
                table.c.model_deployment_crn == crn,
                table.c.bucket_ms >= start_ms,
                table.c.bucket_ms < end_ms,
            )
        )
        .group_by(bucket, table.c.metric, table.c.label)
        .order_by(bucket)
    )
    return [(int(b), m, lab, int(n)) for b, m, lab, n in conn.execute(stmt)]


def deployments(conn: Connection, table: Table) -> list[str]:
    return list(conn.execute(select(table.c.model_deployment_crn).distinct()).scalars())
