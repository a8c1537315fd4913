"""Where the monitoring flow reads prediction records from, and in which shape.

Fast path: the metrics store itself (`MetricsStore.iter_frames`: SQL filtered by deployment and
time, parsed column-wise, streamed a block at a time for `analysis.engine`), whenever it is
reachable: an explicit store URL, or the embedded default on this machine. Otherwise CML's path:
`read_metrics` over the service's HTTP routes, a page at a time, or CML's own SDK inside a
workspace (which reads all at once), converted to the same frame a block at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd

from modelvigil.client.connect import Connection, connect
from modelvigil.service.running import served_models
from modelvigil.settings import CMLEnvironment, Settings, read_identity
from modelvigil.store import MetricsStore
from modelvigil.store.record_frames import aggregates_from_cml_records, frame_from_cml_records


class NoDeployment(LookupError):
    """The deployment to monitor could not be named or found."""


STREAM_BLOCK = 20_000  # records per block when streaming: the peak memory of a monitoring run


@dataclass
class Records:
    """The range to monitor, streamed: each call of `blocks` (`reference_blocks`) reads it anew,
    a block of rows (`read_frame`'s shape) at a time, in time order."""

    blocks: Callable[[], Iterator[pd.DataFrame]]
    reference_blocks: Callable[[], Iterator[pd.DataFrame]] | None
    # Tracked aggregate records; a callable when they come with the streamed records (HTTP).
    aggregates: pd.DataFrame | Callable[[], pd.DataFrame]
    deployment_crn: str
    source: str  # "store" or "read_metrics", for the report
    count_rows: Callable[[], int] | None = None  # the range's rows, without reading it (the store)
    model_name: str | None = None  # the deployment's model, as its backend names it (None: unknown)


def _store_count(url: str, crn: str, time_range: tuple[int, int]) -> int:
    store = MetricsStore(url)
    try:
        return store.count_rows(crn, *time_range)
    finally:
        store.close()


def _store_blocks(url: str, crn: str, time_range: tuple[int, int]) -> Callable[[], Iterator[pd.DataFrame]]:
    def blocks() -> Iterator[pd.DataFrame]:
        store = MetricsStore(url)
        try:
            yield from store.iter_frames(crn, *time_range, block=STREAM_BLOCK)
        finally:
            store.close()

    return blocks


def reads_store(settings: Settings) -> bool:
    """Whether records are read from the store directly (else over HTTP, `read_metrics`)."""
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
    if not settings.names_model:
        return identity.deployment_crn
    try:
        return identity.as_model(settings.model_name).deployment_crn
    except KeyError:
        served = ", ".join(repr(n) for n in [identity.model_name, *identity.other_models])
        raise NoDeployment(
            f"no deployment given and no embedded model {settings.model_name!r} in {settings.home} "
            f"(it serves {served}): pass a deployment CRN or another model name"
        ) from None


def project_deployments(settings: Settings) -> list[tuple[str, str]]:
    """(model name, deployment CRN) of every deployment of the project: from the store when it is
    read directly (each deployment with records, named from this home's identity where it knows
    them, and each model this home's running service serves even without a record: a model
    nobody called is a row of its own, not a gap), else from API v2 (the newest deployment of
    each model, as CML lists them, whether called or not)."""
    if reads_store(settings):
        names = {}
        identity = read_identity(settings)
        if identity is not None:
            for name in [identity.model_name, *identity.other_models]:
                names[identity.as_model(name).deployment_crn] = name
        store = MetricsStore(settings.resolved_store_url())
        try:
            crns = store.live_deployments()
        finally:
            store.close()
        by_name = {name: crn for crn, name in names.items()}
        served = [by_name[m] for m in served_models(settings, same_store=True) if m in by_name]
        recorded = set(crns)
        silent = [crn for crn in served if crn not in recorded]
        return [(names.get(crn, crn.rsplit("/", 1)[-1]), crn) for crn in [*crns, *silent]]
    conn = connect(settings, discover=False)
    try:
        project = conn.project_id
        return [
            (m["name"], conn.endpoint.latest_deployment(project, m["name"]).latest_deployment_crn)
            for m in conn.endpoint.list_models(project)
        ]
    finally:
        conn.close()


def check_source(settings: Settings, deployment_crn: str | None, *, fleet: bool = False) -> None:
    """What `read_records` will read answers, and names a deployment (with `fleet`, the project's,
    whichever they are): checked in a second, before a flow starts, so that a wrong setting is one
    plain line and not a failed run."""
    if reads_store(settings):
        store = MetricsStore(settings.resolved_store_url())
        try:
            store.ping()
        finally:
            store.close()
        if not fleet:
            _embedded_deployment(settings, deployment_crn)
    else:
        connect(settings, discover=not fleet).close()


def read_records(
    settings: Settings,
    *,
    deployment_crn: str | None,
    time_range: tuple[int, int],
    reference_range: tuple[int, int] | None,
) -> Records:
    if reads_store(settings):
        crn = _embedded_deployment(settings, deployment_crn)
        url = settings.resolved_store_url()
        store = MetricsStore(url)
        try:
            aggregates = store.read_aggregates_frame(crn, *time_range)
        finally:
            store.close()
        return Records(
            _store_blocks(url, crn, time_range),
            _store_blocks(url, crn, reference_range) if reference_range else None,
            aggregates,
            crn,
            "store",
            count_rows=lambda: _store_count(url, crn, time_range),
            model_name=_home_model_name(settings, crn),
        )

    conn = connect(settings)
    try:
        crn = deployment_crn or conn.deployment.latest_deployment_crn
        name = settings.model_name if deployment_crn is None else _api_model_name(conn, crn)
    finally:
        conn.close()
    main = _ServiceRecords(settings, crn, time_range)
    reference = _ServiceRecords(settings, crn, reference_range) if reference_range else None
    return Records(
        main.blocks,
        reference.blocks if reference is not None else None,
        main.aggregates,
        crn,
        "read_metrics",
        model_name=name,
    )


def _home_model_name(settings: Settings, crn: str) -> str | None:
    """The name of the home's model whose deployment `crn` is; None when it is none of them."""
    identity = read_identity(settings)
    if identity is None:
        return None
    for name in [identity.model_name, *identity.other_models]:
        if identity.as_model(name).deployment_crn == crn:
            return name
    return None


def _api_model_name(conn: Connection, crn: str) -> str | None:
    """The model whose newest deployment is `crn`, as API v2 lists them; None when none is."""
    project = conn.project_id
    for model in conn.endpoint.list_models(project):
        try:
            if conn.endpoint.latest_deployment(project, model["name"]).latest_deployment_crn == crn:
                return str(model["name"])
        except LookupError:
            continue
    return None


class _ServiceRecords:
    """`read_metrics` over HTTP (or CML's SDK), a block of records at a time. The aggregate
    records come in the same stream: each pass collects them anew, so after the analysis's last
    (whole) pass `aggregates()` holds them all."""

    def __init__(self, settings: Settings, crn: str, time_range: tuple[int, int]) -> None:
        self.settings, self.crn, self.time_range = settings, crn, time_range
        self._aggregates: list[dict] = []

    def blocks(self) -> Iterator[pd.DataFrame]:
        self._aggregates = []
        conn = connect(self.settings)
        try:
            chunk: list[dict] = []
            for record in conn.metrics.iter_metrics(self.crn, *self.time_range):
                if not record.get("predictionUuid"):
                    self._aggregates.append(record)
                    continue
                chunk.append(record)
                if len(chunk) >= STREAM_BLOCK:
                    yield frame_from_cml_records({"metrics": chunk})
                    chunk = []
            if chunk:
                yield frame_from_cml_records({"metrics": chunk})
        finally:
            conn.close()

    def aggregates(self) -> pd.DataFrame:
        return aggregates_from_cml_records({"metrics": self._aggregates})
