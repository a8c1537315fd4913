"""Generating the simulated traffic: features and true labels, cached by their inputs."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE

from modelvigil import data


def _generator_fingerprint() -> str:
    """Changes whenever the generator's code does: part of the cache key, so a cached frame made
    by older code is never served (TASK_SOURCE sees only this task's own source)."""
    return hashlib.sha256(Path(data.__file__).read_bytes()).hexdigest()[:16]


@task(name="generate-traffic", cache_policy=INPUTS + TASK_SOURCE, cache_expiration=timedelta(days=7))
def generate_traffic(
    rows: int,
    seed: int,
    scenario: data.Scenario,
    onset: float,
    magnitude: float,
    shifted_features: list[str],
    generator: str = _generator_fingerprint(),  # evaluated once, at import, on purpose
) -> pd.DataFrame:
    """Deterministic for its inputs, so a rerun (or a resumed simulation) reuses the cached frame."""
    return data.generate(
        rows,
        seed=seed,
        scenario=scenario,
        onset=onset,
        magnitude=magnitude,
        shifted_features=shifted_features,
    )
