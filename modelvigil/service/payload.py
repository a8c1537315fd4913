"""Turning the `request` object of a CML model call into a feature matrix, or saying what is wrong.

Accepted inside `request` (CML passes it to the model function as one dict):
- MLflow `{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`
- MLflow `{"dataframe_records": [{"age": ..., ...}, ...]}`
- MLflow `{"inputs": [[...15 values in feature order...], ...]}` or `{"inputs": {"age": [...], ...}}`
- a classic CML model's flat object of one row: `{"age": 41, "credit_card_balance": ..., ...}`

Values are numbers or null (a missing value the model takes as data). Columns are named
exactly; missing or unknown ones are an error, not a guess.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelvigil.data import FEATURES

_NUMERIC_TYPES = {int, float, type(None)}
MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "inputs")


class PayloadError(ValueError):
    """The request's content is not something the model can score; the message says exactly why."""


def parse_request(request: Any, features: Sequence[str] = FEATURES) -> np.ndarray:
    """Return a float array (rows, len(features)) with NaN for null, columns in `features` order."""
    if not isinstance(request, dict):
        raise PayloadError(f"'request' must be a JSON object, got {_json_type(request)}")
    present = [k for k in MLFLOW_KEYS if k in request]
    if len(present) > 1:
        raise PayloadError(f"'request' has more than one payload format: {present}; send exactly one")
    if present and len(request) > 1:
        extra = sorted(set(request) - set(present))
        raise PayloadError(f"'request' has keys beside {present[0]!r}: {extra}")
    if not present:
        return _from_columns_dict({k: [v] for k, v in request.items()}, features, "request")
    kind = present[0]
    body = request[kind]
    if kind == "dataframe_split":
        return _from_split(body, features)
    if kind == "dataframe_records":
        return _from_records(body, features)
    if isinstance(body, dict):
        return _from_columns_dict(body, features, "inputs")
    return _from_rows(body, len(features), "inputs")


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _check_columns(columns: Sequence[Any], features: Sequence[str], where: str) -> None:
    not_str = [c for c in columns if not isinstance(c, str)]
    if not_str:
        raise PayloadError(f"{where}: column names must be strings, got {not_str[:5]}")
    dupes = sorted(c for c, n in Counter(columns).items() if n > 1)  # linear: 40k names must not stall
    if dupes:
        raise PayloadError(f"{where}: duplicate column(s) {_names(dupes)}")
    named, known = set(columns), set(features)
    missing = [f for f in features if f not in named]
    unknown = [c for c in columns if c not in known]
    problems = []
    if missing:
        problems.append(f"missing column(s) {_names(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {_names(unknown)}")
    if problems:
        raise PayloadError(f"{where}: " + "; ".join(problems))


def _from_split(body: Any, features: Sequence[str]) -> np.ndarray:
    if not isinstance(body, dict):
        raise PayloadError(f"'dataframe_split' must be an object, got {_json_type(body)}")
    for key in ("columns", "data"):
        if key not in body:
            raise PayloadError(f"'dataframe_split' has no {key!r}")
    columns = body["columns"]
    if not isinstance(columns, list):
        raise PayloadError(f"'dataframe_split.columns' must be an array, got {_json_type(columns)}")
    _check_columns(columns, features, "dataframe_split")
    matrix = _from_rows(body["data"], len(columns), "dataframe_split.data", columns)
    order = [columns.index(f) for f in features]
    return matrix[:, order]


def _from_records(body: Any, features: Sequence[str]) -> np.ndarray:
    if not isinstance(body, list):
        raise PayloadError(f"'dataframe_records' must be an array of objects, got {_json_type(body)}")
    if not body:
        raise PayloadError("'dataframe_records' has no rows")
    rows = []
    for i, rec in enumerate(body):
        if not isinstance(rec, dict):
            raise PayloadError(f"dataframe_records row {i}: must be an object, got {_json_type(rec)}")
        _check_columns(list(rec), features, f"dataframe_records row {i}")
        rows.append([rec[f] for f in features])
    return _from_rows(rows, len(features), "dataframe_records", list(features))


def _from_columns_dict(body: dict[str, Any], features: Sequence[str], where: str) -> np.ndarray:
    _check_columns(list(body), features, where)
    bad = [name for name, values in body.items() if not isinstance(values, list)]
    if bad:
        raise PayloadError(f"{where}: column(s) {bad} must be arrays of values")
    lengths = {name: len(values) for name, values in body.items()}
    if len(set(lengths.values())) > 1:
        raise PayloadError(f"{where}: columns have different lengths {lengths}")
    # strict=True says what the length check above made true; no mutant of it can differ.
    rows = [list(r) for r in zip(*(body[f] for f in features), strict=True)]  # pragma: no mutate
    return _from_rows(rows, len(features), where, list(features))


def _from_rows(data: Any, width: int, where: str, columns: Sequence[str] | None = None) -> np.ndarray:
    if not isinstance(data, list):
        raise PayloadError(f"'{where}' must be an array of rows, got {_json_type(data)}")
    if not data:
        raise PayloadError(f"'{where}' has no rows")
    # Fast path: every row a list of the right width and every value a number or null.
    if (
        all(isinstance(r, list) and len(r) == width for r in data)
        and set(map(type, itertools.chain.from_iterable(data))) <= _NUMERIC_TYPES  # map: C speed
    ):
        try:
            matrix = np.array(data, dtype=float)
        except OverflowError:
            matrix = None  # an integer too large for a float: the loop below names it
        if matrix is not None and not np.isinf(matrix).any():
            return matrix
    for i, row in enumerate(data):
        if not isinstance(row, list):
            raise PayloadError(f"{where} row {i}: must be an array of values, got {_json_type(row)}")
        if len(row) != width:
            raise PayloadError(f"{where} row {i}: has {len(row)} values, expected {width}")
        for j, value in enumerate(row):
            if type(value) not in _NUMERIC_TYPES:
                raise PayloadError(
                    f"{where} row {i}, {_col(columns, j)}: expected a number or null, "
                    f"got {_json_type(value)} {_short(value)}"
                )
            if value is not None and (abs(value) > sys.float_info.max or math.isinf(value)):
                raise PayloadError(f"{where} row {i}, {_col(columns, j)}: value out of range")
    # No input reaches this line, so no test can read its message.
    raise AssertionError("unreachable: the fast path rejected valid rows")  # pragma: no cover, no mutate


def _names(names: Sequence[str], shown: int = 20) -> str:
    """A list of names for a message: all of them, or the first `shown` and how many more."""
    if len(names) <= shown:
        return str(list(names))
    return f"{list(names[:shown])} and {len(names) - shown} more"


def _col(columns: Sequence[str] | None, j: int) -> str:
    return f"column {columns[j]!r}" if columns is not None else f"value {j} ({FEATURES[j]!r})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
