import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelvigil.data import FEATURES
from modelvigil.service.payload import PayloadError, parse_request

ROW = [float(i) for i in range(len(FEATURES))]


def test_all_four_forms_give_the_same_matrix():
    expected = np.array([ROW, ROW[::-1]])
    split = {"dataframe_split": {"columns": FEATURES[::-1], "data": [ROW[::-1], ROW]}}
    records = {"dataframe_records": [dict(zip(FEATURES, r, strict=True)) for r in expected.tolist()]}
    inputs = {"inputs": expected.tolist()}
    columns = {"inputs": {f: expected[:, j].tolist() for j, f in enumerate(FEATURES)}}
    for request in (split, records, inputs, columns):
        np.testing.assert_array_equal(parse_request(request), expected)
    flat = dict(zip(FEATURES, ROW, strict=True))
    np.testing.assert_array_equal(parse_request(flat), np.array([ROW]))


def test_null_becomes_nan():
    data = [[*ROW[:3], None, *ROW[4:]]]
    out = parse_request({"inputs": data})
    assert math.isnan(out[0, 3]) and out[0, 4] == 4.0


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ([1, 2], "'request' must be a JSON object, got an array"),
        (
            {"dataframe_split": {"columns": FEATURES[:-1], "data": [ROW[:-1]]}},
            "missing column(s) ['customer_score']",
        ),
        ({"dataframe_split": {"columns": [*FEATURES, "x"], "data": [[*ROW, 1]]}}, "unknown column(s) ['x']"),
        (
            {"dataframe_split": {"columns": FEATURES, "data": [ROW, ROW[:-2]]}},
            "row 1: has 13 values, expected 15",
        ),
        (
            {"dataframe_split": {"columns": FEATURES, "data": [[*ROW[:2], "abc", *ROW[3:]]]}},
            "row 0, column 'bank_account_balance': expected a number or null, got a string 'abc'",
        ),
        ({"dataframe_split": {"columns": FEATURES, "data": [[*ROW[:1], True, *ROW[2:]]]}}, "got a boolean"),
        ({"dataframe_split": {"columns": FEATURES, "data": []}}, "has no rows"),
        ({"dataframe_split": {"data": [ROW]}}, "has no 'columns'"),
        ({"dataframe_records": [{"age": 1}]}, "dataframe_records row 0: missing column(s)"),
        ({"inputs": [ROW], "dataframe_records": []}, "more than one payload format"),
        ({"inputs": [ROW], "extra": 1}, "keys beside 'inputs'"),
        ({"inputs": [[10**400, *ROW[1:]]]}, "row 0, value 0 ('age'): value out of range"),
        ({"age": 1}, "missing column(s)"),
        ({"inputs": {"age": [1, 2]}}, "missing column(s)"),
    ],
)
def test_bad_payloads_say_exactly_what_is_wrong(request_, message):
    with pytest.raises(PayloadError) as err:
        parse_request(request_)
    assert message in str(err.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_either_parses_or_raises_a_payload_error(value):
    try:
        out = parse_request(value)
    except PayloadError as exc:
        assert str(exc)
    else:
        assert out.ndim == 2 and out.shape[1] == len(FEATURES) and out.shape[0] >= 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.one_of(
                st.none(), st.integers(-(10**6), 10**6), st.floats(allow_nan=False, allow_infinity=False)
            ),
            min_size=15,
            max_size=15,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_numeric_rows_parse_to_the_same_numbers(rows):
    out = parse_request({"inputs": rows})
    expected = np.array([[np.nan if v is None else float(v) for v in r] for r in rows])
    np.testing.assert_array_equal(out, expected)
