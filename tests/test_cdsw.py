"""Code written for CML's SDK runs unchanged against the embedded service via `modelvigil.cdsw`."""

import pandas as pd
import pytest
import requests

from modelvigil import cdsw
from tests.helpers import auth, lab_payload


@pytest.fixture
def facade(service):
    cdsw.configure(service.url)
    yield service
    cdsw.reset()


def test_the_labs_loop_through_the_facade(facade):
    conn = cdsw.connection()
    key, crn = conn.deployment.model_access_key, conn.deployment.latest_deployment_crn
    assert key == facade.identity.access_key and crn == facade.identity.deployment_crn

    response = cdsw.call_model(key, lab_payload(1))
    assert response["success"] is True
    uuid = response["response"]["uuid"]
    flat = pd.json_normalize(cdsw.read_metrics(model_deployment_crn=crn)["metrics"])
    assert {"startTimeStampMs", "endTimeStampMs", "predictionUuid", "metrics.prediction"} <= set(flat.columns)
    assert "metrics.final_label" not in flat.columns

    cdsw.track_delayed_metrics({"final_label": 1}, uuid)
    flat = pd.json_normalize(cdsw.read_metrics(model_deployment_crn=crn)["metrics"])
    row = flat[flat["predictionUuid"] == uuid]
    assert len(row) == 1 and row["metrics.final_label"].item() == 1

    start, end = int(row["startTimeStampMs"].item()), int(row["endTimeStampMs"].item())
    assert cdsw.track_aggregate_metrics({"accuracy": 0.79}, start, end, model_deployment_crn=crn) is None
    flat = pd.json_normalize(cdsw.read_metrics(crn, start, end)["metrics"])
    assert flat.loc[flat["predictionUuid"] == "", "metrics.accuracy"].tolist() == [0.79]
    assert len(cdsw.read_metrics(model_crn=facade.identity.model_crn)["metrics"]) == 2


def test_explicit_api_key_argument_is_used(facade):
    key = facade.identity.access_key
    assert cdsw.call_model(key, lab_payload(1), api_key=facade.identity.api_key.get_secret_value())["success"]
    with pytest.raises(Exception, match="401"):
        cdsw.call_model(key, lab_payload(1), api_key="wrong")


def test_dev_mode_is_refused_clearly(facade):
    with pytest.raises(NotImplementedError, match="dev=True"):
        cdsw.read_metrics(model_deployment_crn="x", dev=True)


def test_without_configuration_it_finds_the_service_from_the_environment(service, monkeypatch):
    cdsw.reset()
    monkeypatch.setenv("MODELVIGIL_SERVICE_URL", service.url)
    try:
        assert cdsw.call_model(service.identity.access_key, lab_payload(1))["success"]
    finally:
        cdsw.reset()
    # and the plain-requests view agrees with the facade's
    got = requests.get(
        f"{service.url}/metrics",
        params={"model_crn": service.identity.model_crn},
        headers=auth(service),
        timeout=10,
    ).json()
    assert len(got["metrics"]) == 1


def test_inside_cml_the_real_sdk_is_used(monkeypatch, tmp_path, forget_cml_sdk):
    """When `cml.utils_v1` imports (only inside CML), calls go to CML's SDK, untouched."""
    pkg = tmp_path / "cml"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "utils_v1.py").write_text(
        "class _SDK:\n"
        "    def read_metrics(self, **kw):\n"
        "        return {'metrics': [], 'called_with': kw}\n"
        "def _emulate_cdsw():\n"
        "    return _SDK()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    cdsw.reset()
    try:
        out = cdsw.read_metrics(model_deployment_crn="crn:x", start_timestamp_ms=5)
        assert out["called_with"]["model_deployment_crn"] == "crn:x"
        assert out["called_with"]["start_timestamp_ms"] == 5
    finally:
        cdsw.reset()
