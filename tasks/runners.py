"""Runs a flow's fanned-out tasks where its `ScaleOut` settings say: one after another in the flow's
own process (the default: each a plain task call, as if there were no choice), or on Dask worker
processes through `prefect-dask`'s `DaskTaskRunner`.

A flow opens `fan_out(config)` and hands it its calls; results come back in the order the calls
were given, whichever worker finished first, so what a flow builds from them (a ledger, a table of
deployments) does not depend on where they ran. The task runner is chosen here, per run, rather
than in `@flow(task_runner=...)`: Prefect fixes that before the run's parameters are read, and the
choice is a parameter (the UI's form has it too).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any, Protocol, TypeVar

from prefect import Task, get_client, get_run_logger
from prefect.futures import PrefectFuture
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.task_runners import TaskRunner

from modelvigil.scaleout import ScaleOut, SchedulerUnreachable, TaskRunnerKind, check_scheduler

R = TypeVar("R")
# Dask's client gives up on a scheduler after this long (its own default is 30 s).
CONNECT_TIMEOUT_S = 10
# Calls submitted ahead of the one awaited, per worker thread: enough that no worker waits for the
# flow to hand it work, few enough that the flow does not hold every call's input at once.
AHEAD_PER_THREAD = 2


class Fanout(Protocol):
    def in_order(self, task: Task[..., R], calls: Iterable[Mapping[str, Any]]) -> Iterator[R]:
        """Run `task` once per parameter mapping; yield the results in the calls' order."""
        ...


class InProcess:
    """The default: each call a plain task call in the flow's process, one after another."""

    def in_order(self, task: Task[..., R], calls: Iterable[Mapping[str, Any]]) -> Iterator[R]:
        for parameters in calls:
            yield task(**parameters)


class OnRunner:
    """Calls submitted to a started Prefect task runner, a bounded number ahead of the one awaited."""

    def __init__(self, runner: TaskRunner[Any], ahead: int) -> None:
        self.runner, self.ahead = runner, max(1, ahead)

    def in_order(self, task: Task[..., R], calls: Iterable[Mapping[str, Any]]) -> Iterator[R]:
        pending: deque[PrefectFuture[R]] = deque()
        for parameters in calls:
            pending.append(self.runner.submit(task, dict(parameters)))
            if len(pending) > self.ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def dask_task_runner(config: ScaleOut) -> TaskRunner[Any]:
    """The `DaskTaskRunner` for `config`: its scheduler, else a local cluster of worker processes,
    one thread each (the scoring tasks run their own thread pools), listening on loopback only (the
    scheduler's HTTP server, which shows a dashboard only where bokeh is installed, on a free port)."""
    from prefect_dask import DaskTaskRunner

    if config.dask_address:
        return DaskTaskRunner(address=config.dask_address, client_kwargs={"timeout": CONNECT_TIMEOUT_S})
    return DaskTaskRunner(cluster_kwargs=_local_cluster(config))


def _local_cluster(config: ScaleOut) -> dict[str, Any]:
    return {
        "n_workers": config.dask_workers,
        "processes": True,
        "threads_per_worker": 1,
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0",
    }


C = TypeVar("C", bound=ScaleOut)


@contextmanager
def _environment_kept() -> Iterator[None]:
    """This process's environment as it was, once the block ends. Starting a local cluster sets
    its workers' variables in this process's `os.environ` too (OMP_NUM_THREADS=1,
    PYTHONHASHSEED, __DASK_PARENT_PID...), and every process started afterwards (a Prefect worker,
    a model service) would inherit them: seen making a Prefect worker ignore SIGTERM."""
    kept = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(kept)


@contextmanager
def shared_cluster(config: C) -> Iterator[C]:
    """For a command that runs several flows: with task_runner dask and no address, one local
    cluster for all of them, so that its start and its workers' imports (about 25 s on a 2-core
    machine) are paid once. Yields `config` pointed at that cluster, else `config` itself."""
    if config.task_runner is not TaskRunnerKind.dask or config.dask_address:
        yield config
        return
    from distributed import LocalCluster

    with _environment_kept(), LocalCluster(**_local_cluster(config)) as cluster:
        yield config.model_copy(update={"dask_address": cluster.scheduler_address})


def _ephemeral_api_url() -> str | None:
    """The URL of the temporary Prefect server this process started, if it runs on one. That URL is
    in no setting, so the task runs' context would not carry it, and each worker process would start
    a server of its own (seconds each, and runs filed apart from their flow's)."""
    if PREFECT_API_URL.value():
        return None
    with get_client(sync_client=True) as client:  # the running temporary server, not a new one
        return str(client.api_url)


def probe_scheduler(address: str) -> None:
    """Raise SchedulerUnreachable unless a Dask scheduler answers at `address`: nothing listening
    is found out at once, something else listening (an HTTP port, say) by Dask's handshake."""
    check_scheduler(address)
    from distributed import Client

    try:
        Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False).close()
    except Exception as exc:  # what a wrong peer makes the handshake raise varies: OSError, MemoryError...
        raise _unreachable(address, exc) from exc


def _unreachable(address: str, exc: BaseException) -> SchedulerUnreachable:
    said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return SchedulerUnreachable(f"no Dask scheduler answers at {address} ({said[:200]})")


@contextmanager
def fan_out(config: ScaleOut) -> Iterator[Fanout]:
    """Where this run's fanned-out tasks go; a local cluster is started on entry and closed on exit."""
    if config.task_runner is TaskRunnerKind.default:
        yield InProcess()
        return
    runner = dask_task_runner(config)
    with ExitStack() as stack:
        stack.enter_context(_environment_kept())
        api_url = _ephemeral_api_url()
        if api_url:
            stack.enter_context(temporary_settings({PREFECT_API_URL: api_url}))
        stack.enter_context(runner)
        try:
            client = runner.client  # connects (or starts the local cluster) now, not at the first call
        except Exception as exc:
            if not config.dask_address:
                raise  # a local cluster that cannot start is a bug or the machine's: its traceback helps
            raise _unreachable(config.dask_address, exc) from exc
        threads = sum(client.nthreads().values())
        get_run_logger().info(
            "tasks on Dask: %s, %d worker thread(s)", config.dask_address or "local cluster", threads
        )
        yield OnRunner(runner, AHEAD_PER_THREAD * max(1, threads))
