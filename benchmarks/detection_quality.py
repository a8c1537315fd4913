"""How well each alerting signal detects drift of known kind and onset, and how often it cries wolf.
Also how close the estimated accuracy (before labels) comes to the realized one.

For each scenario and magnitude, 10 seeds: traffic from the generator, scored by the model, labelled,
cut into windows of 500 with drift from window 5 and the first 1,000 rows as the reference; the
analysis is called directly (no HTTP, no Prefect). Per signal (an alert rule's metric) and
scenario: seeds flagged after the onset, median first window and delay, and false alarms per 100
quiet windows (windows after the reference and before the onset; all of them without drift), with
one `pooled` row per signal over every quiet window.

Two more tables, on the same one engine: quiet traffic with references of 200, 500 and 1,000 rows
(20 windows each: how often a reference-relative rule cries wolf when the reference's own sampling
error is what it holds windows to), and models other than the fraud classifier (a categorical
shift, a multi-class accuracy drop, a regression whose error grows), built here with known onset.

Run: `python -m benchmarks.detection_quality [--quick] [--json PATH]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from modelvigil.analysis.config import MonitoringConfig
from modelvigil.analysis.engine import analyse
from modelvigil.data import FEATURES, LABEL, generate
from modelvigil.model import FraudModel
from modelvigil.protocol import LABEL_KEY

WINDOW = 500
WINDOWS = 10
ONSET_WINDOW = 5
REFERENCE_ROWS = 1_000
# (scenario, magnitude): the sweep the issue asks for; magnitude 1.0 where the scenario has none.
CASES = [
    ("none", 0.0),
    ("covariate_shift", 0.05),
    ("covariate_shift", 0.1),
    ("covariate_shift", 0.2),
    ("covariate_shift", 1.0),
    ("label_ramp", 1.0),
    ("concept_flip", 1.0),
]


@dataclass
class Row:
    scenario: str
    magnitude: float
    signal: str
    seeds: int
    seeds_flagged: int
    median_first_window: float | None
    median_delay: float | None
    false_alarms_per_100_quiet: float
    quiet_windows: int


def frame_for(traffic: pd.DataFrame, model: FraudModel) -> pd.DataFrame:
    """The store's frame shape (`read_frame`): one row per prediction, one call per row."""
    scores = model.predict(traffic[FEATURES].to_numpy(dtype=float))
    n = len(traffic)
    start = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * 10
    frame = pd.DataFrame(
        {
            "prediction_uuid": [f"u{i}" for i in range(n)],
            "row": np.zeros(n, dtype=np.int64),
            "start_ms": start,
            "end_ms": start + 3,
            "prediction": scores.labels,
            "probability": scores.probabilities,
            LABEL_KEY: traffic[LABEL].to_numpy(dtype=float),
        }
    )
    for name in FEATURES:
        frame[f"input_data.{name}"] = traffic[name].to_numpy(dtype=float)
    return frame


def flagged_windows(frame: pd.DataFrame) -> tuple[dict[str, set[int]], list[float]]:
    """Signal -> the windows its alerts name; and |estimated - realized accuracy| per judged window."""
    reference = frame.iloc[:REFERENCE_ROWS]
    result = analyse(frame, pd.DataFrame(), MonitoringConfig(window_size=WINDOW), reference=reference)
    found: dict[str, set[int]] = {}
    for alert in result.alerts:
        found.setdefault(alert.metric, set()).add(alert.window)
    judged = result.windows[result.windows["window"] >= REFERENCE_ROWS // WINDOW]
    errors = (judged["estimated_accuracy"] - judged["accuracy"]).abs().dropna().tolist()
    return found, errors


def _detect(
    scenario: str, magnitude: float, runs: list[dict[str, set[int]]], quiet: range, onset: int
) -> list[Row]:
    """One row per signal: seeds flagged at or after `onset`, first window, delay, false alarms."""
    signals = sorted({s for run in runs for s in run})
    rows = []
    for signal in signals:
        firsts = [min(w) for run in runs if (w := [x for x in run.get(signal, ()) if x >= onset])]
        alarms = sum(1 for run in runs for w in run.get(signal, ()) if w in quiet)
        n_quiet = len(quiet) * len(runs)
        rows.append(
            Row(
                scenario, magnitude, signal, len(runs), len(firsts),
                statistics.median(firsts) if firsts else None,
                statistics.median(firsts) - onset if firsts else None,
                round(100 * alarms / n_quiet, 2) if n_quiet else 0.0, n_quiet,
            )
        )  # fmt: skip
    return rows


def quiet_references(seeds: int, model: FraudModel) -> list[Row]:
    """No drift at all, 20 windows, the reference the first 200, 500 or 1,000 rows."""
    rows = []
    for size in (200, 500, 1_000):
        runs = []
        for seed in range(seeds):
            traffic = generate(size + 20 * WINDOW, seed=5000 + seed)
            frame = frame_for(traffic, model)
            result = analyse(
                frame, pd.DataFrame(), MonitoringConfig(window_size=WINDOW), reference=frame.iloc[:size]
            )
            runs.append(_found(result))
        first = -(-size // WINDOW)
        rows += _detect(f"quiet, ref {size}", 0.0, runs, range(first, first + 20), 10**9)
    return rows


def _found(result) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for alert in result.alerts:
        found.setdefault(alert.metric, set()).add(alert.window)
    return found


def _other_frame(kind: str, seed: int) -> pd.DataFrame:
    """Records of another model, drift from window `ONSET_WINDOW` on."""
    rng = np.random.default_rng(seed)
    n = WINDOW * WINDOWS
    after = np.arange(n) >= ONSET_WINDOW * WINDOW
    start = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * 10
    frame = pd.DataFrame({"prediction_uuid": [f"u{i}" for i in range(n)], "row": 0, "start_ms": start,
                          "end_ms": start + 3, "input_data.x": rng.normal(size=n)})  # fmt: skip
    if kind == "categorical_shift":
        before_mix, after_mix = [0.5, 0.3, 0.2], [0.25, 0.3, 0.45]  # PSI about 0.38
        channels = ["web", "app", "shop"]
        frame["input_data.channel"] = np.where(
            after, rng.choice(channels, n, p=after_mix), rng.choice(channels, n, p=before_mix)
        )
        truth = rng.integers(0, 2, n)
        frame["prediction"] = np.where(rng.random(n) < 0.9, truth, 1 - truth)
        frame[LABEL_KEY] = truth.astype(float)
    elif kind == "multiclass_drop":
        truth = rng.choice(["low", "mid", "high"], n)
        right = rng.random(n) < np.where(after, 0.84, 0.9)
        frame["prediction"] = np.where(right, truth, rng.choice(["low", "mid", "high"], n))
        frame[LABEL_KEY] = truth
    else:  # regression_error_rise: the error's spread 30% wider after the onset
        truth = 10 + 3 * frame["input_data.x"].to_numpy()
        frame["prediction"] = truth + rng.normal(0, 1, n) * np.where(after, 1.3, 1.0)
        frame[LABEL_KEY] = truth
    return frame


OTHER_MODELS = ("categorical_shift", "multiclass_drop", "regression_error_rise")


def other_models(seeds: int) -> list[Row]:
    rows = []
    first_judged = REFERENCE_ROWS // WINDOW
    for kind in OTHER_MODELS:
        runs = []
        for seed in range(seeds):
            frame = _other_frame(kind, 7000 + seed)
            config = MonitoringConfig(window_size=WINDOW)
            result = analyse(frame, pd.DataFrame(), config, reference=frame.iloc[:REFERENCE_ROWS])
            runs.append(_found(result))
        rows += _detect(kind, 1.0, runs, range(first_judged, ONSET_WINDOW), ONSET_WINDOW)
    return rows


def measure(seeds: int) -> tuple[list[Row], dict[str, float], float]:
    model = FraudModel.train(generate(20_000, seed=1))
    first_judged = REFERENCE_ROWS // WINDOW
    onset = ONSET_WINDOW / WINDOWS
    per_case: dict[tuple[str, float], list[dict[str, set[int]]]] = {}
    estimate_errors: dict[str, list[float]] = {}
    started = time.perf_counter()
    for scenario, magnitude in CASES:
        for seed in range(seeds):
            traffic = generate(
                WINDOW * WINDOWS, seed=1000 + seed, scenario=scenario, onset=onset, magnitude=magnitude or 1.0
            )
            found, errors = flagged_windows(frame_for(traffic, model))
            per_case.setdefault((scenario, magnitude), []).append(found)
            estimate_errors.setdefault(f"{scenario} {magnitude:g}", []).extend(errors)
    seconds = time.perf_counter() - started
    signals = sorted({s for runs in per_case.values() for run in runs for s in run})
    rows: list[Row] = []
    pooled_quiet = dict.fromkeys(signals, 0)
    pooled_alarms = dict.fromkeys(signals, 0)
    for (scenario, magnitude), runs in per_case.items():
        drifting = scenario != "none"
        quiet = range(first_judged, ONSET_WINDOW if drifting else WINDOWS)
        for signal in signals:
            firsts, alarms = [], 0
            for run in runs:
                windows = run.get(signal, set())
                alarms += sum(1 for w in windows if w in quiet)
                after = sorted(w for w in windows if w >= ONSET_WINDOW)
                if drifting and after:
                    firsts.append(after[0])
            n_quiet = len(quiet) * len(runs)
            pooled_quiet[signal] += n_quiet
            pooled_alarms[signal] += alarms
            rows.append(
                Row(
                    scenario,
                    magnitude,
                    signal,
                    len(runs),
                    len(firsts),
                    statistics.median(firsts) if firsts else None,
                    statistics.median(firsts) - ONSET_WINDOW if firsts else None,
                    round(100 * alarms / n_quiet, 2) if n_quiet else 0.0,
                    n_quiet,
                )
            )
    for signal in signals:
        rate = 100 * pooled_alarms[signal] / pooled_quiet[signal] if pooled_quiet[signal] else 0.0
        rows.append(Row("pooled", 0.0, signal, seeds, 0, None, None, round(rate, 2), pooled_quiet[signal]))
    mae = {case: round(float(np.mean(e)), 4) for case, e in estimate_errors.items() if e}
    return rows, mae, seconds


def _table(rows: list[Row]) -> str:
    lines = [
        f"{'scenario':16} {'mag':>5} {'signal':22} {'flagged':>8} {'first':>6} {'delay':>6} {'false/100':>9}"
    ]
    for r in rows:
        first = "-" if r.median_first_window is None else f"{r.median_first_window:g}"
        delay = "-" if r.median_delay is None else f"{r.median_delay:g}"
        flagged = "-" if r.scenario in ("none", "pooled") else f"{r.seeds_flagged}/{r.seeds}"
        lines.append(
            f"{r.scenario:16} {r.magnitude:>5g} {r.signal:22} {flagged:>8} {first:>6} {delay:>6} "
            f"{r.false_alarms_per_100_quiet:>9g}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detection_quality")
    parser.add_argument("--quick", action="store_true", help="3 seeds instead of 10")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the rows as a JSON list")
    args = parser.parse_args()
    seeds = args.seeds or (3 if args.quick else 10)
    rows, mae, seconds = measure(seeds)
    print(f"windows of {WINDOW}, drift from window {ONSET_WINDOW}, reference: first {REFERENCE_ROWS} rows")
    print(_table(rows))
    started = time.perf_counter()
    quiet = quiet_references(seeds, FraudModel.train(generate(20_000, seed=1)))
    print("\nno drift, 20 windows after references of 200, 500 and 1,000 rows:")
    print(_table(quiet))
    others = other_models(seeds)
    print("\nother models (built here), drift from window 5:")
    print(_table(others))
    seconds += time.perf_counter() - started
    rows += quiet + others
    print("\nestimated accuracy, mean |estimate - realized| per window after the reference:")
    for case, value in mae.items():
        print(f"  {case:22} {value:.4f}")
    print(f"\n{(len(CASES) + 3 + len(OTHER_MODELS)) * seeds} analyses in {seconds:.1f} s")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
