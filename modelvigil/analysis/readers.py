"""Where the monitoring flow reads prediction records from, and in which shape.

Fast path: the metrics store itself (`MetricsStore.read_frame`: SQL filtered by deployment and
time, parsed column-wise), whenever it is reachable: an explicit store URL, or the embedded
default on this machine. Otherwise CML's path: `read_metrics` over the service's HTTP routes, or
CML's own SDK inside a workspace, converted to the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from modelvigil.client.connect import connect
from modelvigil.settings import CMLEnvironment, Settings, read_identity
from modelvigil.store import MetricsStore
from modelvigil.store.record_frames import aggregates_from_cml_records, frame_from_cml_records


class NoDeployment(LookupError):
    """The deployment to monitor could not be named or found."""


@dataclass
class Records:
    frame: pd.DataFrame  # one row per scored row (read_frame's shape)
    aggregates: pd.DataFrame
    reference: pd.DataFrame | None
    deployment_crn: str
    source: str  # "store" or "read_metrics", for the report


def _reads_store(settings: Settings) -> bool:
    return settings.store_url is not None or (
        settings.service_url is None and CMLEnvironment.from_env() is None
    )


def _embedded_deployment(settings: Settings, deployment_crn: str | None) -> str:
    if deployment_crn is not None:
        return deployment_crn
    identity = read_identity(settings)
    if identity is None:
        raise NoDeployment(
            f"no deployment given, and no embedded service was ever set up in {settings.home}: "
            "run `./run demo` or `./run serve` first, or pass --deployment CRN"
        )
    if settings.names_model and identity.model_name != settings.model_name:
        raise NoDeployment(
            f"no deployment given and no embedded model {settings.model_name!r} in {settings.home} "
            f"(it serves {identity.model_name!r}): pass a deployment CRN or another model name"
        )
    return identity.deployment_crn


def check_source(settings: Settings, deployment_crn: str | None) -> None:
    """What `read_records` will read answers, and names a deployment: checked in a second, before
    a flow starts, so that a wrong setting is one plain line and not a failed run."""
    if _reads_store(settings):
        store = MetricsStore(settings.resolved_store_url())
        try:
            store.ping()
        finally:
            store.close()
        _embedded_deployment(settings, deployment_crn)
    else:
        connect(settings).close()


def read_records(
    settings: Settings,
    *,
    deployment_crn: str | None,
    time_range: tuple[int, int],
    reference_range: tuple[int, int] | None,
) -> Records:
    if _reads_store(settings):
        crn = _embedded_deployment(settings, deployment_crn)
        store = MetricsStore(settings.resolved_store_url())
        try:
            frame = store.read_frame(crn, *time_range)
            aggregates = store.read_aggregates_frame(crn, *time_range)
            reference = store.read_frame(crn, *reference_range) if reference_range else None
        finally:
            store.close()
        return Records(frame, aggregates, reference, crn, "store")

    conn = connect(settings)
    try:
        crn = deployment_crn or conn.deployment.latest_deployment_crn
        result = conn.metrics.read_metrics(crn, *time_range)
        reference = (
            frame_from_cml_records(conn.metrics.read_metrics(crn, *reference_range))
            if reference_range
            else None
        )
    finally:
        conn.close()
    return Records(
        frame_from_cml_records(result), aggregates_from_cml_records(result), reference, crn, "read_metrics"
    )
