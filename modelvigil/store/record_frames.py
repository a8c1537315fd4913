"""Prediction records -> one DataFrame row per scored row, parsed column-wise by Arrow.

The monitoring flow reads millions of records; a Python dict per record (the lab's
`read_metrics` + `json_normalize`) costs more than everything else the flow does. Here the
records' JSON texts are parsed in blocks by Arrow, list metrics as long as `prediction` are spread
over the rows, and delayed metrics arrive already aligned with their record (the store joins them
in SQL), so nothing is matched by uuid in Python.

Frame shape: `prediction_uuid`, `row` (position within its call), `start_ms`, `end_ms`, every
tracked metric (nested dicts flattened with dots: `input_data.age`), every delayed metric (such as
`final_label`), and `delayed_arrived_ms` (when the call's last delayed metric arrived).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from modelvigil.store.errors import UnreadableRecords

BASE_COLUMNS = ["prediction_uuid", "row", "start_ms", "end_ms"]
_BLOCK = 1 << 22  # Arrow parses 4 MB blocks on all cores


def dumps_json(value: Any) -> str:
    """A metric value as the JSON text the store keeps (the inverse of the parsing below)."""
    # orjson writes NaN as null (NaN is not JSON); callers turn missing values into None first.
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # what orjson refuses and JSON allows, such as integers beyond 64 bits
        return json.dumps(value, separators=(",", ":"), allow_nan=False)


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame(columns=BASE_COLUMNS)


def metrics_objects(texts: Sequence[str | bytes], names: Sequence[str]) -> list[dict[str, Any]]:
    """Each record's stored metrics (`names` say which record each is, for the error), or
    UnreadableRecords naming the first that is not a JSON object."""
    out = []
    for name, text in zip(names, texts, strict=True):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            shown = bytes(text[:40], "utf-8") if isinstance(text, str) else bytes(text[:40])
            raise UnreadableRecords(
                f"the stored metrics of {name} are not a JSON object ({shown!r}): the store was changed "
                "outside modelvigil; fix or delete that row"
            )
        out.append(value)
    return out


def parse_json_lines(blob: bytes, n: int) -> pa.Table:
    """Parse newline-separated JSON objects (one per record) into an Arrow table, nested objects
    flattened with dots."""
    try:
        table = pa_json.read_json(io.BytesIO(blob), read_options=pa_json.ReadOptions(block_size=_BLOCK))
    except pa.ArrowInvalid:
        # Records whose metric types disagree (an int here, a string there) defeat Arrow's typed
        # columns; pandas takes anything, slower.
        parsed = [json.loads(line) for line in blob.split(b"\n")] if n else []
        frame = pd.json_normalize(parsed)
        for column in frame.columns:
            try:
                pa.array(frame[column], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                # One column of numbers here and text there (a code 7, a code "A7"): kept as text,
                # which is how such a feature is compared anyway (as categories).
                frame[column] = frame[column].map(_as_text, na_action="ignore")
        table = pa.Table.from_pandas(frame, preserve_index=False)
    return flatten_structs(table)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def flatten_structs(table: pa.Table) -> pa.Table:
    """Nested objects as dotted columns (`input_data.age`), however deep, as pandas' json_normalize."""
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return table


def parse_values(texts: Sequence[str | None]) -> pa.Array | pa.ChunkedArray | list[Any]:
    """One JSON value per record (None: absent) as one Arrow array, scalars or lists; a Python
    list of values when their types differ between records (a list here, a number there)."""
    lines = "\n".join("{}" if t is None else '{"v":' + t + "}" for t in texts).encode()
    try:
        table = pa_json.read_json(io.BytesIO(lines), read_options=pa_json.ReadOptions(block_size=_BLOCK))
        if "v" not in table.column_names:
            return pa.nulls(len(texts))
        return table.column("v")
    except pa.ArrowInvalid:  # mixed types across records
        return [None if t is None else json.loads(t) for t in texts]


def row_lengths(table: pa.Table) -> np.ndarray:
    """Scored rows per record: the length of `prediction` when it is a list, else 1."""
    pred = table.column("prediction") if "prediction" in table.column_names else None
    if pred is not None and (pa.types.is_list(pred.type) or pa.types.is_large_list(pred.type)):
        return pc.fill_null(pc.list_value_length(pred), 1).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.ones(table.num_rows, dtype=np.int64)


def _spread(col: pa.ChunkedArray | pa.Array, lengths: np.ndarray, parent: np.ndarray) -> pd.Series:
    """A per-record column as a per-row column: a list as long as the record's rows is spread over
    them, anything else is repeated."""
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        col_lengths = pc.fill_null(pc.list_value_length(col), -1).to_numpy(zero_copy_only=False)
        if np.array_equal(col_lengths, lengths):
            return pc.list_flatten(col).to_pandas()
        present = col_lengths == lengths
        if (present | (col_lengths == -1)).all():
            # Records without this metric (a feature some calls did not send) leave their rows
            # empty; the others are spread as usual, so the column stays numeric.
            flat = pc.list_flatten(col).to_numpy(zero_copy_only=False)
            starts = (np.cumsum(lengths) - lengths)[present]
            sizes = lengths[present]
            positions = (
                np.repeat(starts, sizes) + np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            )
            out = np.full(
                len(parent),
                np.nan if flat.dtype.kind == "f" else None,
                dtype=flat.dtype if flat.dtype.kind == "f" else object,
            )
            out[positions] = flat
            return pd.Series(out)
        return pd.Series(col.to_pylist(), dtype=object).iloc[parent].reset_index(drop=True)
    return col.to_pandas().iloc[parent].reset_index(drop=True)


def _late_rows(
    values: pa.Array | pa.ChunkedArray | list[Any], lengths: np.ndarray, parent: np.ndarray, row: np.ndarray
) -> pd.Series:
    """A delayed metric per record as a per-row column: a list goes element by element onto the
    call's rows, a single value onto its first row."""
    n_rows = len(parent)
    if isinstance(values, list):  # mixed types: the slow, general way
        out = np.full(n_rows, None, dtype=object)
        starts = np.cumsum(lengths) - lengths
        for i, value in enumerate(values):
            if isinstance(value, list):
                for j, item in enumerate(value[: lengths[i]]):
                    out[starts[i] + j] = item
            elif value is not None:
                out[starts[i]] = value
        return pd.Series(out).infer_objects()
    if pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        counts = pc.fill_null(pc.list_value_length(values), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = pc.list_flatten(values).to_numpy(zero_copy_only=False)
        owner = np.repeat(np.arange(len(values)), counts)
        j = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)
        keep = j < lengths[owner]
        starts = np.cumsum(lengths) - lengths
        out = np.full(n_rows, None, dtype=object)
        out[starts[owner[keep]] + j[keep]] = flat[keep]
        return pd.Series(out).infer_objects()
    per_record = values.to_pandas() if not pa.types.is_null(values.type) else pd.Series([None] * len(values))
    out = per_record.iloc[parent].reset_index(drop=True)
    if (row != 0).any():
        out = out.where(row == 0)
    return out


def build_frame(
    base: pd.DataFrame,
    table: pa.Table,
    late: Mapping[str, pa.Array | pa.ChunkedArray | list[Any]] | None = None,
    arrived: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per scored row. `base`: per record `prediction_uuid`, `start_ms`, `end_ms`; `table`:
    the records' parsed metrics; `late`: delayed metric -> per-record values (null: absent);
    `arrived`: per record, when its last delayed metric arrived (-1: none)."""
    lengths = row_lengths(table)
    parent = np.repeat(np.arange(table.num_rows), lengths)
    row = np.arange(len(parent)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out = base.iloc[parent].reset_index(drop=True)
    out.insert(1, "row", row)
    columns: dict[str, Any] = {
        name: _spread(table.column(name), lengths, parent) for name in table.column_names
    }
    for key, values in (late or {}).items():
        absent = values.count(None) if isinstance(values, list) else values.null_count
        if absent == len(values):
            continue
        got = _late_rows(values, lengths, parent, row)
        # A delayed value replaces the tracked one where it exists: later wins.
        columns[key] = got.combine_first(columns[key]) if key in columns else got
    frame = pd.concat([out, pd.DataFrame(columns)], axis=1)
    if arrived is not None and (arrived >= 0).any():
        per_row = arrived[parent]
        frame["delayed_arrived_ms"] = pd.array(per_row, dtype="Int64", copy=False)
        frame.loc[per_row < 0, "delayed_arrived_ms"] = pd.NA
    return frame


def frame_from_cml_records(result: Mapping[str, Any]) -> pd.DataFrame:
    """`read_metrics`' `{"metrics": [...]}` (from CML or a service) in the same shape.

    Prediction records only (aggregates have an empty uuid). Delayed metrics are already merged
    into these records, so there are no arrival times: `delayed_arrived_ms` is absent.
    """
    predictions = [r for r in result.get("metrics", []) if r.get("predictionUuid")]
    if not predictions:
        return empty_frame()
    base = pd.DataFrame(
        {
            "prediction_uuid": np.asarray([r["predictionUuid"] for r in predictions], dtype=object),
            "start_ms": np.asarray([r["startTimeStampMs"] for r in predictions], dtype=np.int64),
            "end_ms": np.asarray([r["endTimeStampMs"] for r in predictions], dtype=np.int64),
        }
    )
    # Parsed as the store's texts are: every key of every record, wherever it first appears (a
    # table built from Python dicts would take its columns from the first record alone).
    lines = b"\n".join(orjson.dumps(r.get("metrics") or {}) for r in predictions)
    return build_frame(base, parse_json_lines(lines, len(predictions)))


def aggregates_frame(
    starts: Sequence[int], ends: Sequence[int], metrics: Sequence[Mapping[str, Any]]
) -> pd.DataFrame:
    """Aggregate records (`track_aggregate_metrics`): `start_ms`, `end_ms` and one column per metric.
    Few rows (one per window), so pandas' json_normalize is plenty."""
    frame = pd.DataFrame({"start_ms": list(starts), "end_ms": list(ends)})
    if len(frame):
        frame = pd.concat([frame, pd.json_normalize(list(metrics))], axis=1)
    return frame


def aggregates_from_cml_records(result: Mapping[str, Any]) -> pd.DataFrame:
    aggregates = [r for r in result.get("metrics", []) if not r.get("predictionUuid")]
    return aggregates_frame(
        [r["startTimeStampMs"] for r in aggregates],
        [r["endTimeStampMs"] for r in aggregates],
        [r.get("metrics") or {} for r in aggregates],
    )
