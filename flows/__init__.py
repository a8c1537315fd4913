"""Prefect flows that compose the tasks; each flow file also runs on its own.

Importing this package sets Prefect's environment defaults, the one place they are set: quiet,
reliable first starts of an ephemeral server (no analytics, whose start-up write raced ours, and
90 s instead of 20 s to start on a cold machine). Anything already set in the environment wins.
"""

import os

PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}
for _name, _value in PREFECT_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
