"""What a command says when it fails in a way the user can fix: at most three plain lines on stderr
and an exit code per kind of failure; the traceback only with `--debug`.

| exit | meaning |
|---|---|
| 1 | an unexpected error (a bug: run again with `--debug` and report the traceback) |
| 2 | bad input: an option, a setting, a file the command reads |
| 3 | the monitoring raised alerts and `--fail-on-alert` was given |
| 4 | no service answers where one was expected |
| 5 | the model or deployment to work on was not found |
| 6 | the metrics store cannot be reached |
| 7 | the service cannot listen where it was asked to |
| 8 | `monitor --all`: some deployments could not be monitored (the others were) |
| 9 | no Dask scheduler answers at `--dask-address` |
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import ArgumentError

from modelvigil.analysis.readers import NoDeployment
from modelvigil.client.errors import (
    DeploymentNotFound,
    EndpointConnectionError,
    EndpointNotConfigured,
    EndpointResponseError,
    EndpointTimeout,
)
from modelvigil.scaleout import SchedulerUnreachable
from modelvigil.service.listen import CannotListen
from modelvigil.settings import InvalidIdentityFile
from modelvigil.simulation import SimulationChanged
from modelvigil.store.errors import InvalidStoreUrl, StoreUnavailable

SERVICE_ERRORS = (EndpointConnectionError, EndpointTimeout, EndpointNotConfigured, EndpointResponseError)
BUG, USAGE, ALERTS, NO_SERVICE, NOT_FOUND, NO_STORE, CANNOT_LISTEN = 1, 2, 3, 4, 5, 6, 7
FLEET_INCOMPLETE, NO_SCHEDULER, NO_DATA = 8, 9, 10
MAX_LINES = 3
STORE_HINT = "check MODELVIGIL_STORE_URL or --store-url"


class UsageError(ValueError):
    """A command's input is wrong; the message says what to change."""


class InvalidOptions(UsageError):
    """Options their model refused, each told by the flag the user typed (`--coverage 2`), not by
    the field it fills (`label_coverage`)."""

    def __init__(self, exc: ValidationError, flags: Mapping[str, str]) -> None:
        self.problems = [_told(problem, flags) for problem in exc.errors()]
        super().__init__("; ".join(self.problems))


def _told(problem: Mapping[str, Any], flags: Mapping[str, str]) -> str:
    loc, message = problem["loc"], str(problem["msg"]).removeprefix("Value error, ")
    if not loc:  # the options together (start after end, say): the message names them
        return message
    flag = flags.get(str(loc[0]))
    if flag is None:
        return f"{'.'.join(map(str, loc))}: {message}"
    return f"{flag} {problem.get('input')}: {message.replace('Input should', 'should', 1)}"


# The project's own errors about what it was given: told plainly, exit 2.
INPUT_ERRORS = (UsageError, SimulationChanged, InvalidIdentityFile, InvalidStoreUrl)


@dataclass(frozen=True)
class Failure:
    code: int
    lines: list[str]


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def explain(exc: BaseException) -> Failure | None:
    """The plain account of an expected failure; None for anything else (a bug)."""
    if isinstance(exc, (ValidationError, InvalidOptions)):
        if isinstance(exc, InvalidOptions):
            problems = [f"error: {p}" for p in exc.problems]
        else:
            problems = [f"error: {'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors()]
        if len(problems) > MAX_LINES:
            problems = [*problems[: MAX_LINES - 1], f"       ... and {len(problems) - MAX_LINES + 1} more"]
        return Failure(USAGE, problems)
    if isinstance(exc, CannotListen):
        return Failure(CANNOT_LISTEN, [f"error: {_first_line(exc)}"])
    if isinstance(exc, SchedulerUnreachable):
        return Failure(NO_SCHEDULER, [f"error: {_first_line(exc)}", "check --dask-address (tcp://HOST:PORT)"])
    if isinstance(exc, SERVICE_ERRORS):
        return Failure(NO_SERVICE, [f"error: {_first_line(exc)}"])
    if isinstance(exc, (DeploymentNotFound, NoDeployment)):
        return Failure(NOT_FOUND, [f"error: {_first_line(exc)}"])
    if isinstance(exc, ArgumentError):  # SQLAlchemy could not read the store URL
        return Failure(
            USAGE, [f"error: store URL: {_first_line(exc)}", "check MODELVIGIL_STORE_URL or --store-url"]
        )
    if isinstance(exc, StoreUnavailable):
        return Failure(NO_STORE, [f"error: {_first_line(exc)}", "check MODELVIGIL_STORE_URL or --store-url"])
    if isinstance(exc, INPUT_ERRORS):  # named ones only: any other ValueError is a bug, with its traceback
        return Failure(USAGE, [f"error: {_first_line(exc)}"])
    return None


def report(exc: BaseException, debug: bool) -> int:
    """Say what went wrong on stderr and return the exit code (a bug is re-raised). Under --debug
    the traceback comes first, and the exit code stays the same."""
    failure = explain(exc)
    if failure is None:
        raise exc
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    for line in failure.lines[:MAX_LINES]:
        print(line, file=sys.stderr)
    return failure.code
