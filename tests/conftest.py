"""Shared fixtures: an isolated home, a trained model, SQLite and the machine's real Postgres."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import flows  # noqa: F401  (Prefect's environment defaults, before anything starts Prefect)
from modelvigil.model import FraudModel
from modelvigil.service.options import ServiceOptions
from modelvigil.settings import Settings
from modelvigil.store import MetricsStore
from modelvigil.testing import EmbeddedService, start_in_thread
from tests.helpers import child_env

PG_ADMIN_URL = os.environ.get("MODELVIGIL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[FraudModel, Path]:
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    model = FraudModel.train()
    model.save(path)
    return model, path


@pytest.fixture
def settings(
    tmp_path: Path, trained_model: tuple[FraudModel, Path], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """A fresh home per test, with the session's model copied in (training once is enough)."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(trained_model[1], home / "model.joblib")
    for name in list(os.environ):
        if name.startswith(("MODELVIGIL_", "CDSW_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODELVIGIL_HOME", str(home))
    return Settings(home=home)


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    """A throwaway schema in the machine's Postgres. Unreachable Postgres fails the run, never skips."""
    schema = f"mv_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required by the store tests and is unreachable: {exc}")
    sep = "&" if "?" in PG_ADMIN_URL else "?"
    yield f"{PG_ADMIN_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def _reset_pg(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS mv_metric_records, mv_delayed_metrics CASCADE"))
    engine.dispose()


@pytest.fixture
def store_url_pg(pg_schema_url: str) -> str:
    _reset_pg(pg_schema_url)
    return pg_schema_url


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metrics.db'}"
    url = request.getfixturevalue("pg_schema_url")
    _reset_pg(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[MetricsStore]:
    s = MetricsStore(store_url)
    yield s
    s.close()


@pytest.fixture
def service(settings: Settings, trained_model: tuple[FraudModel, Path]) -> Iterator[EmbeddedService]:
    """The embedded service on a free loopback port, SQLite store in the test's home."""
    svc = start_in_thread(settings, model=trained_model[0])
    yield svc
    svc.stop()


@pytest.fixture
def make_service(settings: Settings, trained_model: tuple[FraudModel, Path]) -> Iterator[callable]:  # type: ignore[valid-type]
    started: list[EmbeddedService] = []

    def make(options: ServiceOptions | None = None, store_url: str | None = None) -> EmbeddedService:
        s = settings.model_copy(update={"store_url": store_url}) if store_url else settings
        svc = start_in_thread(s, options=options, model=trained_model[0])
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.stop()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server for the whole session (~7 s to start): flows run against it."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(scope="session")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PREFECT_HOME shared by the CLI's subprocesses, so each ephemeral server starts warm."""
    return tmp_path_factory.mktemp("prefect-home")


@pytest.fixture
def cli_env(prefect_home, prefect_harness):
    """The environment of a `modelvigil` command run as a subprocess, on `home`: its flows on the
    session's Prefect server (`helpers.child_env`), or with `own_prefect_server=True` on a temporary
    one of its own, the fresh machine's path, for the tests about that path."""

    def make(home, *, own_prefect_server: bool = False, **extra):
        env = child_env(session_prefect=not own_prefect_server, drop=("MODELVIGIL_", "CDSW_", "PREFECT_API"))
        env["MODELVIGIL_HOME"] = str(home)
        env["PREFECT_HOME"] = str(prefect_home)
        env.update(extra)
        return env

    return make


@pytest.fixture
def forget_cml_sdk() -> Iterator[None]:
    """For tests that put a stand-in for CML's SDK on the path: no later test may find it imported."""
    yield
    for name in [m for m in sys.modules if m in ("cdsw", "cml") or m.startswith("cml.")]:
        del sys.modules[name]


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("MODELVIGIL_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))
# As the machine's own probe starts it: no sandbox as root, nothing fetched from the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser_page():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is needed for the browser test and is not installed: "
            "`./run tests` installs it when run as root (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        yield page
        browser.close()
