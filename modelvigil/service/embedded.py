"""Running the embedded service: in this process (a thread, for tests and the demo) or as `serve`.

`ensure_service` is what makes the main job work on a fresh machine: use the configured service,
else one already running on the default port, else start one here for as long as it is needed.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import requests
import uvicorn

from modelvigil.model import FraudModel
from modelvigil.service.app import create_app
from modelvigil.service.faults import FaultInjector, FaultPlan
from modelvigil.service.http_limits import limited_headers
from modelvigil.service.listen import CannotListen
from modelvigil.service.options import HEADER_TIMEOUT_S, MAX_HEADER_BYTES, ServiceOptions
from modelvigil.service.running import running_url
from modelvigil.settings import (
    CMLEnvironment,
    ServiceIdentity,
    Settings,
    load_or_create_identity,
    read_identity,
    served_identities,
)
from modelvigil.store import MetricsStore


class InsecureBind(ValueError):
    """Serving without auth on an address other machines can reach."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, auth: bool, allow_insecure: bool) -> None:
    if not auth and not is_loopback(host) and not allow_insecure:
        raise InsecureBind(
            f"refusing to serve without auth on {host}: other machines could call the model and read "
            "its metrics. Turn auth on, bind to 127.0.0.1, or pass --allow-insecure-bind."
        )


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this: without it, keep-alive answers wait on delayed ACKs (~40 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as exc:
        sock.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        hint = "choose another --port" if port else "choose another --host"
        raise CannotListen(f"cannot listen on {host}:{port}: {reason}; {hint}") from exc
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def build_server(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    options: ServiceOptions | None = None,
    model: FraudModel | None = None,
    allow_insecure_bind: bool = False,
    faults: FaultPlan | None = None,
    say: Callable[[str], None] = lambda _line: None,
) -> tuple[uvicorn.Server, socket.socket, ServiceIdentity, MetricsStore]:
    """The service, bound but not yet serving. `say` hears what takes a while (training a model
    on its first start), for a terminal that would otherwise sit silent."""
    options = options or ServiceOptions()
    check_bind(host, options.auth, allow_insecure_bind)
    identity = load_or_create_identity(settings)
    served = [
        (i, _model_of(settings, i, model, say))
        for i in served_identities(settings, identity, settings.models)
    ]
    (identity, default_model), *more = served
    store = MetricsStore(settings.resolved_store_url())
    app: Any = create_app(identity, default_model, store, options, home=settings.home, more_models=more)
    if faults is not None and faults.shares:
        app = FaultInjector(app, faults)
    server = uvicorn_server(
        app, max_header_bytes=options.max_header_bytes, header_timeout_s=options.header_timeout_s
    )
    return server, bind(host, port), identity, store


def _model_of(
    settings: Settings, identity: ServiceIdentity, given: FraudModel | None, say: Callable[[str], None]
) -> FraudModel:
    """The model served as `identity`: the home's own (or `given`), or one trained with that
    model's seed, kept under its model id."""
    if identity.seed is None and given is not None:
        return given
    path = (
        settings.model_path()
        if identity.seed is None
        else settings.home / "models" / f"{identity.model_id}.joblib"
    )
    if not path.exists():
        say(f"training model {identity.model_name!r} (its first start; kept in {path})...")
    return FraudModel.load_or_train(path, identity.seed)


def uvicorn_server(
    app: Any, *, max_header_bytes: int = MAX_HEADER_BYTES, header_timeout_s: float = HEADER_TIMEOUT_S
) -> uvicorn.Server:
    # access_log off: the access log would print query strings (?accessKey=...) to the console.
    # log_config None: uvicorn must not reconfigure the process's logging. Inside a Prefect flow
    # run that reconfiguration flushes Prefect's API log handler under the logging lock: deadlock.
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        proxy_headers=False,  # no proxy in front of the embedded service: skip X-Forwarded-* handling
        timeout_graceful_shutdown=5,
        http=limited_headers(max_header_bytes, header_timeout_s),  # httptools, with header limits
    )
    return uvicorn.Server(config)


def wait_for_health(
    health_url: str, timeout_s: float, process: subprocess.Popen[Any] | None = None, interval_s: float = 0.2
) -> bool:
    """Poll `health_url` until it answers 2xx (True), the timeout passes or `process` exits (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(health_url, timeout=2).ok:
                return True
        except requests.RequestException:
            pass
        if process is not None and process.poll() is not None:
            return False
        time.sleep(interval_s)
    return False


def _is_our_service(url: str, settings: Settings) -> bool:
    """Up, and serving this home's project (another home's service would refuse our key)."""
    try:
        health = requests.get(f"{url}/health", timeout=1.0)
    except requests.RequestException:
        return False
    identity = read_identity(settings)
    return health.ok and identity is not None and health.json().get("project_id") == identity.project_id


def exit_with_parent(server: uvicorn.Server, parent_pid: int) -> None:
    """Stop `server` once `parent_pid` is gone (re-parented), so a killed client orphans no service."""

    def watch() -> None:
        while not server.should_exit:
            if os.getppid() != parent_pid:
                server.should_exit = True
                return
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _free_port(wanted: int | None) -> int:
    """`wanted` if nothing listens there, else any free port."""
    if wanted:
        with socket.socket() as probe, suppress(OSError):
            probe.bind(("127.0.0.1", wanted))
            return wanted
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def run_in_subprocess(
    settings: Settings,
    startup_timeout_s: float = 180.0,
    *,
    port: int | None = None,
    serve_args: Sequence[str] = (),
    source: Path | None = None,
) -> Iterator[str]:
    """`modelvigil serve` in a child process on `port` if it is free, else on a free loopback port,
    for as long as the block runs; with `source`, the service of that source tree (a checkout of
    another commit, which benchmarks hold beside this one).

    A process of its own, not a thread: client and service would otherwise share one GIL
    (measured: 233 requests/s in one process against 466 with the service apart).
    """
    load_or_create_identity(settings)  # the child and this process must agree on the keys
    env = {**os.environ, "MODELVIGIL_HOME": str(settings.home)}
    if settings.store_url:
        env["MODELVIGIL_STORE_URL"] = settings.store_url
    if source is not None:
        env["PYTHONPATH"] = str(source)
    log_path = settings.home / "embedded-service.log"
    wanted = port
    for _ in range(3):  # the free port can be taken between our probe and the child's bind
        port = _free_port(wanted)
        wanted = None
        url = f"http://127.0.0.1:{port}"
        with open(log_path, "ab") as log:
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "modelvigil",
                    "serve",
                    "--port",
                    str(port),
                    "--exit-with-parent",
                    str(os.getpid()),
                    *serve_args,
                ],
                env=env,
                cwd=source,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + startup_timeout_s
        while child.poll() is None and time.monotonic() < deadline and not _is_our_service(url, settings):
            time.sleep(0.1)
        if child.poll() is None and _is_our_service(url, settings):
            break
        child.terminate()
        child.wait(timeout=30)
    else:
        raise RuntimeError(f"the embedded service did not start; see {log_path}")
    try:
        yield url
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()


@contextmanager
def ensure_service(settings: Settings) -> Iterator[str | None]:
    """Yield the base URL of a service to talk to: the configured one; None inside a CML workspace
    (`connect` then finds the model there); else this home's service on the default port; else the
    embedded service, started here (on the default port if it is free) for as long as the block runs."""
    if settings.service_url:
        yield settings.service_url.rstrip("/")
        return
    if CMLEnvironment.from_env() is not None:
        yield None
        return
    running = find_running(settings)
    if running:
        yield running
        return
    with run_in_subprocess(settings, port=settings.port) as url:
        yield url


def find_running(settings: Settings) -> str | None:
    """This home's service, if one runs: where it recorded itself, else on the default port."""
    for url in (running_url(settings), f"http://127.0.0.1:{settings.port}"):
        if url and _is_our_service(url, settings):
            return url
    return None


def home_service_url(settings: Settings) -> str | None:
    """A running service of this home (the configured one if it is), which can open its `/shared`
    links; None when none runs (a report is then a file only)."""
    if settings.service_url and _is_our_service(settings.service_url.rstrip("/"), settings):
        return settings.service_url.rstrip("/")
    return find_running(settings)
