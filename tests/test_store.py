"""The Model Metrics Store, on SQLite and on the machine's Postgres."""

import threading
import uuid
from dataclasses import replace

import pandas as pd
import pytest

from modelvigil.store import IdempotencyConflict, MetricsStore, PredictionRecord, UnknownPredictions

DEP, MODEL, BUILD = "crn:dep", "crn:model", "crn:build"


def record(i: int, rows: int = 1, key: str | None = None, dep: str = DEP) -> PredictionRecord:
    return PredictionRecord(
        model_crn=MODEL,
        model_build_crn=BUILD,
        model_deployment_crn=dep,
        prediction_uuid=str(uuid.uuid4()),
        start_ms=1_000 + 10 * i,
        end_ms=1_000 + 10 * i + 3,
        metrics={
            "prediction": [i % 2] * rows,
            "probability": [0.25] * rows,
            "input_data": {"age": [20 + i] * rows, "latitude": [None] * rows},
        },
        idempotency_key=key,
    )


def test_read_metrics_has_cmls_shape_with_delayed_metrics_merged(store):
    recs = [record(i) for i in range(3)]
    for r in recs:
        store.record_prediction(r)
    store.merge_delayed([(recs[0].prediction_uuid, {"final_label": 1})])
    store.record_aggregate({"accuracy": 0.5}, 1_000, 1_020, model_deployment_crn=DEP, model_crn=MODEL)

    result = store.read_metrics(model_deployment_crn=DEP)
    assert set(result) == {"metrics"}
    first = result["metrics"][0]
    assert first == {
        "modelCrn": MODEL,
        "modelBuildCrn": BUILD,
        "modelDeploymentCrn": DEP,
        "startTimeStampMs": 1_000,
        "endTimeStampMs": 1_003,
        "predictionUuid": recs[0].prediction_uuid,
        "metrics": {**recs[0].metrics, "final_label": 1},
    }
    flat = pd.json_normalize(result["metrics"])
    assert {
        "startTimeStampMs",
        "predictionUuid",
        "metrics.prediction",
        "metrics.final_label",
        "metrics.accuracy",
        "metrics.input_data.age",
    } <= set(flat.columns)
    aggregates = flat[flat["predictionUuid"] == ""]
    assert aggregates["metrics.accuracy"].tolist() == [0.5]
    assert len(flat) == 4


def test_later_delayed_value_wins_and_repeats_are_idempotent(store):
    r = record(0)
    store.record_prediction(r)
    store.merge_delayed([(r.prediction_uuid, {"final_label": 0, "note": "a"})])
    store.merge_delayed([(r.prediction_uuid, {"final_label": 1})])
    store.merge_delayed([(r.prediction_uuid, {"final_label": 1})])
    metrics = store.read_metrics(DEP)["metrics"][0]["metrics"]
    assert metrics["final_label"] == 1 and metrics["note"] == "a"
    # Within one batch too: the later item wins.
    store.merge_delayed([(r.prediction_uuid, {"final_label": 0}), (r.prediction_uuid, {"final_label": 1})])
    assert store.read_metrics(DEP)["metrics"][0]["metrics"]["final_label"] == 1


def test_unknown_uuid_in_a_batch_writes_nothing(store):
    r = record(0)
    store.record_prediction(r)
    ghost = str(uuid.uuid4())
    with pytest.raises(UnknownPredictions, match=ghost):
        store.merge_delayed([(r.prediction_uuid, {"final_label": 1}), (ghost, {"final_label": 0})])
    assert "final_label" not in store.read_metrics(DEP)["metrics"][0]["metrics"]


def test_window_and_crn_filters(store):
    for i in range(10):
        store.record_prediction(record(i))
    store.record_prediction(record(3, dep="crn:other"))
    inside = store.read_metrics(DEP, start_timestamp_ms=1_020, end_timestamp_ms=1_050)["metrics"]
    assert [m["startTimeStampMs"] for m in inside] == [1_020, 1_030, 1_040, 1_050]
    assert len(store.read_metrics(model_crn=MODEL)["metrics"]) == 11
    assert len(store.read_metrics(model_build_crn=BUILD, start_timestamp_ms=1_095)["metrics"]) == 0
    with pytest.raises(ValueError, match="at least one of"):
        store.read_metrics()
    with pytest.raises(ValueError, match="before"):
        store.read_metrics(DEP, start_timestamp_ms=10, end_timestamp_ms=5)


def test_idempotency_key_returns_the_first_prediction_and_stores_nothing_new(store):
    first = store.record_prediction(record(1, key="sim-1/req-7"))
    again = store.record_prediction(record(2, key="sim-1/req-7"))
    assert not first.replayed and again.replayed
    assert again.prediction_uuid == first.prediction_uuid and again.metrics == first.metrics
    assert store.count(DEP) == 1


def test_uuid_is_unique(store):
    r = record(0)
    store.record_prediction(r)
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        store.record_prediction(r)
    assert store.count(DEP) == 1


def test_frame_path_matches_the_json_path(store):
    recs = [record(i) for i in range(20)]
    for r in recs:
        store.record_prediction(r)
    store.merge_delayed([(r.prediction_uuid, {"final_label": i % 3 == 0}) for i, r in enumerate(recs[:15])])
    frame = store.read_frame(DEP)
    flat = pd.json_normalize(store.read_metrics(DEP)["metrics"])
    assert frame["prediction_uuid"].tolist() == flat["predictionUuid"].tolist()
    assert frame["prediction"].tolist() == flat["metrics.prediction"].str[0].tolist()
    assert frame["input_data.age"].tolist() == flat["metrics.input_data.age"].str[0].tolist()
    assert frame["input_data.latitude"].isna().all()
    labels = frame["final_label"]
    assert labels.iloc[:15].tolist() == flat["metrics.final_label"].iloc[:15].tolist()
    assert labels.iloc[15:].isna().all()
    assert (
        frame["delayed_arrived_ms"].iloc[:15].notna().all()
        and frame["delayed_arrived_ms"].iloc[15:].isna().all()
    )
    assert (frame["end_ms"] - frame["start_ms"]).eq(3).all()


def test_frame_path_spreads_multi_row_calls_over_rows(store):
    r = record(0, rows=3)
    store.record_prediction(r)
    store.merge_delayed([(r.prediction_uuid, {"final_label": [1, 0, 1]})])
    frame = store.read_frame(DEP)
    assert frame["row"].tolist() == [0, 1, 2]
    assert frame["prediction_uuid"].nunique() == 1
    assert frame["final_label"].tolist() == [1, 0, 1]
    assert frame["input_data.age"].tolist() == [20, 20, 20]


def test_empty_window_gives_an_empty_frame(store):
    frame = store.read_frame(DEP)
    assert frame.empty and {"prediction_uuid", "start_ms", "end_ms"} <= set(frame.columns)
    assert store.read_aggregates_frame(DEP).empty


def test_aggregates_frame(store):
    store.record_aggregate({"accuracy": 0.9, "f1": 0.5}, 10, 20, model_deployment_crn=DEP)
    store.record_aggregate({"accuracy": 0.8, "f1": 0.4}, 21, 30, model_deployment_crn=DEP)
    agg = store.read_aggregates_frame(DEP)
    assert agg[["start_ms", "end_ms", "accuracy"]].values.tolist() == [[10, 20, 0.9], [21, 30, 0.8]]
    with pytest.raises(ValueError, match="before"):
        store.record_aggregate({"accuracy": 1}, 30, 20, model_deployment_crn=DEP)


def test_concurrent_writers_lose_nothing(store_url):
    stores = [MetricsStore(store_url) for _ in range(2)]  # two "processes'" worth of engines
    recs = [record(i) for i in range(400)]
    errors: list[BaseException] = []

    def write(part: list[PredictionRecord], s: MetricsStore) -> None:
        try:
            for r in part:
                s.record_prediction(r)
                s.merge_delayed([(r.prediction_uuid, {"final_label": 1})])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(recs[i::8], stores[i % 2])) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    frame = stores[0].read_frame(DEP)
    assert len(frame) == 400 and frame["prediction_uuid"].is_unique
    assert frame["final_label"].eq(1).all()
    for s in stores:
        s.close()


def test_unsupported_dialect_is_refused():
    with pytest.raises(Exception, match="unsupported store dialect"):
        MetricsStore("mysql+pymysql://u@127.0.0.1/x")


def test_batch_write_replays_known_and_repeated_keys_in_order(store):
    known = store.record_prediction(record(0, key="k-known"))
    batch = [record(1, key="k-new"), record(2), record(3, key="k-known"), record(4, key="k-new")]
    out = store.record_predictions(batch)
    assert [o.replayed for o in out] == [False, False, True, True]
    assert out[0].prediction_uuid == batch[0].prediction_uuid
    assert out[1].prediction_uuid == batch[1].prediction_uuid
    assert out[2].prediction_uuid == known.prediction_uuid and out[2].metrics == known.metrics
    assert out[3].prediction_uuid == batch[0].prediction_uuid
    assert store.count(DEP) == 3


def test_metric_values_json_allows_are_stored_even_beyond_64_bit_integers(store):
    r = record(0)
    store.record_prediction(r)
    store.merge_delayed([(r.prediction_uuid, {"big": 2**70 + 1, "small": -(2**65) - 3, "final_label": 1})])
    [got] = store.read_metrics(DEP)["metrics"]
    assert got["metrics"]["big"] == 2**70 + 1 and got["metrics"]["small"] == -(2**65) - 3


def test_a_key_reused_with_another_request_is_a_conflict_not_a_replay(store):
    first = store.record_prediction(replace(record(1, key="sim-1/req-7"), request_hash="a" * 64))
    same = store.record_prediction(replace(record(2, key="sim-1/req-7"), request_hash="a" * 64))
    other = store.record_prediction(replace(record(3, key="sim-1/req-7"), request_hash="b" * 64))
    assert same.replayed and same.prediction_uuid == first.prediction_uuid and not same.conflict
    assert other.conflict and not other.replayed and other.metrics == {}
    # within one batch too: the second use of a key with another request conflicts
    batch = store.record_predictions(
        [
            replace(record(4, key="k-9"), request_hash="c" * 64),
            replace(record(5, key="k-9"), request_hash="d" * 64),
        ]
    )
    assert [b.conflict for b in batch] == [False, True]
    assert store.count(DEP) == 2


def test_an_aggregate_key_of_the_longest_allowed_length_is_kept_and_replays(store):
    key = "k" * 200  # the longest Idempotency-Key the API takes (the store adds its prefix)
    args = ({"accuracy": 0.9}, 1, 2)
    assert store.record_aggregate(*args, model_deployment_crn=DEP, idempotency_key=key, request_hash="a" * 64)
    assert not store.record_aggregate(
        *args, model_deployment_crn=DEP, idempotency_key=key, request_hash="a" * 64
    )
    with pytest.raises(IdempotencyConflict):
        store.record_aggregate(*args, model_deployment_crn=DEP, idempotency_key=key, request_hash="b" * 64)
    other = "k" * 199 + "j"  # as long, not the same: its own record
    assert store.record_aggregate(
        *args, model_deployment_crn=DEP, idempotency_key=other, request_hash="a" * 64
    )
    assert len(store.read_aggregates_frame(DEP, 0, 10)) == 2


def test_an_aggregate_key_reused_with_another_aggregate_is_a_conflict(store):
    assert (
        store.record_aggregate(
            {"accuracy": 0.9}, 1, 2, model_deployment_crn=DEP, idempotency_key="w0", request_hash="a" * 64
        )
        is True
    )
    assert (
        store.record_aggregate(
            {"accuracy": 0.9}, 1, 2, model_deployment_crn=DEP, idempotency_key="w0", request_hash="a" * 64
        )
        is False
    )
    with pytest.raises(
        IdempotencyConflict, match="Idempotency-Key 'w0' was used before with a different request"
    ):
        store.record_aggregate(
            {"accuracy": 0.1}, 1, 2, model_deployment_crn=DEP, idempotency_key="w0", request_hash="b" * 64
        )
    assert (
        store.record_aggregate({"accuracy": 0.5}, 3, 4, model_deployment_crn=DEP) is True
    )  # no key: always stored
    assert store.count(DEP, aggregates=True) == 2


def test_an_older_store_gains_the_request_hash_column(tmp_path):
    import sqlalchemy as sa

    path = tmp_path / "old.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:  # the records table as it was before request hashes
        conn.execute(
            sa.text(
                "CREATE TABLE mv_metric_records (id INTEGER PRIMARY KEY, model_crn VARCHAR(300) NOT NULL, "
                "model_build_crn VARCHAR(300) NOT NULL, model_deployment_crn VARCHAR(300) NOT NULL, "
                "prediction_uuid VARCHAR(64) UNIQUE, idempotency_key VARCHAR(200) UNIQUE, "
                "start_ms BIGINT NOT NULL, end_ms BIGINT NOT NULL, metrics TEXT NOT NULL)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO mv_metric_records VALUES "
                "(1, 'm', 'b', 'd', 'u-old', 'k-old', 1, 2, '{\"prediction\": [1]}')"
            )
        )
    engine.dispose()
    store = MetricsStore(f"sqlite:///{path}")
    try:
        replayed = store.record_prediction(replace(record(1, key="k-old"), request_hash="e" * 64))
        assert (
            replayed.replayed and replayed.prediction_uuid == "u-old"
        )  # no hash stored: a replay, as before
        fresh = store.record_prediction(replace(record(2, key="k-new"), request_hash="f" * 64))
        assert not fresh.replayed and store.count("d") == 1
    finally:
        store.close()


def test_a_big_batch_keeps_its_order_and_text_as_sent(store):
    """Past one statement's worth of rows (5,000), with the characters a bulk path must carry
    as they are: quotes, backslashes, braces, commas, unicode, NULL idempotency keys."""
    tricky = 'a "quoted", \\back\\slashed {brace} value, ünïcode ✓'
    batch = [
        replace(record(0), prediction_uuid=f"u{i:05d}", metrics={"prediction": [i % 2], "note": tricky})
        for i in range(6_000)
    ]
    store.record_predictions(batch)
    store.merge_delayed(
        (r.prediction_uuid, {"final_label": i % 3 == 0, "why": tricky}) for i, r in enumerate(batch)
    )
    read = store.read_metrics(DEP)["metrics"]
    # Same start time for all: the read order is the write order (ids follow the batch).
    assert [m["predictionUuid"] for m in read] == [r.prediction_uuid for r in batch]
    assert all(m["metrics"]["note"] == tricky and m["metrics"]["why"] == tricky for m in read)
    assert [m["metrics"]["final_label"] for m in read[:4]] == [True, False, False, True]


def test_count_rows_counts_what_the_frames_hold(store):
    shapes = [
        {"prediction": [1, 0, 1]},
        {"prediction": [1]},
        {"other": 2},
        {"prediction": []},
        {"prediction": [0]},
    ]
    store.record_predictions([replace(record(i), metrics=m) for i, m in enumerate(shapes)])
    store.record_predictions(
        [replace(record(i, dep="crn:scalar"), metrics={"prediction": 1}) for i in range(3)]
    )
    store.record_aggregate({"accuracy": 0.9}, 1_000, 2_000, model_deployment_crn=DEP)  # not a row
    assert store.count_rows(DEP) == sum(len(f) for f in store.iter_frames(DEP)) == 6
    assert store.count_rows(DEP, 1_000, 1_015) == 4  # the first two calls
    assert store.count_rows("crn:scalar") == sum(len(f) for f in store.iter_frames("crn:scalar")) == 3


def test_postgres_stores_big_metrics_with_lz4(store_url_pg):
    """1,000-row calls make 100 KB records: pglz compressed them at a third of lz4's speed."""
    import sqlalchemy as sa

    store = MetricsStore(store_url_pg)
    try:
        with store.engine.connect() as conn:
            kind = conn.execute(
                sa.text(
                    "SELECT attcompression FROM pg_attribute "
                    "WHERE attrelid = CAST('mv_metric_records' AS regclass) AND attname = 'metrics'"
                )
            ).scalar()
        assert kind == "l"
    finally:
        store.close()
