"""`GET /shared/<expires>.<signature>/<folder>/<file>`: reports and Data Docs of this service's home,
opened from a signed link (see `modelvigil.shared_links`), read-only, no API key.

A refused link answers a short page that says why (a person clicked it), never the file list of
the home; a path that leaves its folder (`..`, a symlink out) is refused like a bad signature.
"""

from __future__ import annotations

import html
import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from modelvigil.shared_links import PREFIX, LinkRefused, check

# Reports carry no script; Data Docs are Great Expectations' own pages (their styles and scripts
# come from a CDN), so they get only what keeps them unframed and the link out of any Referer.
REPORT_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",  # nothing outlives the link in a cache
}
# Data Docs run scripts (GX's, from a CDN) on this service's origin, where the live page keeps
# the API key in session storage: sandboxed, they run in an origin of their own and cannot read it.
DATA_DOCS_HEADERS = {
    "Content-Security-Policy": "sandbox allow-scripts allow-popups; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}

router = APIRouter()


def _refused(status: int, why: str) -> HTMLResponse:
    page = (
        "<!doctype html><meta charset='utf-8'><title>modelvigil: link refused</title>"
        f"<p style='font-family:system-ui,sans-serif'>{html.escape(why)}</p>"
    )
    return HTMLResponse(page, status, headers={**REPORT_HEADERS, "Cache-Control": "no-store"})


def _resolve(home: Path, folder: str, file: str) -> Path | None:
    """The regular file `file` names in `folder`, or None. The folder must be the folder itself
    (no symlink on its way from the home), and the file, once every symlink is followed (an
    `index.html` one included), must lie inside it."""
    try:
        root = (home / folder).resolve()
        if root != home.resolve() / folder:
            return None
        target = (root / file).resolve() if file else root
        if target.is_dir():
            target = (target / "index.html").resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return None
    except (OSError, ValueError):  # a name too long for the file system, and the like
        return None
    return target


@router.api_route(PREFIX + "/{token}/{rest:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def shared(token: str, rest: str, request: Request) -> Response:
    service = request.app.state.service
    home, key = service.home, service.link_key
    if home is None or key is None:
        return _refused(
            404,
            "this service opens no shared links: it has no home, or the home's link-signing key is "
            "blank (delete link-signing.key in the home and restart the service)",
        )
    try:
        wanted = check(key, token, rest)
    except LinkRefused as exc:
        return _refused(403, str(exc))
    path = await run_in_threadpool(_resolve, home, wanted.folder, wanted.file)
    if path is None:
        return _refused(404, f"no such file in {wanted.folder} (the report may have been deleted)")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = DATA_DOCS_HEADERS if wanted.folder.endswith("/data_docs") else REPORT_HEADERS
    return FileResponse(path, media_type=media_type, headers=headers)
