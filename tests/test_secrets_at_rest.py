"""Secrets where they rest and where they are shown: the home and the store are the owner's alone,
and a password in a URL is masked wherever the CLI or the flows show it."""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from modelvigil.protocol import masked
from modelvigil.settings import Settings, load_or_create_identity
from modelvigil.store import MetricsStore, PredictionRecord


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://mv:hunter2@db.example:5432/metrics",
            "postgresql+psycopg://mv:***@db.example:5432/metrics",
        ),
        ("https://user:pa%3Ass@svc.example/base?x=1", "https://user:***@svc.example/base?x=1"),
        ("postgresql://:only-password@[::1]/m", "postgresql://:***@[::1]/m"),
        ("sqlite:////home/u/.modelvigil/metrics.db", "sqlite:////home/u/.modelvigil/metrics.db"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("postgresql://mv@db/m", "postgresql://mv@db/m"),
        (
            "postgresql://mv@db/m?password=hunter2&sslmode=require",
            "postgresql://mv@db/m?password=***&sslmode=require",
        ),
        ("http://h/model?accessKey=abc123#top", "http://h/model?accessKey=***#top"),
        ("postgresql://mv:pw@db/m?PASSWORD=x&keep=1", "postgresql://mv:***@db/m?PASSWORD=***&keep=1"),
        ("http://h/p?password", "http://h/p?password"),  # a flag without a value holds nothing
    ],
)
def test_a_password_in_a_url_is_masked(url, shown):
    assert masked(url) == shown


def test_a_new_home_and_its_store_are_the_owners_alone(tmp_path):
    home = tmp_path / "fresh" / "home"
    load_or_create_identity(Settings(home=home))
    assert _mode(home) == 0o700 and _mode(home / "service.json") == 0o600
    store = MetricsStore(f"sqlite:///{tmp_path / 'other' / 'metrics.db'}")
    try:
        store.record_prediction(PredictionRecord("m", "b", "d", "u1", 1, 2, {"prediction": [0]}))
        files = sorted((tmp_path / "other").iterdir())
        assert [f.name for f in files] == ["metrics.db", "metrics.db-shm", "metrics.db-wal"]
        assert all(_mode(f) == 0o600 for f in files), {f.name: oct(_mode(f)) for f in files}
        assert _mode(tmp_path / "other") == 0o700
    finally:
        store.close()


def test_an_existing_store_file_is_made_private(tmp_path):
    path = tmp_path / "metrics.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    MetricsStore(f"sqlite:///{path}").close()
    assert _mode(path) == 0o600


def test_info_never_prints_a_password(settings, cli_env):
    env = cli_env(settings.home, MODELVIGIL_STORE_URL="postgresql+psycopg://mv:hunter2@127.0.0.1:5432/test")
    out = subprocess.run(
        [sys.executable, "-m", "flows", "info", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "hunter2" not in out.stdout + out.stderr
    assert json.loads(out.stdout)["store_url"] == "postgresql+psycopg://mv:***@127.0.0.1:5432/test"
