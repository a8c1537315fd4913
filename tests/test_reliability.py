"""Faults, crashes, outages, fuzzing and secrets: nothing lost, nothing doubled, nothing leaked."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
import requests
import sqlalchemy as sa

from flows.monitoring import monitoring_flow
from flows.simulation import simulation_flow
from modelvigil.analysis.config import MonitoringConfig
from modelvigil.service.faults import FaultPlan
from modelvigil.simulation import SimulationConfig
from modelvigil.store import MetricsStore
from modelvigil.testing import TcpProxy, start_in_thread
from tests.helpers import auth, free_port, lab_payload, start_serve

pytestmark = pytest.mark.usefixtures("prefect_harness")


def assert_exactly_once(store: MetricsStore, crn: str, ledger: pd.DataFrame) -> pd.DataFrame:
    frame = store.read_frame(crn)
    accepted = ledger[ledger["uuid"].notna()]
    assert frame["prediction_uuid"].is_unique, "a request was stored twice"
    assert set(frame["prediction_uuid"]) == set(accepted["uuid"]), "stored records differ from accepted calls"
    assert frame["final_label"].notna().all(), "a stored prediction lost its ground truth"
    return frame


def test_faults_on_every_route_lose_nothing_and_double_nothing(settings, trained_model, tmp_path):
    """8% 503, 4% 429 with Retry-After, 4% answers dropped after the work was done, on every route
    the flows call: scoring, discovery, ground truth, aggregates and the monitoring's reads."""
    plan = FaultPlan.parse("503=0.08,429=0.04,drop=0.04", retry_after=1, seed=11)
    svc = start_in_thread(settings, model=trained_model[0], faults=plan)
    try:
        # 16% of attempts fail: at 12 attempts about 1e-7 of the calls fail for good.
        config = {"requests": 1000, "max_attempts": 12, "simulation_id": "faults-every-route"}
        summary = simulation_flow(
            SimulationConfig(service_url=svc.url, output_dir=str(tmp_path / "out"), **config)
        )
        crn = svc.identity.deployment_crn
        ledger = pd.read_parquet(tmp_path / "out" / "ledger.parquet")
        frame = assert_exactly_once(svc.store, crn, ledger)
        assert len(frame) == 1000 and summary.failed == 0 and summary.labels_submitted == 1000
        assert svc.store.count(crn, aggregates=True) == 10
        injector = svc.server.config.app
        before = sum(injector.injected.values())
        assert injector.injected_paths["/model"] > 0
        report = monitoring_flow(
            MonitoringConfig(
                start=pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1),
                service_url=svc.url,
                output_dir=str(tmp_path / "report"),
            )
        )
        assert report.overall["predictions"] == 1000 and report.overall["labelled"] == 1000
        assert sum(injector.injected.values()) > before  # the monitoring's own calls met faults too
    finally:
        svc.stop()


def test_each_call_on_every_route_is_retried_on_its_own(settings, trained_model):
    """30% of calls to one route at a time answer 503 or drop the answer after the work was done:
    every call still succeeds, and what was written is written once."""
    from modelvigil.client.connect import connect
    from modelvigil.client.retry import RetryPolicy

    quiet = FaultPlan.parse("503=0")  # the injector in place, injecting nothing yet
    svc = start_in_thread(settings, model=trained_model[0], faults=quiet)
    try:
        conn = connect(base_url=svc.url, retry=RetryPolicy(max_attempts=12, base_delay_s=0.01))
        crn = svc.identity.deployment_crn
        uuids = [conn.endpoint.predict(lab_payload(1), idempotency_key=f"k{i}").uuid for i in range(20)]
        injector = svc.server.config.app
        for route in ("/health", "/api/v2", "/metrics/delayed", "/metrics/aggregate", "/metrics"):
            injector.plan = FaultPlan.parse("503=0.15,drop=0.15", routes=route)
            injector.injected_paths.clear()
            for i in range(20):
                if route == "/health":
                    assert conn.endpoint.health()["status"] == "ok"
                elif route == "/api/v2":
                    assert conn.endpoint.latest_deployment(svc.identity.project_id, "fraud-detector")
                elif route == "/metrics/delayed":
                    conn.metrics.track_delayed_bulk([(uuids[i], {"final_label": i % 2})])
                elif route == "/metrics/aggregate":
                    conn.metrics.track_aggregate({"accuracy": 0.9}, i, i + 1, crn, f"agg-{i}")
                else:
                    assert len(conn.metrics.read_metrics(crn)["metrics"]) >= 20
            hit = injector.injected_paths
            assert hit and all(path.startswith(route) for path in hit), (route, hit)
        assert svc.store.count(crn) == 20 and svc.store.count(crn, aggregates=True) == 20
        labels = svc.store.read_frame(crn).set_index("prediction_uuid")["final_label"]
        assert [labels[u] for u in uuids] == [i % 2 for i in range(20)]
    finally:
        svc.stop()


@pytest.mark.slow
def test_twenty_percent_faults_every_accepted_request_stored_once_with_its_label(
    settings, trained_model, tmp_path
):
    # 429s in bursts of 3: 0.0167 drawn x 3 = 5% of calls; 20% faulty in all.
    plan = FaultPlan.parse(
        "503=0.05,429=0.0167,slow=0.05,drop=0.05", slow_seconds=1.5, retry_after=1, burst=3, seed=7
    )
    svc = start_in_thread(settings, model=trained_model[0], faults=plan)
    try:
        summary = simulation_flow(
            SimulationConfig(
                service_url=svc.url,
                requests=5000,
                concurrency=16,
                request_timeout_seconds=1.0,
                # 20% of attempts fail: with 6 attempts, 5000 x 0.2^6 = 0.3 requests are expected to
                # fail for good per run (seen once); with 10 it is 0.0005.
                max_attempts=10,
                simulation_id="faults-5000",
                output_dir=str(tmp_path / "out"),
            )
        )
        injector = svc.server.config.app
        ledger = pd.read_parquet(tmp_path / "out" / "ledger.parquet")
        frame = assert_exactly_once(svc.store, svc.identity.deployment_crn, ledger)
        assert all(injector.injected[k] > 0 for k in ("503", "429", "slow", "drop"))
        injected = sum(injector.injected.values())
        assert 0.15 < injected / injector.calls < 0.25
        # Scoring retries answer the faults met on /model (the others are retried by their own calls).
        assert summary.retries >= injector.injected_paths["/model"] - summary.failed * 10
        # Failed for good are listed with their reason; here, with 10 attempts, there should be none.
        assert len(summary.failures) == summary.failed
        assert all(f["error"] for f in summary.failures)
        print(
            f"faults injected {dict(injector.injected)} over {injector.calls} calls; requests 5000, "
            f"stored {len(frame)}, duplicates 0, failed for good {summary.failed}, retries {summary.retries}"
        )
    finally:
        svc.stop()


@pytest.mark.slow
def test_killed_simulation_resumes_with_the_same_id_without_rescoring_or_losing(settings, cli_env, tmp_path):
    port = free_port()
    env = cli_env(settings.home, MODELVIGIL_PORT=str(port))
    server = start_serve(env, port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = MetricsStore(settings.resolved_store_url())
    try:
        url = f"http://127.0.0.1:{port}"
        crn = json.loads(
            subprocess.run(
                [sys.executable, "-m", "flows", "info", "--json"], env=env, capture_output=True, text=True
            ).stdout
        )["model_deployment_crn"]
        args = [
            sys.executable,
            "-m",
            "flows",
            "simulate",
            "--requests",
            "3000",
            "--simulation-id",
            "crashy",
            "--service-url",
            url,
            "--out",
            str(tmp_path / "run"),
            "--concurrency",
            "4",
        ]
        # A session of its own: the crash takes the whole process tree (its temporary Prefect
        # server and embedded helpers included), as a machine failure would, and leaves no orphan.
        victim = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 180
        while store.count(crn) < 500:
            assert victim.poll() is None, "the simulation finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.2)
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        partial = store.count(crn)
        assert 0 < partial < 3000
        resumed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        frame = store.read_frame(crn)
        assert len(frame) == 3000 and frame["prediction_uuid"].is_unique
        assert frame["final_label"].notna().all()
        assert store.count(crn, aggregates=True) == 30
        print(f"killed after {partial} records; resumed: 3000 stored, 0 duplicates, 0 lost")
    finally:
        server.terminate()
        server.wait(timeout=30)
        store.close()


@pytest.mark.slow
def test_a_store_outage_is_a_clear_503_and_the_flow_carries_through(
    settings, trained_model, pg_schema_url, tmp_path
):
    url = sa.engine.make_url(pg_schema_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
    engine = sa.create_engine(pg_schema_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS mv_metric_records, mv_delayed_metrics"))
    engine.dispose()
    svc = start_in_thread(settings.model_copy(update={"store_url": proxied}), model=trained_model[0])
    try:
        body = {"accessKey": svc.identity.access_key, "request": lab_payload(1)}
        assert requests.post(f"{svc.url}/model", json=body, headers=auth(svc), timeout=10).status_code == 200
        proxy.cut()
        r = requests.post(f"{svc.url}/model", json=body, headers=auth(svc), timeout=30)
        assert r.status_code == 503 and "store unavailable" in r.json()["error"]
        assert requests.get(f"{svc.url}/health", timeout=30).json()["store"] == "unavailable"
        proxy.restore()
        assert requests.post(f"{svc.url}/model", json=body, headers=auth(svc), timeout=10).status_code == 200

        def outage() -> None:  # two seconds without a database, a second into the run
            time.sleep(1.0)
            proxy.cut()
            time.sleep(2.0)
            proxy.restore()

        threading.Thread(target=outage, daemon=True).start()
        summary = simulation_flow(
            SimulationConfig(
                service_url=svc.url,
                requests=1500,
                concurrency=8,
                simulation_id="outage",
                output_dir=str(tmp_path / "out"),
                max_attempts=10,
            )
        )
        assert summary.failed == 0 and summary.retries > 0
        ledger = pd.read_parquet(tmp_path / "out" / "ledger.parquet")
        frame = svc.store.read_frame(svc.identity.deployment_crn)
        mine = frame[frame["prediction_uuid"].isin(set(ledger["uuid"]))]
        assert len(mine) == 1500 and mine["final_label"].notna().all()
        assert len(frame) == 1502  # plus the two single calls above, nothing else
        print(f"store outage: {summary.retries} retries, 1500 stored, 0 lost, 0 duplicates")
    finally:
        svc.stop()
        proxy.close()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_schema_driven_fuzzing_never_gets_a_500(make_service, store_url_pg, backend):
    # On Postgres too: its text refuses NUL bytes and its columns their width, where SQLite lets
    # anything through; each is a 422 at the route, never a database error.
    service = make_service(store_url=store_url_pg) if backend == "postgres" else make_service()
    token = service.identity.api_key.get_secret_value()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{service.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            "25",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-4000:]
    assert " passed" in out.stdout and "failed" not in out.stdout.split("SUMMARY")[-1]


def test_secrets_never_reach_logs_reports_or_outputs(service, settings, tmp_path, caplog, capfd):
    secret = service.identity.api_key.get_secret_value()
    caplog.set_level(logging.DEBUG)
    simulation_flow(SimulationConfig(service_url=service.url, requests=120, output_dir=str(tmp_path / "sim")))
    monitoring_flow(MonitoringConfig(service_url=service.url, output_dir=str(tmp_path / "report")))
    captured = capfd.readouterr()
    assert secret not in caplog.text and secret not in captured.out and secret not in captured.err
    outputs = [p for folder in ("sim", "report") for p in (tmp_path / folder).rglob("*") if p.is_file()]
    assert len(outputs) > 10  # ledger, summary, data docs, plots, report...
    for path in outputs:
        assert secret.encode() not in path.read_bytes(), path


def test_injection_through_a_crn_is_inert(service):
    svc = service
    requests.post(
        f"{svc.url}/model",
        json={"accessKey": svc.identity.access_key, "request": lab_payload(1)},
        headers=auth(svc),
        timeout=10,
    )
    evil = "x' OR '1'='1"
    r = requests.get(
        f"{svc.url}/metrics", params={"model_deployment_crn": evil}, headers=auth(svc), timeout=10
    )
    assert r.status_code == 200 and r.json() == {"metrics": []}
    assert svc.store.count(svc.identity.deployment_crn) == 1
    with pytest.raises(ValueError, match="should match pattern"):
        MonitoringConfig(deployment_crn=evil)


def test_wrong_tokens_of_any_length_are_refused_alike(service):
    body = {"accessKey": service.identity.access_key, "request": lab_payload(1)}
    real = service.identity.api_key.get_secret_value()
    for token in ("x", real[:-1] + ("a" if real[-1] != "a" else "b"), real + "x", "ü" * 10):
        r = requests.post(
            f"{service.url}/model", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert r.status_code == 401 and r.json()["error"] == "User APikey not authorized to access model"


def test_report_files_stay_inside_the_chosen_folder(tmp_path):
    from modelvigil.analysis.engine import analyse
    from modelvigil.analysis.plots import draw_all
    from modelvigil.analysis.report import write_report
    from tests.test_monitoring_analysis import frame

    outside_before = set(tmp_path.iterdir())
    folder = tmp_path / "chosen"
    a = analyse(frame(n=500, shift_after=250), pd.DataFrame(), MonitoringConfig())
    write_report(a, draw_all(a, MonitoringConfig().thresholds, folder), folder, {"deployment_crn": "../../x"})
    assert set(tmp_path.iterdir()) - outside_before == {folder}
    assert all(p.parent == folder for p in folder.iterdir())


def test_fault_plans_are_validated():
    with pytest.raises(ValueError, match="KIND=SHARE"):
        FaultPlan.parse("500=0.1")
    with pytest.raises(ValueError, match="more than 1"):
        FaultPlan.parse("503=0.6,429=0.6")
    assert FaultPlan.parse("503=0.1, drop=0.2").shares == {"503": 0.1, "drop": 0.2}


def test_serve_refuses_a_bad_fault_plan(settings, cli_env):
    out = subprocess.run(
        [sys.executable, "-m", "flows", "serve", "--faults", "teapot=1"],
        env=cli_env(settings.home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "--faults" in out.stderr and "teapot" in out.stderr


def test_a_dropped_answer_is_a_retryable_connection_error_and_a_retry_replays(settings, trained_model):
    from modelvigil.client import EndpointConnectionError
    from modelvigil.client.connect import connect

    plan = FaultPlan.parse("drop=1.0", routes="/model")  # discovery must get through
    svc = start_in_thread(settings, model=trained_model[0], faults=plan)
    try:
        conn = connect(base_url=svc.url)
        with pytest.raises(EndpointConnectionError) as err:
            conn.endpoint.predict(lab_payload(1), idempotency_key="k-1")
        assert err.value.retryable
        assert svc.store.count(svc.identity.deployment_crn) == 1  # the work was done, the answer lost
        svc.server.config.app.plan.shares.clear()  # the network heals
        retried = conn.endpoint.predict(lab_payload(1), idempotency_key="k-1")
        assert svc.store.count(svc.identity.deployment_crn) == 1
        [stored] = svc.store.read_metrics(svc.identity.deployment_crn)["metrics"]
        assert retried.uuid == stored["predictionUuid"]
    finally:
        svc.stop()
