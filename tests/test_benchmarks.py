"""`python -m benchmarks --quick` runs to the end where CI runs and reports every benchmark; it
reports, it never asserts a timing (so neither does this test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.detection_quality import OTHER_MODELS
from tests.helpers import child_env

ROOT = Path(__file__).parent.parent


def run_benchmark(module: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` from the project folder, with no model service named; its flows
    run on the session's Prefect server (a benchmark run would otherwise start one of its own)."""
    env = child_env()
    command = [sys.executable, "-m", module, *args]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_quick_mode_reports_every_benchmark_with_ratios_and_targets(tmp_path):
    out = tmp_path / "latest.json"
    # B6 fills a million records even in quick mode (a minute or two): CI's budget runs the others,
    # and test_streaming_memory holds the streamed flow's memory to account instead.
    only = "B1,B2,B3,B4,B5,B8,B9"
    proc = run_benchmark("benchmarks", "--quick", "--only", only, "--out", str(out), timeout=480)
    report = json.loads(out.read_text())
    assert report["mode"] == "quick"
    assert report["machine"]["cpus"] and report["machine"]["packages"]["prefect"]
    by_id = {b["id"]: b for b in report["benchmarks"]}
    assert sorted(by_id) == ["B1", "B1-rtt", "B2", "B2-postgres", "B3", "B4", "B5", "B8", "B9"]
    for b in by_id.values():
        assert b["figures"] and b["ratios"]
        for ratio in b["ratios"]:
            assert ratio["target"] > 0 and ratio["kind"] in ("at least", "at most")
            assert isinstance(ratio["value"], (int, float)) and ratio["met"] in (True, False)
    assert by_id["B1"]["figures"]["flow_failed"] == 0 and by_id["B1-rtt"]["figures"]["flow_failed"] == 0
    assert {r["name"] for r in by_id["B2-postgres"]["ratios"]} >= {"vs the SQLite-backed B2 (same run)"}
    assert by_id["B3"]["figures"]["sqlite"]["flow_seconds"] > 0
    assert by_id["B3"]["figures"]["postgres"]["flow_seconds"] > 0
    assert len(by_id["B5"]["figures"]["seconds"]) == 3
    # The table names every benchmark and says whether each target was met.
    assert by_id["B8"]["figures"]["health_samples_busy"] > 0
    for name in ("B1", "B1-rtt", "B2", "B2-postgres", "B3", "B4", "B5", "B8", "B9"):
        assert name in proc.stdout
    assert "target at least" in proc.stdout and "target at most" in proc.stdout


def test_detection_quality_quick_reports_every_signal_and_scenario(tmp_path):
    """The detection benchmark runs where CI runs (3 seeds) and writes the rows the README shows."""
    out = tmp_path / "detection.json"
    proc = run_benchmark("benchmarks.detection_quality", "--quick", "--json", str(out), timeout=300)
    rows = json.loads(out.read_text())
    keys = {
        "scenario", "magnitude", "signal", "seeds", "seeds_flagged", "median_first_window",
        "median_delay", "false_alarms_per_100_quiet", "quiet_windows",
    }  # fmt: skip
    assert all(set(r) == keys for r in rows)
    fraud = [r for r in rows if not r["scenario"].startswith("quiet") and r["scenario"] not in OTHER_MODELS]
    signals = {r["signal"] for r in fraud}
    assert {"accuracy", "accuracy_drop", "accuracy_cusum", "estimated_accuracy", "probability_ks"} <= signals
    pooled = [r for r in fraud if r["scenario"] == "pooled"]
    assert {r["signal"] for r in pooled} == signals and all(r["quiet_windows"] > 0 for r in pooled)
    # The regression case is caught by its own error rule; the quiet table says how often rules
    # cry wolf over small references (an empty table: never).
    assert any(r["scenario"] == "regression_error_rise" and r["signal"] == "mae" for r in rows)
    assert "no drift, 20 windows after references of 200, 500 and 1,000 rows" in proc.stdout
    assert "estimated accuracy, mean |estimate - realized|" in proc.stdout
