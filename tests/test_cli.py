"""The `modelvigil` command as a user runs it: separate processes, real ports."""

import concurrent.futures as cf
import json
import os
import stat
import subprocess
import sys

import requests

from modelvigil.settings import load_or_create_identity, read_identity
from tests.helpers import free_port, lab_payload, start_serve


def run_cli(*args, env, timeout=300):
    """The installed `modelvigil` command (flows/cli.py), as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "flows", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_info_shows_identity_but_not_the_api_key_unless_asked(settings, cli_env):
    env = cli_env(settings.home)
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


def test_a_broken_identity_file_or_setting_is_named_not_a_traceback(settings, cli_env):
    env = cli_env(settings.home)
    path = settings.home / "service.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"api_key": "s3cret-key-value", "access_key": "m1"}')
    out = run_cli("info", env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"{path} is not a modelvigil service identity" in out.stderr
    assert "project_id: Field required" in out.stderr and "s3cret-key-value" not in out.stderr
    path.write_text("")
    out = run_cli("serve", env=env)
    assert out.returncode == 2 and "is not a modelvigil service identity (file: Invalid JSON" in out.stderr
    out = run_cli("info", env={**env, "MODELVIGIL_PORT": "eighty"})
    assert out.returncode == 2
    assert "error: configuration: MODELVIGIL_PORT: Input should be a valid integer" in out.stderr


def test_processes_starting_at_once_agree_on_one_identity(settings):
    with cf.ThreadPoolExecutor(8) as pool:
        identities = list(pool.map(lambda _: load_or_create_identity(settings), range(16)))
    assert len({i.api_key.get_secret_value() for i in identities}) == 1
    assert identities[0] == read_identity(settings)
    assert not list(settings.home.glob(".service-*"))  # no temporary file left behind


def test_serve_refuses_no_auth_on_a_public_address(settings, cli_env):
    out = run_cli("serve", "--no-auth", "--host", "0.0.0.0", env=cli_env(settings.home))
    assert out.returncode == 2 and "refusing to serve without auth" in out.stderr


def test_serve_then_simulate_uses_the_running_service(settings, cli_env, tmp_path):
    port = free_port()
    env = cli_env(settings.home, MODELVIGIL_PORT=str(port))
    server = start_serve(env, port, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        info = json.loads(run_cli("info", "--json", "--show-api-key", env=env).stdout)
        r = requests.post(
            f"{url}/model",
            json={"accessKey": info["access_key"], "request": lab_payload(1)},
            headers={"Authorization": f"Bearer {info['api_key']}"},
            timeout=10,
        )
        assert r.status_code == 200
        sim = run_cli(
            "simulate", "--requests", "120", "--window", "40", "--out", str(tmp_path / "o"), env=env
        )
        assert sim.returncode == 0, sim.stderr
        assert "requests                         120" in sim.stdout
        assert "labels submitted                 120" in sim.stdout
        assert sim.stdout.count("accuracy, window") == 3
        crn = info["model_deployment_crn"]
        got = requests.get(
            f"{url}/metrics",
            params={"model_deployment_crn": crn},
            headers={"Authorization": f"Bearer {info['api_key']}"},
            timeout=10,
        ).json()["metrics"]
        assert sum(1 for m in got if m["predictionUuid"]) == 121  # the simulation's 120 and the call above
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert info["api_key"] not in output  # the console never shows the key


def test_demo_on_a_fresh_home_starts_the_embedded_service_itself(tmp_path, cli_env):
    # A fresh machine's run: nothing listens on the port, and Prefect's server is its own.
    env = cli_env(tmp_path / "fresh", own_prefect_server=True, MODELVIGIL_PORT=str(free_port()))
    out = run_cli("demo", "--requests", "300", env=env)
    assert out.returncode == 0, out.stderr
    assert "requests                         300" in out.stdout
    assert "labels submitted                 300" in out.stdout
    assert "prediction checks                passed" in out.stdout
    first = float(out.stdout.split("accuracy, window 0")[1].split()[0])
    assert 0.8 < first <= 1.0
    # ... then the monitoring of what it sent: a report, and no alert on undrifted traffic.
    assert "predictions analysed             300" in out.stdout
    assert "alerts                           0" in out.stdout
    assert "this service stops when the demo ends" in out.stdout and "--keep-serving" in out.stdout
    report = out.stdout.split("report                           ")[1].split()[0]
    assert report.endswith("index.html") and os.path.exists(report)
    assert (tmp_path / "fresh" / "model.joblib").exists() and (tmp_path / "fresh" / "metrics.db").exists()


def test_bad_arguments_get_a_clear_error(settings, cli_env):
    out = run_cli("simulate", "--requests", "0", env=cli_env(settings.home))
    assert out.returncode == 2 and "--requests must be >= 1" in out.stderr
    out = run_cli("simulate", "--coverage", "1.5", env=cli_env(settings.home))
    assert out.returncode == 2 and "--coverage 1.5: should be less than or equal to 1" in out.stderr
    out = run_cli("serve", "--model-threads", "0", env=cli_env(settings.home))
    assert out.returncode == 2 and "--model-threads must be >= 1" in out.stderr
    out = run_cli("simulate", "--scenario", "sideways", env=cli_env(settings.home))
    assert out.returncode == 2 and "invalid choice: 'sideways'" in out.stderr
    # --model-name gets --model's checks: one printable line of at most 200 characters.
    out = run_cli("serve", "--model-name", "evil\n\x1b[31mred" + "x" * 5_000, env=cli_env(settings.home))
    assert (
        out.returncode == 2 and "--model-name 'evil\\n\\x1b[31mred" in out.stderr and "\x1b" not in out.stderr
    )
    assert "at most 200 characters" in out.stderr and not (settings.home / "service.json").exists()


def test_monitor_an_empty_range_and_bad_times(settings, cli_env, tmp_path):
    env = cli_env(settings.home)
    assert run_cli("info", env=env).returncode == 0  # the embedded identity exists, no records yet
    out = run_cli(
        "monitor",
        "--start",
        "2020-01-01T00:00:00",
        "--end",
        "2020-01-01T01:00:00",
        "--out",
        str(tmp_path / "r"),
        env=env,
    )
    assert out.returncode == 10, out.stderr  # nothing judged: its own outcome, not a healthy 0
    assert "no prediction records in the requested range" in out.stdout
    assert out.stderr.strip().splitlines()[-1].startswith("no prediction records for")  # the last word
    assert (tmp_path / "r" / "index.html").exists() and (tmp_path / "r" / "summary.json").exists()
    bad = run_cli("monitor", "--start", "yesterday", env=env)
    assert bad.returncode == 2 and "'yesterday' is not an ISO time" in bad.stderr
    reversed_ = run_cli("monitor", "--start", "2020-01-02T00:00:00", "--end", "2020-01-01T00:00:00", env=env)
    assert reversed_.returncode == 2 and "end must be after start" in reversed_.stderr
    future = run_cli("monitor", "--start", "3000-01-01", env=env)
    assert future.returncode == 2 and "start 3000-01-01T00:00:00+00:00 is in the future" in future.stderr
    ancient = run_cli("monitor", "--end", "0001-01-01", env=env)
    assert ancient.returncode == 2 and "end 0001-01-01T00:00:00+00:00 is before 1970" in ancient.stderr
    assert "Traceback" not in future.stderr + ancient.stderr


def test_a_blank_api_key_is_refused_at_start_up(settings, cli_env):
    for blank in ("", "   "):
        env = cli_env(settings.home, MODELVIGIL_API_KEY=blank)
        for command in (("serve", "--port", str(free_port())), ("info",)):
            out = run_cli(*command, env=env, timeout=60)
            assert out.returncode == 2, (command, out.stdout, out.stderr)
            assert "MODELVIGIL_API_KEY" in out.stderr and "blank" in out.stderr
            assert len(out.stderr.strip().splitlines()) <= 2 and "Traceback" not in out.stderr


def test_a_blank_api_key_in_service_json_is_refused_too(settings, cli_env):
    identity = load_or_create_identity(settings)
    path = settings.home / "service.json"
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "api_key": "  "}))
    out = run_cli("info", env=cli_env(settings.home), timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    expected = f"{path} is not a modelvigil service identity (api_key: Value error, is set but blank"
    assert expected in out.stderr
    assert identity.access_key not in out.stderr
