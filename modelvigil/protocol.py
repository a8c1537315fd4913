"""What every side agrees on: the service, the store, the client and the analysis.

Kept apart so that no side imports another for a constant: the key ground truth travels under,
the clock records are stamped with, the largest timestamp a store column holds, the 5-second
bucket the live counters share, the shape of the CRNs the embedded service invents, and how the
home's secrets are kept (private folders and files, passwords masked wherever a URL is shown).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

LABEL_KEY = "final_label"  # the delayed metric holding ground truth, as the CML lab names it
MAX_MS = 2**63 - 1  # timestamps are BIGINT: routes refuse a larger one (422) instead of the store failing
BUCKET_MS = 5_000  # the live counters' bucket: the store's and the service's share one time axis
CRN_PATTERN = r"^crn:[A-Za-z0-9:_./-]+$"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def bucket_of(ms: int) -> int:
    return ms - ms % BUCKET_MS


def local_crn(account: str, workspace: str, resource_id: str) -> str:
    """A CRN in CML's shape for a resource of the embedded service (`local` where CML has a region)."""
    return f"crn:cdp:ml:local:{account}:workspace:{workspace}/{resource_id}"


SECRET_PARAMETERS = {"password", "passwd", "pwd", "sslpassword", "accesskey", "access_key", "api_key",
                     "apikey", "token", "secret"}  # fmt: skip


def masked(url: str) -> str:
    """The URL as it may be shown or logged: a password in it, and the value of a query parameter
    that holds a secret (`?password=`, `?accessKey=`, ...), become `***`."""
    parts = urlsplit(url)
    fields = [f.partition("=") for f in parts.query.split("&")] if parts.query else []
    query = "&".join(
        f"{k}{eq}***" if eq and k.lower() in SECRET_PARAMETERS else f"{k}{eq}{v}" for k, eq, v in fields
    )
    if query != parts.query:
        # Only the query is replaced: urlunsplit would rewrite "sqlite:///x" as "sqlite:/x".
        url = url[: url.index("?") + 1] + query + (f"#{parts.fragment}" if parts.fragment else "")
        parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def private_dir(path: Path) -> Path:
    """`path` as a folder only its owner can enter (0700) when this call creates it; an existing
    folder keeps the mode its owner gave it."""
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)  # mkdir's mode is cut by the umask; the folder is ours to set
    return path


def private_file(path: Path) -> Path:
    """`path` created empty if missing, and readable and writable by its owner only (0600)."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
    return path
