"""`import cdsw` in a `modelvigil session`: modelvigil's facade, which speaks to the local service."""

from modelvigil.cdsw import (  # noqa: F401
    call_model,
    read_metrics,
    track_aggregate_metrics,
    track_delayed_metrics,
    track_metric,
)
