"""The monitoring flow's peak memory does not grow with the records it reads (streamed from the
store): measured in processes of their own on 20k and 200k records. A generous bound on memory,
never a timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.common import BENCH_CRN, fill_store
from tests.helpers import child_env

ROOT = Path(__file__).parent.parent


def peak_rss_mb(url: str, out: Path, records: int) -> float:
    env = child_env()
    command = [
        sys.executable, "-m", "benchmarks.monitoring_run", "--store-url", url, "--crn", BENCH_CRN,
        "--path", "product", "--out", str(out), "--records", str(records),
    ]  # fmt: skip
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rows"] == records
    return float(result["peak_rss_mb"])


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_peak_memory_of_monitoring_is_flat_in_the_records(tmp_path):
    url = f"sqlite:///{tmp_path}/metrics.db"
    fill_store(url, 200_000)
    small = peak_rss_mb(url, tmp_path / "small", 20_000)
    big = peak_rss_mb(url, tmp_path / "big", 200_000)
    print(f"peak RSS: {small:.0f} MB at 20k records, {big:.0f} MB at 200k ({big / small:.2f}x)")
    assert big <= 1.3 * small
