"""A service with several models, a simulation against each, and fleet monitoring over all of them:
each deployment's own report, and a fleet report whose figures are those of single runs."""

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from flows.cli import main as cli_main
from flows.fleet_monitoring import FleetIncomplete, fleet_monitoring_flow
from flows.monitoring import monitoring_flow
from flows.simulation import simulation_flow
from modelvigil.analysis.config import MonitoringConfig
from modelvigil.data import generate
from modelvigil.model import FraudModel
from modelvigil.settings import load_or_create_identity, served_identities
from modelvigil.simulation import SimulationConfig
from modelvigil.store import MetricsStore
from modelvigil.testing import start_in_thread
from tests.helpers import auth, lab_payload

pytestmark = pytest.mark.usefixtures("prefect_harness")
MODELS = ["alice", "bob", "carol"]
# Per model: its traffic. bob's drifts, so that its row differs (and comes first).
TRAFFIC = {
    "alice": {"seed": 11},
    "bob": {"seed": 12, "scenario": "covariate_shift", "drift_onset": 0.4, "drift_magnitude": 3.0},
    "carol": {"seed": 13},
}
HEADLINE = ("predictions", "accuracy", "accuracy_low", "accuracy_high", "features", "drifted_features")


@pytest.fixture(scope="module")
def trained_by_name(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each model trained once with its own seed, on a smaller sample than the service's (it
    trains the same way on 50,000 rows: seconds per model a test need not spend)."""
    folder = tmp_path_factory.mktemp("fleet-models")
    seeds = {name: keys.seed for name, keys in _keys(MODELS).items()}
    paths = {}
    for name, seed in seeds.items():
        paths[name] = folder / f"{name}.joblib"
        FraudModel.train(generate(5_000, seed=seed)).save(paths[name])
    return paths


def _keys(names: list[str]) -> dict:
    from modelvigil.settings import ModelKeys

    return {name: ModelKeys.generate(name) for name in names}


@pytest.fixture
def fleet(settings, trained_by_name):
    settings = settings.model_copy(update={"models": MODELS})
    for served in served_identities(settings, load_or_create_identity(settings), MODELS):
        (settings.home / "models").mkdir(exist_ok=True)
        shutil.copy(
            trained_by_name[served.model_name], settings.home / "models" / f"{served.model_id}.joblib"
        )
    svc = start_in_thread(settings)
    yield settings, svc
    svc.stop()


def _simulate_each(svc, tmp_path) -> tuple[datetime, datetime]:
    started = datetime.now(UTC) - timedelta(seconds=1)
    for name in MODELS:
        config = SimulationConfig(
            service_url=svc.url,
            model_name=name,
            requests=100,
            rows_per_request=10,
            output_dir=str(tmp_path / name),
            **TRAFFIC[name],
        )
        simulation_flow(config)
    return started, datetime.now(UTC) + timedelta(seconds=1)


def test_three_models_each_reported_and_the_fleet_report_equals_single_runs(fleet, tmp_path, capfd):
    settings, svc = fleet
    identities = {
        i.model_name: i for i in served_identities(settings, load_or_create_identity(settings), MODELS)
    }
    assert len({i.access_key for i in identities.values()}) == 3
    assert len({i.deployment_crn for i in identities.values()}) == 3
    health = requests.get(f"{svc.url}/health", timeout=10).json()
    assert [m["model_name"] for m in health["models"]] == MODELS and health["model_name"] == "alice"
    listed = requests.get(
        f"{svc.url}/api/v2/projects/{health['project_id']}/models", headers=auth(svc), timeout=10
    )
    assert sorted(m["name"] for m in listed.json()["models"]) == MODELS

    window = _simulate_each(svc, tmp_path)
    for name, identity in identities.items():
        assert svc.store.count(identity.deployment_crn) == 100, name  # one record per call
    base = MonitoringConfig(start=window[0], end=window[1], store_url=settings.resolved_store_url())
    fleet_dir = tmp_path / "fleet"
    state = fleet_monitoring_flow(base.model_copy(update={"output_dir": str(fleet_dir)}), return_state=True)
    result = state.result()
    rows = {r.model_name: r for r in result.deployments}
    assert sorted(rows) == MODELS and all(r.ok for r in rows.values())
    written = json.loads((fleet_dir / "fleet.json").read_text())["deployments"]
    assert written[0]["model_name"] == "bob" and written[0]["alerts"] > 0  # worst first
    html = (fleet_dir / "fleet.html").read_text()
    for name, identity in identities.items():
        # Each deployment's own report, beside the fleet's, linked from it.
        own = next(fleet_dir.parent.glob(f"fleet-{name}-*"))
        assert (own / "index.html").is_file() and rows[name].report.endswith("/index.html")
        assert rows[name].report in html
        single = monitoring_flow(
            base.model_copy(
                update={"deployment_crn": identity.deployment_crn, "output_dir": str(tmp_path / name / "r")}
            )
        )
        head = json.loads(Path(single.summary_json).read_text())["headline"]
        for figure in HEADLINE:
            assert getattr(rows[name], figure) == head[figure], (name, figure)
        assert rows[name].alerts == len(single.alerts)
        assert rows[name].label_coverage == head["label_coverage"]
        assert rows[name].server_latency_p95_ms == head["server_latency_p95_ms"]

    # The run's markdown artifact: the same table, worst first, the same figures.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    # The UI tells an alerting run from a quiet one, and each subflow run by its model.
    assert state.is_completed() and state.name == "Alerting", state
    assert sorted(run.name for run in children) == [f"monitor {name}" for name in MODELS]
    assert {run.name: run.state.name for run in children}["monitor bob"] == "Alerting"
    table = next(a.data for a in artifacts if a.key == "fleet-report")
    lines = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [line.split(" | ")[0].strip("| ") for line in lines] == [r["model_name"] for r in written]
    for line in lines:
        name = line.split(" | ")[0].strip("| ")
        assert f"| {rows[name].alerts} | {rows[name].accuracy:.3f} | {rows[name].drift_text} |" in line

    # The same rows, other models: their answers differ (each was trained with its own seed).
    answers = {}
    for name in ("alice", "carol"):
        body = {"accessKey": identities[name].access_key, "request": lab_payload(20)}
        r = requests.post(f"{svc.url}/model", json=body, headers=auth(svc), timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["response"]["model_deployment_crn"] == identities[name].deployment_crn
        answers[name] = r.json()["response"]["probability"]
    assert answers["alice"] != answers["carol"]
    # One Idempotency-Key, the same body, another model (its key in the URL): a conflict, not
    # alice's answer replayed to carol.
    same = {"request": lab_payload(1)}
    first, second = (
        requests.post(
            f"{svc.url}/model",
            params={"accessKey": identities[name].access_key},
            json=same,
            headers={**auth(svc), "Idempotency-Key": "shared/1"},
            timeout=10,
        )
        for name in ("alice", "carol")
    )
    assert first.status_code == 200 and second.status_code == 409, second.text

    # One deployment's rows made unreadable: the others are still monitored and reported, and the
    # run ends Failed, saying which and why.
    carol = identities["carol"]
    store = MetricsStore(settings.resolved_store_url())
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE mv_metric_records SET metrics = 'not json' "
            "WHERE model_deployment_crn = ? AND prediction_uuid IS NOT NULL",
            (carol.deployment_crn,),
        )
    store.close()

    config = base.model_copy(update={"output_dir": str(tmp_path / "night")})
    state = fleet_monitoring_flow(config, return_state=True)  # the run's end, as the Prefect UI shows it
    assert state.is_failed()
    why = r"1 of 3 deployment\(s\) could not be monitored \(carol: stored metrics in this range are not JSON"
    with pytest.raises(FleetIncomplete, match=why):
        state.result()
    written = {
        r["model_name"]: r for r in json.loads((tmp_path / "night" / "fleet.json").read_text())["deployments"]
    }
    assert written["carol"]["ok"] is False and written["carol"]["reason"]
    assert written["alice"]["ok"] and written["bob"]["ok"]
    for name in ("alice", "bob"):
        assert (next(tmp_path.glob(f"night-{name}-*")) / "index.html").is_file()

    # At the terminal: exit 8, the reason in plain lines, no traceback (`--debug` shows them).
    store_url = settings.resolved_store_url()
    start, end = (moment.isoformat() for moment in window)
    code = cli_main(["monitor", "--all", "--start", start, "--end", end, "--store-url", store_url])
    said = capfd.readouterr().err
    assert code == 8 and "Traceback" not in said
    assert "error: 1 of 3 deployment(s) could not be monitored (carol: stored metrics" in said
