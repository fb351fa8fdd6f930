import pytest
from django.core.exceptions import ValidationError

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
