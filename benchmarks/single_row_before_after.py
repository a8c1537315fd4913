"""B10: B1 on loopback, the service before and after the single-row path work, in one run.

"Before" is the service as of BASELINE_COMMIT, checked out into a temporary git worktree and run
from there; "after" is this tree's. The clients (the simulation flow, the bare pooled client) are
this tree's for both, so only the service differs. Both services run at once and are measured in
turns, so a slower minute of the machine falls on both alike.

Besides requests per second, the service's own CPU per call (its process's user + system time over
the calls) says what the work took from the service, whoever else shared the two cores.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks.common import Ratio, Result
from benchmarks.simulation_bench import CONCURRENCY, _ceiling, _payload, _simulate
from modelvigil.client.connect import connect
from modelvigil.service.embedded import run_in_subprocess
from modelvigil.settings import Settings

# The last commit before `/model` stopped resolving its query and header as FastAPI parameters.
BASELINE_COMMIT = "bdd603c4879a0f2ba35fbba432a9db83dc5b38a4"
ROOT = Path(__file__).parent.parent


@contextmanager
def baseline_tree() -> Iterator[Path | None]:
    """The baseline's source tree in a temporary worktree; None when this is no git checkout
    holding that commit (a copy of the sources, a shallow clone)."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        yield None
        return
    where = Path(tempfile.mkdtemp(prefix="mv-bench-baseline-"))
    tree = where / "tree"
    added = subprocess.run(
        [git, "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), BASELINE_COMMIT],
        capture_output=True,
    )
    try:
        yield tree if added.returncode == 0 else None
    finally:
        if added.returncode == 0:
            subprocess.run(
                [git, "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True
            )
        shutil.rmtree(where, ignore_errors=True)


def _cpu_seconds(settings: Settings) -> float:
    """CPU time (user + system) the home's running service has used so far."""
    pid = json.loads((settings.home / "running.json").read_text())["pid"]
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Side:
    """One service under test and what was measured of it."""

    def __init__(self, name: str, settings: Settings, url: str) -> None:
        self.name, self.settings, self.url = name, settings, url
        conn = connect(settings, url)
        self.model_url, self.key = conn.endpoint.model_url, conn.endpoint.access_key or ""
        self.headers = {
            k: v for k, v in conn.endpoint.session.headers.items() if k.lower() == "authorization"
        }
        conn.endpoint.close()
        self.rates: list[float] = []
        self.cpu_ms: list[float] = []
        self.flow_rate = 0.0
        self.flow_failed = 0

    def scoring_round(self, payloads: list[dict]) -> None:
        cpu = _cpu_seconds(self.settings)
        seconds = _ceiling(self.model_url, self.key, self.headers, payloads, CONCURRENCY)
        self.cpu_ms.append((_cpu_seconds(self.settings) - cpu) * 1000 / len(payloads))
        self.rates.append(len(payloads) / seconds)

    def flow(self, requests_n: int, out: Path) -> None:
        os.environ["MODELVIGIL_HOME"] = str(self.settings.home)  # the flow's own Settings() read it
        seconds, summary = _simulate(self.url, out, requests=requests_n, concurrency=CONCURRENCY, seed=1)
        self.flow_rate, self.flow_failed = requests_n / seconds, summary.failed


def run(requests_n: int, rounds: int) -> Result:
    title = "B1 on loopback, single-row calls: the service before and after (same run, same clients)"
    with baseline_tree() as tree, ExitStack() as stack:
        if tree is None:
            return Result(
                "B10",
                title,
                figures={"baseline_commit": BASELINE_COMMIT},
                notes=["not measured: this is no git checkout holding the baseline commit"],
            )
        sides = []
        for name, source in (("before", tree), ("after", None)):
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"mv-bench-{name}-")))
            settings = Settings(home=home)
            url = stack.enter_context(run_in_subprocess(settings, source=source))
            sides.append(_Side(name, settings, url))
        payloads = [_payload(1, seed) for seed in range(requests_n)]
        for side in sides:  # warm: model, pools, connections, Prefect's server and its first flow run
            side.scoring_round(payloads[: min(500, requests_n)])
            side.rates.clear()
            side.cpu_ms.clear()
            side.flow(50, Path(side.settings.home) / "warm-up")
        for _ in range(rounds):
            for side in sides:
                side.scoring_round(payloads)
        for side in sides:
            side.flow(requests_n, Path(side.settings.home) / "flow")
    before, after = sides
    rate = {s.name: statistics.median(s.rates) for s in sides}
    cpu = {s.name: statistics.median(s.cpu_ms) for s in sides}
    return Result(
        "B10",
        title,
        figures={
            "baseline_commit": BASELINE_COMMIT[:12],
            "requests_per_round": requests_n,
            "rounds": rounds,
            "concurrency": CONCURRENCY,
            "scoring_requests_per_s_before": round(rate["before"], 1),
            "scoring_requests_per_s_after": round(rate["after"], 1),
            "service_cpu_ms_per_call_before": round(cpu["before"], 3),
            "service_cpu_ms_per_call_after": round(cpu["after"], 3),
            "flow_requests_per_s_before": round(before.flow_rate, 1),
            "flow_requests_per_s_after": round(after.flow_rate, 1),
            "flow_failed": before.flow_failed + after.flow_failed,
        },
        ratios=[
            Ratio("bare pooled scoring, after / before", round(rate["after"] / rate["before"], 2), 1.0),
            Ratio(
                "service CPU per call, after / before", round(cpu["after"] / cpu["before"], 2), 1.0, "at most"
            ),
            Ratio("simulation flow, after / before", round(after.flow_rate / before.flow_rate, 2), 1.0),
        ],
        notes=[f"medians of {rounds} alternating rounds; the flow once on each"],
    )
