"""The flows' parameters as Prefect renders them: grouped, in declared order, no None toggles,
bounds in words; blank means "not given"; a bad value is still refused."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import Field, ValidationError

from modelvigil.analysis.config import MonitoringConfig, Thresholds
from modelvigil.forms import FormModel, bounds_text
from modelvigil.simulation import SimulationConfig


def ordered(model: type[FormModel]) -> list[str]:
    properties = model.model_json_schema()["properties"]
    return sorted(properties, key=lambda name: properties[name]["position"])


@pytest.mark.parametrize("model", [SimulationConfig, MonitoringConfig, Thresholds])
def test_fields_come_in_group_order_with_no_none_toggle_and_bounds_in_words(model):
    declared = [name for names in model.form_groups.values() for name in names]
    assert ordered(model) == declared
    for name, prop in model.model_json_schema()["properties"].items():
        assert "anyOf" not in prop, name
        assert prop.get("default", "unset") is not None, name
        group = next(g for g, names in model.form_groups.items() if name in names)
        assert prop["title"].startswith(f"{group}: ")
        if "minimum" in prop or "maximum" in prop or "exclusiveMinimum" in prop:
            assert "Range: " in prop["description"], name


def test_the_simulation_form_reads_traffic_drift_scoring_ground_truth_scale_out_output():
    assert list(SimulationConfig.form_groups) == [
        "Traffic",
        "Drift",
        "Scoring",
        "Ground truth",
        "Scale-out",
        "Output",
    ]
    requests = SimulationConfig.model_json_schema()["properties"]["requests"]
    assert requests["description"].endswith("Range: 1 to 10,000,000.")
    timeout = SimulationConfig.model_json_schema()["properties"]["request_timeout_seconds"]
    assert timeout["description"].endswith("Range: above 0, at most 600.")


def test_blank_means_not_given_and_bad_values_are_still_refused():
    config = SimulationConfig(service_url="", model_name="  ", simulation_id="")
    assert config.service_url is None and config.model_name is None and config.simulation_id is None
    assert "service_url" not in config.model_dump(mode="json")  # a form prefilled with it sends no null
    assert SimulationConfig.model_validate(config.model_dump(mode="json")) == config
    with pytest.raises(ValidationError, match="requests"):
        SimulationConfig(requests=None)  # None for a field that has no "not given" is an error
    with pytest.raises(ValidationError, match="simulation_id"):
        SimulationConfig(simulation_id="has spaces")
    with pytest.raises(ValidationError, match="deployment_crn"):
        MonitoringConfig(deployment_crn="not-a-crn")
    # The schema lets a cleared field through as "" (blank: not given) and still checks the rest.
    pattern = SimulationConfig.model_json_schema()["properties"]["simulation_id"]["pattern"]
    assert pattern.startswith("^$|")


def test_a_form_must_place_every_field():
    with pytest.raises(TypeError, match=r"missing \['b'\]"):

        class Half(FormModel):
            form_groups: ClassVar[dict[str, tuple[str, ...]]] = {"Only": ("a",)}
            a: int = Field(1)
            b: int = Field(2)


def test_bounds_in_words():
    assert bounds_text({"minimum": 0, "maximum": 1.0}) == "0 to 1"
    assert bounds_text({"exclusiveMinimum": 0, "exclusiveMaximum": 0.5}) == "above 0, below 0.5"
    assert bounds_text({"minimum": 10.0}) == "at least 10"
    assert bounds_text({"maximum": 2.5}) == "at most 2.5"
    assert bounds_text({}) == ""
