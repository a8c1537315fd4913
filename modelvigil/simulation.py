"""What a traffic simulation is asked to do (`SimulationConfig`) and what it reports (`SimulationSummary`).

The flow parameters are one pydantic model so the Prefect UI renders a typed form; every field
says what it is for and is bounded, so bad input is refused before anything runs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, field_validator

from modelvigil.analysis import windows
from modelvigil.analysis.performance import window_quality
from modelvigil.data import DEFAULT_SHIFTED, FEATURES, Scenario
from modelvigil.scaleout import ScaleOut


class CheckPolicy(StrEnum):
    fail = "fail"
    warn = "warn"


class SimulationConfig(ScaleOut):
    form_groups: ClassVar[dict[str, tuple[str, ...]]] = {
        "Traffic": ("requests", "rows_per_request", "seed"),
        "Drift": ("scenario", "drift_onset", "drift_magnitude", "shifted_features"),
        "Scoring": (
            "concurrency",
            "batch_size",
            "max_attempts",
            "request_timeout_seconds",
            "label_set",
            "check_policy",
            "service_url",
            "model_name",
        ),
        "Ground truth": ("label_coverage", "label_delay_seconds", "accuracy_window"),
        **ScaleOut.form_groups,
        "Output": ("simulation_id", "output_dir"),
    }

    # Traffic
    requests: int = Field(1000, ge=1, le=10_000_000, description="Number of calls to the model endpoint.")
    rows_per_request: int = Field(1, ge=1, le=10_000, description="Rows scored per call (the lab sends 1).")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Same seed, same traffic.")
    # Drift
    scenario: Scenario = Field(Scenario.none, description="Drift to put into the traffic.")
    drift_onset: float = Field(0.5, ge=0.0, le=1.0, description="Share of the traffic before drift starts.")
    drift_magnitude: float = Field(1.0, ge=0.0, le=5.0, description="1 = clearly visible, 0 = none.")
    shifted_features: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SHIFTED), description="Features moved by covariate_shift."
    )
    # Scoring
    concurrency: int = Field(8, ge=1, le=256, description="Calls in flight at once.")
    batch_size: int = Field(500, ge=1, le=100_000, description="Calls per scoring task.")
    max_attempts: int = Field(6, ge=1, le=20, description="Attempts per call for retryable failures.")
    request_timeout_seconds: float = Field(30.0, gt=0.0, le=600, description="Read timeout per call.")
    label_set: list[int] = Field(default_factory=lambda: [0, 1], description="Labels the model may return.")
    check_policy: CheckPolicy = Field(CheckPolicy.fail, description="Failed prediction checks: fail or warn.")
    service_url: str | None = Field(
        None, description="Model service base URL; empty = configured or embedded."
    )
    model_name: str | None = Field(
        None,
        max_length=200,
        description="Model to discover; default: MODELVIGIL_MODEL_NAME, else the one served here",
    )
    # Ground truth
    label_coverage: float = Field(
        1.0, ge=0.0, le=1.0, description="Share of predictions that get ground truth."
    )
    label_delay_seconds: float = Field(
        0.0, ge=0.0, le=86_400, description="Wait before sending ground truth."
    )
    accuracy_window: int = Field(100, ge=1, le=10_000_000, description="Predictions per accuracy aggregate.")
    # Output
    simulation_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Names this run; the same id resumes it without scoring anything twice.",
    )
    output_dir: str | None = Field(
        None,
        description="Folder for the ledger, checks and Data Docs; default: $MODELVIGIL_HOME/runs/ID.",
    )

    @field_validator("simulation_id")
    @classmethod
    def _plain_id(cls, value: str | None) -> str | None:
        # The id names a folder under the home's runs/: "." or ".." would be the runs folder or the home.
        if value is not None and set(value) == {"."}:
            raise ValueError(f"{value!r} is not a simulation id: use letters, digits, '_', '-' or '.'")
        return value

    @field_validator("shifted_features")
    @classmethod
    def _known_features(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}; known: {FEATURES}")
        return value

    @field_validator("label_set")
    @classmethod
    def _non_empty(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("label_set must name at least one label")
        return value


class WindowAccuracy(BaseModel):
    window: int
    start_ms: int
    end_ms: int
    predictions: int
    labelled: int
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None


class SimulationSummary(BaseModel):
    simulation_id: str
    requests: int
    rows: int
    succeeded: int
    failed: int
    retries: int
    labels_submitted: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    scoring_seconds: float
    requests_per_second: float
    checks_passed: bool
    failing_uuids: list[str]
    failures: list[dict[str, object]]
    windows: list[WindowAccuracy]
    output_dir: str
    # Where the traffic went: what the monitoring of this simulation must read.
    model_name: str = ""
    deployment_crn: str = ""

    def table(self) -> list[dict[str, object]]:
        """The headline figures as rows of (figure, value), for a table artifact or a console."""
        rows: list[dict[str, object]] = [
            {"figure": "requests", "value": self.requests},
            {"figure": "rows scored", "value": self.rows},
            {"figure": "failed for good", "value": self.failed},
            {"figure": "retries", "value": self.retries},
            {"figure": "labels submitted", "value": self.labels_submitted},
            # The client's clock: network, queueing and retries included (the report's is the server's).
            {"figure": "client latency p50 / p95 / p99 (ms)", "value": _triple(self)},
            {"figure": "requests per second", "value": round(self.requests_per_second, 1)},
            {"figure": "prediction checks", "value": "passed" if self.checks_passed else "FAILED"},
        ]
        for w in self.windows:
            acc = "n/a" if w.accuracy is None else f"{w.accuracy:.3f}"
            rows.append({"figure": f"accuracy, window {w.window}", "value": f"{acc} ({w.labelled} labelled)"})
        return rows

    def outcome(self) -> str:
        """The run in one line, for its last log line."""
        accuracies = [w.accuracy for w in self.windows if w.accuracy is not None]
        accuracy = (
            f"accuracy {min(accuracies):.3f} to {max(accuracies):.3f} over {len(accuracies)} windows"
            if accuracies
            else "no accuracy (no ground truth)"
        )
        checks = "checks passed" if self.checks_passed else "checks FAILED"
        return (
            f"simulation {self.simulation_id}: {self.succeeded:,} of {self.requests:,} calls answered "
            f"({self.retries} retries), {self.labels_submitted:,} labels; {accuracy}; {checks}; "
            f"client latency p95 {_ms(self.latency_p95_ms)}"
        )


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _triple(s: SimulationSummary) -> str:
    vals = [s.latency_p50_ms, s.latency_p95_ms, s.latency_p99_ms]
    return " / ".join("n/a" if v is None else f"{v:.1f}" for v in vals)


def latency_percentiles(ledger: pd.DataFrame) -> tuple[float | None, float | None, float | None]:
    values = pd.to_numeric(ledger["latency_ms"], errors="coerce").dropna().to_numpy()
    if values.size == 0:
        return None, None, None
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def accuracy_windows(rows: pd.DataFrame, size: int) -> list[WindowAccuracy]:
    """Windows of `size` predictions in request order; quality over the labelled ones.

    `rows`: one row per scored row (`ledger.scored_rows`) plus a boolean `labelled` column
    saying which got ground truth.
    """
    ordered = rows.sort_values(["request_no", "row"]).reset_index(drop=True)
    window = windows.by_count(len(ordered), size)
    actual = np.where(
        ordered["labelled"].to_numpy(dtype=bool), ordered["label"].to_numpy(dtype=float), np.nan
    )
    quality = window_quality(window, ordered["prediction"].to_numpy(), actual).set_index("window")
    bounds = (
        ordered.assign(window=window)
        .groupby("window")
        .agg(start_ms=("sent_ms", "min"), end_ms=("received_ms", "max"), predictions=("uuid", "size"))
    )
    out = []
    for w, b in bounds.iterrows():
        q = quality.loc[w]

        def rate(name: str, q: pd.Series = q) -> float | None:
            return None if pd.isna(q[name]) else float(q[name])

        out.append(
            WindowAccuracy(
                window=int(w),
                start_ms=int(b["start_ms"]),
                end_ms=int(b["end_ms"]),
                predictions=int(b["predictions"]),
                labelled=int(q["n_labelled"]),
                accuracy=rate("accuracy"),
                precision=rate("precision"),
                recall=rate("recall"),
                f1=rate("f1"),
            )
        )
    return out


# What decides the traffic, its labels, its windows and where it goes: a rerun under the same
# simulation id must keep these (it resumes: same idempotency keys, same requests, same model, and
# its ledger is the first run's); speed settings may change.
TRAFFIC_FIELDS = (
    "model_name",
    "service_url",
    "requests",
    "rows_per_request",
    "scenario",
    "drift_onset",
    "drift_magnitude",
    "shifted_features",
    "seed",
    "label_coverage",
    "accuracy_window",
    "label_set",
)


class SimulationChanged(ValueError):
    """A simulation id was reused with other traffic: resuming would mix two simulations."""


def check_resume(config: SimulationConfig, simulation_id: str, saved: dict[str, object] | None) -> None:
    """Refuse a rerun of `simulation_id` whose traffic differs from what `saved` recorded."""
    if saved is None:
        return
    now = config.model_dump(mode="json")
    changed = [
        f"{name} {saved.get(name)!r} -> {now.get(name)!r}"
        for name in TRAFFIC_FIELDS
        if saved.get(name) != now.get(name)  # unset (None) fields are left out of the JSON
    ]
    if changed:
        raise SimulationChanged(
            f"simulation {simulation_id!r} was run with other traffic ({'; '.join(changed)}): "
            "use a new --simulation-id, or the same settings to resume it"
        )
