"""The monitoring analysis, one engine for every caller: the records read a block at a time, each
block folded by the calculators into per-window state, and the report's figures finished from
that state. Memory holds one block and the calculators' state, never the range; an in-memory
frame (`analyse`) is simply a single block.

Passes: `blocks()` is called once per pass and must give the same rows in the same (time) order
each time. The rows are counted first when the windows or the reference need the total (default
count windows; a reference taken as the range's earliest share), then the reference's rows are
sampled (`reference_sample`), then everything is folded.

What kind of model the records come from (task, classes, feature kinds) is inferred from the
reference (`model_schema`), overridable in `MonitoringConfig`, and said in the notes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from modelvigil.analysis import alerts
from modelvigil.analysis.calculators.arrival import ARRIVAL_COLUMNS, Arrival
from modelvigil.analysis.calculators.base import Block, Calculator, Context
from modelvigil.analysis.calculators.classification import Classification
from modelvigil.analysis.calculators.feature_drift import DRIFT_COLUMNS, FeatureDrift
from modelvigil.analysis.calculators.reference_accuracy import ReferenceAccuracy
from modelvigil.analysis.calculators.regression import Regression
from modelvigil.analysis.calculators.traffic import Traffic
from modelvigil.analysis.config import Alert, AlertKind, MonitoringConfig
from modelvigil.analysis.drift import ReferenceProfile
from modelvigil.analysis.incidents import incidents
from modelvigil.analysis.model_schema import (
    FEATURE_PREFIX,
    FeatureSchema,
    Task,
    class_key,
    infer_features,
    infer_task,
    label_values,
    positive_class,
    sort_key,
)
from modelvigil.analysis.reference_sample import ReferenceSampler
from modelvigil.analysis.results import Analysis, StreamSketch
from modelvigil.analysis.tracked_aggregates import tracked_accuracy
from modelvigil.analysis.windows import DEFAULT_WINDOWS, WindowKind, by_time
from modelvigil.protocol import LABEL_KEY

Blocks = Callable[[], Iterable[pd.DataFrame]]
WINDOW_COLUMNS = ["window", "start_ms", "end_ms", "predictions", "requests", "accuracy"]


def prepare_records(frame: pd.DataFrame) -> tuple[pd.DataFrame, int, list[object]]:
    """Time order, `latency_ms`, comparable `label`s and whether one `arrived`; also how many
    labels were not usable (objects, lists) and the first of them."""
    # Ties keep the source's order, which keeps a call's rows together. Both read paths already
    # deliver time order, so the sort is usually skipped (it costs seconds at 1M rows).
    # (The old index, kept as a column, would only be a column no calculator reads.)
    if frame["start_ms"].is_monotonic_increasing:
        records = frame.reset_index(drop=True)  # pragma: no mutate
    else:
        records = frame.sort_values("start_ms", kind="stable")
        records = records.reset_index(drop=True)  # pragma: no mutate
    # The lab computed `(end - start).dt.microseconds * 1000`: sub-second part only, multiplied.
    # (astype(None) is float64 as well.)
    records["latency_ms"] = (records["end_ms"] - records["start_ms"]).astype(float)  # pragma: no mutate
    labels = label_values(records.get(LABEL_KEY), len(records))
    records["label"], records["arrived"] = labels.values.to_numpy(), labels.arrived
    # Missing, as None or NaN alike: every reader takes them through to_numeric or dropna.
    if "probability" not in records:
        records["probability"] = np.nan  # pragma: no mutate
    if "prediction" not in records:
        records["prediction"] = np.nan
    return records, labels.invalid_count, labels.invalid


def time_span(reference: pd.DataFrame) -> tuple[int, int] | None:
    if reference.empty or "start_ms" not in reference:
        return None
    return int(reference["start_ms"].min()), int(reference["start_ms"].max())


NO_RECORDS = "no prediction records in the requested range"


def empty_analysis(notes: list[str], time_range: tuple[int, int] | None = None) -> Analysis:
    """Nothing to judge: no figures, and (given the range asked for) one `no_data` alert, so that
    a night without traffic, or a report of the wrong deployment, never reads as a healthy one."""
    alerts = []
    if time_range is not None:
        alerts.append(
            Alert(
                kind=AlertKind.no_data, window=0, window_start_ms=time_range[0], window_end_ms=time_range[1],
                metric="predictions", subject="model", value=0.0, threshold=1.0,
                message="no prediction records in this range: no traffic, or it went to another deployment",
            )
        )  # fmt: skip
    return Analysis(
        windows=pd.DataFrame(columns=WINDOW_COLUMNS),
        drift=pd.DataFrame(columns=DRIFT_COLUMNS),
        arrival=pd.DataFrame(columns=ARRIVAL_COLUMNS),
        confusion=pd.DataFrame(),
        alerts=alerts,
        overall={
            "predictions": 0,
            "requests": 0,
            "labelled": 0,
            "invalid_labels": 0,
            "label_coverage": None,
            "accuracy": None,
            "latency_p50_ms": None,
            "latency_p95_ms": None,
            "latency_p99_ms": None,
            "windows": 0,
            "alerts": len(alerts),
        },
        notes=notes,
        incidents=incidents(alerts, pd.DataFrame(columns=WINDOW_COLUMNS), 0),
    )


# What a reference is fitted on (and its sampler keeps): the rest of a record is not held.
_REFERENCE_BASE = {"prediction_uuid", "row", "start_ms", "end_ms", "prediction", "probability", LABEL_KEY}


def _reference_column(name: str) -> bool:
    return name in _REFERENCE_BASE or name.startswith(FEATURE_PREFIX)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """The frame's column; an empty one when there is none (no record to read)."""
    if name in frame:
        return frame[name]
    return pd.Series(dtype=float)  # pragma: no mutate (an empty column's dtype matters to nothing)


def model_context(reference: pd.DataFrame, config: MonitoringConfig) -> Context:
    """The task, classes, positive class and feature kinds, inferred from the (prepared)
    reference unless the configuration says; every guess worth correcting said in a note."""
    notes: list[str] = []
    prediction, label = _column(reference, "prediction"), _column(reference, "label")
    task = config.task if config.task is not Task.auto else infer_task(prediction, label)
    classes: list[object] = []
    positive = None
    if task.classifies:
        seen = {class_key(v) for v in prediction.dropna()} | {class_key(v) for v in label.dropna()}
        classes = sorted(seen, key=sort_key)
        if task is Task.binary:
            positive = positive_class(classes, config.positive_label)
            if config.positive_label is not None and positive is None:
                notes.append(
                    f"positive label {config.positive_label!r} is none of the classes seen "
                    f"({', '.join(map(str, classes))}): precision and recall are macro-averaged"
                )
            elif positive is None and len(classes) == 2:
                notes.append(
                    f"classes {classes[0]!r} and {classes[1]!r}: which is positive is not clear, so "
                    "precision and recall are macro-averaged (--positive-label to choose)"
                )
    columns = [c for c in reference.columns if c.startswith(FEATURE_PREFIX)]
    features = infer_features(reference, columns, config.categorical, config.numeric)
    if config.task is Task.auto and not reference.empty:
        what = {
            Task.binary: "binary classification",
            Task.multiclass: f"multi-class classification ({len(classes)} classes)",
            Task.regression: "regression (numeric predictions)",
        }[task]
        notes.append(f"model task inferred from the records: {what} (--task to say otherwise)")
    return Context(config, task, classes, positive, features, notes + features.notes)


def _calculators(
    context: Context, time_range: tuple[int, int], span: tuple[int, int] | None
) -> tuple[Traffic, list[Calculator]]:
    windowing = context.config.windowing()
    traffic = Traffic(time_range, span)
    performance: list[Calculator] = (
        [Classification(), ReferenceAccuracy(), Arrival(
            windowing.minutes * 60_000 if windowing.kind is WindowKind.time else None
        )]
        if context.task.classifies
        else [Regression()]
    )  # fmt: skip
    return traffic, [traffic, *performance, FeatureDrift()]


def _first_block(blocks: Blocks) -> pd.DataFrame:
    for block in blocks():
        if not block.empty:
            return prepare_records(block)[0]
    return pd.DataFrame()


class _Windows:
    """Each row's window key: a count window's number, or a time window's start."""

    def __init__(self, config: MonitoringConfig, total_rows: int | None) -> None:
        windowing = config.windowing()
        self.time_ms = windowing.minutes * 60_000 if windowing.kind is WindowKind.time else None
        self.size = None
        if self.time_ms is None:
            self.size = windowing.size or max(1, math.ceil((total_rows or 0) / DEFAULT_WINDOWS))
        self.row = 0

    def keys(self, records: pd.DataFrame) -> np.ndarray:
        n = len(records)
        if self.size is not None:
            keys = (self.row + np.arange(n)) // self.size
        else:
            keys = by_time(records["start_ms"], self.time_ms)
        self.row += n
        return keys


def analyse_blocks(
    blocks: Blocks,
    aggregates: pd.DataFrame | Callable[[], pd.DataFrame],
    config: MonitoringConfig,
    time_range: tuple[int, int],
    reference_blocks: Blocks | None = None,
    count_rows: Callable[[], int] | None = None,
) -> Analysis:
    """Everything the report shows, read block by block (see the module's note on passes).
    `aggregates` may be a callable, asked once every pass is done (they may come with the blocks);
    `count_rows`, when the source can count its rows without reading them, saves a pass."""
    notes: list[str] = []
    count_windows = config.windowing().kind is WindowKind.count and config.window_size is None
    # Unknown until counted (a window size given, or time windows, need no count); and counted
    # by the source or over the blocks, the same number.
    total = None  # pragma: no mutate
    if count_windows or reference_blocks is None:  # a pass of its own, unless the source can count
        counted = count_rows is not None  # pragma: no mutate
        total = count_rows() if counted else sum(len(block) for block in blocks())
    if total == 0:
        return empty_analysis([NO_RECORDS], time_range)

    # Keeping every column would only cost memory.
    sampler = ReferenceSampler(keep=_reference_column)  # pragma: no mutate
    span_rows: list[pd.DataFrame] = []
    if reference_blocks is None:
        assert total is not None
        cut = max(1, int(total * config.reference_share))
        taken = 0
        for block in blocks():
            part = block.iloc[: cut - taken]
            sampler.add(part)
            span_rows.append(part[["start_ms"]])
            taken += len(part)
            if taken >= cut:  # pragma: no mutate (one block more would add none of its rows)
                break
        notes.append(f"reference: the earliest {cut} predictions of the range (no reference period given)")
    else:
        for block in reference_blocks():
            sampler.add(block)
            span_rows.append(block[["start_ms"]])
    reference = sampler.frame()
    span = time_span(pd.concat(span_rows)) if span_rows else None  # its first and last start only
    if reference_blocks is not None and reference.empty:
        notes.append("the reference period holds no records: drift not measured")
    if not reference.empty:
        reference, _, _ = prepare_records(reference)

    # Without a reference the model's kind is still read from its records: the first block's.
    context = model_context(reference if not reference.empty else _first_block(blocks), config)
    traffic, calculators = _calculators(context, time_range, span)
    for calculator in calculators:
        calculator.fit(reference, context)

    windows = _Windows(config, total)
    invalid_count, invalid = 0, []
    for frame in blocks():
        if frame.empty:
            continue
        records, bad, shown = prepare_records(frame)
        invalid_count += bad
        invalid += shown[: max(0, 3 - len(invalid))]
        records["window"] = windows.keys(records)
        block = Block(records)
        for calculator in calculators:
            calculator.fold(block)
    if traffic.rows == 0:
        return empty_analysis([*notes, NO_RECORDS], time_range)
    return _finish(
        calculators, context, aggregates() if callable(aggregates) else aggregates, notes, span,
        (invalid_count, invalid), reference,
    )  # fmt: skip


def analyse(
    frame: pd.DataFrame,
    aggregates: pd.DataFrame,
    config: MonitoringConfig,
    reference: pd.DataFrame | None = None,
) -> Analysis:
    """The analysis of an in-memory frame (`read_frame`'s shape): the one engine, on one block.
    `reference`: rows of the reference period (default: the earliest `config.reference_share`)."""
    if frame.empty:
        return empty_analysis([NO_RECORDS])
    # In time order, as the readers deliver it: the default reference is the range's earliest rows.
    if not frame["start_ms"].is_monotonic_increasing:
        frame = frame.sort_values("start_ms", kind="stable")
    low, high = int(frame["start_ms"].min()), int(frame["end_ms"].max())
    return analyse_blocks(
        lambda: [frame],
        aggregates,
        config,
        (low, high),
        (lambda: [reference]) if reference is not None else None,
        count_rows=lambda: len(frame),  # pragma: no mutate (without it, a pass counts the same rows)
    )


def _finish(
    calculators: list[Calculator],
    context: Context,
    aggregates: pd.DataFrame,
    notes: list[str],
    span: tuple[int, int] | None,
    invalid: tuple[int, list[object]],
    reference: pd.DataFrame,
) -> Analysis:
    traffic = next(c for c in calculators if isinstance(c, Traffic))
    drift_calc = next(c for c in calculators if isinstance(c, FeatureDrift))
    keys = traffic.keys()
    table = pd.concat([c.columns(keys) for c in calculators], axis=1)
    table["tracked_accuracy"] = tracked_accuracy(table, aggregates)
    drift = pd.DataFrame([row for c in calculators for row in c.drift_rows(keys)])
    if drift.empty:
        drift = pd.DataFrame(columns=[*DRIFT_COLUMNS, "nan_rise"])
    else:
        table["max_psi"] = table["window"].map(drift.groupby("window")["psi"].max())
    rules = [rule for c in calculators for rule in c.rules]
    raised = alerts.evaluate(table, drift, context.config.thresholds, rules)
    drift = drift.drop(columns=["nan_rise"])

    head: list[str] = []
    count, shown = invalid
    if count:
        head.append(
            f"{count} label(s) not usable (objects or lists, not values), left out: "
            + ", ".join(repr(v)[:40] for v in shown)
        )
    head += [
        f"feature {name.removeprefix(FEATURE_PREFIX)!r} has no values in this range"
        for name in drift_calc.empty_features()
    ]
    notes = [*head, *notes, *context.notes]
    small = int((table["predictions"] < context.config.thresholds.min_drift_rows).sum())
    if small:
        notes.append(
            f"{small} window(s) under {context.config.thresholds.min_drift_rows} predictions: "
            "drift shown, not judged"
        )
    overall: dict[str, float | int | None] = {**traffic.overall(), "invalid_labels": count}
    overall["accuracy"] = None
    for c in calculators:
        if c is not traffic:
            overall.update(c.overall())
    overall.update(windows=len(table), alerts=len(raised))
    classification = next((c for c in calculators if isinstance(c, Classification)), None)
    arrival = next((c for c in calculators if isinstance(c, Arrival)), None)
    regression = next((c for c in calculators if isinstance(c, Regression)), None)
    reference_accuracy = next((c for c in calculators if isinstance(c, ReferenceAccuracy)), None)
    numeric = list(drift_calc.numeric)
    profile = None
    if not reference.empty:
        profile = ReferenceProfile(numeric=dict(drift_calc.numeric), rows=len(reference))
    ks_bounds = {name.removeprefix(FEATURE_PREFIX): f.ks_bound for name, f in drift_calc.fine.items()}
    if reference_accuracy is not None and reference_accuracy.probability_fine is not None:
        ks_bounds["probability"] = reference_accuracy.probability_fine.ks_bound
    sketch = StreamSketch(
        latency=traffic.latency,
        calls=traffic.call_sample(),
        total_calls=traffic.total_calls,
        latency_bins=traffic.latency_bins(),
        feature_fine={
            (name.removeprefix(FEATURE_PREFIX), number): drift_calc.seen[name].fine[key]
            for name in numeric
            if name in drift_calc.seen
            for number, key in enumerate(keys)
            if key in drift_calc.seen[name].fine
        },
        feature_edges={name.removeprefix(FEATURE_PREFIX): f.edges for name, f in drift_calc.fine.items()},
        ks_bounds=ks_bounds,
        category_counts=drift_calc.category_counts(keys),
    )
    if regression is not None and regression.residual_fine is not None:
        sketch.residual_edges = regression.residual_fine.edges
        sketch.residual_counts = {n: regression.residual_bins[k] for n, k in enumerate(keys)
                                  if k in regression.residual_bins}  # fmt: skip
        sketch.reference_residuals = regression.reference_residuals
    return Analysis(
        windows=table,
        drift=drift,
        arrival=arrival.table(context.config.window_size)
        if arrival is not None
        else pd.DataFrame(columns=ARRIVAL_COLUMNS),
        confusion=classification.confusion_table() if classification is not None else pd.DataFrame(),
        alerts=raised,
        overall=overall,
        notes=notes,
        profile=profile,
        reference_span_ms=span,
        sketch=sketch,
        task=context.task,
        positive=context.positive,
        per_class=classification.per_class() if classification is not None else pd.DataFrame(),
        feature_kinds={c.removeprefix(FEATURE_PREFIX): str(k) for c, k in context.features.kinds.items()},
        incidents=incidents(raised, table, int(drift["feature"].nunique()) if not drift.empty else 0),
    )


__all__ = ["Analysis", "FeatureSchema", "analyse", "analyse_blocks", "empty_analysis"]
