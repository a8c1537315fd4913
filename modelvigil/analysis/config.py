"""What a monitoring run is asked to do (`MonitoringConfig`) and the alerts it can raise.

A typed, bounded pydantic model: it is the monitoring flow's parameter form in the Prefect UI.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import BaseModel, Field, model_validator

from modelvigil.analysis.windows import Windowing, WindowKind
from modelvigil.forms import FormModel
from modelvigil.protocol import CRN_PATTERN
from modelvigil.scaleout import ScaleOut

# Drift limits; why these values: `analysis/drift.py`. Kept here, so that reading a configuration
# (every command's option help) does not load the statistics behind drift.
PSI_THRESHOLD = 0.25
JS_THRESHOLD = 0.1


class Task(StrEnum):
    auto = "auto"
    binary = "binary"
    multiclass = "multiclass"
    regression = "regression"

    @property
    def classifies(self) -> bool:
        return self in (Task.binary, Task.multiclass)


class AlertKind(StrEnum):
    accuracy = "accuracy"
    drift = "drift"
    latency = "latency"
    coverage = "coverage"
    missing = "missing"
    error = "error"
    no_data = "no_data"  # the range held no prediction: nothing was judged, which is not "healthy"


class Thresholds(FormModel):
    form_groups: ClassVar[dict[str, tuple[str, ...]]] = {
        "Accuracy": ("min_accuracy", "min_labels", "min_accuracy_drop", "reference_alpha", "cusum_shift",
                     "cusum_quiet_windows"),
        "Drift": ("max_psi", "max_prediction_js", "min_drift_rows"),
        "Error (regression)": ("min_error_rise",),
        "Service": ("max_p95_latency_ms", "min_label_coverage", "min_missing_rise"),
    }  # fmt: skip

    min_accuracy: float = Field(
        0.85, ge=0.0, le=1.0, description="Alert when a window's accuracy (its whole 95% interval) is below."
    )
    min_labels: int = Field(100, ge=1, description="Windows with fewer labelled predictions are not judged.")
    max_psi: float = Field(
        PSI_THRESHOLD, gt=0.0, description="Alert when a feature's PSI is above (and above sampling noise)."
    )
    max_prediction_js: float = Field(JS_THRESHOLD, gt=0.0, le=1.0, description="Prediction-mix drift limit.")
    min_drift_rows: int = Field(
        100, ge=1, description="Windows with fewer predictions are not judged for drift."
    )
    max_p95_latency_ms: float = Field(
        1000.0, gt=0.0, description="Alert when a window's p95 latency is above."
    )
    min_label_coverage: float = Field(0.5, ge=0.0, le=1.0, description="Alert when coverage is below.")
    reference_alpha: float = Field(
        1e-3,
        gt=0.0,
        lt=0.5,
        description="Chance per window that noise alone trips a reference-relative rule (accuracy, "
        "estimated accuracy, probability drift).",
    )
    min_accuracy_drop: float = Field(
        0.02, ge=0.0, le=1.0, description="Accuracy drops smaller than this are not alerted, however sure."
    )
    cusum_shift: float = Field(
        1.5, gt=1.0, le=20.0, description="The CUSUM watches for this many times the reference's error rate."
    )
    cusum_quiet_windows: float = Field(
        200.0,
        ge=10.0,
        description="The CUSUM's limit is set so that noise alone passes it about once in this many windows.",
    )
    min_error_rise: float = Field(
        0.1,
        ge=0.0,
        le=100.0,
        description="A regression's mean absolute error rising less than this share above the "
        "reference's is not alerted, however sure.",
    )
    min_missing_rise: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="A feature's missing share rising less than this above the reference's is not alerted.",
    )


class MonitoringConfig(ScaleOut):
    form_groups: ClassVar[dict[str, tuple[str, ...]]] = {
        "Time range": ("start", "end", "lookback_hours"),
        "Model": ("deployment_crn", "model_name", "service_url", "store_url"),
        "Model task": ("task", "positive_label", "categorical", "numeric"),
        "Windows": ("window_kind", "window_size", "window_minutes"),
        "Reference": ("reference_start", "reference_end", "reference_share"),
        "Alerts": ("thresholds", "fail_on_alert"),
        **ScaleOut.form_groups,
        "Output": ("output_dir", "plot_all_features"),
    }

    # Time range
    start: datetime | None = Field(None, description="Window start (UTC); default: end minus lookback.")
    end: datetime | None = Field(None, description="Window end (UTC); default: now.")
    lookback_hours: float = Field(24.0, gt=0.0, le=24 * 366, description="Used when start is not given.")
    # Model
    deployment_crn: str | None = Field(
        None, max_length=300, pattern=CRN_PATTERN, description="Deployment CRN; default: discovered by name."
    )
    model_name: str | None = Field(
        None, max_length=200, description="Model to find when no CRN is given; default: the one served here"
    )
    service_url: str | None = Field(None, description="Model service URL; default: configured or embedded.")
    store_url: str | None = Field(None, description="Read the store directly (fast path) at this URL.")
    # Model task
    task: Task = Field(Task.auto, description="What the model does (auto: inferred from the records).")
    positive_label: str | None = Field(
        None, max_length=200, description="A binary model's positive class; default: inferred (1, true, yes)."
    )
    categorical: list[Annotated[str, Field(max_length=300)]] = Field(
        default_factory=list, max_length=10_000, description="Features to compare as categories."
    )
    numeric: list[Annotated[str, Field(max_length=300)]] = Field(
        default_factory=list, max_length=10_000, description="Features to compare as numbers."
    )
    # Windows
    window_kind: WindowKind = Field(
        WindowKind.count, description="Windows by number of predictions or by time."
    )
    window_size: int | None = Field(None, ge=1, description="Predictions per window; default: 10 windows.")
    window_minutes: int = Field(60, ge=1, le=7 * 24 * 60, description="Minutes per window (time windows).")
    # Reference
    reference_start: datetime | None = Field(None, description="Reference period start; default: see share.")
    reference_end: datetime | None = Field(None, description="Reference period end (with reference_start).")
    reference_share: float = Field(
        0.2, gt=0.0, lt=1.0, description="Without a reference period: the earliest share of the range."
    )
    # Alerts
    thresholds: Thresholds = Field(default_factory=Thresholds)
    fail_on_alert: bool = Field(False, description="Fail the run when any alert fires.")
    # Output
    output_dir: str | None = Field(None, description="Report folder; default: $MODELVIGIL_HOME/reports/TIME.")
    plot_all_features: bool = Field(
        False, description="A reference-vs-current plot for every feature, not only the drifted ones."
    )

    @model_validator(mode="after")
    def _ordered(self) -> MonitoringConfig:
        for name in ("start", "end", "reference_start", "reference_end"):
            moment = getattr(self, name)
            if moment is not None and _aware(moment) < EPOCH:
                raise ValueError(f"{name} {moment.isoformat()} is before 1970, where the store's times begin")
        if self.start and not self.end and _aware(self.start) >= datetime.now(UTC):
            raise ValueError(f"start {self.start.isoformat()} is in the future: give an end after it as well")
        if self.start and self.end and _aware(self.end) <= _aware(self.start):
            raise ValueError("end must be after start")
        if (self.reference_start is None) != (self.reference_end is None):
            raise ValueError("give both reference_start and reference_end, or neither")
        if self.reference_start and self.reference_end and self.reference_end <= self.reference_start:
            raise ValueError("reference_end must be after reference_start")
        both = sorted(set(self.categorical) & set(self.numeric))
        if both:
            raise ValueError(f"feature(s) declared both categorical and numeric: {', '.join(both)}")
        return self

    def windowing(self) -> Windowing:
        return Windowing(self.window_kind, self.window_size, self.window_minutes)

    def time_range_ms(self, now: datetime | None = None) -> tuple[int, int]:
        end = self.end or now or datetime.now(UTC)
        start = self.start or max(_aware(end) - timedelta(hours=self.lookback_hours), EPOCH)
        return _ms(start), _ms(end)

    def reference_range_ms(self) -> tuple[int, int] | None:
        if self.reference_start and self.reference_end:
            return _ms(self.reference_start), _ms(self.reference_end)
        return None


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # naive times are UTC, as the form says


def _ms(moment: datetime) -> int:
    return int(_aware(moment).timestamp() * 1000)


class Alert(BaseModel):
    kind: AlertKind
    window: int
    window_start_ms: int
    window_end_ms: int
    metric: str
    subject: str  # what breached: "model", a feature name, "predictions"
    value: float
    threshold: float
    message: str
