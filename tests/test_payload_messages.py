"""Every way a payload can be wrong, with the exact message a caller reads (the message is the
interface: it must name the row, the column and what was expected), including the shapes the
broader payload tests never send."""

from __future__ import annotations

import numpy as np
import pytest

from modelvigil.data import FEATURES
from modelvigil.service.payload import PayloadError, parse_request

ROW = [float(i) for i in range(len(FEATURES))]
F0, F1 = FEATURES[0], FEATURES[1]


def _columns(**changes: object) -> dict[str, object]:
    columns: dict[str, object] = {f: [ROW[j]] for j, f in enumerate(FEATURES)}
    columns.update(changes)
    return columns


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ("text", "'request' must be a JSON object, got a string"),
        (None, "'request' must be a JSON object, got null"),
        (True, "'request' must be a JSON object, got a boolean"),
        (3, "'request' must be a JSON object, got a number"),
        (
            {"inputs": [ROW], "dataframe_split": {}, "dataframe_records": []},
            "'request' has more than one payload format: ['dataframe_split', 'dataframe_records', 'inputs']; "
            "send exactly one",
        ),
        (
            {"dataframe_records": [], "b": 1, "a": 2},
            "'request' has keys beside 'dataframe_records': ['a', 'b']",
        ),
        ({"dataframe_split": [ROW]}, "'dataframe_split' must be an object, got an array"),
        ({"dataframe_split": {"columns": FEATURES}}, "'dataframe_split' has no 'data'"),
        (
            {"dataframe_split": {"columns": "age", "data": [ROW]}},
            "'dataframe_split.columns' must be an array, got a string",
        ),
        (
            {"dataframe_split": {"columns": [*FEATURES[:-1], 7], "data": [ROW]}},
            "dataframe_split: column names must be strings, got [7]",
        ),
        (
            {"dataframe_split": {"columns": [*FEATURES, F0, F1], "data": [[*ROW, 0.0, 1.0]]}},
            f"dataframe_split: duplicate column(s) [{F0!r}, {F1!r}]",
        ),
        (
            {"dataframe_split": {"columns": [*FEATURES[1:], "zz"], "data": [[*ROW[1:], 0.0]]}},
            f"dataframe_split: missing column(s) [{F0!r}]; unknown column(s) ['zz']",
        ),
        (
            {"dataframe_split": {"columns": FEATURES, "data": {}}},
            "'dataframe_split.data' must be an array of rows, got an object",
        ),
        (
            {"dataframe_split": {"columns": FEATURES, "data": [ROW, 5]}},
            "dataframe_split.data row 1: must be an array of values, got a number",
        ),
        (
            {"dataframe_split": {"columns": FEATURES, "data": [ROW[:-1]]}},
            f"dataframe_split.data row 0: has {len(FEATURES) - 1} values, expected {len(FEATURES)}",
        ),
        (
            {"dataframe_split": {"columns": FEATURES, "data": [[*ROW[:-1], "x" * 50]]}},
            f"dataframe_split.data row 0, column {FEATURES[-1]!r}: expected a number or null, "
            f"got a string {repr('x' * 50)[:37]}...",
        ),
        (
            {"dataframe_split": {"columns": FEATURES, "data": [[*ROW[:-1], [1]]]}},
            f"dataframe_split.data row 0, column {FEATURES[-1]!r}: "
            "expected a number or null, got an array [1]",
        ),
        ({"dataframe_records": {}}, "'dataframe_records' must be an array of objects, got an object"),
        ({"dataframe_records": []}, "'dataframe_records' has no rows"),
        (
            {"dataframe_records": [dict(zip(FEATURES, ROW, strict=True)), 4]},
            "dataframe_records row 1: must be an object, got a number",
        ),
        (
            {"dataframe_records": [{**dict(zip(FEATURES, ROW, strict=True)), F0: "x"}]},
            f"dataframe_records row 0, column {F0!r}: expected a number or null, got a string 'x'",
        ),
        ({"inputs": "rows"}, "'inputs' must be an array of rows, got a string"),
        ({"inputs": []}, "'inputs' has no rows"),
        (
            {"inputs": [[*ROW[:-1], "x"]]},
            f"inputs row 0, value {len(FEATURES) - 1} ({FEATURES[-1]!r}): "
            "expected a number or null, got a string 'x'",
        ),
        ({"inputs": [[float("inf"), *ROW[1:]]]}, f"inputs row 0, value 0 ({F0!r}): value out of range"),
        ({"inputs": _columns(**{F0: 41.0})}, f"inputs: column(s) [{F0!r}] must be arrays of values"),
        (
            {"inputs": _columns(**{F0: [1.0, 2.0]})},
            "inputs: columns have different lengths " + str({f: 2 if f == F0 else 1 for f in FEATURES}),
        ),
        ({**dict(zip(FEATURES, ROW, strict=True)), F1: None, "zz": 1}, "request: unknown column(s) ['zz']"),
    ],
)
def test_each_wrong_payload_gets_its_exact_message(request_, message):
    with pytest.raises(PayloadError) as err:
        parse_request(request_)
    assert str(err.value) == message


def test_null_in_a_flat_row_is_a_missing_value():
    out = parse_request({**dict(zip(FEATURES, ROW, strict=True)), F1: None})
    assert np.isnan(out[0, 1]) and out[0, 0] == ROW[0] and out.shape == (1, len(FEATURES))


def test_integers_and_floats_mix_in_one_row():
    out = parse_request({"inputs": [[1, *ROW[1:]], [2.5, *ROW[1:]]]})
    assert out.dtype == np.float64 and out[:, 0].tolist() == [1.0, 2.5]


def test_a_payload_error_is_a_value_error():
    assert issubclass(PayloadError, ValueError)


def test_forty_thousand_unknown_columns_get_a_short_exact_answer():
    columns = [*FEATURES, *(f"c{i}" for i in range(40_000))]
    with pytest.raises(PayloadError) as err:
        parse_request({"dataframe_split": {"columns": columns, "data": [[0.0] * len(columns)]}})
    shown = [f"c{i}" for i in range(20)]
    assert str(err.value) == f"dataframe_split: unknown column(s) {shown} and 39980 more"


def test_many_duplicates_are_listed_once_each_and_cut_short():
    columns = [*FEATURES, *(f"d{i:02}" for i in range(25)), *(f"d{i:02}" for i in range(25))]
    with pytest.raises(PayloadError) as err:
        parse_request({"dataframe_split": {"columns": columns, "data": [[0.0] * len(columns)]}})
    assert (
        str(err.value) == f"dataframe_split: duplicate column(s) {[f'd{i:02}' for i in range(20)]} and 5 more"
    )


def test_a_wrong_value_in_an_inputs_object_names_its_row_and_column():
    with pytest.raises(PayloadError) as err:
        parse_request({"inputs": _columns(**{F1: ["x"]})})
    assert str(err.value) == f"inputs row 0, column {F1!r}: expected a number or null, got a string 'x'"


def test_an_inputs_object_of_empty_columns_has_no_rows():
    with pytest.raises(PayloadError) as err:
        parse_request({"inputs": {f: [] for f in FEATURES}})
    assert str(err.value) == "'inputs' has no rows"


def test_name_lists_are_cut_only_beyond_twenty():
    twenty = [f"u{i:02}" for i in range(20)]
    with pytest.raises(PayloadError) as err:
        parse_request({"dataframe_split": {"columns": [*FEATURES, *twenty], "data": [[0.0] * 35]}})
    assert str(err.value) == f"dataframe_split: unknown column(s) {twenty}"
    with pytest.raises(PayloadError) as err:
        parse_request(
            {"dataframe_split": {"columns": [*FEATURES, 1, 2, 3, 4, 5, 6, 7], "data": [[0.0] * 22]}}
        )
    assert str(err.value) == "dataframe_split: column names must be strings, got [1, 2, 3, 4, 5]"


@pytest.mark.parametrize(("length", "shown"), [(38, None), (39, "'" + "y" * 36 + "...")])
def test_a_wrong_value_is_quoted_whole_up_to_forty_characters(length, shown):
    value = "y" * length  # its repr: the length plus two quotes
    with pytest.raises(PayloadError) as err:
        parse_request({"inputs": [[value, *ROW[1:]]]})
    assert str(err.value).endswith(f"got a string {shown or repr(value)}")
