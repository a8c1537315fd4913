"""`modelvigil serve` and `modelvigil info`: the embedded service and its identity."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from modelvigil import terminal
from modelvigil.protocol import masked
from modelvigil.service import running
from modelvigil.service.options import ServiceOptions
from modelvigil.settings import (
    DEFAULT_PORT,
    Settings,
    identity_path,
    load_or_create_identity,
    model_names,
    remember_model_name,
    served_identities,
)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from modelvigil.service.embedded import InsecureBind, build_server, exit_with_parent
    from modelvigil.service.faults import FaultPlan

    if args.models and args.model_name:
        raise terminal.UsageError(
            "--model-name renames the one served model; with --model, name each model to serve instead"
        )
    try:
        model_names([args.model_name] if args.model_name is not None else [])
    except ValueError as exc:
        raise terminal.UsageError(f"--model-name {exc}") from None
    try:
        models = model_names(args.models or [])
    except ValueError as exc:
        raise terminal.UsageError(f"--model {exc}") from None
    settings = settings.overridden(store_url=args.store_url, model_name=args.model_name, models=models)
    try:
        faults = (
            FaultPlan.parse(args.faults, args.fault_routes, slow_seconds=args.slow_seconds, burst=args.burst)
            if args.faults
            else None
        )
    except ValueError as exc:
        print(f"error: --faults: {exc}", file=sys.stderr)
        return 2
    given = {
        "replicas": args.replicas,
        "queue_timeout_s": args.queue_timeout,
        "model_threads": args.model_threads,
        "parse_workers": args.parse_workers,
        "added_latency_ms": args.latency_ms,
    }
    options = ServiceOptions(auth=not args.no_auth, **{k: v for k, v in given.items() if v is not None})
    try:
        server, sock, identity, _store = build_server(
            settings,
            host=args.host,
            port=args.port,
            options=options,
            allow_insecure_bind=args.allow_insecure_bind,
            faults=faults,
            say=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except InsecureBind as exc:
        raise terminal.UsageError(str(exc)) from None
    host, port = sock.getsockname()[:2]
    renamed = None if settings.models else remember_model_name(settings, identity)
    print(f"modelvigil service on http://{host}:{port}", flush=True)
    if renamed is not None:
        where = identity_path(settings)
        print(f"  model renamed {renamed!r} -> {identity.model_name!r} (remembered in {where})")
    serving = served_identities(settings, load_or_create_identity(settings), settings.models)
    for served in serving:
        print(f"  model {served.model_name!r}, access key {served.access_key}")
        print(f"    deployment {served.deployment_crn}")
    print(f"  live Monitoring page: http://{host}:{port}/monitoring (asks for the API key)")
    print(f"  auth {'on: API key in ' + str(identity_path(settings)) if options.auth else 'OFF'}", flush=True)
    if args.exit_with_parent:
        exit_with_parent(server, args.exit_with_parent)
    with running.recorded(settings, f"http://{host}:{port}", [s.model_name for s in serving]):
        server.run(sockets=[sock])
    return 0


def _info(args: argparse.Namespace, settings: Settings) -> int:
    identity = known = load_or_create_identity(settings)
    # A running service of the home serves its own default model (`serve --model A --model B`
    # serves A first): that is the one named, unless a model name was asked for.
    serving = [] if settings.service_url else running.served_models(settings)
    if serving and not settings.names_model and serving[0] in [identity.model_name, *identity.other_models]:
        identity = identity.as_model(serving[0])
    info = {
        "service_url": masked(
            settings.service_url or running.running_url(settings) or f"http://127.0.0.1:{settings.port}"
        ),
        "store_url": masked(settings.resolved_store_url()) if not settings.service_url else None,
        "model_name": identity.model_name,
        "access_key": identity.access_key,
        "project_id": identity.project_id,
        "model_crn": identity.model_crn,
        "model_build_crn": identity.build_crn,
        "model_deployment_crn": identity.deployment_crn,
        "serving": serving or None,  # what the home's running service serves; None: none runs
        # Every model this home has served (`serve --model`), the default one first.
        "models": [
            {
                "model_name": m.model_name,
                "access_key": m.access_key,
                "model_crn": m.model_crn,
                "model_build_crn": m.build_crn,
                "model_deployment_crn": m.deployment_crn,
            }
            for m in served_identities(settings, known, [known.model_name, *known.other_models])
        ],
    }
    if args.show_api_key:
        info["api_key"] = identity.api_key.get_secret_value()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    models = info.pop("models")
    info["serving"] = ", ".join(serving) if serving else "(no service of this home is running)"
    for key, value in info.items():
        print(f"{key:22} {value}")
    if len(models) > 1:
        print("models:")
        for m in models:
            print(
                f"  {m['model_name']:20} access key {m['access_key']}, deployment {m['model_deployment_crn']}"
            )
    return 0


class Parser(argparse.ArgumentParser):
    """argparse, with a wrong option told in two lines (not the usage block, a screen long), the
    nearest command suggested for a mistyped one, and named as the user called it (`./run` says so
    in MODELVIGIL_PROG)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("prog") == "modelvigil":
            kwargs["prog"] = os.environ.get("MODELVIGIL_PROG") or "modelvigil"
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        hint = f"`{self.prog} --help` lists every option"
        typo = re.search(r"^argument command: invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if typo:
            choices = re.findall(r"'([^']*)'", typo.group(2))
            near = difflib.get_close_matches(typo.group(1), choices, n=1)
            message = f"no command {typo.group(1)!r}" + (f": did you mean {near[0]!r}?" if near else "")
            hint = f"commands: {', '.join(choices)}; `{self.prog} --help` says what each does"
        self.exit(2, f"{self.prog}: error: {message}\n{hint}\n")


COMMON = Parser(add_help=False)
COMMON.add_argument("--debug", action="store_true", help="show the traceback of any failure")


def command(sub: argparse._SubParsersAction, name: str, help: str) -> argparse.ArgumentParser:
    """A subcommand with the options every command takes (--debug)."""
    return sub.add_parser(name, help=help, description=help, parents=[COMMON])


def port(text: str) -> int:
    """An argparse type: a TCP port a service can listen on."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port: use 1 to 65535")
    return value


def _session(args: argparse.Namespace, settings: Settings) -> int:
    from modelvigil.service.embedded import ensure_service
    from modelvigil.session import run_script

    if args.script is None:
        raise terminal.UsageError("no script given: modelvigil session SCRIPT [ARGS...]")
    script = Path(args.script)
    if not script.is_file():
        raise terminal.UsageError(f"no script at {script}")
    with ensure_service(settings) as url:
        if url is None:
            raise terminal.UsageError("inside a CML workspace already: run the script as it is")
        return run_script(settings, url, script, args.args)


def add_core_commands(sub: argparse._SubParsersAction) -> None:
    """`serve` and `info`: the commands that need no Prefect (flows/cli.py adds the rest)."""
    serve = command(sub, "serve", "run the embedded CML-compatible model service")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=port, default=None, help=f"default {DEFAULT_PORT} (MODELVIGIL_PORT)")
    serve.add_argument(
        "--store-url", default=None, help="SQLAlchemy URL (default: MODELVIGIL_STORE_URL or SQLite)"
    )
    serve.add_argument("--no-auth", action="store_true", help="accept calls without an API key")
    serve.add_argument(
        "--model-name",
        default=None,
        help="name of the served model, as discovery finds it (default: MODELVIGIL_MODEL_NAME, or the "
        "name this home's service was first given; a new name is remembered)",
    )
    serve.add_argument(
        "--model",
        action="append",
        dest="models",
        metavar="NAME",
        default=None,
        help="serve a model of this name, each its own CML model with its own access key and seed "
        "(repeat for several; the first is the default; default: one model, see --model-name)",
    )
    serve.add_argument(
        "--allow-insecure-bind", action="store_true", help="allow --no-auth on a public address"
    )
    serve.add_argument(
        "--replicas",
        type=int,
        default=None,
        help=f"requests in flight at once; more wait, then 429 (default: {ServiceOptions.replicas})",
    )
    serve.add_argument(
        "--faults", default=None, help="inject faults for testing, e.g. 503=0.05,429=0.05,slow=0.05,drop=0.05"
    )
    serve.add_argument(
        "--fault-routes",
        default=None,
        help="comma-separated path prefixes that get --faults, e.g. /model,/metrics (default: every route)",
    )
    serve.add_argument("--slow-seconds", type=float, default=3.0, help="how late a 'slow' fault answers")
    serve.add_argument("--burst", type=int, default=3, help="calls refused in a row per injected 429")
    serve.add_argument("--exit-with-parent", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument(
        "--model-threads",
        type=int,
        default=None,
        help=f"OpenMP threads per model call (default: {ServiceOptions.model_threads}, fastest under load; "
        "more cut one big call's latency)",
    )
    serve.add_argument(
        "--parse-workers",
        type=int,
        default=None,
        help=f"processes that parse bodies over 1 MB, so one big call stalls no other caller "
        f"(default: {ServiceOptions.parse_workers}; 0: parse in threads)",
    )
    serve.add_argument(
        "--latency-ms",
        type=float,
        default=None,
        help="add this many ms to every answer: rehearse a remote endpoint's round trip on loopback",
    )
    serve.add_argument(
        "--queue-timeout",
        type=float,
        default=None,
        help=f"seconds a request waits before 429 (default: {ServiceOptions.queue_timeout_s:g})",
    )
    serve.set_defaults(run=_serve)

    session = command(
        sub,
        "session",
        "run a Python script as inside a CML session (cdsw, cml, cmlapi and CDSW_* provided), "
        "against this home's service (started if none runs) or MODELVIGIL_SERVICE_URL",
    )
    session.add_argument("script", nargs="?", help="the script, e.g. tests/lab/06_model_simulation.py")
    session.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    session.set_defaults(run=_session)

    info = command(sub, "info", "service URL, model name, access key and CRNs")
    info.add_argument("--json", action="store_true", help="as one JSON object")
    info.add_argument("--show-api-key", action="store_true", help="also print the API key (a secret)")
    info.set_defaults(run=_info)


def _terminated(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """Run the chosen command; an expected failure is a few plain lines and its exit code
    (`terminal`), the traceback only with --debug."""
    # SIGTERM unwinds like Ctrl-C, so that what a command started (a service, Prefect's temporary
    # server) is stopped on the way out instead of being left running.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    except Exception as exc:
        return terminal.report(exc, debug=getattr(args, "debug", False))


def _run(args: argparse.Namespace) -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"MODELVIGIL_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise terminal.UsageError(f"configuration: {problems}") from exc
    if getattr(args, "port", None) is not None:
        settings = settings.model_copy(update={"port": args.port})
    elif getattr(args, "command", None) == "serve":
        args.port = settings.port
    for name in ("requests", "window", "replicas", "model_threads"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise terminal.UsageError(f"--{name.replace('_', '-')} must be >= 1")
    if (getattr(args, "parse_workers", None) or 0) < 0:
        raise terminal.UsageError("--parse-workers must be >= 0")
    latency = getattr(args, "latency_ms", None)
    if latency is not None and not 0 <= latency <= 60_000:
        raise terminal.UsageError("--latency-ms must be between 0 and 60000")
    return int(args.run(args, settings))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m modelvigil`: the core commands only; the installed `modelvigil` has them all."""
    parser = Parser(prog="modelvigil", description=__doc__)
    add_core_commands(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
