"""Small helpers the tests share (not fixtures)."""

from __future__ import annotations

import socket
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
