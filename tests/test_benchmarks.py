"""`python -m benchmarks --quick` runs to the end where CI runs and reports every benchmark; it
reports, it never asserts a timing (so neither does this test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_quick_mode_reports_every_benchmark_with_ratios_and_targets(tmp_path):
    out = tmp_path / "latest.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELVIGIL_", "PREFECT_API"))}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "quick"
    assert report["machine"]["cpus"] and report["machine"]["packages"]["prefect"]
    by_id = {b["id"]: b for b in report["benchmarks"]}
    assert sorted(by_id) == ["B1", "B2", "B3", "B4", "B5", "B8", "B9"]
    for b in by_id.values():
        assert b["figures"] and b["ratios"]
        for ratio in b["ratios"]:
            assert ratio["target"] > 0 and ratio["kind"] in ("at least", "at most")
            assert isinstance(ratio["value"], (int, float)) and ratio["met"] in (True, False)
    assert by_id["B1"]["figures"]["flow_failed"] == 0
    assert by_id["B3"]["figures"]["sqlite"]["flow_seconds"] > 0
    assert by_id["B3"]["figures"]["postgres"]["flow_seconds"] > 0
    assert len(by_id["B5"]["figures"]["seconds"]) == 3
    # The table names every benchmark and says whether each target was met.
    assert by_id["B8"]["figures"]["health_samples_busy"] > 0
    for name in ("B1", "B2", "B3", "B4", "B5", "B8"):
        assert name in proc.stdout
    assert "target at least" in proc.stdout and "target at most" in proc.stdout
