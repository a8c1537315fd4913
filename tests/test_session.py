"""`modelvigil session`: scripts written for a CML session (the lab's, in tests/lab) run unchanged
against the embedded default, and the facade finds its way there without being told twice."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from modelvigil.client.connect import connect
from modelvigil.settings import CMLEnvironment, Settings, read_identity
from modelvigil.store import MetricsStore
from tests.helpers import serving

LAB = Path(__file__).parent / "lab"
OWNER = "alice"


def session_env(settings, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDSW_", "MODELVIGIL_"))}
    return {**env, "MODELVIGIL_HOME": str(settings.home), "PROJECT_OWNER": OWNER, **extra}


def session(script: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelvigil", "session", str(script)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_labs_scripts_run_unchanged_in_a_session(settings, tmp_path):
    env = session_env(settings, LAB_OUT=str(tmp_path))
    with serving(settings.home, "--model-name", f"FraudCLF-{OWNER}", env=env):
        simulated = session(LAB / "06_model_simulation.py", env, tmp_path)
        assert simulated.returncode == 0, simulated.stderr[-3000:]
        monitored = session(LAB / "07_model_monitoring.py", env, tmp_path)
        assert monitored.returncode == 0, monitored.stderr[-3000:]
    assert "predictions 1000 labelled 1000 aggregates 10" in monitored.stdout
    assert (tmp_path / "accuracy.png").stat().st_size > 10_000 and (tmp_path / "latency.png").exists()

    identity = read_identity(settings)
    assert identity.model_name == f"FraudCLF-{OWNER}"  # the name serve was given, remembered
    store = MetricsStore(Settings(home=settings.home).resolved_store_url())
    try:
        crn = identity.deployment_crn
        assert store.count(crn) == 1000 and store.count(crn, aggregates=True) == 10
        frame = store.read_frame(crn)
        assert frame["final_label"].notna().all() and frame["prediction_uuid"].is_unique
        accuracy = store.read_aggregates_frame(crn)["accuracy"]
        assert accuracy.between(0, 1).all()
    finally:
        store.close()


def test_a_session_starts_the_embedded_service_when_none_runs(settings, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(
        "import os, cmlapi, cdsw\n"
        "client = cmlapi.default_client()\n"
        "project = client.list_projects(async_req=True).get().projects[0]\n"
        "assert project.id == os.environ['CDSW_PROJECT_ID'], project.to_dict()\n"
        "[model] = client.list_models(project.id, sort='-created_at', page_token='', page_size=10).models\n"
        "print(model.name, len(cdsw.read_metrics(model_crn=model.crn)['metrics']))\n"
        "for call in (client.create_model_build, client.get_project):\n"
        "    try:\n"
        "        call(project.id)\n"
        "    except cmlapi.ApiException as exc:\n"
        "        print('refused', exc.status)\n"
    )
    out = session(script, session_env(settings), tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["fraud-detector", "0", "refused", "501", "refused", "501"]


def test_a_local_cdsw_module_that_is_the_facade_is_not_taken_for_cmls(settings, service, tmp_path):
    """A `cdsw.py` of one line beside the script used to make the facade call itself forever."""
    (tmp_path / "cdsw.py").write_text("from modelvigil.cdsw import *  # noqa: F403\n")
    (tmp_path / "script.py").write_text(
        "import cdsw\n"
        f"print(len(cdsw.read_metrics(model_deployment_crn={service.identity.deployment_crn!r})['metrics']))\n"
    )
    env = {**session_env(settings), "MODELVIGIL_SERVICE_URL": service.url}
    env["MODELVIGIL_API_KEY"] = service.identity.api_key.get_secret_value()
    out = subprocess.run(
        [sys.executable, str(tmp_path / "script.py")], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "0"


def test_the_facade_needs_no_discovery_for_an_explicit_access_key(service, monkeypatch):
    from modelvigil import cdsw
    from tests.helpers import lab_payload

    monkeypatch.setenv("MODELVIGIL_SERVICE_URL", service.url)
    monkeypatch.setenv("MODELVIGIL_MODEL_NAME", "FraudCLF-nobody")  # no such model: never looked up
    cdsw.reset()
    try:
        answer = cdsw.call_model(service.identity.access_key, lab_payload(1))
        assert answer["success"] is True
        crn = service.identity.deployment_crn
        cdsw.track_delayed_metrics({"final_label": 1}, answer["response"]["uuid"])
        records = cdsw.read_metrics(model_deployment_crn=crn)["metrics"]
        assert pd.json_normalize(records)["metrics.final_label"].tolist() == [1]
    finally:
        cdsw.reset()


@pytest.mark.parametrize(
    "given",
    [
        {"base_url": True, "MODELVIGIL_SERVICE_URL": "http://127.0.0.1:1"},
        {"MODELVIGIL_SERVICE_URL": True, "CDSW_API_URL": "http://127.0.0.1:1/api/v1"},
        {"CDSW_API_URL": True, "CDSW_DOMAIN": "ws.example.com"},
        {"CDSW_DOMAIN": True},
    ],
)
def test_which_service_wins(service, monkeypatch, given):
    """Explicit URL > MODELVIGIL_SERVICE_URL > an http:// CDSW_API_URL > an http:// CDSW_DOMAIN
    (`True` marks where the running service is named; every other name points nowhere)."""
    for name in ("MODELVIGIL_SERVICE_URL", "CDSW_API_URL", "CDSW_DOMAIN", "CDSW_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    base_url = None
    for name, value in given.items():
        if name == "base_url":
            base_url = service.url
            continue
        if value is True:
            value = f"{service.url}/api/v1" if name == "CDSW_API_URL" else service.url
        monkeypatch.setenv(name, value)
    conn = connect(None, base_url, discover=False)
    try:
        assert conn.project_id == service.identity.project_id
    finally:
        conn.close()


def test_a_real_workspace_is_https_and_never_taken_for_a_local_service(monkeypatch):
    monkeypatch.setenv("CDSW_DOMAIN", "ml-1234.example.cloudera.site")
    monkeypatch.setenv("CDSW_API_URL", "https://ml-1234.example.cloudera.site/api/v1")
    assert CMLEnvironment.from_env().local_service_url is None
    monkeypatch.setenv("CDSW_API_URL", "http://127.0.0.1:8765/api/v1")
    assert CMLEnvironment.from_env().local_service_url == "http://127.0.0.1:8765"
