"""The `modelvigil` command: serve and info (modelvigil.cli) and the flows: simulate, monitor, demo."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from flows.console import console_without_tracebacks
from modelvigil.analysis.config import MonitoringConfig
from modelvigil.analysis.readers import check_source
from modelvigil.cli import Parser, add_core_commands, command, run
from modelvigil.client.connect import connect
from modelvigil.scaleout import ScaleOut, TaskRunnerKind
from modelvigil.settings import DEFAULT_MODEL_NAME, CMLEnvironment, Settings, read_identity
from modelvigil.simulation import SimulationConfig, SimulationSummary
from modelvigil.terminal import FLEET_INCOMPLETE, NO_DATA, InvalidOptions, UsageError

if TYPE_CHECKING:  # the flow module loads Prefect: only the commands that run it import it
    from flows.monitoring import MonitoringSummary

# Where the tasks run (`modelvigil.scaleout`): the same three options on every flow command.
SCALE_OUT_OPTIONS = {
    "task_runner": "task_runner",
    "dask_address": "dask_address",
    "dask_workers": "dask_workers",
}
# Simulation options: flag (argparse dest) -> SimulationConfig field. Defaults and descriptions
# come from the model; an option left out is not passed, so the model fills it.
SIMULATION_OPTIONS = {
    "requests": "requests",
    "rows_per_request": "rows_per_request",
    "scenario": "scenario",
    "onset": "drift_onset",
    "magnitude": "drift_magnitude",
    "concurrency": "concurrency",
    "batch_size": "batch_size",
    "seed": "seed",
    "coverage": "label_coverage",
    "label_delay": "label_delay_seconds",
    "window": "accuracy_window",
    "check_policy": "check_policy",
    "simulation_id": "simulation_id",
    "out": "output_dir",
    "service_url": "service_url",
    "model_name": "model_name",
    **SCALE_OUT_OPTIONS,
}
MONITOR_OPTIONS = {
    "lookback_hours": "lookback_hours",
    "deployment": "deployment_crn",
    "model_name": "model_name",
    "task": "task",
    "positive_label": "positive_label",
    "categorical": "categorical",
    "numeric": "numeric",
    "window_size": "window_size",
    "out": "output_dir",
    "service_url": "service_url",
    "store_url": "store_url",
    **SCALE_OUT_OPTIONS,
}
TIMES = ("start", "end", "reference_start", "reference_end")  # monitor's ISO-time options
# A field's type -> how argparse reads its option.
PARSERS: dict[object, type] = {int: int, float: float, int | None: int, float | None: float}


def _described(field: FieldInfo) -> str:
    """A model field's description and default, as argparse help (its % escaped)."""
    default = field.get_default(call_default_factory=True)
    text = (field.description or "").rstrip(".")
    if default is not None and default != []:
        text += f" (default: {getattr(default, 'value', default)})"
    return text.replace("%", "%%")


def _add_model_options(p: argparse.ArgumentParser, model: type[BaseModel], options: dict[str, str]) -> None:
    for dest, name in options.items():
        field = model.model_fields[name]
        kwargs: dict[str, object] = {"dest": dest, "default": None, "help": _described(field)}
        if isinstance(field.annotation, type) and issubclass(field.annotation, Enum):
            kwargs["choices"] = [member.value for member in field.annotation]
        elif field.annotation in PARSERS:
            kwargs["type"] = PARSERS[field.annotation]
        elif get_origin(field.annotation) is list:
            kwargs["type"], kwargs["metavar"] = _names, "A,B"
        p.add_argument(f"--{dest.replace('_', '-')}", **kwargs)  # type: ignore[arg-type]


def _names(text: str) -> list[str]:
    """A comma-separated list of names (`--categorical country,channel`)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give one or more names, separated by commas")
    return names


def _given(args: argparse.Namespace, options: dict[str, str]) -> dict[str, object]:
    return {name: value for dest, name in options.items() if (value := getattr(args, dest)) is not None}


def _flags(options: dict[str, str]) -> dict[str, str]:
    """Field -> the flag that fills it, for messages in the user's words."""
    return {name: f"--{dest.replace('_', '-')}" for dest, name in options.items()}


def _config(args: argparse.Namespace) -> SimulationConfig:
    _check_scale_out(args)
    try:
        return SimulationConfig(**_given(args, SIMULATION_OPTIONS))  # type: ignore[arg-type]
    except ValidationError as exc:
        raise InvalidOptions(exc, _flags(SIMULATION_OPTIONS)) from None


def _check_scale_out(args: argparse.Namespace) -> None:
    """`--dask-address` names where the dask runner's tasks go: without `--task-runner dask` it is a
    mistake (the form refuses the same), told in the options' own words."""
    if args.dask_address is not None and args.task_runner != TaskRunnerKind.dask:
        raise UsageError("--dask-address needs --task-runner dask")


def _check_scheduler(config: ScaleOut) -> None:
    """A scheduler the user named must answer: found out in seconds, before Prefect starts."""
    if config.task_runner is TaskRunnerKind.dask and config.dask_address:
        from tasks.runners import probe_scheduler  # loads Dask: only when a scheduler is named

        probe_scheduler(config.dask_address)


def _run_simulation(config: SimulationConfig) -> SimulationSummary:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from flows.simulation import simulation_flow
    from modelvigil import progress

    with Progress("scoring", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True) as bar:
        task_id = bar.add_task("scoring", total=config.requests)
        with progress.reporting(lambda done, total: bar.update(task_id, completed=done, total=total)):
            return simulation_flow(config)


def _print_summary(summary: SimulationSummary) -> None:
    if summary.model_name:
        print(f"{'model':32} {summary.model_name}")
    for row in summary.table():
        print(f"{row['figure']:32} {row['value']}")
    print(f"{'output folder':32} {summary.output_dir}")


def _check_service(settings: Settings, config: SimulationConfig) -> None:
    """The service and model the traffic goes to must answer: found out in a second, before
    Prefect starts. Named or running, the service itself is asked; else the embedded service the
    flow will start must serve the model named."""
    from modelvigil.service.embedded import find_running  # the service's modules: only for this check

    named = settings.overridden(service_url=config.service_url, model_name=config.model_name)
    if not named.service_url and CMLEnvironment.from_env() is None:
        running = find_running(named)
        if running is None:
            _check_embedded_model(named)
            return
        named = named.overridden(service_url=running)
    connect(named).close()


def _check_embedded_model(settings: Settings) -> None:
    if not settings.names_model:
        return
    identity = read_identity(settings)
    serves = settings.models or [identity.model_name if identity else DEFAULT_MODEL_NAME]
    if settings.model_name not in serves:
        raise UsageError(
            f"no model {settings.model_name!r} in the embedded service it would start (it serves "
            f"{', '.join(map(repr, serves))}); to serve it too: ./run serve "
            + " ".join(f"--model {name}" for name in [*serves, settings.model_name])
        )


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    console_without_tracebacks(args.debug)
    config = _config(args)
    _check_scheduler(config)
    _check_service(settings, config)
    _print_summary(_run_simulation(config))
    return 0


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not an ISO time (such as 2026-11-28T04:00 or 2026-11-28)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _monitor_config(args: argparse.Namespace) -> MonitoringConfig:
    _check_scale_out(args)
    values: dict[str, object] = {
        **_given(args, MONITOR_OPTIONS),
        **{name: _when(getattr(args, name)) for name in TIMES},
        "fail_on_alert": args.fail_on_alert,
    }
    if args.window_minutes is not None:
        values.update(window_kind="time", window_minutes=args.window_minutes)
    try:
        return MonitoringConfig(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        flags = _flags(MONITOR_OPTIONS) | _flags({k: k for k in (*TIMES, "window_minutes")})
        raise InvalidOptions(exc, flags) from None


def _report_lines(summary: MonitoringSummary, link_lives: bool = True) -> None:
    overall = summary.overall
    acc = overall.get("accuracy")
    print(f"{'predictions analysed':32} {overall.get('predictions')}")
    print(f"{'accuracy (labelled)':32} {'n/a' if acc is None else f'{acc:.3f}'}")
    print(f"{'alerts':32} {len(summary.alerts)}")
    for alert in summary.alerts[:10]:
        print(f"  - [{alert.kind}] {alert.message}")
    if len(summary.alerts) > 10:
        print(f"  ... and {len(summary.alerts) - 10} more in the report")
    for note in summary.notes:
        print(f"  note: {note}")
    print(f"{'report':32} {summary.report}")
    if link_lives and summary.report_link.startswith("http"):
        print(f"{'report in a browser':32} {summary.report_link}")


def _monitor(args: argparse.Namespace, settings: Settings) -> int:
    console_without_tracebacks(args.debug)
    from flows.monitoring import AlertsRaised, monitoring_flow

    config = _monitor_config(args)
    _check_scheduler(config)
    if args.all:
        return _monitor_fleet(settings, config)
    check_source(
        settings.overridden(
            model_name=config.model_name, service_url=config.service_url, store_url=config.store_url
        ),
        config.deployment_crn,
    )
    try:
        summary = monitoring_flow(config)
    except AlertsRaised as exc:
        print(f"alerts raised: {exc}", file=sys.stderr)
        return 3
    _report_lines(summary)
    return _no_data(summary)


def _no_data(summary: MonitoringSummary) -> int:
    """An empty range is its own outcome (exit 10), never a healthy one (exit 0)."""
    if summary.overall.get("predictions"):
        return 0
    print(
        f"no prediction records for {summary.deployment_crn} in this range: check --deployment "
        "(or --model-name) and the range",
        file=sys.stderr,
    )
    return NO_DATA


def _monitor_fleet(settings: Settings, config: MonitoringConfig) -> int:
    from flows.fleet_monitoring import FleetIncomplete, fleet_monitoring_flow
    from flows.monitoring import AlertsRaised
    from modelvigil.analysis.fleet import worst_first

    if config.deployment_crn or config.model_name:
        raise UsageError("--all monitors every deployment: leave out --deployment and --model-name")
    check_source(
        settings.overridden(service_url=config.service_url, store_url=config.store_url), None, fleet=True
    )
    try:
        summary = fleet_monitoring_flow(config)
    except FleetIncomplete as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("the other deployments' reports were written; the fleet report lists them", file=sys.stderr)
        return FLEET_INCOMPLETE
    except AlertsRaised as exc:
        print(f"alerts raised: {exc}", file=sys.stderr)
        return 3
    for row in worst_first(summary.deployments):
        accuracy = "n/a" if row.accuracy is None else f"{row.accuracy:.3f}"
        print(f"{row.model_name:24} accuracy {accuracy:6}  alerts {row.alerts}  drift {row.drift_text}")
    print(f"{'fleet report':24} {summary.report}")
    if summary.report_link.startswith("http"):
        print(f"{'in a browser':24} {summary.report_link}")
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    """The main job: a simulation, then the monitoring of exactly what it sent."""
    console_without_tracebacks(args.debug)
    from flows.monitoring import monitoring_flow
    from modelvigil.service.embedded import ensure_service, find_running
    from tasks.runners import shared_cluster

    config = _config(args)
    _check_scheduler(config)
    _check_service(settings, config)
    started = datetime.now(UTC) - timedelta(seconds=1)
    settings = settings.overridden(service_url=config.service_url)
    already = None if settings.service_url else find_running(settings)
    # The service is started here unless one runs already, so that its live page can be announced
    # before the traffic starts.
    with ensure_service(settings) as url:
        if url:
            print(f"live Monitoring page: {url}/monitoring (API key: ./run info --show-api-key)", flush=True)
            if already or settings.service_url:
                print(f"  using the service already running at {url}", flush=True)
                if args.keep_serving:
                    print("  (--keep-serving has nothing to keep: that service runs on its own)", flush=True)
            elif not args.keep_serving:
                print(
                    "  this service stops when the demo ends: to keep the page, run `./run serve` in "
                    "another terminal first, or add --keep-serving",
                    flush=True,
                )
        with shared_cluster(config) as scaled:  # on dask, both flows on one cluster
            summary = _run_simulation(scaled.model_copy(update={"service_url": url or config.service_url}))
            _print_summary(summary)
            print()
            monitor = MonitoringConfig(
                start=started,
                end=datetime.now(UTC) + timedelta(seconds=1),
                deployment_crn=summary.deployment_crn or None,  # the one the traffic went to
                service_url=config.service_url,
                output_dir=str(Path(summary.output_dir) / "report"),
                **scaled.model_dump(include=set(SCALE_OUT_OPTIONS.values())),
            )
            # A link to a service that stops with the demo would open nothing: shown only if it stays.
            stays = bool(already or settings.service_url or args.keep_serving)
            monitored = monitoring_flow(monitor)
            _report_lines(monitored, link_lives=stays)
        if args.keep_serving and url and not (already or settings.service_url):
            _wait_for_interrupt(f"\nserving {url}/monitoring until Ctrl-C")
    return _no_data(monitored)


def _wait_for_interrupt(message: str) -> None:
    try:
        # Said inside the try: a stop that comes the moment the line is read is still this wait's.
        print(message, flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog="modelvigil", description="Watch models deployed on CML.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_core_commands(sub)
    simulate = command(sub, "simulate", "run the simulation flow: traffic, scoring, checks, ground truth")
    _add_model_options(simulate, SimulationConfig, SIMULATION_OPTIONS)
    simulate.set_defaults(run=_simulate)
    monitor = command(sub, "monitor", "run the monitoring flow: report and alerts for a time range")
    monitor.add_argument(
        "--start",
        default=None,
        help="ISO time, UTC unless an offset is given (default: --lookback-hours before --end)",
    )
    monitor.add_argument("--end", default=None, help="ISO time, UTC unless an offset is given (default: now)")
    _add_model_options(monitor, MonitoringConfig, MONITOR_OPTIONS)
    monitor.add_argument(
        "--window-minutes",
        type=int,
        default=None,
        help="time windows of this many minutes instead of windows by count",
    )
    monitor.add_argument("--reference-start", default=None, help="reference period start (ISO time)")
    monitor.add_argument("--reference-end", default=None, help="reference period end (ISO time)")
    monitor.add_argument("--fail-on-alert", action="store_true", help="exit 3 when any alert fires")
    monitor.add_argument(
        "--all",
        action="store_true",
        help="every deployment of the project, each its own report, then a fleet report (exit 8 when "
        "some could not be monitored)",
    )
    monitor.set_defaults(run=_monitor)
    demo = command(sub, "demo", "the main job on the embedded default: a simulation, then its monitoring")
    _add_model_options(demo, SimulationConfig, SIMULATION_OPTIONS)
    demo.add_argument(
        "--keep-serving",
        action="store_true",
        help="after the report, keep the service (and its live page) up until Ctrl-C",
    )
    demo.set_defaults(run=_demo)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
