"""How well each alerting signal detects drift of known kind and onset, and how often it cries wolf.
Also how close the estimated accuracy (before labels) comes to the realized one.

For each scenario and magnitude, 10 seeds: traffic from the generator, scored by the model, labelled,
cut into windows of 500 with drift from window 5 and the first 1,000 rows as the reference; the
analysis is called directly (no HTTP, no Prefect). Per signal (an alert rule's metric) and
scenario: seeds flagged after the onset, median first window and delay, and false alarms per 100
quiet windows (windows after the reference and before the onset; all of them without drift), with
one `pooled` row per signal over every quiet window.

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

from modelvigil.analysis.analyse import analyse
from modelvigil.analysis.config import MonitoringConfig
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
    print("\nestimated accuracy, mean |estimate - realized| per window after the reference:")
    for case, value in mae.items():
        print(f"  {case:22} {value:.4f}")
    print(f"\n{len(CASES) * seeds} analyses in {seconds:.1f} s")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
