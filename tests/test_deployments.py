"""Deployments on a real `prefect server start` backed by the machine's Postgres, a real worker,
and the alert automation reaching a local webhook. Slow (a server, a worker): run by .ci/run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests
import sqlalchemy as sa
from fastapi import FastAPI, Request

from deployments.definitions import worker_command
from modelvigil.service.embedded import wait_for_health
from modelvigil.simulation import SimulationConfig
from modelvigil.testing import serve_app_in_thread
from tests.conftest import PG_ADMIN_URL
from tests.helpers import auth, lab_payload

pytestmark = pytest.mark.slow
REPORT_LINK = "http://127.0.0.1:8765/shared/1796513256.abc/reports/20261128T041500Z/index.html"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """`prefect server start` on a free port, on a fresh Postgres database dropped afterwards."""
    name = f"mv_prefect_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        sa.engine.make_url(PG_ADMIN_URL).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    home = tmp_path_factory.mktemp("prefect-server-home")
    db_url = sa.engine.make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=db_url.render_as_string(hide_password=False),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL=api,
    )
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    assert wait_for_health(f"{api}/health", 180, server, interval_s=1), (home / "server.log").read_text()[
        -3000:
    ]
    yield api, env
    server.terminate()
    server.wait(timeout=60)
    log.close()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def webhook():
    received: list[dict] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request):
        assert request.headers["content-type"] == "application/json"  # a 500 here: no call recorded
        received.append(json.loads(await request.body()))
        return {"ok": True}

    running = serve_app_in_thread(app)
    yield f"{running.url}/hook", received
    running.stop()


@pytest.fixture(scope="module")
def applied(prefect_server, webhook):
    api, env = prefect_server
    command = [
        sys.executable,
        "-m",
        "deployments",
        "apply",
        "--webhook-url",
        webhook[0],
        "--timezone",
        "Europe/Paris",
        "--cron",
        "45 4 * * *",
    ]
    for _ in range(2):  # applying twice updates in place: still one of each (checked below)
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
    return api, env


def client_for(api):
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(api)


def test_monitoring_is_scheduled_nightly_with_its_timezone(applied):
    api, _ = applied
    with client_for(api) as client:
        dep = client.read_deployment_by_name("monitoring/nightly")
        [schedule] = dep.schedules
        assert schedule.schedule.cron == "45 4 * * *" and schedule.schedule.timezone == "Europe/Paris"
        assert dep.global_concurrency_limit.limit == 1
        assert "modelvigil" in dep.tags
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

        deadline = time.monotonic() + 90
        while True:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id]))
            )
            scheduled = [r for r in runs if r.state and r.state.is_scheduled()]
            if scheduled or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert scheduled, "no scheduled run of the nightly monitoring"
        assert min(r.expected_start_time for r in scheduled) > datetime.now(UTC)
        assert len(client.read_automations_by_name("modelvigil: monitoring alerts -> webhook")) == 1
        # The whole fleet, on the same night, from its own flow.
        fleet = client.read_deployment_by_name("fleet-monitoring/nightly")
        assert [s.schedule.cron for s in fleet.schedules] == ["45 4 * * *"]
        assert fleet.entrypoint == "flows/fleet_monitoring.py:fleet_monitoring_flow"
        assert fleet.global_concurrency_limit.limit == 1
        assert not client.read_automations_by_name("modelvigil: accuracy alert -> webhook")


def test_a_worker_runs_the_simulation_deployment_with_ui_parameters(applied, service, settings):
    api, env = applied
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    params = {
        "config": {
            "requests": 150,
            "seed": 7,
            "accuracy_window": 50,
            "service_url": service.url,
            "simulation_id": "from-the-ui",
            "output_dir": str(settings.home / "ui-run"),
        }
    }
    with temporary_settings(updates={PREFECT_API_URL: api}):
        run = run_deployment("simulation/on-demand", parameters=params, timeout=0)
    worker_env = {**env, "MODELVIGIL_HOME": str(settings.home)}
    with sigint(signal.default_int_handler):  # as from a terminal, however this suite was started
        worker = subprocess.Popen(
            worker_command(),
            env=worker_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    triggered = time.monotonic()
    try:
        with client_for(api) as client:
            deadline = time.monotonic() + 300
            while True:
                state = client.read_flow_run(run.id).state
                if state.is_final() or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert state.is_completed(), state
            print(f"trigger to Completed: {time.monotonic() - triggered:.1f} s")
            from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
            )
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    keys = {a.key for a in artifacts}
    assert {"simulation-progress", "prediction-checks", "simulation-summary"} <= keys
    assert service.store.count(service.identity.deployment_crn) == 150
    assert service.store.count(service.identity.deployment_crn, aggregates=True) == 3


def test_an_alerting_run_reaches_the_webhook_once_with_what_to_act_on(applied, webhook):
    _api, env = applied
    _url, received = webhook
    script = (
        "from prefect import flow\n"
        "from modelvigil.analysis.config import Alert\n"
        "from tasks.monitoring import raise_alerts\n"
        "def alert(window, kind, metric, value, threshold):\n"
        "    start = 1_764_316_800_000 + window * 60_000\n"
        "    return Alert(kind=kind, window=window, window_start_ms=start, window_end_ms=start + 59_999,\n"
        "                 metric=metric, subject='model', value=value, threshold=threshold,\n"
        "                 message=f'window {window}: {metric} {value}')\n"
        "alerts = [alert(6, 'accuracy', 'accuracy_cusum', 7.4, 5.8),\n"
        "          alert(7, 'accuracy', 'accuracy', 0.71, 0.85), alert(7, 'drift', 'psi', 0.4, 0.25)]\n"
        "@flow\n"
        "def emit():\n"
        "    return raise_alerts(alerts, 'crn:cdp:ml:local:a:workspace:w/dep', REPORT, 'FraudCLF-alice')\n"
        "print(emit())\n"
    ).replace("REPORT", repr(REPORT_LINK))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    deadline = time.monotonic() + 60
    while not received and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # time for a second call, were there one
    assert len(received) == 1, received
    body = received[0]
    assert body["event"] == "modelvigil.alerts"
    assert body["resource"] == "modelvigil.deployment.crn:cdp:ml:local:a:workspace:w/dep"
    assert body["resource_name"].startswith("FraudCLF-alice")
    run = body["run"]
    assert run["model_name"] == "FraudCLF-alice" and run["alerts"] == 3
    assert run["kinds"] == ["accuracy", "drift"]
    assert run["from"] == "2025-11-28T08:06:00+00:00" and run["to"] == "2025-11-28T08:07:59+00:00"
    first = run["breaches"][1]
    assert (first["rule"], first["value"], first["threshold"]) == ("accuracy", 0.71, 0.85)
    assert first["window_start"] == "2025-11-28T08:07:00+00:00"
    assert run["report"] == REPORT_LINK
    assert run["flow_run"].startswith("http://127.0.0.1:") and "/flow-run/" in run["flow_run"]


MONITOR_SCRIPT = """
from flows.monitoring import monitoring_flow
from modelvigil.analysis.config import MonitoringConfig
state = monitoring_flow(MonitoringConfig(lookback_hours=1, service_url=SERVICE), return_state=True)
print("FLOW_RUN", state.state_details.flow_run_id)
"""


def test_the_report_opens_from_the_run_and_the_run_form_reads_in_order(
    applied, service, settings, browser_page
):
    """In the Prefect UI (Postgres-backed server, chromium): the monitoring run's Artifacts tab lists
    the report's artifacts under the flow run; its link opens the report; the simulation's
    custom-run form lists its fields group by group, as declared, with no None toggle."""
    api, env = applied
    ui = api.removesuffix("/api")
    for i in range(40):
        answer = requests.post(
            f"{service.url}/model",
            json={"accessKey": service.identity.access_key, "request": lab_payload(1, seed=i)},
            headers=auth(service),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
    script = MONITOR_SCRIPT.replace("SERVICE", repr(service.url))
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "MODELVIGIL_HOME": str(settings.home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    flow_run_id = out.stdout.split("FLOW_RUN", 1)[1].split()[0]

    page = browser_page
    page.goto(f"{ui}/runs/flow-run/{flow_run_id}")
    page.get_by_text("Artifacts", exact=True).first.click()
    page.get_by_text("monitoring-report-link", exact=True).wait_for()
    assert "Flow run\nNone" not in page.locator("body").inner_text()  # not filed under a task
    page.get_by_text("monitoring-report-link", exact=True).click()
    with page.context.expect_page() as opened:
        page.get_by_role("link", name="Full report").click()
    report = opened.value
    report.wait_for_load_state()
    assert report.url.startswith(f"{service.url}/shared/")
    assert report.title() == "fraud-detector: monitoring report"
    assert report.get_by_text("Features drifted", exact=True).count() == 1  # the summary block
    images = report.evaluate("() => [...document.images].map(i => i.complete && i.naturalWidth > 0)")
    assert len(images) >= 5 and all(images)

    with client_for(api) as client:
        deployment = client.read_deployment_by_name("simulation/on-demand")
    stored = deployment.parameter_openapi_schema["definitions"]["SimulationConfig"]["properties"]
    declared_names = [name for names in SimulationConfig.form_groups.values() for name in names]
    assert list(stored) != declared_names  # JSONB gives keys back in its own order...
    assert sorted(stored, key=lambda n: stored[n]["position"]) == declared_names  # ...positions hold
    page.goto(f"{ui}/deployments/deployment/{deployment.id}/run")
    page.get_by_text("Output: Output Dir", exact=False).wait_for()
    body = page.locator("body").inner_text()
    titles = [line.removesuffix(" (Optional)") for line in body.splitlines() if line.endswith("(Optional)")]
    declared = [
        f"{group}: {SimulationConfig.model_json_schema()['properties'][name]['title'].split(': ', 1)[1]}"
        for group, names in SimulationConfig.form_groups.items()
        for name in names
    ]
    assert [t for t in titles if ": " in t] == declared
    assert "Property is type" not in body and "Range: 1 to 10,000,000." in body
    page.get_by_role("button", name="Submit").click()  # the form as it comes validates on the server
    page.get_by_text("scheduled to start now").first.wait_for(timeout=15_000)


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for proc in os.listdir("/proc"):
        if proc.isdigit():
            try:
                with open(f"/proc/{proc}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(proc))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@contextlib.contextmanager
def sigint(handler):
    """SIGINT's disposition while a child is started (it inherits an ignored SIGINT, not a handler)."""
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_sigterm_to_deployments_up_stops_the_server_and_the_worker(tmp_path, service):
    """A supervisor's SIGTERM to `up` stops everything it started within 10 s, the worker on that
    signal, while it runs a long simulation, and with `up` started with SIGINT ignored."""
    name = f"mv_up_{uuid.uuid4().hex[:8]}"
    database = sa.engine.make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MODELVIGIL_"))}
    env["MODELVIGIL_HOME"] = str(tmp_path / "home")
    env["MODELVIGIL_PORT"] = str(free_port())  # the model service `up` starts for report links
    port = free_port()
    # Started as `nohup` or a script's `&` start it: SIGINT ignored, which its children inherit.
    with sigint(signal.SIG_IGN):
        up = subprocess.Popen(
            [
                sys.executable, "-m", "deployments", "up", "--port", str(port),
                "--database-url", database.render_as_string(hide_password=False),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
    admin = sa.create_engine(
        sa.engine.make_url(PG_ADMIN_URL).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    try:
        seen, deadline = [], time.monotonic() + 240
        while not any("Prefect UI:" in line for line in seen):
            line = up.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(seen)[-3000:]
            seen.append(line)
        api = f"http://127.0.0.1:{port}/api"
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        config = {"requests": 200_000, "concurrency": 1, "service_url": service.url}
        with temporary_settings(updates={PREFECT_API_URL: api}):
            run = run_deployment("simulation/on-demand", parameters={"config": config}, timeout=0)
        with client_for(api) as client:
            deadline = time.monotonic() + 180
            while not client.read_flow_run(run.id).state.is_running():
                assert time.monotonic() < deadline, "the worker never started the run"
                time.sleep(1)
        time.sleep(2)
        started = _descendants(up.pid)
        assert len(started) >= 3  # the server (and its uvicorn), the worker, the model service
        up.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        up.wait(timeout=15)
        while any(_alive(p) for p in started) and time.monotonic() < stopped_at + 10:
            time.sleep(0.2)
        assert not [p for p in started if _alive(p)], "left running after SIGTERM"
        assert time.monotonic() - stopped_at <= 10
        # The worker stopped on that signal, not on the SIGKILL that follows a grace period.
        rest = up.stdout.read()
        assert "Worker 'ProcessWorker" in rest and "stopped!" in rest, rest[-3000:]
    finally:
        if up.poll() is None:
            up.kill()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.parametrize("limit", ["0", "-1", "two"])
def test_a_worker_limit_that_is_not_a_positive_whole_number_is_refused(limit, capsys):
    from deployments.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(["up", "--worker-limit", limit])
    assert exit_.value.code == 2
    assert f"--worker-limit: must be a whole number of at least 1, got '{limit}'" in capsys.readouterr().err


def test_the_worker_takes_as_many_runs_as_its_limit():
    assert worker_command()[-2:] == ["--type", "process"]  # no limit: Prefect's default
    assert worker_command("pool-b", 2)[-6:] == ["--pool", "pool-b", "--type", "process", "--limit", "2"]


def _up_fails(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deployments", "up", *args], capture_output=True, text=True, timeout=120
    )


def test_up_on_a_port_in_use_says_so_and_applies_nothing():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _up_fails("--port", str(port))
    assert out.returncode == 7, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port} is in use" in lines[0] and "--port" in lines[0]
    assert "Prefect UI" not in out.stdout and "deployment " not in out.stdout  # nothing applied


def test_up_with_an_unreachable_database_is_two_lines_and_hides_the_password():
    out = _up_fails(
        "--port", str(free_port()), "--database-url", "postgresql+asyncpg://me:s3cret@127.0.0.1:1/x"
    )
    assert out.returncode == 6, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2 and "cannot be reached" in lines[0] and "127.0.0.1:1" in lines[0]
    assert "s3cret" not in out.stderr and "Traceback" not in out.stderr


def test_every_up_option_says_what_it_is_and_its_default():
    out = subprocess.run(
        [sys.executable, "-m", "deployments", "up", "--help"], capture_output=True, text=True, timeout=60
    )
    text = " ".join(out.stdout.split())
    for option in ("--cron", "--timezone", "--host", "--port", "--database-url"):
        assert option in text
    assert "(default: 127.0.0.1)" in text and "(default: 4200)" in text and "time zone" in text
