"""Counters per deployment and 5-second bucket, kept beside the records for the live Monitoring page.

A page that refreshes every two seconds cannot parse a million JSON records each time; so the
store counts as it writes, in the same transaction as the records themselves (a crash loses
both or neither, a replayed idempotent call counts nothing): calls, and predictions per class
when predictions are stored (and the model's summed confidence, for an accuracy estimated before
any label), labelled and correct rows when ground truth (`final_label`) is merged, with the
previous label's contribution taken back when a label is replaced. Reading a range is then a
range scan over the primary key, whatever the number of records.

Any model: a prediction that is a number with a fraction (a regression's) is not a class; it
is counted as a number and summed (`mv_live_sums`: the mean prediction, and with its label the
absolute and squared error). Text, booleans and whole numbers are classes, at most
`CLASSES_PER_BUCKET` named per bucket and the rest counted as `OTHER`, so 6,000 distinct
predictions keep a bucket to a few rows. The cap is checked against the bucket's stored classes
in the writing transaction, read only when a call brings a class not yet seen there (see
`StoredClasses`); writers racing on one bucket may each name one more, never more.
Counting starts when these tables exist: records stored before are not in them.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from sqlalchemy import BigInteger, Column, Float, MetaData, String, Table, and_, func, literal_column, select
from sqlalchemy.engine import Connection

from modelvigil.protocol import bucket_of

CALLS, PREDICTIONS, LABELLED, CORRECT = "calls", "predictions", "labelled", "correct"
# The model's confidence (the larger of p and 1 - p) summed in thousandths, over the rows that have
# a probability (SCORED): their ratio is the accuracy expected before any label arrives.
CONFIDENCE, SCORED = "confidence_milli", "scored"
# Rows whose prediction is a number with a fraction, and those of them with a numeric label.
NUMERIC, NUMERIC_LABELLED = "numeric", "numeric_labelled"
# Sums (in `mv_live_sums`) over those rows.
PREDICTION_SUM, ABS_ERROR_SUM, SQUARED_ERROR_SUM = "prediction", "abs_error", "squared_error"
CLASSES_PER_BUCKET = 20
OTHER = "(other)"  # not JSON, so never the text of a real class (a class "(other)" is '"(other)"')


def _bucket_key() -> list[Column]:
    return [
        Column("model_deployment_crn", String(300), primary_key=True),
        Column("bucket_ms", BigInteger, primary_key=True, autoincrement=False),
        Column("metric", String(32), primary_key=True),
    ]


def define(metadata: MetaData) -> tuple[Table, Table]:
    counts = Table(
        "mv_live_counts",
        metadata,
        *_bucket_key(),
        Column("label", String(200), primary_key=True),  # a class as JSON text, "" when none
        Column("count", BigInteger, nullable=False),
    )
    sums = Table(
        "mv_live_sums", metadata, *_bucket_key(), Column("total", Float(precision=53), nullable=False)
    )
    return counts, sums


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _key(value: Any) -> str:
    return orjson.dumps(value).decode()[:200]


def _number(value: Any) -> float | None:
    """A finite number (not a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _is_class(value: Any) -> bool:
    number = _number(value)
    return number is None or number.is_integer()


class LiveCounts:
    """Increments to counters (integers) and sums (floats), keyed by (deployment, bucket, metric, label)."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.sums: defaultdict[tuple[str, int, str], float] = defaultdict(float)

    def __bool__(self) -> bool:
        return any(self.counts.values()) or any(self.sums.values())


def prediction_counts(rows: Iterable[tuple[str, int, Mapping[str, Any]]]) -> LiveCounts:
    """(deployment, start_ms, metrics) of newly stored predictions -> increments."""
    out = LiveCounts()
    counts, sums = out.counts, out.sums
    for crn, start_ms, metrics in rows:
        b = bucket_of(start_ms)
        counts[(crn, b, CALLS, "")] += 1
        if "prediction" in metrics:
            for p in _as_list(metrics["prediction"]):
                if _is_class(p):
                    counts[(crn, b, PREDICTIONS, _key(p))] += 1
                else:
                    counts[(crn, b, NUMERIC, "")] += 1
                    sums[(crn, b, PREDICTION_SUM)] += float(p)
        if "probability" in metrics:
            milli, scored = _confidence(_as_list(metrics["probability"]))
            counts[(crn, b, CONFIDENCE, "")] += milli
            counts[(crn, b, SCORED, "")] += scored
    return out


def _confidence(probabilities: list[Any]) -> tuple[int, int]:
    """(confidence in thousandths, summed; rows) over the probabilities that are numbers in [0, 1]."""
    usable = [x for x in map(_number, probabilities) if x is not None and 0.0 <= x <= 1.0]
    return sum(round(1000 * max(p, 1.0 - p)) for p in usable), len(usable)


def _judged(prediction: Any, label: Any) -> tuple[int, int, int, float, float]:
    """(labelled rows, correct rows, numeric labelled rows, summed |error|, summed error²) of one
    call: a list label goes row by row, a single value labels the first row (as the monitoring
    analysis reads it). Errors are counted where a fractional prediction meets a numeric label."""
    if label is None:
        return 0, 0, 0, 0.0, 0.0
    pairs = [(p, q) for p, q in zip(_as_list(prediction), _as_list(label), strict=False) if q is not None]
    errors = [
        _number(p) - _number(q)  # type: ignore[operator]
        for p, q in pairs
        if not _is_class(p) and _number(q) is not None
    ]
    return (
        len(pairs),
        sum(1 for p, q in pairs if p == q),
        len(errors),
        sum(abs(e) for e in errors),
        sum(e * e for e in errors),
    )


def label_counts(rows: Iterable[tuple[str, int, str, str | None, str]]) -> LiveCounts:
    """(deployment, start_ms, metrics JSON, old label JSON or None, new label JSON) of merged
    labels -> deltas (negative where a replaced label counted before)."""
    out = LiveCounts()
    for crn, start_ms, metrics_text, old, new in rows:
        prediction = orjson.loads(metrics_text).get("prediction")
        if prediction is None:
            continue
        before = _judged(prediction, orjson.loads(old)) if old is not None else (0, 0, 0, 0.0, 0.0)
        after = _judged(prediction, orjson.loads(new))
        b = bucket_of(start_ms)
        for metric, i in ((LABELLED, 0), (CORRECT, 1), (NUMERIC_LABELLED, 2)):
            out.counts[(crn, b, metric, "")] += after[i] - before[i]
        for metric, i in ((ABS_ERROR_SUM, 3), (SQUARED_ERROR_SUM, 4)):
            if after[i] or before[i]:
                out.sums[(crn, b, metric)] += after[i] - before[i]
    return out


class Statements:
    """What `add` runs: insert, or sum into what is there (built once per store), and the
    classes known to be stored per recent bucket."""

    def __init__(self, counts: Table, sums: Table, insert: Any) -> None:
        self.counts, self.sums = counts, sums
        self.classes = StoredClasses()
        stmt = insert(counts)
        self.add_count = stmt.on_conflict_do_update(
            index_elements=["model_deployment_crn", "bucket_ms", "metric", "label"],
            set_={"count": counts.c.count + stmt.excluded.count},
        )
        stmt = insert(sums)
        self.add_sum = stmt.on_conflict_do_update(
            index_elements=["model_deployment_crn", "bucket_ms", "metric"],
            set_={"total": sums.c.total + stmt.excluded.total},
        )


class StoredClasses:
    """The classes a bucket is known to hold in the store, as last read there (committed rows
    only), for the recent buckets: a call whose classes are all known adds to existing rows and
    cannot pass the cap, so it needs no read. Shared by a store's threads."""

    BUCKETS = 512

    def __init__(self) -> None:
        self._known: OrderedDict[tuple[str, int], frozenset[str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, bucket: tuple[str, int]) -> frozenset[str]:
        with self._lock:
            return self._known.get(bucket, frozenset())

    def put(self, bucket: tuple[str, int], labels: frozenset[str]) -> None:
        with self._lock:
            self._known[bucket] = labels
            self._known.move_to_end(bucket)
            while len(self._known) > self.BUCKETS:
                self._known.popitem(last=False)


def _read_classes(conn: Connection, table: Table, crn: str, buckets: list[int]) -> dict[int, set[str]]:
    stmt = select(table.c.bucket_ms, table.c.label).where(
        and_(
            table.c.model_deployment_crn == crn,
            table.c.bucket_ms >= min(buckets),
            table.c.bucket_ms <= max(buckets),
            table.c.metric == PREDICTIONS,
        )
    )
    stored: defaultdict[int, set[str]] = defaultdict(set)
    for b, label in conn.execute(stmt):
        stored[int(b)].add(label)
    return stored


def _cap_classes(conn: Connection, statements: Statements, counts: Counter) -> Counter:
    """`counts` with the classes past a bucket's `CLASSES_PER_BUCKET` counted as `OTHER`."""
    new: defaultdict[tuple[str, int], Counter] = defaultdict(Counter)
    for (crn, b, metric, label), n in counts.items():
        if metric == PREDICTIONS:
            new[(crn, b)][label] += n
    unsure = [k for k, classes in new.items() if not classes.keys() <= statements.classes.get(k)]
    if not unsure:
        return counts
    for crn in {crn for crn, _ in unsure}:
        buckets = [b for c, b in unsure if c == crn]
        stored = _read_classes(conn, statements.counts, crn, buckets)
        for b in buckets:
            statements.classes.put((crn, b), frozenset(stored.get(b, ())))
    capped = Counter({k: n for k, n in counts.items() if k[2] != PREDICTIONS})
    for bucket, classes in new.items():
        known = statements.classes.get(bucket)
        room = CLASSES_PER_BUCKET - len(known - {OTHER})
        for label, n in classes.most_common():
            if label in known or (label != OTHER and room > 0):
                room -= label not in known
                capped[(*bucket, PREDICTIONS, label)] += n
            else:
                capped[(*bucket, PREDICTIONS, OTHER)] += n
    return capped


def add(conn: Connection, statements: Statements, increments: LiveCounts) -> None:
    """Add the increments, a chunk of rows per execution."""
    counts = _cap_classes(conn, statements, increments.counts)
    rows: list[dict[str, Any]] = [
        {"model_deployment_crn": crn, "bucket_ms": b, "metric": m, "label": lab, "count": n}
        for (crn, b, m, lab), n in counts.items()
        if n
    ]
    for i in range(0, len(rows), 2_000):
        conn.execute(statements.add_count, rows[i : i + 2_000])
    rows = [
        {"model_deployment_crn": crn, "bucket_ms": b, "metric": m, "total": total}
        for (crn, b, m), total in increments.sums.items()
        if total
    ]
    for i in range(0, len(rows), 2_000):
        conn.execute(statements.add_sum, rows[i : i + 2_000])


def _bucketed(table: Table, crn: str, start_ms: int, end_ms: int, step_ms: int) -> tuple[Any, Any]:
    step = literal_column(str(int(step_ms)))  # an int we made: inlined, so the GROUP BY matches
    bucket = ((table.c.bucket_ms // step) * step).label("b")
    where = and_(
        table.c.model_deployment_crn == crn,
        table.c.bucket_ms >= start_ms,
        table.c.bucket_ms < end_ms,
    )
    return bucket, where


def read(
    conn: Connection, statements: Statements, crn: str, start_ms: int, end_ms: int, step_ms: int
) -> tuple[list[tuple[int, str, str, int]], list[tuple[int, str, float]]]:
    """(bucket start, metric, label, count) and (bucket start, metric, sum), summed into `step_ms`
    buckets within [start, end)."""
    t = statements.counts
    bucket, where = _bucketed(t, crn, start_ms, end_ms, step_ms)
    stmt = (
        select(bucket, t.c.metric, t.c.label, func.sum(t.c.count))
        .where(where)
        .group_by(bucket, t.c.metric, t.c.label)
        .order_by(bucket)
    )
    counts = [(int(b), m, lab, int(n)) for b, m, lab, n in conn.execute(stmt)]
    t = statements.sums
    bucket, where = _bucketed(t, crn, start_ms, end_ms, step_ms)
    stmt = select(bucket, t.c.metric, func.sum(t.c.total)).where(where).group_by(bucket, t.c.metric)
    sums = [(int(b), m, float(total)) for b, m, total in conn.execute(stmt)]
    return counts, sums


def deployments(conn: Connection, table: Table) -> list[str]:
    return list(conn.execute(select(table.c.model_deployment_crn).distinct()).scalars())
