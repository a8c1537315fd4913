"""`python -m deployments apply` (deployments and automations on the server in PREFECT_API_URL) and
`python -m deployments up` (a local Prefect server on Postgres, a worker, everything applied)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from deployments.definitions import MONITORING, DeploymentSettings, apply_deployments, worker_command
from flows import PREFECT_DEFAULTS
from modelvigil.service.embedded import bind, wait_for_health
from modelvigil.service.listen import CannotListen
from modelvigil.terminal import CANNOT_LISTEN, NO_STORE

STOP_GRACE_S = 7.0  # then SIGKILL: all of `up` is gone within 10 s of Ctrl-C or SIGTERM
DEFAULT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/modelvigil_prefect"


def _apply(args: argparse.Namespace) -> int:
    if not os.environ.get("PREFECT_API_URL"):
        print(
            "error: set PREFECT_API_URL to the Prefect server's API (e.g. http://127.0.0.1:4200/api), "
            "or run `python -m deployments up`",
            file=sys.stderr,
        )
        return 2
    settings = DeploymentSettings(monitoring_cron=args.cron, timezone=args.timezone)
    ids = apply_deployments(settings)
    for name, dep_id in ids.items():
        print(f"deployment {name}: {dep_id}")
    webhook = args.webhook_url or os.environ.get("MODELVIGIL_ALERT_WEBHOOK_URL")
    if webhook:
        from deployments.automations import apply_automations

        for name, auto_id in apply_automations(webhook, ids[MONITORING]).items():
            print(f"automation {name!r}: {auto_id}")
    else:
        print("no webhook URL (--webhook-url or MODELVIGIL_ALERT_WEBHOOK_URL): automations not applied")
    return 0


def _create_database(url: str) -> None:
    """Create the server's database on first use (needs rights to CREATE DATABASE)."""
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    admin = sa.create_engine(
        parsed.set(drivername="postgresql+psycopg", database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
        ).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _up(args: argparse.Namespace) -> int:
    database = args.database_url or os.environ.get("MODELVIGIL_PREFECT_DATABASE_URL", DEFAULT_DATABASE)
    # Checked first: with another server on the port, the health check below would pass on it and
    # the deployments would be applied there.
    try:
        bind(args.host, args.port).close()  # as the service binds: a socket in TIME_WAIT is no server
    except CannotListen as exc:
        in_use = isinstance(exc.__cause__, OSError) and exc.__cause__.errno == errno.EADDRINUSE
        taken = f"{args.host}:{args.port} is in use (another Prefect server?): stop it, or choose --port"
        print(f"error: {taken if in_use else exc}", file=sys.stderr)
        return CANNOT_LISTEN
    import sqlalchemy as sa

    try:
        _create_database(database)
    except sa.exc.SQLAlchemyError as exc:
        where = sa.engine.make_url(database).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"error: the Prefect server's database at {where} cannot be reached: {reason}", file=sys.stderr)
        print("  start PostgreSQL there, or name another with --database-url", file=sys.stderr)
        return NO_STORE
    home = Path(os.environ.get("MODELVIGIL_HOME", Path.home() / ".modelvigil")) / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    api = f"http://{args.host}:{args.port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": database,
        **PREFECT_DEFAULTS,
        "PREFECT_API_URL": api,
    }
    # SIGTERM (a supervisor, `timeout`) stops the children too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    # Started with SIGINT ignored (`nohup`, `cmd &` from a script, many supervisors), every child
    # would inherit that, and Prefect's worker turns a first SIGTERM into a SIGINT: ignored, it
    # kept running until killed. Children start with the default; this process takes Ctrl-C.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Each child leads a process group of its own, so that stopping it stops what it started
    # (the server runs uvicorn in a process of its own) and Ctrl-C reaches only this process.
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", args.host, "--port", str(args.port)],
        env=env,
        start_new_session=True,
    )
    worker = service = None
    try:
        if not wait_for_health(f"{api}/health", 120, server, interval_s=1):
            print("error: the Prefect server did not start", file=sys.stderr)
            return 1
        # A child process: Prefect reads PREFECT_API_URL when it is imported, so this process
        # (imported before the server existed) would talk to an ephemeral server instead.
        apply = [
            sys.executable,
            "-m",
            "deployments",
            "apply",
            "--cron",
            args.cron,
            "--timezone",
            args.timezone,
        ]
        if args.webhook_url:
            apply += ["--webhook-url", args.webhook_url]
        if subprocess.run(apply, env=env).returncode != 0:
            return 1
        worker = subprocess.Popen(
            worker_command(DeploymentSettings().work_pool, args.worker_limit), env=env, start_new_session=True
        )
        service, service_line = _model_service(env)
        print(
            f"\nPrefect UI: http://{args.host}:{args.port}  (API {api}); a worker polls "
            f"'{DeploymentSettings().work_pool}'.\n{service_line}\nCtrl-C stops everything started here."
        )
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_groups([p for p in (service, worker, server) if p is not None])
    return 0


def _model_service(env: dict[str, str]) -> tuple[subprocess.Popen | None, str]:
    """This home's model service, started unless one runs: the monitoring runs' report links
    (and the simulation's Data Docs links) open on it."""
    from modelvigil.service.embedded import find_running
    from modelvigil.settings import Settings

    settings = Settings()
    running = find_running(settings)
    if running:
        return None, f"model service: {running} (already running; report links open there)"
    service = subprocess.Popen([sys.executable, "-m", "modelvigil", "serve"], env=env, start_new_session=True)
    if not wait_for_health(f"http://127.0.0.1:{settings.port}/health", 180, service, interval_s=0.5):
        return service, "model service: did not start (see above); report links will not open"
    return service, f"model service: http://127.0.0.1:{settings.port} (report links open there)"


def stop_groups(children: list[subprocess.Popen], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to each child's process group, then SIGKILL to whatever is left after `grace_s`
    (a Prefect worker takes the first SIGTERM as a request to finish its runs and keeps going)."""
    for child in children:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
    for child in children:  # the leader may be gone and its children not
        _signal_group(child, signal.SIGKILL)
        child.wait()


def _signal_group(child: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn, helptext in (
        ("apply", _apply, "apply deployments and automations"),
        ("up", _up, "local Prefect server on Postgres + worker + apply"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--webhook-url", default=None, help="where alert automations POST (default: none)")
        p.add_argument(
            "--cron",
            default=DeploymentSettings().monitoring_cron,
            help="when the nightly monitoring runs, as cron (default: %(default)s)",
        )
        p.add_argument(
            "--timezone",
            default=DeploymentSettings().timezone,
            help="the cron's time zone (default: %(default)s)",
        )
        if name == "up":
            p.add_argument(
                "--database-url", default=None, help=f"the server's database (default: {DEFAULT_DATABASE})"
            )
            p.add_argument(
                "--host", default="127.0.0.1", help="where the Prefect UI listens (default: %(default)s)"
            )
            p.add_argument(
                "--port", type=int, default=4200, help="the Prefect UI's port (default: %(default)s)"
            )
            p.add_argument(
                "--worker-limit",
                type=_positive,
                default=None,
                help="runs the worker takes at once (default: no limit); with a limit, a second "
                "worker on the pool takes the runs beyond it",
            )
        p.set_defaults(run=fn)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
