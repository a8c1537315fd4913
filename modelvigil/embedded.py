"""Running the embedded service: in this process (a thread, for tests and the demo) or as `serve`.

`ensure_service` is what makes the main job work on a fresh machine: use the configured service,
else one already running on the default port, else start one here for as long as it is needed.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
import uvicorn

from modelvigil.model import FraudModel
from modelvigil.service import ServiceOptions, create_app
from modelvigil.settings import ServiceIdentity, Settings, load_or_create_identity, read_identity
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


@dataclass
class EmbeddedService:
    url: str
    identity: ServiceIdentity
    store: MetricsStore
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.store.close()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this: without it, keep-alive answers wait on delayed ACKs (~40 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
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
) -> tuple[uvicorn.Server, socket.socket, ServiceIdentity, MetricsStore]:
    options = options or ServiceOptions()
    check_bind(host, options.auth, allow_insecure_bind)
    identity = load_or_create_identity(settings)
    model = model or FraudModel.load_or_train(settings.model_path())
    store = MetricsStore(settings.resolved_store_url())
    app = create_app(identity, model, store, options)
    return _uvicorn(app), bind(host, port), identity, store


def _uvicorn(app: Any) -> uvicorn.Server:
    # access_log off: the access log would print query strings (?accessKey=...) to the console.
    # log_config None: uvicorn must not reconfigure the process's logging. Inside a Prefect flow
    # run that reconfiguration flushes Prefect's API log handler under the logging lock: deadlock.
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


@dataclass
class ThreadedServer:
    """Any ASGI app served by uvicorn on a thread of this process."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_in_thread(server: uvicorn.Server, sock: socket.socket) -> ThreadedServer:
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return ThreadedServer(f"http://{shown}:{bound_port}", server, thread)


def serve_app_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> ThreadedServer:
    return serve_in_thread(_uvicorn(app), bind(host, port))


def start_in_thread(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    options: ServiceOptions | None = None,
    model: FraudModel | None = None,
) -> EmbeddedService:
    server, sock, identity, store = build_server(settings, host=host, port=port, options=options, model=model)
    running = serve_in_thread(server, sock)
    return EmbeddedService(running.url, identity, store, server, running.thread)


def _is_our_service(url: str, settings: Settings) -> bool:
    """Up, and serving this home's identity (another home's service would refuse our key)."""
    try:
        health = requests.get(f"{url}/health", timeout=1.0)
    except requests.RequestException:
        return False
    identity = read_identity(settings)
    return (
        health.ok
        and identity is not None
        and health.json().get("model_deployment_crn") == identity.deployment_crn
    )


@contextmanager
def ensure_service(settings: Settings) -> Iterator[str]:
    """Yield the base URL of a service to talk to, starting the embedded one here if none runs."""
    if settings.service_url:
        yield settings.service_url.rstrip("/")
        return
    default = f"http://127.0.0.1:{settings.port}"
    if _is_our_service(default, settings):
        yield default
        return
    service = start_in_thread(settings)
    try:
        yield service.url
    finally:
        service.stop()
