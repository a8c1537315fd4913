"""Starting the embedded service as a child process, and never leaving it behind."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import requests

from modelvigil.service.embedded import InsecureBind, check_bind, ensure_service, run_in_subprocess


def refused(url):
    try:
        requests.get(f"{url}/health", timeout=1)
    except requests.ConnectionError:
        return True
    return False


def test_child_service_serves_this_homes_identity_and_stops_with_the_block(settings):
    with run_in_subprocess(settings) as url:
        health = requests.get(f"{url}/health", timeout=5).json()
        assert health["status"] == "ok"
        assert (settings.home / "service.json").exists()
    assert refused(url)


def test_a_configured_url_is_used_as_is(settings):
    configured = settings.model_copy(update={"service_url": "http://127.0.0.1:9/"})
    with ensure_service(configured) as url:
        assert url == "http://127.0.0.1:9"


def test_child_service_exits_when_its_parent_is_killed(settings, tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, time
        from modelvigil.service.embedded import run_in_subprocess
        from modelvigil.settings import Settings
        with run_in_subprocess(Settings(home={str(settings.home)!r})) as url:
            print(url, flush=True)
            time.sleep(600)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "MODELVIGIL_HOME": str(settings.home)},
    )
    url = parent.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:")
    assert requests.get(f"{url}/health", timeout=5).ok
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 20
    while not refused(url):
        assert time.monotonic() < deadline, "the child service outlived its killed parent"
        time.sleep(0.2)


def test_no_auth_only_on_loopback_unless_told():
    check_bind("127.0.0.1", auth=False, allow_insecure=False)
    check_bind("::1", auth=False, allow_insecure=False)
    check_bind("0.0.0.0", auth=True, allow_insecure=False)
    check_bind("0.0.0.0", auth=False, allow_insecure=True)
    with pytest.raises(InsecureBind, match=r"refusing to serve without auth on 0\.0\.0\.0"):
        check_bind("0.0.0.0", auth=False, allow_insecure=False)


def test_inside_a_cml_workspace_nothing_is_started(settings, monkeypatch):
    monkeypatch.setenv("CDSW_DOMAIN", "ml-abc.example.cloudera.site")
    with ensure_service(settings) as url:
        assert url is None
    assert not (settings.home / "embedded-service.log").exists()


def test_a_model_trained_on_its_first_start_is_announced_once(settings):
    from modelvigil.service.embedded import build_server

    heard: list[str] = []
    served = settings.model_copy(update={"models": [settings.model_name, "FraudCLF-new"]})
    for _ in range(2):  # the second start loads what the first trained
        _server, sock, _identity, store = build_server(served, say=heard.append)
        sock.close()
        store.close()
    assert len(heard) == 1 and heard[0].startswith("training model 'FraudCLF-new' (its first start; kept in ")
