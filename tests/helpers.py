"""Small helpers the tests share (not fixtures)."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

from modelvigil.data import FEATURES, generate


def lab_payload(rows: int = 1, seed: int = 0) -> dict[str, Any]:
    """The lab's request: a 15-column `dataframe_split`."""
    frame = generate(rows, seed=seed)
    return {"dataframe_split": {"columns": FEATURES, "data": frame[FEATURES].values.tolist()}}


def auth(svc: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {svc.identity.api_key.get_secret_value()}"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(env: dict[str, str], port: int, **popen: Any) -> subprocess.Popen:
    """`modelvigil serve` on `port` in a child process, returned once it answers /health."""
    from modelvigil.service.embedded import wait_for_health

    server = subprocess.Popen(
        [sys.executable, "-m", "modelvigil", "serve", "--port", str(port)], env=env, **popen
    )
    if not wait_for_health(f"http://127.0.0.1:{port}/health", 120, server):
        server.kill()
        raise AssertionError("modelvigil serve did not come up")
    return server
