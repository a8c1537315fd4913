"""Generating the simulated traffic: features and true labels, deterministic for the inputs.

Not cached: the generator makes 1M rows in about 1 s, while Prefect's result store took 3.5 s to
write that frame and 1 s to read it back (measured for benchmark B2). A rerun or a resumed
simulation regenerates exactly the same frame from the same seed instead.
"""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from modelvigil import data


@task(name="generate-traffic", cache_policy=NO_CACHE)
def generate_traffic(
    rows: int,
    seed: int,
    scenario: data.Scenario,
    onset: float,
    magnitude: float,
    shifted_features: list[str],
) -> pd.DataFrame:
    return data.generate(
        rows,
        seed=seed,
        scenario=scenario,
        onset=onset,
        magnitude=magnitude,
        shifted_features=shifted_features,
    )
