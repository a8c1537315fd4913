"""For tests and benchmarks only, never on the product's path: the service on a thread of this
process, any ASGI app served likewise, and a TCP relay that cuts a database for real.

The product runs the service as its own process (`serve`, or `embedded.run_in_subprocess`):
client and service in one process share one GIL (measured 233 requests/s against 466 apart).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn

from modelvigil.service.embedded import bind, build_server, uvicorn_server
from modelvigil.settings import ServiceIdentity, Settings
from modelvigil.store import MetricsStore


@dataclass
class ThreadedServer:
    """Any ASGI app served by uvicorn on a thread of this process."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class EmbeddedService(ThreadedServer):
    """The embedded model service on a thread of this process (tests; the demo uses a child process)."""

    identity: ServiceIdentity
    store: MetricsStore

    def stop(self) -> None:
        super().stop()
        self.store.close()


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
    return serve_in_thread(uvicorn_server(app), bind(host, port))


def start_in_thread(settings: Settings, **server_options: Any) -> EmbeddedService:
    """The embedded service on a thread; `server_options` as `embedded.build_server` takes them."""
    server, sock, identity, store = build_server(settings, **server_options)
    running = serve_in_thread(server, sock)
    return EmbeddedService(running.url, server, running.thread, identity, store)


class TcpProxy:
    """Relays 127.0.0.1:<port> to an upstream address; `cut()` makes the upstream unreachable."""

    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self._listener = socket.create_server((host, 0))
        self.port = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._down = threading.Event()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="tcp-proxy").start()

    def cut(self) -> None:
        self._down.set()
        with self._lock:
            for sock in list(self._open):
                _close(sock)
            self._open.clear()

    def restore(self) -> None:
        self._down.clear()

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down.is_set():
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                _close(sock)
                with self._lock:
                    self._open.discard(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
