"""`cml.metrics_v1` in a `modelvigil session`: the metrics calls of modelvigil's facade."""

from modelvigil.cdsw import (  # noqa: F401
    read_metrics,
    track_aggregate_metrics,
    track_delayed_metrics,
    track_metric,
)
