"""Where a flow's tasks run (`ScaleOut`): in the flow's own process, or spread over Dask workers.

The choice is a flow parameter like any other, so the Prefect UI's form and the command line
both carry it; `tasks/runners.py` turns it into a Prefect task runner. Nothing here loads Prefect
or Dask: a configuration is read (and refused) before either starts.
"""

from __future__ import annotations

import re
import socket
from enum import StrEnum
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from modelvigil.forms import FormModel

# tcp://HOST:PORT, HOST a name, an IPv4 address or a bracketed IPv6 address: a Dask scheduler's address.
ADDRESS = re.compile(r"^tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})$")
CONNECT_TIMEOUT_S = 5.0


class TaskRunnerKind(StrEnum):
    default = "default"
    dask = "dask"


class SchedulerUnreachable(ConnectionError):
    """No Dask scheduler answers at the address given."""


class ScaleOut(FormModel):
    """The fields every flow that can fan out shares; a flow's config subclasses this and lists
    `ScaleOut.form_groups` among its own."""

    form_groups: ClassVar[dict[str, tuple[str, ...]]] = {
        "Scale-out": ("task_runner", "dask_address", "dask_workers"),
    }

    task_runner: TaskRunnerKind = Field(
        TaskRunnerKind.default,
        description="Where the tasks run: default = in the flow's process; dask = on Dask worker processes.",
    )
    dask_address: str | None = Field(
        None,
        description="A running Dask scheduler, tcp://HOST:PORT (with task_runner dask); "
        "empty = a local cluster started for the run.",
    )
    dask_workers: int = Field(
        2, ge=1, le=64, description="Worker processes of the local cluster (task_runner dask, no address)."
    )

    @field_validator("dask_address")
    @classmethod
    def _tcp_host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        found = ADDRESS.match(value.strip())
        if not found or not 1 <= int(found["port"]) <= 65535:
            raise ValueError(f"dask_address must be tcp://HOST:PORT (a Dask scheduler), not {value!r}")
        return value.strip()

    @model_validator(mode="after")
    def _address_needs_dask(self) -> ScaleOut:
        if self.dask_address and self.task_runner is not TaskRunnerKind.dask:
            raise ValueError("dask_address is for task_runner 'dask': choose it, or leave the address empty")
        return self


def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise SchedulerUnreachable unless something listens at `address` (tcp://HOST:PORT): found
    out in seconds, before a flow starts, rather than after Dask's own 30 s connect timeout."""
    found = ADDRESS.match(address)
    if not found:
        raise SchedulerUnreachable(f"{address!r} is not tcp://HOST:PORT")
    host = found["host"].strip("[]")
    try:
        socket.create_connection((host, int(found["port"])), timeout=timeout).close()
    except OSError as exc:
        raise SchedulerUnreachable(
            f"no Dask scheduler answers at {address} ({exc.strerror or exc or type(exc).__name__})"
        ) from None
