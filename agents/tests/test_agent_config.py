import copy

import pytest
from django.core.exceptions import ValidationError

from agents.flows import default_flow
from agents.models import AgentConfig

pytestmark = pytest.mark.django_db


def make_agent(**fields) -> AgentConfig:
    return AgentConfig.objects.create(name="Support", slug="support", **fields)


def test_version_increases_on_every_change():
    agent = make_agent()
    assert agent.version == 1
    agent.greeting = "Hi there"
    agent.save()
    assert agent.version == 2
    agent.save(update_fields=["greeting"])
    assert AgentConfig.objects.get(pk=agent.pk).version == 3


@pytest.mark.parametrize(
    "schema, message",
    [
        ({"type": "object", "properties": {"eta": {"type": "strin"}}}, "Not a valid JSON Schema"),
        ({"type": "array"}, "must be"),
        ({"type": "object", "properties": {"x": {"type": "string"}}, "required": ["y"]}, "Required fields not in properties"),
        ({"type": "object", "properties": {"x": {"type": "array"}}}, "type must be one of"),
        ("not json object", "must be a JSON object"),
    ],
)
def test_a_bad_extraction_schema_is_refused_on_save(schema, message):
    with pytest.raises(ValidationError, match=message):
        make_agent(extraction_schema=schema)
    assert not AgentConfig.objects.exists()


def test_a_bad_schema_does_not_replace_a_good_one():
    agent = make_agent(extraction_schema={"type": "object", "properties": {"eta": {"type": "string", "format": "date-time"}}})
    agent.extraction_schema = {"type": "object", "properties": {"eta": {"type": 7}}}
    with pytest.raises(ValidationError):
        agent.save()
    stored = AgentConfig.objects.get(pk=agent.pk)
    assert stored.extraction_schema["properties"]["eta"]["type"] == "string" and stored.version == 1


def test_enum_and_boolean_fields_are_accepted():
    agent = make_agent(extraction_schema={
        "type": "object",
        "properties": {"status": {"enum": ["ok", "late"]}, "secure": {"type": "boolean"}, "n": {"type": "number"}},
        "required": ["status"],
    })
    assert agent.pk


def reception_without_verification() -> dict:
    flow = copy.deepcopy(default_flow("reception"))
    flow["identity"]["require_verification"] = False
    return flow


def test_account_tools_with_verification_turned_off_cannot_be_saved():
    tools = ["find_customer", "verify_customer", "get_orders", "cancel_appointment"]
    with pytest.raises(ValidationError, match="need a verified caller"):
        make_agent(scenario="reception", enabled_tools=tools, flow=reception_without_verification())
    assert not AgentConfig.objects.exists()
    agent = make_agent(scenario="reception", enabled_tools=tools, flow=default_flow("reception"))
    # Nor by an edit, in the admin form (clean) or anywhere else (save).
    agent.flow = reception_without_verification()
    with pytest.raises(ValidationError) as error:
        agent.full_clean()
    assert "enabled_tools" in error.value.message_dict
    with pytest.raises(ValidationError):
        agent.save()
    assert AgentConfig.objects.get(pk=agent.pk).flow == default_flow("reception")


def test_verification_may_be_off_for_an_agent_without_account_tools():
    flow = reception_without_verification()
    agent = make_agent(scenario="reception", enabled_tools=["find_customer", "create_ticket", "share_information"], flow=flow)
    agent.full_clean()
    assert agent.pk


def test_account_tools_need_a_way_to_verify():
    with pytest.raises(ValidationError, match="enable verify_customer"):
        make_agent(enabled_tools=["find_customer", "get_account_summary"])
    # An agent that trusts caller ID verifies callers by their number.
    assert make_agent(enabled_tools=["find_customer", "get_account_summary"], trust_caller_id=True).pk


def test_trust_caller_id_is_off_by_default_and_explained():
    field = AgentConfig._meta.get_field("trust_caller_id")
    assert field.default is False and "spoofed" in field.help_text
