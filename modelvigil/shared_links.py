"""Signed, expiring, read-only links to one report or one Data Docs site under the home.

A Prefect artifact is clicked in a browser, which can send no API key: the link itself carries
the permission, for that one folder and until it expires. The signature is an HMAC of the folder
and the expiry under a key kept in the home (0600), shared by whoever signs (the flows) and whoever
checks (the service of that home); the API key is never in a URL.

A link reads `/shared/<expires>.<signature>/<folder>/<file>`: the permission is a path segment, so
the relative links inside a report (its PNGs, `summary.json`) and inside Data Docs keep working.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from modelvigil.protocol import private_dir

KEY_FILE = "link-signing.key"
LINK_TTL_S = 7 * 24 * 3600  # a nightly report stays one click away for a week
PREFIX = "/shared"
# What may be shared: a monitoring report's folder (nightly, or a demo's beside its simulation),
# or a simulation's Data Docs site.
SHAREABLE = (
    re.compile(r"reports/[A-Za-z0-9_.-]{1,64}"),
    re.compile(r"runs/[A-Za-z0-9_.-]{1,64}/(report|data_docs)"),
)


class LinkRefused(Exception):
    """Why a shared link opens nothing (bad signature, expired, not a shareable folder)."""


class WeakSigningKey(Exception):
    """The home's key file is blank or too short to sign with: a blank secret is no secret."""


KEY_BYTES = 32


def signing_key(home: Path) -> bytes:
    """The home's link-signing key, made on first use (by the service or a flow, whichever is first)."""
    path = home / KEY_FILE
    try:
        return _strong(path.read_bytes(), path)
    except FileNotFoundError:
        pass
    private_dir(home)
    staged = home / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(staged, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_bytes(KEY_BYTES))
    try:
        os.link(staged, path)  # atomic and never replaces: two first users agree on one key
    except FileExistsError:
        pass
    finally:
        staged.unlink()
    return _strong(path.read_bytes(), path)


def _strong(key: bytes, path: Path) -> bytes:
    # 32 random bytes hold about 30 different values; blanks, NULs or one repeated letter do not.
    if len(key) < KEY_BYTES or len(set(key)) < KEY_BYTES // 2:
        raise WeakSigningKey(f"{path} is blank or too simple to be a key: delete it, and a new one is made")
    return key


def shareable_folder(home: Path, folder: Path) -> str | None:
    """`folder` relative to the home, if it is a folder that may be shared; else None."""
    try:
        relative = folder.resolve().relative_to(home.resolve()).as_posix()
    except ValueError:
        return None
    return relative if any(p.fullmatch(relative) for p in SHAREABLE) else None


def _signature(key: bytes, folder: str, expires: int) -> str:
    digest = hmac.new(key, f"{folder}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def signed_path(key: bytes, folder: str, file: str = "index.html", ttl_s: int = LINK_TTL_S) -> str:
    """The path (no host) of a link to `file` in `folder` (as `shareable_folder` gives it)."""
    expires = int(time.time()) + ttl_s
    return f"{PREFIX}/{expires}.{_signature(key, folder, expires)}/{folder}/{file}"


@dataclass(frozen=True)
class SharedFile:
    folder: str  # relative to the home
    file: str  # relative to the folder; "" for the folder's index


# One spelling per link: ASCII digits without leading zeros, the signature as `_signature` writes it.
_TOKEN = re.compile(r"([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{32})")
MAX_PATH = 1_024


def check(key: bytes, token: str, rest: str, now: float | None = None) -> SharedFile:
    """The file a shared link names, once its signature and expiry hold; else `LinkRefused`."""
    spelled = _TOKEN.fullmatch(token)
    if spelled is None:
        raise LinkRefused("this is not a modelvigil shared link")
    expires_text, signature = spelled.groups()
    if len(rest) > MAX_PATH or "\x00" in rest:
        raise LinkRefused("this link names nothing that can be shared")
    parts = PurePosixPath(rest).parts
    if ".." in parts:
        raise LinkRefused("a shared link cannot leave its folder")
    for size in (2, 3):  # reports/<name>, runs/<id>/<report or data_docs>
        folder = "/".join(parts[:size])
        if any(p.fullmatch(folder) for p in SHAREABLE):
            break
    else:
        raise LinkRefused("this link names nothing that can be shared")
    if not hmac.compare_digest(signature, _signature(key, folder, int(expires_text))):
        raise LinkRefused("this link's signature does not hold (another home's, or altered)")
    if int(expires_text) < (time.time() if now is None else now):
        raise LinkRefused("this link has expired: open the report again from its Prefect run")
    return SharedFile(folder, "/".join(parts[size:]))


def shared_url(base_url: str, home: Path, folder: Path, file: str = "index.html") -> str | None:
    """A signed link to `file` in `folder` on the service at `base_url`; None when the folder is
    not one that can be shared (outside the home's reports and runs)."""
    relative = shareable_folder(home, folder)
    if relative is None:
        return None
    try:
        key = signing_key(home)
    except WeakSigningKey:
        return None  # the service refuses such a key too: a link would open nothing
    return base_url.rstrip("/") + signed_path(key, relative, file)
