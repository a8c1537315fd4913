"""The `modelvigil` command: serve and info (modelvigil.cli) and the flows: simulate, monitor, demo."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Quiet, reliable first runs of an ephemeral Prefect server (see the README's notes).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

from pydantic import ValidationError

from flows.monitoring import MonitoringSummary
from modelvigil.cli import add_core_commands, run
from modelvigil.data import Scenario
from modelvigil.embedded import ensure_service
from modelvigil.monitoring import MonitoringConfig
from modelvigil.settings import Settings
from modelvigil.simulation import CheckPolicy, SimulationConfig, SimulationSummary


def _add_simulation_arguments(p: argparse.ArgumentParser, requests_default: int) -> None:
    p.add_argument("--requests", type=int, default=requests_default)
    p.add_argument("--rows-per-request", type=int, default=1)
    p.add_argument("--scenario", choices=[s.value for s in Scenario], default="none")
    p.add_argument("--onset", type=float, default=0.5, help="share of the traffic before drift starts")
    p.add_argument("--magnitude", type=float, default=1.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--coverage", type=float, default=1.0, help="share of predictions given ground truth")
    p.add_argument("--label-delay", type=float, default=0.0, help="seconds before ground truth arrives")
    p.add_argument("--window", type=int, default=100, help="predictions per accuracy aggregate")
    p.add_argument("--check-policy", choices=[c.value for c in CheckPolicy], default="fail")
    p.add_argument("--simulation-id", default=None, help="the same id resumes a run without rescoring")
    p.add_argument("--out", default=None, help="output folder (default: $MODELVIGIL_HOME/runs/<id>)")
    p.add_argument("--service-url", default=None)
    p.add_argument("--model-name", default=None)


def _config(args: argparse.Namespace) -> SimulationConfig:
    return SimulationConfig(
        requests=args.requests,
        rows_per_request=args.rows_per_request,
        scenario=args.scenario,
        drift_onset=args.onset,
        drift_magnitude=args.magnitude,
        concurrency=args.concurrency,
        seed=args.seed,
        label_coverage=args.coverage,
        label_delay_seconds=args.label_delay,
        accuracy_window=args.window,
        check_policy=args.check_policy,
        simulation_id=args.simulation_id,
        output_dir=args.out,
        service_url=args.service_url,
        model_name=args.model_name,
    )


def _run_simulation(config: SimulationConfig) -> SimulationSummary:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from flows.simulation import simulation_flow
    from modelvigil import progress

    with Progress("scoring", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True) as bar:
        task_id = bar.add_task("scoring", total=config.requests)
        with progress.reporting(lambda done, total: bar.update(task_id, completed=done, total=total)):
            return simulation_flow(config)


def _print_summary(summary: SimulationSummary) -> None:
    for row in summary.table():
        print(f"{row['figure']:32} {row['value']}")
    print(f"{'output folder':32} {summary.output_dir}")


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    try:
        config = _config(args)
    except ValidationError as exc:
        return _invalid(exc)
    _print_summary(_run_simulation(config))
    return 0


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _monitor_config(args: argparse.Namespace, **overrides: object) -> MonitoringConfig:
    values: dict[str, object] = {
        "start": _when(args.start),
        "end": _when(args.end),
        "lookback_hours": args.lookback_hours,
        "deployment_crn": args.deployment,
        "model_name": args.model_name,
        "window_kind": "time" if args.window_minutes else "count",
        "window_size": args.window_size,
        "window_minutes": args.window_minutes or 60,
        "reference_start": _when(args.reference_start),
        "reference_end": _when(args.reference_end),
        "fail_on_alert": args.fail_on_alert,
        "output_dir": args.out,
        "service_url": args.service_url,
        "store_url": args.store_url,
    }
    values.update(overrides)
    return MonitoringConfig(**values)


def _report_lines(summary: MonitoringSummary) -> None:
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


def _monitor(args: argparse.Namespace, settings: Settings) -> int:
    from flows.monitoring import AlertsRaised, monitoring_flow

    try:
        config = _monitor_config(args)
    except (ValidationError, ValueError) as exc:
        return _invalid(exc)
    try:
        _report_lines(monitoring_flow(config))
    except AlertsRaised as exc:
        print(f"alerts raised: {exc}", file=sys.stderr)
        return 3
    return 0


def _invalid(exc: Exception) -> int:
    if isinstance(exc, ValidationError):
        for err in exc.errors():
            print(f"error: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)
    return 2


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    """The main job: a simulation, then the monitoring of exactly what it sent."""
    from flows.monitoring import monitoring_flow

    try:
        config = _config(args)
    except ValidationError as exc:
        return _invalid(exc)
    started = datetime.now(UTC) - timedelta(seconds=1)
    # The service is started here (unless one runs already), so its live page can be announced
    # before the traffic starts; it stops with the demo (start `./run serve` first to keep it).
    with ensure_service(settings.model_copy(update={"service_url": config.service_url})) as url:
        if url:
            print(f"live Monitoring page: {url}/monitoring (API key: ./run info --show-api-key)", flush=True)
        summary = _run_simulation(config.model_copy(update={"service_url": url or config.service_url}))
    _print_summary(summary)
    print()
    monitor = MonitoringConfig(
        start=started,
        end=datetime.now(UTC) + timedelta(seconds=1),
        service_url=config.service_url,
        output_dir=str(Path(summary.output_dir) / "report"),
    )
    _report_lines(monitoring_flow(monitor))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelvigil", description="Watch models deployed on CML.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_core_commands(sub)
    simulate = sub.add_parser(
        "simulate", help="run the simulation flow: traffic, scoring, checks, ground truth"
    )
    _add_simulation_arguments(simulate, requests_default=1000)
    simulate.set_defaults(run=_simulate)
    monitor = sub.add_parser("monitor", help="run the monitoring flow: report and alerts for a time range")
    monitor.add_argument("--start", default=None, help="ISO time, UTC unless an offset is given")
    monitor.add_argument("--end", default=None, help="ISO time (default: now)")
    monitor.add_argument("--lookback-hours", type=float, default=24.0)
    monitor.add_argument("--deployment", default=None, help="deployment CRN (default: discovered)")
    monitor.add_argument("--model-name", default=None)
    monitor.add_argument("--window-size", type=int, default=None, help="predictions per window (default: 10)")
    monitor.add_argument("--window-minutes", type=int, default=None, help="time windows of this length")
    monitor.add_argument("--reference-start", default=None)
    monitor.add_argument("--reference-end", default=None)
    monitor.add_argument("--fail-on-alert", action="store_true", help="exit 3 when any alert fires")
    monitor.add_argument("--out", default=None, help="report folder")
    monitor.add_argument("--service-url", default=None)
    monitor.add_argument("--store-url", default=None, help="read this store directly")
    monitor.set_defaults(run=_monitor)
    demo = sub.add_parser("demo", help="the main job on the embedded default")
    _add_simulation_arguments(demo, requests_default=1000)
    demo.set_defaults(run=_demo)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
