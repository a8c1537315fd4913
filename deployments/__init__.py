"""How the flows are deployed, scheduled and watched on a Prefect server (kept apart from the flows)."""

import flows  # noqa: F401  (Prefect's environment defaults, before anything starts Prefect)
