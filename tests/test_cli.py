"""The `modelvigil` command as a user runs it: separate processes, real ports."""

import json
import os
import socket
import stat
import subprocess
import sys
import time

import requests

from tests.helpers import lab_payload


def run_cli(*args, env, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "modelvigil", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def cli_env(settings, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELVIGIL_", "CDSW_"))}
    env["MODELVIGIL_HOME"] = str(settings.home)
    env.update(extra)
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_info_shows_identity_but_not_the_api_key_unless_asked(settings):
    env = cli_env(settings)
    out = run_cli("info", "--json", env=env)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert set(info) >= {
        "service_url",
        "model_name",
        "access_key",
        "model_crn",
        "model_build_crn",
        "model_deployment_crn",
    }
    assert "api_key" not in info
    stored = json.loads((settings.home / "service.json").read_text())
    assert stored["api_key"] not in out.stdout
    assert stat.S_IMODE((settings.home / "service.json").stat().st_mode) == 0o600
    shown = json.loads(run_cli("info", "--json", "--show-api-key", env=env).stdout)
    assert shown["api_key"] == stored["api_key"] and shown["access_key"] == info["access_key"]


def test_serve_refuses_no_auth_on_a_public_address(settings):
    out = run_cli("serve", "--no-auth", "--host", "0.0.0.0", env=cli_env(settings))
    assert out.returncode == 2 and "refusing to serve without auth" in out.stderr


def test_serve_then_demo_uses_the_running_service(settings):
    port = free_port()
    env = cli_env(settings, MODELVIGIL_PORT=str(port))
    server = subprocess.Popen(
        [sys.executable, "-m", "modelvigil", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "serve did not come up"
            time.sleep(0.2)
        info = json.loads(run_cli("info", "--json", "--show-api-key", env=env).stdout)
        r = requests.post(
            f"{url}/model",
            json={"accessKey": info["access_key"], "request": lab_payload(1)},
            headers={"Authorization": f"Bearer {info['api_key']}"},
            timeout=10,
        )
        assert r.status_code == 200
        demo = run_cli("demo", "--requests", "120", "--window", "40", env=env)
        assert demo.returncode == 0, demo.stderr
        assert f"model service: {url}" in demo.stdout
        assert "prediction records       120" in demo.stdout
        assert "with ground truth        120" in demo.stdout
        assert len(demo.stdout.split("accuracy per window")[1].split(",")) == 3
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert info["api_key"] not in output  # the console never shows the key


def test_demo_on_a_fresh_home_starts_the_embedded_service_itself(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELVIGIL_", "CDSW_"))}
    env["MODELVIGIL_HOME"] = str(tmp_path / "fresh")
    env["MODELVIGIL_PORT"] = str(free_port())  # nothing listens there
    out = run_cli("demo", env=env)
    assert out.returncode == 0, out.stderr
    assert "prediction records       300" in out.stdout and "with ground truth        300" in out.stdout
    accuracy = float(out.stdout.split("accuracy                 ")[1].split()[0])
    assert 0.8 < accuracy <= 1.0
    assert (tmp_path / "fresh" / "model.joblib").exists() and (tmp_path / "fresh" / "metrics.db").exists()


def test_bad_arguments_get_a_clear_error(settings):
    out = run_cli("demo", "--requests", "0", env=cli_env(settings))
    assert out.returncode == 2 and "--requests must be >= 1" in out.stderr
