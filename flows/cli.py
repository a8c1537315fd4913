"""The `modelvigil` command: `serve` and `info` (from modelvigil.cli) plus the flows: `simulate`, `demo`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

# Quiet, reliable first runs of an ephemeral Prefect server (see the README's notes).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

from pydantic import ValidationError

from modelvigil.cli import add_core_commands, run
from modelvigil.data import Scenario
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
        for err in exc.errors():
            print(f"error: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}", file=sys.stderr)
        return 2
    _print_summary(_run_simulation(config))
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    return _simulate(args, settings)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelvigil", description="Watch models deployed on CML.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_core_commands(sub)
    simulate = sub.add_parser(
        "simulate", help="run the simulation flow: traffic, scoring, checks, ground truth"
    )
    _add_simulation_arguments(simulate, requests_default=1000)
    simulate.set_defaults(run=_simulate)
    demo = sub.add_parser("demo", help="the main job on the embedded default")
    _add_simulation_arguments(demo, requests_default=1000)
    demo.set_defaults(run=_demo)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
