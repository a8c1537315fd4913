"""The monitoring flow end to end: a simulation with known drift, then the report and its alerts."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from PIL import Image

from flows.monitoring import AlertsRaised, monitoring_flow
from flows.simulation import simulation_flow
from modelvigil.analysis.config import MonitoringConfig
from modelvigil.analysis.plots import plots_for
from modelvigil.simulation import SimulationConfig
from tasks.monitoring import raise_alerts

pytestmark = pytest.mark.usefixtures("prefect_harness")


def simulate(service, tmp_path, **kw):
    started = datetime.now(UTC) - timedelta(seconds=1)
    simulation_flow(SimulationConfig(service_url=service.url, output_dir=str(tmp_path / "sim"), **kw))
    return started, datetime.now(UTC) + timedelta(seconds=1)


def monitored(settings, tmp_path, window, **kw):
    """The monitoring run's final state, as the Prefect UI shows it."""
    config = MonitoringConfig(
        start=window[0],
        end=window[1],
        output_dir=str(tmp_path / "report"),
        store_url=settings.resolved_store_url(),
        **kw,
    )
    return monitoring_flow(config, return_state=True)


def monitor(settings, tmp_path, window, **kw):
    return monitored(settings, tmp_path, window, **kw).result()


def test_label_ramp_raises_the_accuracy_alert_and_the_report_has_every_plot(service, settings, tmp_path):
    window = simulate(service, tmp_path, requests=1000, scenario="label_ramp", drift_onset=0.3, seed=1)
    state = monitored(settings, tmp_path, window)
    result = state.result()
    assert state.is_completed() and state.name == "Alerting"  # not a green "Completed"
    assert f"{len(result.alerts)} alert(s)" in state.message
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    accuracy = [w["accuracy"] for w in summary["windows"]]
    assert accuracy[-1] < accuracy[0] - 0.15
    kinds = {a["kind"] for a in summary["alerts"]}
    assert "accuracy" in kinds
    for alert in summary["alerts"]:
        assert {"kind", "window", "value", "threshold", "window_start_ms", "window_end_ms"} <= set(alert)
    first_alert = min(a["window"] for a in summary["alerts"] if a["kind"] == "accuracy")
    assert first_alert >= 3  # nothing before the ramp (onset at 30%)
    assert len(result.alerts) == len(summary["alerts"])
    # The tracked aggregates (the simulation's) are shown beside the joined accuracy.
    assert all(w["tracked_accuracy"] is not None for w in summary["windows"])

    html = (tmp_path / "report" / "index.html").read_text()
    for name in plots_for("binary"):
        png = tmp_path / "report" / f"{name}.png"
        assert png.exists(), name
        assert f"data-file='{name}.png'" in html  # embedded, and linked
        with Image.open(png) as img:
            assert img.width >= 300 and img.height >= 250
            pixels = np.asarray(img.convert("L"), dtype=float)
            assert pixels.std() > 10  # not a blank canvas
    assert "http://" not in html and "https://" not in html  # opens offline


def test_covariate_shift_flags_exactly_the_shifted_features(service, settings, tmp_path):
    window = simulate(
        service,
        tmp_path,
        requests=3000,
        scenario="covariate_shift",
        drift_onset=0.5,
        shifted_features=["age", "latitude"],
        seed=2,
    )
    result = monitor(settings, tmp_path, window)
    flagged = {a.subject for a in result.alerts if a.metric == "psi"}  # feature drift, not prediction drift
    assert flagged == {"age", "latitude"}
    assert min(a.window for a in result.alerts if a.subject in flagged) >= 5  # onset: half way
    # The report says so at the top, per feature, and with a picture of each drifted feature.
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["headline"]["drifted_features"] == ["age", "latitude"]
    verdicts = {row["feature"]: row for row in summary["features"]}
    assert len(verdicts) == 15
    assert {row["feature"] for row in summary["features"][:2]} == {"age", "latitude"}  # drifted first
    assert {f for f, row in verdicts.items() if row["verdict"] == "drifted"} == {"age", "latitude"}
    assert all(verdicts[f]["first_drifted_window"] >= 5 for f in ("age", "latitude"))
    assert all(
        row["max_psi"] <= row["psi_limit"] for f, row in verdicts.items() if row["verdict"] == "stable"
    )
    html = (tmp_path / "report" / "index.html").read_text()
    assert "2 of 15" in html and "Reference vs current, per drifted feature" in html
    assert sorted(p.name for p in (tmp_path / "report").glob("feature_*.png")) == [
        "feature_age.png",
        "feature_latitude.png",
    ]
    # A report outside the home is no service's to share: the link is the file itself.
    assert result.report_link == (tmp_path / "report" / "index.html").resolve().as_uri()


def test_no_drift_flags_nothing_at_default_thresholds(service, settings, tmp_path):
    window = simulate(service, tmp_path, requests=5000, seed=3, concurrency=16)
    state = monitored(settings, tmp_path, window)
    result = state.result()
    assert state.name == "Completed" and result.alerts == []
    assert result.overall["predictions"] == 5000 and result.overall["label_coverage"] == 1.0


def test_an_empty_window_gives_a_clear_message_and_an_empty_but_valid_report(service, settings, tmp_path):
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    state = monitored(
        settings,
        tmp_path,
        (long_ago, long_ago + timedelta(hours=1)),
        deployment_crn=service.identity.deployment_crn,
    )
    result = state.result()
    assert state.is_completed() and state.name == "No predictions"  # neither healthy nor alerting
    assert [a.kind for a in result.alerts] == ["no_data"] and "no prediction records" in result.notes[0]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert [a["kind"] for a in summary["alerts"]] == ["no_data"] and summary["windows"] == []
    page = (tmp_path / "report" / "index.html").read_text()
    assert "No prediction records in this range" in page
    assert "card muted" in page and "no data" in page and "card good" not in page  # never a green verdict


def test_the_cml_read_path_gives_the_same_numbers_as_the_store(service, settings, tmp_path):
    window = simulate(service, tmp_path, requests=400, seed=4, scenario="label_ramp", drift_onset=0.2)
    fast = monitor(settings, tmp_path / "a", window)
    slow = monitoring_flow(
        MonitoringConfig(
            start=window[0], end=window[1], output_dir=str(tmp_path / "b"), service_url=service.url
        )
    )
    assert slow.deployment_crn == fast.deployment_crn
    for key in ("predictions", "requests", "labelled", "accuracy", "latency_p95_ms"):
        assert slow.overall[key] == pytest.approx(fast.overall[key]), key
    assert [(a.kind, a.window, a.subject) for a in slow.alerts] == [
        (a.kind, a.window, a.subject) for a in fast.alerts
    ]


def test_fail_on_alert_fails_the_run_after_writing_the_report(service, settings, tmp_path):
    window = simulate(service, tmp_path, requests=1000, scenario="label_ramp", drift_onset=0.2, seed=5)
    with pytest.raises(AlertsRaised, match="alert"):
        monitor(settings, tmp_path, window, fail_on_alert=True)
    assert (tmp_path / "report" / "index.html").exists()


def test_an_alerting_run_is_one_prefect_event_with_every_breach(service, settings, tmp_path):
    from prefect import flow

    window = simulate(service, tmp_path, requests=1000, scenario="label_ramp", drift_onset=0.2, seed=6)
    result = monitor(settings, tmp_path, window)
    assert result.alerts

    @flow
    def emit():
        return raise_alerts(
            result.alerts, result.deployment_crn, tmp_path / "report" / "index.html", "fraud-detector"
        )

    assert emit() == ["modelvigil.alerts"]
