"""Small helpers the tests share (not fixtures)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from modelvigil.data import FEATURES, generate


def child_env(
    *, session_prefect: bool = True, drop: tuple[str, ...] = ("MODELVIGIL_", "PREFECT_API")
) -> dict[str, str]:
    """This process's environment for a child process, without the variables starting with `drop`.

    With `session_prefect`, the child's flows go to this test session's Prefect server (when one
    runs), as a user's do with `PREFECT_API_URL` set: each child would otherwise start a temporary
    server of its own, ~12 s of every such test here."""
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    if session_prefect and PREFECT_API_URL.value():
        env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    return env


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


@contextlib.contextmanager
def serving(home: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """`modelvigil serve ARGS` in a child process on a free port: its URL and pid, while it runs."""
    port = free_port()
    env = {**(env or os.environ), "MODELVIGIL_HOME": str(home)}
    child = subprocess.Popen(
        [sys.executable, "-m", "modelvigil", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{url}/health", timeout=5).ok:
                    break
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`modelvigil serve {' '.join(args)}` did not start")
            time.sleep(0.2)
        yield url, child.pid
    finally:
        child.kill()
        child.wait()


def record_frame(prediction: Any, label: Any, start_ms: int = 1_700_000_000_000, **features: Any) -> Any:
    """Records in `read_frame`'s shape, one call per row a second apart: `prediction`, the
    `final_label` ground truth, and `input_data.<name>` per feature."""
    import numpy as np
    import pandas as pd

    n = len(prediction)
    frame = pd.DataFrame(
        {
            "prediction_uuid": [f"u{i}" for i in range(n)],
            "row": 0,
            "start_ms": start_ms + np.arange(n) * 1_000,
            "end_ms": start_ms + np.arange(n) * 1_000 + 3,
            "prediction": prediction,
            "final_label": label,
        }
    )
    for name, values in features.items():
        frame[f"input_data.{name}"] = values
    return frame
