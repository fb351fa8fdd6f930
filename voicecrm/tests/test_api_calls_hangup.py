"""POST /api/v1/calls/{id}/hangup/ on a browser call, end to end: the widget's real consumer and
voice session, ended by the heartbeat of the process that serves the call, whether the API request
is served by that process (at once) or by another one (a real daphne, within one heartbeat)."""

import asyncio
import json
import time

import aiohttp
import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import override_settings

from agents.tests.factories import AgentConfigFactory
from calls.models import Call, CallEvent
from calls.session import live
from telephony.browser.tests.conftest import SHOP, communicator
from telephony.browser.tests.live import LiveDaphne
from telephony.browser.tests.test_protocol import Client
from telephony.models import Route
from voicecrm.tests.test_api import api_as

pytestmark = pytest.mark.django_db(transaction=True)

CLOSING = "Thanks for calling dispatch, goodbye."


@pytest.fixture(autouse=True)
def roles():
    """Transactional tests start from an empty database: the role groups the migrations made are gone."""
    from django.apps import apps

    from core.roles import roles_sync

    roles_sync(apps)


@pytest.fixture(autouse=True)
def queued_pipeline():
    """The post-call pipeline stays queued (eager, it would transcribe the recording in the session's thread)."""
    from voicecrm.celery import app

    eager, url = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager, app.conf.broker_url = False, "memory://"
    yield
    app.conf.task_always_eager, app.conf.broker_url = eager, url


@pytest.fixture
def route(transactional_db):
    agent = AgentConfigFactory(slug="dispatch", name="Dispatch", greeting="Hi.", closing=CLOSING,
                               silence_reprompt_seconds=60, silence_hangup_seconds=120)
    return Route.objects.create(kind=Route.Kind.WIDGET_KEY, address="test-key", agent=agent, allowed_origins=SHOP)


def hang_up_through_the_api(user, call_id: str) -> int:
    try:
        return api_as(user).post(f"/api/v1/calls/{call_id}/hangup/").status_code
    finally:
        connection.close()  # this thread's connection, so the test database can be dropped


def stored_call(call_id: str) -> Call:
    try:
        return Call.objects.get(public_id=call_id)
    finally:
        connection.close()


@override_settings(STT_ENGINE="calls.speech.fake.FakeSttEngine", TTS_ENGINE="calls.speech.fake.FakeTtsEngine",
                   CALL_HEARTBEAT_SECONDS=60.0)
async def test_a_browser_call_served_here_ends_at_once_with_the_agents_closing_line(route, bob):
    live._reset_for_tests()
    client = Client(communicator())
    ready = await client.start()
    await client.until(lambda e: e["type"] == "state" and e["state"] == "listening")

    # The next beat is a minute away: only the request's own wake-up can end the call in time.
    assert await sync_to_async(hang_up_through_the_api, thread_sensitive=False)(bob, ready["call_id"]) == 202
    goodbye = await client.until(lambda e: e["type"] == "agent_text", timeout=10)
    ended = await client.until(lambda e: e["type"] == "ended", timeout=10)
    assert goodbye["text"] == CLOSING
    assert ended == {"type": "ended", "reason": "staff_hangup", "call_id": ready["call_id"]}
    await client.until(lambda e: e["type"] == "websocket.close", timeout=5)
    await client.comm.disconnect(timeout=20)

    call = await sync_to_async(stored_call, thread_sensitive=False)(ready["call_id"])
    assert call.status == Call.Status.COMPLETED and call.end_reason == "staff_hangup"
    assert await CallEvent.objects.filter(call=call, name="hangup_requested", payload={"by": "bob"}).aexists()


# --- across processes --------------------------------------------------------------------------------


@pytest.fixture
def daphne_port(transactional_db, monkeypatch):
    monkeypatch.setenv("CALL_HEARTBEAT_SECONDS", "0.5")  # read by the spawned server at start
    server = LiveDaphne(host="127.0.0.1", database_name=connection.settings_dict["NAME"], sample_rates=(16000,))
    server.start()
    try:
        yield server.wait_ready()
    finally:
        server.stop()


async def widget_events(socket, until: str, *, timeout: float = 60.0) -> list[dict]:
    events, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await socket.receive(timeout=deadline - time.monotonic())
        if message.type == aiohttp.WSMsgType.TEXT:
            events.append(json.loads(message.data))
            if events[-1]["type"] == until:
                return events
        elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            raise AssertionError(f"closed before {until}: {events}")
    raise AssertionError(f"no {until} within {timeout} s: {events}")


@pytest.mark.slow
async def test_a_browser_call_served_by_another_process_ends_within_a_heartbeat(route, sam, daphne_port):
    async with aiohttp.ClientSession() as http, http.ws_connect(
            f"ws://127.0.0.1:{daphne_port}/ws/voice/test-key/", headers={"Origin": SHOP}) as socket:
        await socket.send_str(json.dumps({"type": "start", "sample_rate": 16000, "mode": "continuous"}))
        ready = (await widget_events(socket, "ready"))[-1]
        # Whisper and Piper, as in production: the greeting is spoken before the agent listens.
        while not any(e.get("state") == "listening" for e in await widget_events(socket, "state")):
            pass

        status = await sync_to_async(hang_up_through_the_api, thread_sensitive=False)(sam, ready["call_id"])
        assert status == 202
        events = await asyncio.wait_for(widget_events(socket, "ended"), 30)
        assert [e["text"] for e in events if e["type"] == "agent_text"] == [CLOSING]
        assert events[-1] == {"type": "ended", "reason": "staff_hangup", "call_id": ready["call_id"]}

    call = None
    for _ in range(100):  # the server finalizes the call as the socket closes
        call = await sync_to_async(stored_call, thread_sensitive=False)(ready["call_id"])
        if call.ended_at:
            break
        await asyncio.sleep(0.1)
    assert call.status == Call.Status.COMPLETED and call.end_reason == "staff_hangup"
