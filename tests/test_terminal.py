"""What a user sees at the terminal when something they can fix goes wrong: at most three plain
lines and an exit code per kind (the traceback only with --debug), found before Prefect starts;
and the demo's live page, which lives as long as the user was told it would."""

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from modelvigil.analysis.readers import project_deployments
from modelvigil.settings import read_identity
from tests.helpers import free_port, serving


def run_cli(*args, env, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "flows", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    ("args", "extra_env", "code", "says"),
    [
        (["simulate", "--requests", "10"], {"MODELVIGIL_SERVICE_URL": "http://127.0.0.1:1"}, 4, "answers at"),
        (
            ["monitor", "--service-url", "http://127.0.0.1:1"],
            {},
            4,
            "--service-url or MODELVIGIL_SERVICE_URL",
        ),
        (["serve", "--port", "99999"], {}, 2, "99999 is not a port"),
        (["serve", "--latency-ms", "-5"], {}, 2, "--latency-ms must be between 0 and 60000"),
        (["info"], {"MODELVIGIL_PORT": "99999"}, 2, "MODELVIGIL_PORT"),
        (["monitor", "--store-url", "postgresql+psycopg://x@127.0.0.1:1/none"], {}, 6, "store unreachable"),
        (["monitor", "--store-url", "mysql://x@127.0.0.1/none"], {}, 2, "unsupported store dialect"),
        (["monitor"], {}, 5, "no embedded service was ever set up"),
        (["monitor", "--start", "yesterday"], {}, 2, "not an ISO time"),
        (["session", "no/such/script.py"], {}, 2, "no script at"),
        (["simulate", "--bogus"], {}, 2, "unrecognized arguments: --bogus"),
        (["simulate", "--dask-address", "tcp://127.0.0.1:9"], {}, 2, "needs --task-runner dask"),
        (
            ["monitor", "--task-runner", "dask", "--dask-address", "127.0.0.1:9"],
            {},
            2,
            "must be tcp://HOST:PORT",
        ),
        (["demo", "--task-runner", "dask", "--dask-address", "tcp://127.0.0.1:9"], {}, 9, "no Dask sched"),
    ],
)
def test_expected_failures_are_a_few_plain_lines_and_an_exit_code(
    settings, cli_env, args, extra_env, code, says
):
    out = run_cli(*args, env=cli_env(settings.home, **extra_env))
    lines = out.stderr.strip().splitlines()
    assert out.returncode == code, out.stderr[-2000:]
    assert says in out.stderr and 1 <= len(lines) <= 3, out.stderr
    assert "Traceback" not in out.stderr and "prefect" not in out.stderr.lower()  # Prefect never started


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["simulate", "--coverage", "1.5", "--magnitude", "-1"],
            [
                "error: --magnitude -1.0: should be greater than or equal to 0",
                "error: --coverage 1.5: should be less than or equal to 1",
            ],
        ),
        (["monitor", "--window-size", "0"], ["error: --window-size 0: should be greater than or equal to 1"]),
        (["monitor", "--window-minutes", "-1"], ["error: --window-minutes -1: should be greater than or equal to 1"]),  # noqa: E501
        (["monitor", "--start", "2026-01-02", "--end", "2026-01-01"], ["error: end must be after start"]),
        (  # an option's value is not a command: argparse's own words, the option named
            ["simulate", "--scenario", "sideways"],
            [
                "modelvigil simulate: error: argument --scenario: invalid choice: 'sideways' (choose from "
                "'none', 'covariate_shift', 'label_ramp', 'concept_flip')",
                "`modelvigil simulate --help` lists every option",
            ],
        ),
        (
            ["simulat"],
            [
                "modelvigil: error: no command 'simulat': did you mean 'simulate'?",
                "commands: serve, session, info, simulate, monitor, demo; "
                "`modelvigil --help` says what each does",
            ],
        ),
        (
            ["simulate", "--model-name", "nosuch"],
            [
                "error: no model 'nosuch' in the embedded service it would start (it serves "
                "'fraud-detector'); to serve it too: ./run serve --model fraud-detector --model nosuch"
            ],
        ),
    ],
)
def test_a_refused_option_is_named_by_the_flag_typed_before_prefect_starts(settings, capfd, args, says):
    from flows.cli import main

    try:
        code = main(args)
    except SystemExit as stop:  # argparse's own refusals end that way
        code = stop.code
    assert code == 2
    assert capfd.readouterr().err.strip().splitlines() == says


def test_debug_shows_the_traceback_and_keeps_the_exit_code(settings, cli_env):
    env = cli_env(settings.home, MODELVIGIL_SERVICE_URL="http://127.0.0.1:1")
    out = run_cli("simulate", "--debug", env=env)
    assert out.returncode == 4 and "Traceback" in out.stderr and "ServiceUnreachable" in out.stderr
    out = run_cli("monitor", "--start", "yesterday", "--debug", env=env)
    assert out.returncode == 2 and "Traceback" in out.stderr


def test_a_taken_port_is_named(settings, cli_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run_cli("serve", "--port", str(port), env=cli_env(settings.home))
    assert out.returncode == 7 and f"cannot listen on 127.0.0.1:{port}" in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_info_shows_where_the_service_really_listens(settings, cli_env):
    env = cli_env(settings.home)
    with serving(settings.home, env=env) as (url, _pid):
        shown = run_cli("info", env=env).stdout
    assert f"service_url            {url}" in shown, shown
    after = run_cli("info", env=env).stdout  # the service is gone: the default again
    assert "service_url            http://127.0.0.1:8765" in after


def test_demo_uses_a_running_service_and_monitors_the_deployment_it_sent_to(settings, cli_env):
    # The service's default model is not the home's: the traffic goes to the service's, and the
    # monitoring must read that deployment, not the home's default.
    env = cli_env(settings.home, MODELVIGIL_PORT=str(free_port()))
    models = ("--model", "FraudCLF-alice", "--model", settings.model_name)
    with serving(settings.home, *models, env=env) as (url, _pid):
        out = run_cli("demo", "--requests", "60", "--window", "30", env=env, timeout=300)
        info = json.loads(run_cli("info", "--json", env=env).stdout)
        fleet = {crn: name for name, crn in project_deployments(settings)}  # what `monitor --all` reads
    identity = read_identity(settings)
    alice = identity.as_model("FraudCLF-alice")
    # info names what the running service serves, its default first, not the home's first model.
    assert info["model_name"] == "FraudCLF-alice"
    assert info["serving"] == ["FraudCLF-alice", settings.model_name]
    assert info["access_key"] == alice.access_key and info["model_deployment_crn"] == alice.deployment_crn
    # The served model nobody called is in the fleet all the same (its row: no predictions).
    assert fleet == {alice.deployment_crn: "FraudCLF-alice", identity.deployment_crn: settings.model_name}
    assert json.loads(run_cli("info", "--json", env=env).stdout)["serving"] is None  # the service is gone
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"live Monitoring page: {url}/monitoring" in out.stdout
    assert f"using the service already running at {url}" in out.stdout
    analysed = re.search(r"^predictions analysed\s+(\d+)$", out.stdout, re.M)
    assert analysed and int(analysed.group(1)) == 60, out.stdout
    assert "FraudCLF-alice" in out.stdout


def test_demo_keep_serving_keeps_the_page_until_ctrl_c(tmp_path, cli_env):
    port = free_port()
    env = cli_env(tmp_path / "home", own_prefect_server=True, MODELVIGIL_PORT=str(port))
    servers_before = _prefect_servers()
    demo = subprocess.Popen(
        [sys.executable, "-m", "flows", "demo", "--requests", "60", "--window", "30", "--keep-serving"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = []
        deadline = time.monotonic() + 300
        while not any("until Ctrl-C" in line for line in seen):
            line = demo.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(seen) + demo.stderr.read()
            seen.append(line)
        text = "".join(seen)
        assert f"live Monitoring page: http://127.0.0.1:{port}/monitoring" in text  # the stable port
        assert "stops when the demo ends" not in text
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).ok  # still up after the report
        demo.send_signal(signal.SIGTERM)  # as a supervisor stops it: all it started goes too
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
    assert not _prefect_servers() - servers_before  # Prefect's temporary server went with it


def _prefect_servers() -> set[int]:
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"prefect.server.api.server" in (proc / "cmdline").read_bytes():
                    found.add(int(proc.name))
            except OSError:
                continue
    return found
