import json

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from agents.deterministic import DeterministicEngine
from agents.engine import CallContext, DialogReply
from agents.flows import DEFAULT_FLOWS, default_flow
from agents.models import AgentConfig
from agents.recorder import MemoryRecorder
from agents.registry import get_dialog_engine
from agents.tests.factories import AgentConfigFactory, CustomerFactory
from agents.validators import flow_errors
from calls.models import Call, CallEvent
from calls.recorder import CallRecorderService
from calls.services import call_start
from core.text import SentenceBuffer, split_sentences
from voicecrm.demo.agents import DEMO_AGENTS

pytestmark = pytest.mark.django_db

MINI_FLOW = {
    "start": "ask_colour",
    "phrases": {"favourite_colour": ["my favourite colour", "favorite color"]},
    "global": [{"intent": "goodbye", "goto": "bye"}],
    "steps": {
        "ask_colour": {"type": "ask", "slot": "colour", "entity": "text", "prompt": "What's your favourite colour?", "next": "confirm"},
        "confirm": {"type": "confirm", "prompt": "You said {slots.colour}. Is that right?", "yes": "thanks", "no": "again"},
        "again": {"type": "set", "clear": ["colour"], "next": "ask_colour"},
        "thanks": {"type": "end", "reason": "colour_known", "say": "Lovely, {slots.colour} it is."},
        "bye": {"type": "end", "reason": "caller_goodbye"},
    },
}


def talk(agent, *lines, caller_number=""):
    engine = DeterministicEngine()
    ctx = CallContext(agent=agent, call_id=None, caller_number=caller_number)
    replies = [engine.start(ctx)]
    ctx.remember(replies[0])
    for line in lines:
        reply = engine.respond(ctx, text=line)
        ctx.remember(reply, caller_text=line)
        replies.append(reply)
    return ctx, replies


def test_a_supervisor_flow_drives_the_conversation_without_code():
    agent = AgentConfigFactory(flow=MINI_FLOW, greeting="Hi!")
    ctx, replies = talk(agent, "blue", "no", "green", "yes")
    assert replies[0].sentences == ["Hi!", "What's your favourite colour?"]
    assert replies[1].text == "You said blue. Is that right?"
    assert replies[3].text == "You said green. Is that right?"
    assert replies[4].text == "Lovely, green it is." and replies[4].action == "end_call" and replies[4].action_reason == "colour_known"
    json.dumps(ctx.state)  # the state stays JSON


def test_the_caller_id_is_looked_up_before_the_greeting_and_logged():
    customer = CustomerFactory(phone="+14155550123", first_name="Ada")
    agent = AgentConfigFactory(greeting="Thanks for calling.")
    call = call_start(channel=Call.Channel.TEXT, agent=agent, from_number="+14155550123")
    ctx = CallContext(agent=agent, call_id=call.pk, caller_number="(415) 555-0123", recorder=CallRecorderService(call))
    reply = DeterministicEngine().start(ctx)
    # Caller ID can be spoofed: the match identifies the caller, but the greeting says nothing of it.
    assert reply.sentences[0] == "Thanks for calling." and "Ada" not in reply.text and reply.customer_id == customer.pk
    assert reply.state["identity"] == {"customer_id": customer.pk, "verified": False, "attempts": 0, "locked": False, "method": "caller_id"}
    call.refresh_from_db()
    assert call.customer == customer
    assert CallEvent.objects.filter(call=call, kind="action", name="caller_id_match").exists()
    assert not CallEvent.objects.filter(call=call, name="customer_verified").exists()


def test_an_agent_that_trusts_caller_id_verifies_and_greets_by_name():
    customer = CustomerFactory(phone="+14155550125", first_name="Ada")
    agent = AgentConfigFactory(greeting="Thanks for calling.", trust_caller_id=True)
    call = call_start(channel=Call.Channel.TEXT, agent=agent, from_number="+14155550125")
    ctx = CallContext(agent=agent, call_id=call.pk, caller_number="+14155550125", recorder=CallRecorderService(call))
    reply = DeterministicEngine().start(ctx)
    assert reply.sentences[0] == "Hi Ada." and reply.state["identity"]["verified"] is True
    event = CallEvent.objects.get(call=call, name="customer_verified")
    assert event.payload == {"customer_id": customer.pk, "method": "caller_id"}


def test_no_template_says_the_customers_name_before_verification():
    CustomerFactory(account_number="55123", first_name="Grace", date_of_birth="1985-05-05")
    flow = {"start": "ask", "steps": {
        "ask": {"type": "ask", "slot": "account_number", "entity": "account_number", "prompt": "Account?", "next": "find"},
        "find": {"type": "tool", "tool": "find_customer", "args": {"account_number": "{slots.account_number}"}, "next": "hi"},
        "hi": {"type": "ask", "slot": "dob", "entity": "date_of_birth", "prompt": "Hello {customer.first_name}, date of birth?",
               "next": "verify"},
        "verify": {"type": "tool", "tool": "verify_customer", "args": {"date_of_birth": "{slots.dob}"}, "next": "bye"},
        "bye": {"type": "end", "say": "Thanks {customer.first_name}."},
    }}
    agent = AgentConfigFactory(flow=flow, greeting="Hi.")
    _, replies = talk(agent, "55123", "5th of May 1985")
    assert replies[1].text == "Hello , date of birth?" and "Grace" not in replies[1].text
    assert replies[2].text == "Thanks Grace."


def test_the_caller_id_match_is_reported_to_the_recorder():
    customer = CustomerFactory(phone="+14155550124", first_name="Lin")
    recorder = MemoryRecorder()
    reply = DeterministicEngine().start(CallContext(agent=AgentConfigFactory(), caller_number="415 555 0124", recorder=recorder))
    assert reply.customer_id == customer.pk
    assert recorder.customers == [(customer.pk, "caller_id")]
    assert recorder.events == [("action", "caller_id_match", {"customer_id": customer.pk, "phone": "+14155550124"})]


def test_verification_is_required_unless_the_flow_says_otherwise():
    from agents.tools.base import agent_verifies_callers

    # Even an agent without verify_customer: the default is on.
    agent = AgentConfigFactory.build(enabled_tools=["find_customer"], flow={})
    assert agent_verifies_callers(CallContext(agent=agent))
    agent.flow = {"identity": {"require_verification": False}}
    assert not agent_verifies_callers(CallContext(agent=agent))


def test_an_unknown_caller_id_gets_the_plain_greeting():
    agent = AgentConfigFactory(greeting="Hello, Northwind.")
    reply = DeterministicEngine().start(CallContext(agent=agent, call_id=None, caller_number="anonymous"))
    assert reply.sentences == ["Hello, Northwind."] and reply.customer_id is None


def test_an_outbound_call_greets_with_the_context_it_was_placed_with():
    agent = AgentConfigFactory(greeting="Hello, dispatch.", flow={
        **MINI_FLOW, "greeting_outbound": "Hi {context.driver_name}, checking in on load {context.load_number}."})
    variables = {"driver_name": "Sam", "load_number": "L-1042"}
    outbound = DeterministicEngine().start(CallContext(agent=agent, direction="outbound", variables=variables))
    assert outbound.sentences[0] == "Hi Sam, checking in on load L-1042."
    # The same agent answering a call greets as usual; a missing variable renders empty.
    assert DeterministicEngine().start(CallContext(agent=agent)).sentences[0] == "Hello, dispatch."
    bare = DeterministicEngine().start(CallContext(agent=agent, direction="outbound"))
    assert bare.sentences[0] == "Hi , checking in on load ."


def test_the_caller_state_is_not_changed_in_place():
    agent = AgentConfigFactory(flow=MINI_FLOW)
    ctx = CallContext(agent=agent, call_id=None)
    ctx.remember(DeterministicEngine().start(ctx))
    before = json.dumps(ctx.state, sort_keys=True)
    state = ctx.state
    reply = DeterministicEngine().respond(ctx, text="red")
    assert json.dumps(state, sort_keys=True) == before and reply.state["slots"]["colour"] == "red"


def test_stream_yields_sentences_then_the_reply():
    agent = AgentConfigFactory(flow=MINI_FLOW)
    ctx = CallContext(agent=agent, call_id=None)
    ctx.remember(DeterministicEngine().start(ctx))
    items = list(DeterministicEngine().stream(ctx, text="purple"))
    assert items[:-1] == ["You said purple.", "Is that right?"] and isinstance(items[-1], DialogReply)


def test_emergency_words_switch_flows_at_any_step():
    agent = AgentConfigFactory(scenario="driver_check_in")
    _, replies = talk(agent, "I'm loading at the shipper", "my truck is on fire")
    assert replies[2].intent == "emergency" and "are you safe" in replies[2].text.lower()


def test_dtmf_zero_reaches_a_person_on_the_support_flow():
    agent = AgentConfigFactory(flow=default_flow("customer_service"))
    ctx = CallContext(agent=agent, call_id=None)
    ctx.remember(DeterministicEngine().start(ctx))
    reply = DeterministicEngine().respond(ctx, dtmf="0")
    assert reply.action == "transfer"


def test_a_finished_conversation_stays_finished():
    agent = AgentConfigFactory(flow=MINI_FLOW)
    ctx, replies = talk(agent, "bye")
    assert replies[-1].action == "end_call"
    again = DeterministicEngine().respond(ctx, text="hello?")
    assert again.sentences == [] and again.tool_calls == []


@pytest.mark.parametrize("scenario", sorted(DEFAULT_FLOWS))
def test_built_in_and_demo_flows_are_valid(scenario):
    assert flow_errors(DEFAULT_FLOWS[scenario]) == []
    demo = next(a for a in DEMO_AGENTS if a["scenario"] == scenario)
    assert flow_errors(demo["flow"]) == []
    assert AgentConfig.objects.create(**demo).flow == demo["flow"]


@pytest.mark.parametrize("change, message", [
    (lambda f: f.update(start="nowhere"), "there is no step 'nowhere'"),
    (lambda f: f["steps"]["ask_colour"].update(entity="colourz"), "unknown entity 'colourz'"),
    (lambda f: f["steps"]["ask_colour"].update(prompt="Hi {slot.colour}"), "unknown name {slot.colour}"),
    (lambda f: f["steps"]["ask_colour"].update(prompt="Hi {slots.colour"), "bad template"),
    (lambda f: f["steps"].update(t={"type": "tool", "tool": "launch_rocket", "next": "bye"}), "unknown tool 'launch_rocket'"),
    (lambda f: f["steps"].update(b={"type": "branch", "next": [{"if": {"var": "slots.x", "approx": 1}, "goto": "bye"}]}), "operators"),
    (lambda f: f["steps"]["confirm"].pop("yes"), "needs \"yes\""),
    (lambda f: f["steps"]["thanks"].update(type="teleport"), "is not one of"),
])
def test_a_broken_flow_is_refused_on_save_with_a_reason(change, message):
    flow = json.loads(json.dumps(MINI_FLOW))
    change(flow)
    with pytest.raises(ValidationError) as error:
        AgentConfigFactory(flow=flow)
    assert message in " ".join(error.value.messages)
    assert not AgentConfig.objects.exists()


def test_an_empty_flow_uses_the_scenario_default():
    agent = AgentConfigFactory(scenario="lead_qualification", flow={}, greeting="Is now a good time?")
    _, replies = talk(agent, "yes")
    assert "full name" in replies[1].text


def test_get_dialog_engine_follows_settings():
    get_dialog_engine.cache_clear()
    assert isinstance(get_dialog_engine(), DeterministicEngine)
    with override_settings(LLM_BASE_URL="http://127.0.0.1:9/v1"):
        get_dialog_engine.cache_clear()
        from agents.llm import LLMEngine

        engine = get_dialog_engine()
        assert isinstance(engine, LLMEngine) and isinstance(engine.fallback, DeterministicEngine)
    get_dialog_engine.cache_clear()


def test_dialog_engine_names_a_class_or_a_factory():
    from agents.llm import LLMEngine
    from agents.registry import default_dialog_engine

    try:
        with override_settings(DIALOG_ENGINE="agents.deterministic.DeterministicEngine", LLM_BASE_URL="http://127.0.0.1:9/v1"):
            get_dialog_engine.cache_clear()
            # Named explicitly, the deterministic engine is not wrapped in the LLM one.
            assert type(get_dialog_engine()) is DeterministicEngine
            assert isinstance(default_dialog_engine(), LLMEngine)
        with override_settings(LLM_BASE_URL=None):
            assert type(default_dialog_engine()) is DeterministicEngine
    finally:
        get_dialog_engine.cache_clear()


def test_sentences_are_split_for_speech():
    assert split_sentences("You owe $42.50 today. Dr. Who is at 10 a.m. on Monday! Anything else?") == [
        "You owe $42.50 today.", "Dr. Who is at 10 a.m. on Monday!", "Anything else?"]
    buffer = SentenceBuffer()
    assert buffer.feed("Hello the") == [] and buffer.feed("re. How are") == ["Hello there."]
    assert buffer.flush() == ["How are"]


ODD_INPUTS = [
    "", " ", "{slots.colour}", "{customer.__class__}", "%s %d", "'; DROP TABLE customers; --", "\x00\x01", "🙂🙂🙂",
    "مرحبا", "9" * 400, "one " * 300, "yes no yes no", "?", "...", "<script>alert(1)</script>", "\n\n\t",
]


@pytest.mark.parametrize("spec", DEMO_AGENTS, ids=[a["slug"] for a in DEMO_AGENTS])
def test_odd_input_never_breaks_a_demo_agent(spec):
    agent = AgentConfig.objects.create(**spec)
    engine = DeterministicEngine()
    ctx = CallContext(agent=agent, call_id=None)
    ctx.remember(engine.start(ctx))
    for text in ODD_INPUTS:
        reply = engine.respond(ctx, text=text)
        json.dumps(reply.state)
        assert "{" not in reply.text or "{" in text
        ctx.remember(reply, caller_text=text)
        if reply.action:
            break


def test_the_voicemail_message_reads_the_calls_context():
    from agents.deterministic import voicemail_text

    agent = AgentConfigFactory(name="Dispatch", voicemail_message="Hi {context.driver_name}, {agent.name} here about "
                                                                  "load {context.load_number}. Please call back.")
    assert voicemail_text(agent, {"driver_name": "Sam", "load_number": "L-7"}) == (
        "Hi Sam, Dispatch here about load L-7. Please call back.")
    assert voicemail_text(agent, {}) == "Hi, Dispatch here about load. Please call back."
    agent.voicemail_message = "Hi {context.}, call {context.driver_name.first} back {"  # unreadable fields left out
    assert voicemail_text(agent, {"driver_name": "Sam"}) == "Hi, call back"
    agent.voicemail_message = "  "
    assert voicemail_text(agent, {"driver_name": "Sam"}) == ""
