"""`modelvigil session SCRIPT [ARGS...]`: run a script as if inside a CML session, against the
embedded default (started if none runs) or the service in MODELVIGIL_SERVICE_URL.

The script gets what a CML session gives it: the session's environment (`CDSW_PROJECT_ID`,
`CDSW_DOMAIN`, `CDSW_API_URL`, `CDSW_APIV2_KEY`, `PROJECT_OWNER` unless set) and the modules CML
provides (`cdsw`, `cml.utils_v1`, `cml.metrics_v1`, `cmlapi`), from `site/`, on that script's path
only: nothing is installed under CML's names, so inside CML the real ones still win.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from modelvigil.client.connect import connect
from modelvigil.settings import Settings, read_identity

SITE = Path(__file__).parent / "site"


def session_env(url: str, project_id: str, api_key: str | None) -> dict[str, str]:
    """The environment of a CML session whose workspace is the modelvigil service at `url`."""
    env = dict(os.environ)
    host = urlsplit(url).netloc
    env.update(
        {
            "MODELVIGIL_SERVICE_URL": url,
            "CDSW_DOMAIN": host,
            # Plain http: how the client tells this stand-in from a real (always https) workspace.
            "CDSW_API_URL": f"{url}/api/v1",
            "CDSW_PROJECT_ID": project_id,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SITE), env.get("PYTHONPATH")])),
        }
    )
    if api_key:
        env["CDSW_APIV2_KEY"] = api_key
    env.setdefault("PROJECT_OWNER", getpass.getuser())
    return env


def run_script(settings: Settings, url: str, script: Path, args: list[str]) -> int:
    """Run `script` with `args` in a session against `url` (from the current folder, as CML runs
    a session's scripts from the project's); the script's exit code."""
    conn = connect(settings, url, discover=False)
    conn.close()
    identity = read_identity(settings)
    api_key = settings.api_key or (identity.api_key if identity else None)
    env = session_env(url, conn.project_id, api_key.get_secret_value() if api_key else None)
    return subprocess.call([sys.executable, str(script), *args], env=env)
