"""Summaries, outcomes and sentiment: deterministic by default, the LLM when configured."""

import json

import pytest

from calls.models import Call
from calls.postcall.conversation import Conversation, Utterance
from calls.postcall.pipeline import analysis_run_execute_sync
from calls.postcall.summarize import sentiment_of
from calls.services import call_finalize
from calls.tests.postcall import scenarios
from calls.tests.postcall.conftest import call_with_turns

pytestmark = pytest.mark.django_db


def analyzed(scenario, **finalize) -> Call:
    call = call_with_turns(scenario)
    call_finalize(call_id=call.pk, **({"end_reason": "agent_end"} | finalize))
    analysis_run_execute_sync(run=call.analysis_runs.get())
    return Call.objects.get(pk=call.pk)


def test_a_summary_says_who_why_what_was_said_and_what_came_of_it(broker):
    call = analyzed(scenarios.SUPPORT)
    assert call.summary == (
        "Customer support call from James Smith about complaint. They said: “Hi, I want to make a complaint. "
        "The technician missed my appointment twice this week.” The agent handled the request on the call."
    )
    assert call.outcome == "resolved" and call.sentiment == "negative"


def test_the_outcome_follows_what_the_call_did(broker):
    from tickets.models import Ticket

    emergency = analyzed(scenarios.EMERGENCY)
    assert emergency.outcome == "resolved"  # the urgent ticket comes after the summary, from the rules
    assert Ticket.objects.filter(call=emergency).exists()
    transferred = analyzed(scenarios.CHECK_IN, end_reason="transfer")
    assert transferred.outcome == "transferred" and "transferred to a person" in transferred.summary
    silent = call_with_turns(scenarios.Scenario("silent", "dispatch", lines=[("agent", "Hello?")]))
    call_finalize(call_id=silent.pk, end_reason="caller_hangup")
    analysis_run_execute_sync(run=silent.analysis_runs.get())
    silent.refresh_from_db()
    assert silent.outcome == "no_conversation" and silent.summary.endswith("Nobody spoke on the call.")


def test_voicemail_and_unanswered_outbound_calls_say_so_whatever_was_said(broker):
    voicemail = call_with_turns(scenarios.CHECK_IN)
    Call.objects.filter(pk=voicemail.pk).update(direction=Call.Direction.OUTBOUND, answered_by="machine_end_beep")
    call_finalize(call_id=voicemail.pk, end_reason="voicemail")
    analysis_run_execute_sync(run=voicemail.analysis_runs.get())
    voicemail.refresh_from_db()
    assert voicemail.outcome == "voicemail" and voicemail.summary.endswith("the agent left its message.")
    busy = call_with_turns(scenarios.Scenario("busy", "dispatch", lines=[]))
    Call.objects.filter(pk=busy.pk).update(status=Call.Status.QUEUED, answered_at=None)
    call_finalize(call_id=busy.pk, status=Call.Status.BUSY, end_reason="busy")
    analysis_run_execute_sync(run=busy.analysis_runs.get())
    busy.refresh_from_db()
    assert (busy.status, busy.outcome) == (Call.Status.BUSY, "not_reached") and busy.summary.endswith("busy.")


@pytest.mark.parametrize("text,expected", [
    ("Thanks so much, that was really helpful, great service!", "positive"),
    ("This is ridiculous, I'm so frustrated, the worst service.", "negative"),
    ("I'm not happy at all, this is unacceptable.", "negative"),
    ("My account number is one two three.", "neutral"),
    ("No problem, thanks.", "neutral"),
])
def test_sentiment(text, expected):
    assert sentiment_of(text) == expected


def test_the_llm_writes_the_summary_when_configured(broker, loopback, settings):
    settings.LLM_BASE_URL = loopback.url + "/v1"
    loopback.reply_body = json.dumps({"choices": [{"message": {"content": json.dumps({
        "summary": "A driver reported a one-hour delay near Reno.", "outcome": "resolved", "sentiment": "neutral",
    })}}]}).encode()
    call = analyzed(scenarios.CHECK_IN)
    assert call.summary == "A driver reported a one-hour delay near Reno."
    summarize_request = json.loads(loopback.requests[0]["body"])
    assert loopback.requests[0]["path"] == "/v1/chat/completions"
    assert summarize_request["response_format"] == {"type": "json_object"}
    assert "Caller: Hi, I'm running about an hour late" in summarize_request["messages"][1]["content"]
    stage = call.analysis_runs.get().stages.get(name="summarize")
    assert stage.detail["method"] == "llm"


def test_the_llm_fills_the_schema_when_configured_and_is_validated_like_the_rules(broker, loopback, settings):
    settings.LLM_BASE_URL = loopback.url + "/v1"
    answers = [
        {"summary": "Late driver.", "outcome": "resolved", "sentiment": "neutral"},
        {"driver_status": "delayed", "delay_reason": "traffic", "injury_status": "bruised", "not_in_schema": 1},
    ]

    bodies = [json.dumps({"choices": [{"message": {"content": json.dumps(a)}}]}).encode() for a in answers]
    original = loopback.httpd.RequestHandlerClass.do_POST

    def do_post(handler):
        loopback.reply_body = bodies[min(len(loopback.requests), len(bodies) - 1)]
        original(handler)

    loopback.httpd.RequestHandlerClass.do_POST = do_post
    call = analyzed(scenarios.CHECK_IN)
    assert call.structured_data == {"driver_status": "delayed", "delay_reason": "traffic"}
    assert call.extraction_errors[0]["field"] == "injury_status" and call.extraction_errors[0]["value"] == "bruised"
    assert call.analysis_runs.get().stages.get(name="extract").detail["method"] == "llm"


def test_an_llm_that_fails_leaves_the_rules_in_charge(broker, settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens there
    settings.LLM_TIMEOUT_SECONDS = 0.2
    call = analyzed(scenarios.CHECK_IN)
    assert call.analysis_status == "done" and call.structured_data["driver_status"] == "delayed"
    stages = {s.name: s.detail.get("method") for s in call.analysis_runs.get().stages.all()}
    assert stages["summarize"] == "deterministic" and stages["extract"] == "rules"


def test_conversation_turns_merge_a_speakers_pauses():
    conversation = Conversation([Utterance("caller", "I'm late.", 1.0), Utterance("caller", "Traffic.", 2.0),
                                 Utterance("agent", "OK.", 3.0)], "recording")
    assert [(t.speaker, t.text, t.start) for t in conversation.turns()] == [
        ("caller", "I'm late. Traffic.", 1.0), ("agent", "OK.", 3.0)]
    assert conversation.as_text() == "Caller: I'm late. Traffic.\nAgent: OK."
