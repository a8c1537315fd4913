"""Generating the simulated traffic: features and true labels, cached by their inputs."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from modelvigil.data import Scenario, generate


@task(name="generate-traffic", cache_policy=INPUTS + TASK_SOURCE, cache_expiration=timedelta(days=7))
def generate_traffic(
    rows: int, seed: int, scenario: Scenario, onset: float, magnitude: float, shifted_features: list[str]
) -> pd.DataFrame:
    """Deterministic for its inputs, so a rerun (or a resumed simulation) reuses the cached frame."""
    return generate(
        rows,
        seed=seed,
        scenario=scenario,
        onset=onset,
        magnitude=magnitude,
        shifted_features=shifted_features,
    )
