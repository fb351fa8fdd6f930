"""Extraction from live turns: every scenario's fields, validation, schema versions, diffs."""

import pytest

from agents.models import AgentConfig
from agents.scenarios import scenario_load
from calls.models import AnalysisRun, Call
from calls.postcall.conversation import Conversation, Utterance
from calls.postcall.extract import data_changes, extract_rule_based, validate_extraction
from calls.postcall.pipeline import analysis_rerun
from calls.services import call_finalize, call_start, turn_record
from calls.tests.postcall import scenarios
from calls.tests.postcall.conftest import assert_extracted, call_with_turns, consultation_service, demo_agent

pytestmark = pytest.mark.django_db


def finalize(call: Call, capture) -> Call:
    with capture(execute=True):
        call_finalize(call_id=call.pk, end_reason="agent_end")
    call.refresh_from_db()
    return call


@pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda s: s.name)
def test_each_scenario_is_extracted_from_the_live_turns(scenario, eager_celery, django_capture_on_commit_callbacks):
    consultation_service()
    call = finalize(call_with_turns(scenario), django_capture_on_commit_callbacks)

    assert call.analysis_status == Call.AnalysisStatus.DONE, call.analysis_error
    assert_extracted(call, scenario)
    assert call.extraction_errors == []
    assert call.schema_version == call.agent.version
    run = call.analysis_runs.get()
    assert run.reason == AnalysisRun.Reason.CALL_ENDED
    assert {s.name: s.status for s in run.stages.all()} == {
        "transcribe": "skipped", "summarize": "done", "extract": "done", "act": "done", "notify": "done",
        "analytics": "done",
    }


def test_a_question_belongs_to_the_field_it_asks_about_most_specifically(eager_celery, django_capture_on_commit_callbacks):
    call = finalize(call_with_turns(scenarios.LEAD_FLOW_PROMPTS), django_capture_on_commit_callbacks)

    assert call.analysis_status == Call.AnalysisStatus.DONE, call.analysis_error
    assert_extracted(call, scenarios.LEAD_FLOW_PROMPTS)


def test_a_value_that_fails_validation_is_kept_with_its_error(eager_celery, django_capture_on_commit_callbacks):
    agent = demo_agent("leads")
    agent.extraction_schema["properties"]["debt_amount"]["maximum"] = 1000  # the caller's 25,000 is now invalid
    agent.save()
    call = finalize(call_with_turns(scenarios.LEAD), django_capture_on_commit_callbacks)

    assert "debt_amount" not in call.structured_data
    error = next(e for e in call.extraction_errors if e["field"] == "debt_amount")
    assert error["value"] == 25000 and error["validator"] == "maximum" and "1000" in error["error"]
    assert call.structured_data["qualified"] is True
    assert call.schema_version == agent.version == 2


def test_a_required_field_the_call_never_mentions_is_reported():
    schema = {"type": "object", "properties": {"driver_status": {"enum": ["delayed"]}, "eta": {"type": "string"}},
              "required": ["driver_status", "eta"]}
    valid, errors = validate_extraction(schema, {"driver_status": "delayed"})
    assert valid == {"driver_status": "delayed"}
    assert errors == [{"field": "eta", "error": "required field not found in the call", "validator": "required"}]


def test_date_times_are_checked_even_without_the_optional_format_package():
    schema = {"type": "object", "properties": {"eta": {"type": "string", "format": "date-time"}}}
    assert validate_extraction(schema, {"eta": "2026-01-02T16:30:00+00:00"}) == ({"eta": "2026-01-02T16:30:00+00:00"}, [])
    valid, errors = validate_extraction(schema, {"eta": "half past four"})
    assert valid == {} and errors[0]["field"] == "eta" and errors[0]["validator"] == "format"


def test_x_hints_and_x_entity_steer_fields_of_a_custom_schema():
    agent = demo_agent("support")
    agent.extraction_schema = {
        "type": "object",
        "properties": {
            "router_model": {"type": "string", "x-hints": ["router", "model"]},
            "callback_phone": {"type": "string", "x-entity": "phone"},
            "urgency": {"enum": ["low", "high"], "x-hints": {"high": ["right away", "asap"], "low": ["no rush"]}},
            "wants_upgrade": {"type": "boolean", "x-hints": ["upgrade"]},
        },
    }
    agent.save()
    call = call_with_turns(scenarios.Scenario("custom", "support", lines=[
        ("agent", "Which router model do you have?"),
        ("caller", "The AX3000."),
        ("agent", "Do you want to upgrade to fiber?"),
        ("caller", "No thanks."),
        ("caller", "Please call me back on four one five two zero two one two three four, I need it fixed right away."),
    ]))
    conversation = Conversation([Utterance(s, t) for s, t in [(turn.speaker, turn.text) for turn in call.turns.all()]], "live")
    data = extract_rule_based(call=call, conversation=conversation, schema=agent.extraction_schema)
    assert data == {"router_model": "The AX3000.", "callback_phone": "+14152021234", "urgency": "high",
                    "wants_upgrade": False}


def test_reextract_with_the_current_schema_records_the_field_by_field_changes(
        eager_celery, django_capture_on_commit_callbacks):
    call = finalize(call_with_turns(scenarios.CHECK_IN), django_capture_on_commit_callbacks)
    agent = call.agent
    schema = agent.extraction_schema
    del schema["properties"]["delay_reason"]
    schema["properties"]["unloading_status"]["x-hints"] = {"not_started": ["when you unload"]}
    schema["properties"]["driver_status"]["enum"].remove("delayed")
    agent.save()

    with django_capture_on_commit_callbacks(execute=True):
        batch, skipped = analysis_rerun(calls=[call], kind="reextract")
    call.refresh_from_db()
    run = call.analysis_runs.get(number=2)

    assert skipped == [] and batch.total == 1
    assert run.status == "done" and [s.name for s in run.stages.order_by("position")] == ["extract", "act", "notify",
                                                                                         "analytics"]
    assert call.schema_version == agent.version
    changes = {c["field"]: c for c in run.changes}
    assert changes["delay_reason"] == {"field": "delay_reason", "change": "removed", "before": "traffic", "after": None}
    assert changes["driver_status"]["change"] == "removed"  # "delayed" is no longer allowed...
    assert call.extraction_errors[0]["field"] == "driver_status"  # ...so it is kept among the errors
    assert call.extraction_errors[0]["value"] == "delayed"


def test_data_changes():
    assert data_changes({"a": 1, "b": 2}, {"b": 3, "c": 4}) == [
        {"field": "a", "change": "removed", "before": 1, "after": None},
        {"field": "b", "change": "changed", "before": 2, "after": 3},
        {"field": "c", "change": "added", "before": None, "after": 4},
    ]


PET_GROOMING = {
    "scenario.yaml": """
name: Pet grooming bookings
scenario: reception
greeting: Hi, this is Fluffy Cuts. What kind of dog is coming in?
closing: See you soon!
tools: [end_call]
""",
    "flow.yaml": """
start: breed
steps:
  breed: {type: ask, slot: pet_breed, entity: text, prompt: "What breed is your dog?", next: coat}
  coat: {type: ask, slot: coat_condition, entity: text, prompt: "How is the coat looking?", next: done}
  done: {type: end, reason: resolved}
""",
    "schema.yaml": """
type: object
properties:
  pet_breed: {type: string, x-hints: [breed, kind of dog]}
  coat_condition:
    enum: [tidy, matted]
    x-hints: {matted: [knots, tangled, felted]}
  nail_trim: {type: boolean, x-hints: [nails, claws]}
  owner_phone: {type: string, x-entity: phone, x-scan: true}
required: [pet_breed]
""",
}


def test_a_new_scenario_pack_is_extracted_from_its_schema_alone(tmp_path):
    """A made-up pack: its fields, cues and entities come from schema.yaml, with no code for them."""
    folder = tmp_path / "pet_grooming"
    folder.mkdir()
    for name, text in PET_GROOMING.items():
        (folder / name).write_text(text)
    pack = scenario_load(folder)
    agent = AgentConfig.objects.create(**pack.agent_fields())
    call = call_start(channel=Call.Channel.API, agent=agent, from_number="+14155550142")
    for speaker, text in [
        ("agent", "Hi, this is Fluffy Cuts. What kind of dog is coming in?"),
        ("caller", "A standard poodle, her name is Bella. You can text me on 415 202 9876."),
        ("agent", "How is the coat looking?"),
        ("caller", "Honestly it's full of knots behind the ears."),
        ("agent", "Shall we trim her nails too?"),
        ("caller", "Yes please."),
    ]:
        turn_record(call=call, speaker=speaker, text=text)
    conversation = Conversation([Utterance(t.speaker, t.text) for t in call.turns.order_by("index")], "live")

    data = extract_rule_based(call=call, conversation=conversation, schema=agent.extraction_schema)

    assert data == {"pet_breed": "A standard poodle, her name is Bella. You can text me on 415 202 9876.",
                    "coat_condition": "matted", "nail_trim": True, "owner_phone": "+14152029876"}
    assert validate_extraction(agent.extraction_schema, data) == (data, [])
