"""What a route needs from the running service, read from `request.app.state` (set by `create_app`).

The API key is not among them: `auth.BearerFirst` checks it before any route reads a body.

Each is an `Annotated[..., Depends(...)]` alias, so a route says `store: Store` and nothing more.
Every dependency is `async`: a plain def would cost a thread-pool hop on every call (measured ~10%
of the service's CPU per single-row call).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Header, Request

from modelvigil.service.options import ServiceOptions
from modelvigil.service.parse_pool import ParsePool
from modelvigil.service.scoring import BatchScorer
from modelvigil.service.telemetry import RequestTelemetry
from modelvigil.settings import ServiceIdentity
from modelvigil.store import MetricsStore


@dataclass(frozen=True)
class ServedModel:
    """One model the service hosts: its names and keys, and the thread that scores its calls."""

    identity: ServiceIdentity
    scorer: BatchScorer


@dataclass(frozen=True)
class ServiceState:
    """Everything one running service shares between its routes (`app.state.service`)."""

    models: tuple[ServedModel, ...]  # the first is the default (a call or a read naming none)
    store: MetricsStore
    options: ServiceOptions
    telemetry: RequestTelemetry
    replicas: asyncio.Semaphore  # requests in flight, as CML's replicas bound them
    expected_token: bytes
    parse_pool: ParsePool | None = None  # big bodies parsed in other processes; None: in threads
    home: Path | None = None  # whose reports and Data Docs `/shared` links open; None: none
    link_key: bytes | None = None  # the home's link-signing key

    @property
    def identity(self) -> ServiceIdentity:
        """The default model's identity (the project's, for what all models share)."""
        return self.models[0].identity

    @cached_property
    def by_access_key(self) -> dict[str, ServedModel]:
        return {m.identity.access_key: m for m in self.models}

    @cached_property
    def served_keys(self) -> tuple[str, ...]:
        return tuple(self.by_access_key)

    def model_of(self, deployment_crn: str | None) -> ServedModel | None:
        """The model deployed as `deployment_crn` (None: the default), or None when none is."""
        if deployment_crn is None:
            return self.models[0]
        return next((m for m in self.models if m.identity.deployment_crn == deployment_crn), None)


async def _service(request: Request) -> ServiceState:
    return request.app.state.service


async def _store(request: Request) -> MetricsStore:
    return request.app.state.service.store


async def _identity(request: Request) -> ServiceIdentity:
    return request.app.state.service.identity


async def _options(request: Request) -> ServiceOptions:
    return request.app.state.service.options


# /model takes the whole state in one dependency: each dependency costs on the hottest route.
Service = Annotated[ServiceState, Depends(_service)]
Store = Annotated[MetricsStore, Depends(_store)]
Identity = Annotated[ServiceIdentity, Depends(_identity)]
Options = Annotated[ServiceOptions, Depends(_options)]


# Text a database column can hold: Postgres refuses a NUL in text, so it is a 422 here, never a 500.
NO_NUL = r"^[^\x00]*$"

MAX_IDEMPOTENCY_KEY = 200
IDEMPOTENCY_KEY_DOC = "Makes a retry safe: a repeated key stores nothing new, answers as the first call did."

# An empty key would be a key everybody shares (header values arrive with their blanks stripped).
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", min_length=1, max_length=MAX_IDEMPOTENCY_KEY, description=IDEMPOTENCY_KEY_DOC
    ),
]
