"""Scenario packs: every shipped pack loads, is valid, and is what the demo and the engine use."""

import pytest

from agents.flows import DEFAULT_FLOWS, flow_for
from agents.models import AgentConfig
from agents.scenarios import ScenarioError, scenario_get, scenario_list, scenario_load
from agents.slots import ENTITIES
from agents.validators import flow_errors, validate_extraction_schema, validate_rule_list


def test_the_four_shipped_packs():
    packs = {p.slug: p for p in scenario_list()}
    assert set(packs) == {"support", "dispatch", "leads", "reception"}
    assert {p.scenario for p in packs.values()} == set(AgentConfig.Scenario.values)
    for pack in packs.values():
        assert flow_errors(pack.flow) == [], pack.slug
        validate_extraction_schema(pack.extraction_schema)
        validate_rule_list(pack.escalation_rules)
        assert DEFAULT_FLOWS[pack.scenario] is pack.flow
        assert list(pack.conversations_dir.glob("*.yaml")), pack.slug
        for spec in pack.extraction_schema["properties"].values():
            assert spec.get("x-entity", "text") in ENTITIES


def test_a_pack_s_recognizers_join_the_engine_entities():
    dispatch = scenario_get("dispatch")
    assert {"driver_status", "emergency", "injury_status", "location"} <= set(dispatch.entities)
    assert ENTITIES["driver_status"] is dispatch.entities["driver_status"]


def test_unknown_and_broken_packs_are_errors(tmp_path):
    with pytest.raises(ScenarioError, match="no scenario pack 'nope'"):
        scenario_get("nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "scenario.yaml").write_text("name: Half\n")
    with pytest.raises(ScenarioError, match="missing flow.yaml, schema.yaml"):
        scenario_load(tmp_path / "half")


@pytest.mark.django_db
def test_an_agent_from_a_pack_runs_its_flow_and_keeps_its_own_copy():
    pack = scenario_get("leads")
    agent = AgentConfig.objects.create(**pack.agent_fields())
    assert agent.flow == pack.flow and agent.flow is not pack.flow
    agent.flow["steps"]["end"]["reason"] = "changed"
    assert pack.flow["steps"]["end"]["reason"] == "caller_goodbye"
    empty = AgentConfig.objects.create(slug="plain", name="Plain", scenario="driver_check_in")
    assert flow_for(empty) is scenario_get("dispatch").flow
