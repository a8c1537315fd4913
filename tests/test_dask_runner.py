"""`task_runner dask`: the same simulation and monitoring on a real 2-process LocalCluster (the
runner's own, and one reached by its address) give the same records, ledger and summaries as the
default runner."""

import os
import pickle
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from flows.fleet_monitoring import fleet_monitoring_flow
from flows.monitoring import monitoring_flow
from flows.simulation import simulation_flow
from modelvigil.analysis.config import MonitoringConfig
from modelvigil.client.connect import connect
from modelvigil.client.ledger import _payload
from modelvigil.data import FEATURES, generate
from modelvigil.scaleout import SchedulerUnreachable
from modelvigil.simulation import SimulationConfig
from modelvigil.testing import start_in_thread
from tasks.runners import probe_scheduler, shared_cluster

pytestmark = pytest.mark.usefixtures("prefect_harness")

# Timings and where each run wrote; the windows are compared below, without their times.
# deployment_crn: each side has a home, and a deployment, of its own.
UNEQUAL_SUMMARY = {"latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "scoring_seconds",
                   "requests_per_second", "output_dir", "failing_uuids", "windows",
                   "deployment_crn"}  # fmt: skip
LEDGER = ["request_no", "idempotency_key", "rows_sent", "n_predictions", "predictions", "status", "attempts"]


def simulate_and_monitor(settings, trained_model, tmp_path, monkeypatch, runner, **extra):
    """One simulation and its monitoring on `runner`, against a service and home of their own."""
    home = tmp_path / runner
    home.mkdir()
    (home / "model.joblib").write_bytes((settings.home / "model.joblib").read_bytes())
    own = settings.model_copy(update={"home": home})
    monkeypatch.setenv("MODELVIGIL_HOME", str(home))  # the flows' own settings, and the workers'
    service = start_in_thread(own, model=trained_model[0])
    try:
        started = datetime.now(UTC) - timedelta(seconds=1)
        sim = simulation_flow(
            SimulationConfig(
                service_url=service.url,
                output_dir=str(home / "sim"),
                requests=60,
                batch_size=16,  # 4 batches
                accuracy_window=20,
                scenario="covariate_shift",
                simulation_id="same-run",
                seed=7,
                task_runner=runner,
                **extra,
            )
        )
        monitoring = MonitoringConfig(
            start=started,
            end=datetime.now(UTC) + timedelta(seconds=1),
            output_dir=str(home / "report"),
            store_url=own.resolved_store_url(),
            window_size=20,
            task_runner=runner,
            **extra,
        )
        # The simulation started a cluster of its own; the monitoring goes to one by its address.
        with shared_cluster(monitoring) as monitoring:
            assert (monitoring.dask_address is not None) == (runner == "dask")
            report = monitoring_flow(monitoring)
            # The fleet's per-deployment monitoring, on the same cluster (a worker runs each subflow).
            fleet = fleet_monitoring_flow(monitoring.model_copy(update={"output_dir": str(home / "fleet")}))
        records = service.store.read_frame(service.identity.deployment_crn)
    finally:
        service.stop()
    return sim, pd.read_parquet(home / "sim" / "ledger.parquet"), records, (report, fleet)


def test_the_dask_runner_gives_what_the_default_runner_gives(settings, trained_model, tmp_path, monkeypatch):
    default = simulate_and_monitor(settings, trained_model, tmp_path, monkeypatch, "default")
    environment = {k: v for k, v in os.environ.items() if k != "MODELVIGIL_HOME"}  # each side sets its own
    dask = simulate_and_monitor(settings, trained_model, tmp_path, monkeypatch, "dask", dask_workers=2)
    # The clusters' variables (OMP_NUM_THREADS=1, __DASK_PARENT_PID...) stay out of this process:
    # every process started later would inherit them.
    assert {k: v for k, v in os.environ.items() if k != "MODELVIGIL_HOME"} == environment
    (sim_a, ledger_a, records_a, (report_a, fleet_a)), (sim_b, ledger_b, records_b, (report_b, fleet_b)) = (
        default,
        dask,
    )

    assert ledger_b["request_no"].tolist() == list(range(60))  # the ledger's order, batch after batch
    pd.testing.assert_frame_equal(ledger_a[LEDGER], ledger_b[LEDGER])
    assert sim_a.model_dump(exclude=UNEQUAL_SUMMARY) == sim_b.model_dump(exclude=UNEQUAL_SUMMARY)
    window_figures = [w.model_dump(exclude={"start_ms", "end_ms"}) for w in sim_a.windows]
    assert window_figures == [w.model_dump(exclude={"start_ms", "end_ms"}) for w in sim_b.windows]
    assert sim_b.requests == sim_b.succeeded == sim_b.labels_submitted == 60 and sim_b.checks_passed

    assert len(records_a) == len(records_b) == 60
    joined_a = records_a.set_index("prediction_uuid").loc[ledger_a["uuid"]].reset_index(drop=True)
    joined_b = records_b.set_index("prediction_uuid").loc[ledger_b["uuid"]].reset_index(drop=True)
    same = [c for c in joined_a.columns if not c.endswith(("_ms", "_at", "uuid", "time", "crn"))]
    assert {"prediction", "final_label"} <= set(same) and len(same) > len(FEATURES)  # inputs too
    pd.testing.assert_frame_equal(joined_a[same], joined_b[same])

    figures_a, figures_b = (
        {k: v for k, v in report.overall.items() if "latency" not in k} for report in (report_a, report_b)
    )
    assert figures_a == figures_b and figures_b["predictions"] == 60 and "accuracy" in figures_b
    assert [a.message for a in report_a.alerts] == [a.message for a in report_b.alerts]
    unequal = {"deployment_crn", "report", "server_latency_p95_ms"}  # each run's own service and folder
    rows_a, rows_b = ([r.model_dump(exclude=unequal) for r in f.deployments] for f in (fleet_a, fleet_b))
    assert rows_a == rows_b and rows_b[0]["ok"] and rows_b[0]["predictions"] == 60
    assert rows_b[0]["accuracy"] == figures_b["accuracy"]


def test_an_address_where_no_scheduler_listens_is_refused_in_one_line(service):
    with pytest.raises(SchedulerUnreachable) as err:
        probe_scheduler("tcp://127.0.0.1:9")  # nothing listens: refused at once
    assert str(err.value).startswith("no Dask scheduler answers at tcp://127.0.0.1:9 (")
    http = service.url.replace("http://", "tcp://")  # something listens, but speaks HTTP
    with pytest.raises(SchedulerUnreachable) as err:
        probe_scheduler(http)
    assert str(err.value).startswith(f"no Dask scheduler answers at {http} (") and "\n" not in str(err.value)


def test_an_endpoint_unpickled_in_another_process_scores_as_the_original(settings, service):
    conn = connect(settings, service.url)
    copy = pickle.loads(pickle.dumps(conn.endpoint))
    rows = generate(2, seed=1)[FEATURES].to_numpy(dtype=float)
    assert copy.predict(_payload(rows)).prediction == conn.endpoint.predict(_payload(rows)).prediction
    conn.close()
