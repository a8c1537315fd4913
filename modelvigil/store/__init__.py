"""The Model Metrics Store: prediction, delayed and aggregate records in SQLite or Postgres.

The store side of the house: it imports none of the service, the client or the analysis.
"""

from modelvigil.store.errors import (
    IdempotencyConflict,
    LimitExceeded,
    StoreError,
    StoreUnavailable,
    UnknownPredictions,
)
from modelvigil.store.metrics_store import MetricsStore, PredictionRecord, StoredPrediction

__all__ = [
    "IdempotencyConflict",
    "LimitExceeded",
    "MetricsStore",
    "PredictionRecord",
    "StoreError",
    "StoreUnavailable",
    "StoredPrediction",
    "UnknownPredictions",
]
