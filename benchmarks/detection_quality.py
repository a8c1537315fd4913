"""How well the monitoring detects drift of known kind and onset: first window flagged, false alarms.

For each scenario: simulate traffic with drift starting at a known request, run the monitoring on
exactly that traffic, and report the first window whose alerts name the drift, how many windows
after the onset that is, and the alerts raised before the onset (false alarms). Real flows, real
service (in its own process), a throwaway home. Run: `python -m benchmarks.detection_quality`
(`--requests 5000 --windows 10`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import UTC, datetime, timedelta

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
import flows  # noqa: F401  (Prefect's environment defaults)
from flows.monitoring import monitoring_flow
from flows.simulation import simulation_flow
from modelvigil.analysis.config import AlertKind, MonitoringConfig
from modelvigil.service.embedded import run_in_subprocess
from modelvigil.settings import Settings
from modelvigil.simulation import SimulationConfig

# What counts as detecting each scenario: the alert kinds that name it.
SCENARIOS = {
    "none": set(),
    "covariate_shift": {AlertKind.drift},
    "label_ramp": {AlertKind.accuracy},
    "concept_flip": {AlertKind.accuracy},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--onset", type=float, default=0.5)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="mv-detect-")
    os.environ["MODELVIGIL_HOME"] = home
    settings = Settings(home=home)
    size = args.requests // args.windows
    onset_window = int(args.onset * args.requests) // size
    rows = []
    with run_in_subprocess(settings) as url:
        for seed, (scenario, kinds) in enumerate(SCENARIOS.items()):
            started = datetime.now(UTC) - timedelta(seconds=1)
            simulation_flow(
                SimulationConfig(
                    requests=args.requests,
                    scenario=scenario,
                    drift_onset=args.onset,
                    seed=seed,
                    service_url=url,
                    concurrency=16,
                    output_dir=f"{home}/sim-{scenario}",
                )
            )
            result = monitoring_flow(
                MonitoringConfig(
                    start=started,
                    end=datetime.now(UTC) + timedelta(seconds=1),
                    window_size=size,
                    output_dir=f"{home}/report-{scenario}",
                )
            )
            detections = sorted(
                {a.window for a in result.alerts if a.kind in kinds and a.window >= onset_window}
            )
            false_alarms = [a for a in result.alerts if a.window < onset_window or scenario == "none"]
            first = detections[0] if detections else None
            rows.append((scenario, first, None if first is None else first - onset_window, len(false_alarms)))
    print(f"{args.requests} requests, windows of {size}, drift from window {onset_window}")
    print(f"{'scenario':18} {'first flagged':>14} {'delay (windows)':>16} {'false alarms':>13}")
    for scenario, first, delay, false_alarms in rows:
        shown = "-" if first is None else str(first)
        print(f"{scenario:18} {shown:>14} {'-' if delay is None else delay:>16} {false_alarms:>13}")


if __name__ == "__main__":
    main()
