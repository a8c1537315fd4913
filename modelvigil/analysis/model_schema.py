"""What kind of model a deployment's records come from, inferred from its reference rows: the task
(binary or multi-class classification, or regression), the classes and the positive one, and the
kind of every input feature (numeric or categorical). Each inference can be overridden in
`MonitoringConfig` (`task`, `positive_label`, `categorical`, `numeric`), and every guess that a
person might want to correct is said in a note.

Values are compared as what they are: a label `"high"` is a class, `True` is a class, `1` and
`1.0` are the same class. Only values that cannot be a label (objects, lists) are invalid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pandas as pd

from modelvigil.analysis.config import Task

FEATURE_PREFIX = "input_data."
MAX_CLASSES = 20  # more distinct whole-number predictions than this: a regression, not classes
FEW_VALUES = 10  # a whole-number feature with at most this many values is taken as categorical
# Pairs whose positive class goes without saying (compared in lower case).
_POSITIVE = {
    frozenset({"0", "1"}): "1",
    frozenset({"false", "true"}): "true",
    frozenset({"no", "yes"}): "yes",
    frozenset({"n", "y"}): "y",
    frozenset({"negative", "positive"}): "positive",
}


class FeatureKind(StrEnum):
    numeric = "numeric"
    categorical = "categorical"


def _is_label(value: object) -> bool:
    return isinstance(value, str | bool | int | float | np.generic) and not isinstance(value, np.void)


@dataclass
class Labels:
    values: pd.Series  # comparable: numbers as floats (1 == 1.0), text and booleans as themselves
    arrived: np.ndarray  # a label came for the row, usable or not (what coverage counts)
    invalid_count: int  # labels that cannot be one (objects, lists), left out
    invalid: list[object]  # the first few of them, for the note


def label_values(raw: pd.Series | None, n: int) -> Labels:
    """Ground truth as values the predictions can be compared with; missing or invalid as
    None/NaN."""
    if raw is None:
        return Labels(pd.Series(np.full(n, np.nan)), np.zeros(n, dtype=bool), 0, [])
    if pd.api.types.is_bool_dtype(raw):
        return Labels(raw.astype(object), raw.notna().to_numpy(), 0, [])
    if pd.api.types.is_numeric_dtype(raw):
        values = raw.astype(float)
        return Labels(values, values.notna().to_numpy(), 0, [])
    values = raw.to_numpy(dtype=object)
    arrived = ~pd.isna(raw).to_numpy()
    usable = np.fromiter((_is_label(v) for v in values), dtype=bool, count=len(values))
    bad = arrived & ~usable
    out = values.copy()
    out[bad] = None
    series = pd.Series(out, index=raw.index)
    kept = out[arrived & usable]
    # A column of numbers only (with gaps or objects among them) compares as floats.
    if kept.size and all(isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_)
                         for v in kept):  # fmt: skip
        series = pd.to_numeric(series, errors="coerce").astype(float)
    return Labels(series, arrived, int(bad.sum()), [values[i] for i in np.flatnonzero(bad)[:3]])


def class_key(value: object) -> object:
    """A class as people read it: 1.0 as 1, numpy scalars as Python values."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def sort_key(value: object) -> tuple[int, object]:
    return (0, value) if isinstance(value, int | float) and not isinstance(value, bool) else (1, str(value))


def positive_class(classes: list[object], given: str | None) -> object | None:
    """The positive class: the one given (matched by its text), else the one a pair of classes
    names without doubt (1 of 0/1, True, "yes"), else None."""
    if given is not None:
        for c in classes:
            if str(c) == given or (isinstance(c, bool) and str(c).lower() == given.lower()):
                return c
        return None
    texts = {str(c).lower(): c for c in classes}
    if len(texts) == 2:
        chosen = _POSITIVE.get(frozenset(texts))
        return texts[chosen] if chosen is not None else None
    if len(texts) == 1:
        ((text, c),) = texts.items()
        return c if text in {"1", "true", "yes", "y", "positive"} else None
    return None


def _whole_numbers(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return bool(finite.size) and bool(np.all(np.mod(finite, 1) == 0))


def infer_task(prediction: pd.Series, label: pd.Series) -> Task:
    """Classification when predictions are text, booleans or a few whole numbers; else regression."""
    known = prediction.dropna()
    if known.empty:
        return Task.binary
    values = _numbers_among(known)
    if values.size >= 0.95 * known.size and (
        not _whole_numbers(values) or np.unique(values).size > MAX_CLASSES
    ):
        return Task.regression
    classes = {class_key(v) for v in known} | {class_key(v) for v in label.dropna()}
    return Task.binary if len(classes) <= 2 else Task.multiclass


def _numbers_among(values: pd.Series) -> np.ndarray:
    """The values that are numbers (not booleans) as floats: a numeric column whole, and from a
    column of mixed values (a regression whose failed calls answered "n/a") the numbers in it."""
    if pd.api.types.is_bool_dtype(values):
        return np.empty(0)
    if pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=float)
    numbers = [
        float(v)
        for v in values
        if isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_)
    ]
    return np.asarray(numbers, dtype=float)


@dataclass
class FeatureSchema:
    kinds: dict[str, FeatureKind] = field(default_factory=dict)  # column -> kind
    notes: list[str] = field(default_factory=list)

    def named(self, kind: FeatureKind) -> list[str]:
        return [c for c, k in self.kinds.items() if k is kind]


def infer_features(
    frame: pd.DataFrame, columns: list[str], categorical: list[str], numeric: list[str]
) -> FeatureSchema:
    """Each feature's kind: as declared, else categorical for text, booleans, mixed values and
    whole numbers of few distinct values, numeric for the rest."""
    schema = FeatureSchema()
    few = []
    for column in columns:
        name = column.removeprefix(FEATURE_PREFIX)
        if name in categorical:
            schema.kinds[column] = FeatureKind.categorical
            continue
        if name in numeric:
            schema.kinds[column] = FeatureKind.numeric
            continue
        values = frame[column] if column in frame else pd.Series(dtype=float)
        schema.kinds[column] = _kind(values)
        if schema.kinds[column] is FeatureKind.categorical and pd.api.types.is_numeric_dtype(values) \
                and not pd.api.types.is_bool_dtype(values):  # fmt: skip
            few.append(name)
        elif _mixed(values):
            schema.notes.append(f"feature {name!r} holds numbers and text: compared as categories")
    if few:
        shown = ", ".join(repr(n) for n in few)
        schema.notes.append(
            f"whole-number feature(s) of at most {FEW_VALUES} values taken as categorical: {shown} "
            "(--numeric NAME to measure one as a number)"
        )
    return schema


def _kind(values: pd.Series) -> FeatureKind:
    known = values.dropna()
    if known.empty:
        return FeatureKind.numeric
    # Flags said at once; the numeric branch below would find their two whole values alike. And
    # numbers without a missing value are floats to numpy with or without the dtype.
    if pd.api.types.is_bool_dtype(known):  # pragma: no mutate
        return FeatureKind.categorical
    if pd.api.types.is_numeric_dtype(known):
        floats = known.to_numpy(dtype=float)  # pragma: no mutate
        few = _whole_numbers(floats) and np.unique(floats[np.isfinite(floats)]).size <= FEW_VALUES
        return FeatureKind.categorical if few else FeatureKind.numeric
    numbers = pd.to_numeric(known, errors="coerce")
    if numbers.notna().all() and not any(isinstance(v, bool | str) for v in known):
        return _kind(numbers)
    return FeatureKind.categorical


def _mixed(values: pd.Series) -> bool:
    """Numbers and text in one column (a code 7 beside a code "A7"; read back as text by some
    paths, so text that reads as a number counts as one)."""
    known = values.dropna()
    # A shortcut the sample's test agrees with (numbers alone, flags alone, nothing: never both),
    # and the sample's size only bounds its cost.
    typed = pd.api.types.is_numeric_dtype(known) or pd.api.types.is_bool_dtype(known)  # pragma: no mutate
    if known.empty or typed:  # pragma: no mutate
        return False
    sample = known.iloc[:1000].astype(object)  # pragma: no mutate
    numeric = pd.to_numeric(sample.map(lambda v: v if not isinstance(v, bool) else None), errors="coerce")
    return bool(numeric.notna().any() and numeric.isna().any())


def categories(values: pd.Series) -> pd.Series:
    """A categorical feature's values as text (1.0 as "1", True as "True"), missing as None."""
    if pd.api.types.is_bool_dtype(values):
        return values.map({True: "True", False: "False"}).astype(object)
    if pd.api.types.is_numeric_dtype(values):  # a fast path: the same text as the general one
        # numpy makes numbers floats and a None-filled array objects whatever the dtype says,
        # and a non-finite value is never whole, whatever it is replaced by.
        floats = values.to_numpy(dtype=float)  # pragma: no mutate
        out = np.full(floats.size, None, dtype=object)  # pragma: no mutate
        finite = np.isfinite(floats)
        whole = finite & (np.mod(np.where(finite, floats, 0), 1) == 0)  # pragma: no mutate
        out[whole] = floats[whole].astype(np.int64).astype(str)
        shown = ~whole & ~np.isnan(floats)  # fractions and infinities, as their text
        out[shown] = floats[shown].astype(str)
        return pd.Series(out, index=values.index, dtype=object)
    # Missing values are put back as None after the map, whatever it made of them.
    text = values.map(_category_text, na_action="ignore")  # pragma: no mutate
    return text.astype(object).where(values.notna(), None)


def _category_text(value: object) -> str:
    return str(class_key(value))
