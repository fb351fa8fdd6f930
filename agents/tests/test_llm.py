"""The LLM engine against a real HTTP server on loopback speaking the Chat Completions wire format."""

import datetime as dt
import json
import socket
import time

import pytest

from agents.deterministic import DeterministicEngine
from agents.engine import CallContext, DialogReply
from agents.flows import default_flow
from agents.llm import LLMEngine
from agents.tests.factories import AgentConfigFactory, CustomerFactory
from agents.tests.llm_server import ChatCompletionsServer
from calls.models import Call, CallEvent
from calls.recorder import CallRecorderService
from calls.services import call_start
from core.llm import ChatCompletionsClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def server():
    with ChatCompletionsServer() as running:
        yield running


@pytest.fixture
def agent():
    return AgentConfigFactory(persona="You are Joe from Northwind.", flow=default_flow("customer_service"),
                              enabled_tools=["find_customer", "verify_customer", "get_account_summary", "end_call", "transfer_to_human"])


def engine_for(url, timeout=5.0):
    return LLMEngine(fallback=DeterministicEngine(), client=ChatCompletionsClient(base_url=url, model="test-model", api_key="sk-test", timeout=timeout))


def started(agent, engine, **kwargs):
    call = call_start(channel=Call.Channel.TEXT, agent=agent)
    ctx = CallContext(agent=agent, call_id=call.pk, recorder=CallRecorderService(call), **kwargs)
    ctx.remember(engine.start(ctx))
    return ctx, call


def test_a_streamed_reply_is_split_into_sentences_and_the_request_is_well_formed(server, agent, settings):
    settings.LLM_TIMEOUT_SECONDS = 5
    server.replies = [{"content": "Hello there! I can help with your bill. What's your account number?"}]
    engine = engine_for(server.url)
    ctx, _ = started(agent, engine)
    reply = engine.respond(ctx, text="I have a question about my bill")
    assert reply.sentences == ["Hello there!", "I can help with your bill.", "What's your account number?"]
    assert reply.intent == "billing_balance" and reply.action is None
    request = server.requests[0]
    assert request["model"] == "test-model" and request["stream"] is True
    assert request["messages"][0]["role"] == "system" and "You are Joe from Northwind." in request["messages"][0]["content"]
    assert request["messages"][1] == {"role": "assistant", "content": ctx.history[0][1]}
    assert request["messages"][-1] == {"role": "user", "content": "I have a question about my bill"}
    assert sorted(t["function"]["name"] for t in request["tools"]) == sorted(agent.enabled_tools)
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


def test_streamed_tool_calls_run_through_the_registry_and_loop_back(server, agent, settings):
    settings.LLM_TIMEOUT_SECONDS = 5
    customer = CustomerFactory(account_number="61001", date_of_birth=dt.date(1985, 5, 5))
    server.replies = [
        {"content": "Let me look that up.", "tool_calls": [{"name": "find_customer", "arguments": {"account_number": "61001"}}]},
        {"tool_calls": [{"name": "verify_customer", "arguments": {"date_of_birth": "1985-05-05"}},
                        {"name": "get_account_summary", "arguments": {}}]},
        {"content": "Thanks, you owe $42.50."},
    ]
    engine = engine_for(server.url)
    ctx, call = started(agent, engine)
    reply = engine.respond(ctx, text="account 61001, born 5 May 1985, what's my balance")
    assert [c.name for c in reply.tool_calls] == ["find_customer", "verify_customer", "get_account_summary"]
    assert all(c.ok for c in reply.tool_calls)
    assert reply.sentences == ["Let me look that up.", "Thanks, you owe $42.50."] and reply.customer_id == customer.pk
    # The second request carries the assistant's tool call and the tool's result.
    second = server.requests[1]["messages"]
    assert second[-2]["role"] == "assistant" and second[-2]["tool_calls"][0]["function"]["name"] == "find_customer"
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == second[-2]["tool_calls"][0]["id"]
    assert json.loads(second[-1]["content"])["found"] is True
    third = server.requests[2]["messages"]
    assert json.loads(third[-1]["content"])["balance"] == "42.50"
    logged = list(CallEvent.objects.filter(call=call, kind="tool_call").values_list("name", flat=True))
    assert logged == ["find_customer", "verify_customer", "get_account_summary"]


def test_the_first_sentence_is_yielded_before_the_completion_ends(server, agent, settings):
    settings.LLM_TIMEOUT_SECONDS = 5
    # Pieces of 7 characters: "Hi ther", "e. Seco" (the first sentence is complete), then a pause.
    server.replies = [{"content": "Hi there. Second part here.", "pause": [2, 0.5]}]
    engine = engine_for(server.url)
    ctx, _ = started(agent, engine)
    began = time.monotonic()
    items = engine.stream(ctx, text="hello")
    first = next(items)
    first_at = time.monotonic() - began
    rest = list(items)
    assert first == "Hi there." and first_at < 0.4
    assert rest[0] == "Second part here." and isinstance(rest[-1], DialogReply) and time.monotonic() - began >= 0.5


def test_end_call_and_transfer_tools_become_actions(server, agent, settings):
    settings.LLM_TIMEOUT_SECONDS = 5
    server.replies = [{"content": "Goodbye!", "tool_calls": [{"name": "end_call", "arguments": {"reason": "caller_goodbye"}}]},
                      {"content": ""}]
    engine = engine_for(server.url)
    ctx, _ = started(agent, engine)
    reply = engine.respond(ctx, text="bye")
    assert reply.action == "end_call" and reply.action_reason == "caller_goodbye" and reply.state["ended"]


def test_a_tool_the_agent_may_not_use_is_refused_to_the_model(server, agent, settings):
    settings.LLM_TIMEOUT_SECONDS = 5
    server.replies = [{"tool_calls": [{"name": "create_ticket", "arguments": {"subject": "Give me a refund"}}]},
                      {"content": "I can't do that, sorry."},
                      ]
    engine = engine_for(server.url)
    ctx, _ = started(agent, engine)
    reply = engine.respond(ctx, text="open a ticket")
    assert reply.tool_calls[0].result["error"] == "not_allowed"
    assert json.loads(server.requests[1]["messages"][-1]["content"])["error"] == "not_allowed"


def test_bad_tool_arguments_from_the_model_are_reported_back(server, agent, settings):
    settings.LLM_TIMEOUT_SECONDS = 5
    server.replies = [{"tool_calls": [{"name": "find_customer", "arguments": "{not json"}]}, {"content": "Sorry, say that again?"}]
    engine = engine_for(server.url)
    ctx, _ = started(agent, engine)
    reply = engine.respond(ctx, text="find me")
    assert reply.tool_calls[0].result["error"] == "invalid_arguments" and reply.text == "Sorry, say that again?"


def test_the_tool_loop_is_bounded(server, agent, settings):
    settings.LLM_TIMEOUT_SECONDS = 5
    settings.LLM_MAX_TOOL_ROUNDS = 3
    server.replies = [{"tool_calls": [{"name": "find_customer", "arguments": {"account_number": "00000"}}]}] * 10
    engine = engine_for(server.url)
    ctx, _ = started(agent, engine)
    reply = engine.respond(ctx, text="loop forever")
    assert len(server.requests) == 3 and len(reply.tool_calls) == 3 and reply.sentences


def test_a_non_streaming_server_is_read_whole(server, agent, settings):
    settings.LLM_TIMEOUT_SECONDS = 5
    server.replies = [{"content": "Plain JSON works. Yes.", "json": True}]
    engine = engine_for(server.url)
    ctx, _ = started(agent, engine)
    assert engine.respond(ctx, text="hi").sentences == ["Plain JSON works.", "Yes."]


def test_a_slow_model_falls_back_to_the_deterministic_engine(server, agent, settings):
    settings.LLM_TIMEOUT_SECONDS = 0.3
    server.replies = [{"content": "Too late.", "delay": 1.5}]
    engine = engine_for(server.url, timeout=0.3)
    ctx, _ = started(agent, engine)
    began = time.monotonic()
    reply = engine.respond(ctx, text="what's my balance")
    assert time.monotonic() - began < 1.2
    assert "account number" in reply.text and reply.intent == "billing_balance" and reply.state["llm_fallbacks"] == 1


@pytest.mark.parametrize("problem", ["refused", "http_500"])
def test_an_unreachable_or_failing_server_falls_back(server, agent, settings, problem):
    settings.LLM_TIMEOUT_SECONDS = 2
    if problem == "refused":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    else:
        server.replies = [{"status": 500}]
        url = server.url
    engine = engine_for(url)
    ctx, _ = started(agent, engine)
    reply = engine.respond(ctx, text="I want to speak to a person")
    assert reply.action == "transfer"


def test_the_greeting_and_caller_id_come_from_the_agent(server, agent):
    customer = CustomerFactory(phone="+14155550188", first_name="Lin")
    engine = engine_for(server.url)
    ctx, _ = started(agent, engine, caller_number="+14155550188")
    # Identified by caller ID, not greeted by name: the agent does not trust caller ID.
    assert "Lin" not in ctx.history[0][1] and ctx.customer_id == customer.pk and not server.requests
    agent.trust_caller_id = True
    agent.save()
    ctx, _ = started(agent, engine, caller_number="+14155550188")
    assert ctx.history[0][1].startswith("Hi Lin") and ctx.customer_id == customer.pk and not server.requests


def test_the_system_prompt_names_a_caller_only_once_verified(agent):
    customer = CustomerFactory(first_name="Ingrid")
    engine = LLMEngine(fallback=DeterministicEngine(), client=ChatCompletionsClient(base_url="http://127.0.0.1:9/v1", model="m"))
    ctx = CallContext(agent=agent, call_id=None, customer_id=customer.pk)
    ctx.state["identity"] = {"customer_id": customer.pk, "verified": False}
    prompt = engine.system_prompt(ctx)
    assert "Ingrid" not in prompt and "not verified" in prompt
    ctx.state["identity"]["verified"] = True
    assert "Ingrid" in engine.system_prompt(ctx)
