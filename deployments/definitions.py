"""The deployments: simulation on demand, monitoring of the model and of the whole fleet every
night. Applying them again updates them in place (Prefect keys deployments by flow and name)."""

from __future__ import annotations

import sys
from pathlib import Path
from uuid import UUID

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.schedules import Cron
from pydantic import BaseModel, Field

REPO = Path(__file__).resolve().parents[1]
WORK_POOL = "modelvigil-process"


class DeploymentSettings(BaseModel):
    work_pool: str = WORK_POOL
    # 04:15: outside 02:00-03:00, where a local-time schedule skips or repeats a night at DST.
    monitoring_cron: str = "15 4 * * *"
    timezone: str = Field("UTC", description="IANA name; the cron is read in this zone.")
    tags: list[str] = Field(default_factory=lambda: ["modelvigil"])


def worker_command(pool: str = WORK_POOL, limit: int | None = None) -> list[str]:
    """A process worker polling `pool`, as `up` starts it and as a user would on another host.

    `limit`: the runs it takes at once. Without one, the first worker to poll takes every run
    queued, and a second worker on the pool gets none of them."""
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"]
    return command + (["--limit", str(limit)] if limit else [])


SIMULATION = "simulation/on-demand"
MONITORING = "monitoring/nightly"
# Its own flow name, not `monitoring/fleet`: the fleet run's subflow runs are "monitoring" runs,
# and the UI's flow list would not tell the fleet's run from its children.
FLEET = "fleet-monitoring/nightly"


def schedule_text(settings: DeploymentSettings) -> str:
    """`Every night at 04:15 (UTC)` for a daily cron, else the cron itself with its zone."""
    fields = settings.monitoring_cron.split()
    if len(fields) == 5 and fields[2:] == ["*", "*", "*"] and fields[0].isdigit() and fields[1].isdigit():
        return f"Every night at {int(fields[1]):02d}:{int(fields[0]):02d} ({settings.timezone})"
    return f"On cron '{settings.monitoring_cron}' ({settings.timezone})"


def ensure_work_pool(name: str) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:  # the first time
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def apply_deployments(settings: DeploymentSettings | None = None) -> dict[str, UUID]:
    settings = settings or DeploymentSettings()
    ensure_work_pool(settings.work_pool)
    simulation = flow.from_source(source=str(REPO), entrypoint="flows/simulation.py:simulation_flow")
    monitoring = flow.from_source(source=str(REPO), entrypoint="flows/monitoring.py:monitoring_flow")
    fleet = flow.from_source(source=str(REPO), entrypoint="flows/fleet_monitoring.py:fleet_monitoring_flow")
    common = {
        "work_pool_name": settings.work_pool,
        "build": False,
        "push": False,
        "print_next_steps": False,
        "ignore_warnings": True,
    }
    ids = {
        SIMULATION: simulation.deploy(
            name="on-demand",
            tags=[*settings.tags, "simulation"],
            description="Traffic with known drift against the model endpoint; run it from the UI.",
            **common,
        ),
        MONITORING: monitoring.deploy(
            name="nightly",
            schedules=[Cron(settings.monitoring_cron, timezone=settings.timezone)],
            concurrency_limit=1,  # two nightly runs never overlap
            tags=[*settings.tags, "monitoring"],
            # The UI shows a schedule as "At 04:15 AM every day", without its zone: the description says it.
            description=f"{schedule_text(settings)}: the last 24 hours of the model's deployment "
            "(accuracy, drift, latency, label coverage), a report, and one alert event per run.",
            **common,
        ),
        FLEET: fleet.deploy(
            name="nightly",
            schedules=[Cron(settings.monitoring_cron, timezone=settings.timezone)],
            concurrency_limit=1,
            tags=[*settings.tags, "monitoring", "fleet"],
            description=f"{schedule_text(settings)}: every deployment of the project, each its own "
            "monitoring run and report, then one fleet report, worst first. A deployment that cannot be "
            "read is a row saying why; the run then ends Failed, after the others.",
            **common,
        ),
    }
    return ids
