"""How the flows are deployed, scheduled and watched on a Prefect server (kept apart from the flows)."""
