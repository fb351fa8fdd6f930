"""Twilio Media Streams end to end: a real daphne (spawned, as production runs it), the real
voice session with Whisper and Piper and the deterministic dialog engine, PostgreSQL and the
Redis channel layer; a client that plays Twilio over a real WebSocket, streaming Asterisk
telephone prompts as μ-law, and the rows the call leaves behind."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

from agents.tests.factories import AgentConfigFactory
from calls.models import Call, CallEvent, Turn
from telephony.browser.tests.live import LiveDaphne
from telephony.twilio import media

from .media_stream import AiohttpWire, MediaStreamClient, prompt_ulaw, signature, twilio_call

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TOKEN = "live-test-auth-token"
PUBLIC = "https://crm.example"  # what Twilio calls: the proxy in front of daphne
GREETING = ("Thank you for calling the test line. This call may be recorded to improve our service. "
            "You can ask about orders, appointments and your account. How can I help you today?")


@pytest.fixture(scope="module")
def daphne_port(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        database_name = connection.settings_dict["NAME"]
    with pytest.MonkeyPatch.context() as env:
        # The server reads these at start (the spawned process inherits the environment).
        env.setenv("TWILIO_AUTH_TOKEN", TOKEN)
        env.setenv("PUBLIC_BASE_URL", PUBLIC)
        env.setenv("TELEPHONY_TWILIO_PROVIDER", "telephony.fake.FakeProvider")
        server = LiveDaphne(host="127.0.0.1", database_name=database_name, sample_rates=(8000,))
        server.start()
    try:
        yield server.wait_ready()
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def line_settings(settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.PUBLIC_BASE_URL = PUBLIC


@pytest.fixture(autouse=True)
def calls_settled(transactional_db):
    """After each test, wait until the server has finalized its calls and its queries have
    ended, so none of its writes races the flush that ends the test."""
    yield
    wait_db(lambda: not Call.objects.filter(status=Call.Status.IN_PROGRESS).exists(), "the calls to be finalized")
    wait_db(lambda: _others_quiet() and (time.sleep(0.3) or _others_quiet()), "the server's queries to end")


def wait_db(predicate, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _others_quiet() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() AND state <> 'idle'")
        return cursor.fetchone()[0] == 0


@pytest.fixture
def agent(transactional_db):
    return AgentConfigFactory(
        greeting=GREETING, endpointing_silence_ms=300, silence_reprompt_seconds=60, silence_hangup_seconds=120,
        max_call_seconds=300, barge_in_enabled=True, barge_in_min_ms=200,
    )


def client_for(port: int, call, **kwargs) -> MediaStreamClient:
    wire = AiohttpWire(f"ws://127.0.0.1:{port}/ws/telephony/twilio/media/", headers={"X-Twilio-Signature": signature()})
    return MediaStreamClient.for_call(wire, call, **kwargs)


def finalized(call) -> tuple[Call, list[Turn], list[CallEvent]]:
    call = wait_db(lambda: Call.objects.filter(pk=call.pk, ended_at__isnull=False).first(), "the call's end")
    return call, list(call.turns.order_by("index")), list(call.events.order_by("pk"))


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


async def test_a_phone_call_through_daphne_with_the_real_engines(agent, daphne_port):
    call = await sync_to_async(twilio_call)(agent)
    client = client_for(daphne_port, call)
    assert await client.open()
    try:
        greeting_over = await client.reply_over(after=0.0, timeout=60)
        # A mark after each of the greeting's sentences, each echoed once Twilio played up to it.
        assert len(client.marks) >= 4
        await client.until(lambda: len(client.echoes) == len(client.marks), what="every mark echoed")
        assert [name for _, name in client.echoes] == [name for _, name, _ in client.marks]

        spoken_at = await client.say(prompt_ulaw("conf-now-recording"))  # "The conference is now being recorded."
        answer_over = await client.reply_over(after=spoken_at, timeout=30)
        assert client.audible_after(spoken_at) is not None

        for digit in "12#":
            await client.dtmf(digit)
        keys_over = await client.reply_over(after=answer_over + 0.01, timeout=30)

        # The caller hangs up while the agent answers the next question.
        spoken_at = await client.say(prompt_ulaw("vm-goodbye"))  # "Goodbye."
        await client.until(lambda: client.audible_after(max(spoken_at, keys_over)), timeout=30,
                           what="the next answer's first sound")
        await client.stop()
        assert await client.until_closed() == media.CLOSE_NORMAL
    finally:
        await client.close()
    assert greeting_over < answer_over < keys_over

    call, turns, events = await sync_to_async(finalized)(call)
    assert call.status == Call.Status.COMPLETED and call.end_reason == "caller_hangup"
    caller = [t for t in turns if t.speaker == Turn.Speaker.CALLER]
    assert {"conference", "recorded"} <= set(words(caller[0].text)), caller[0].text  # Whisper heard the line
    assert caller[1].text == "12" and caller[1].intent == "dtmf"
    assert "goodbye" in words(caller[2].text)
    agent_turns = [t for t in turns if t.speaker == Turn.Speaker.AGENT and t.intent != "filler"]
    assert agent_turns[0].text == GREETING and not agent_turns[0].interrupted
    assert len(agent_turns) == 4 and agent_turns[-1].partial  # cut off by the hang-up, kept and flagged
    assert len(agent_turns[-1].heard_text) < len(agent_turns[-1].text)
    assert agent_turns[1].voice_to_voice_ms is not None
    assert [e.name for e in events if e.kind == CallEvent.Kind.STATUS_CHANGE].count("completed") == 1
    assert not [e for e in events if e.kind == CallEvent.Kind.ERROR]
    assert call.recording  # both sides, stored by the session


async def test_a_barge_in_clears_twilio_and_keeps_what_was_really_heard(agent, daphne_port):
    call = await sync_to_async(twilio_call)(agent)
    # A line that plays a full second behind what it is sent: only the mark echoes tell the
    # server how much of the greeting the caller has heard.
    client = client_for(daphne_port, call, lag_s=1.0)
    assert await client.open()
    try:
        await client.until(lambda: client.echoes, timeout=60, what="the first sentence played")
        await asyncio.sleep(1.0)
        spoken_at = await client.say(prompt_ulaw("conf-now-recording"))
        clear = (await client.until(lambda: client.clears, timeout=30, what="the clear"))[0]
        await client.reply_over(after=spoken_at, timeout=30)
        await client.stop()
        await client.until_closed()
    finally:
        await client.close()
    assert clear.dropped > 0  # Twilio had agent audio buffered that the caller never heard

    call, turns, events = await sync_to_async(finalized)(call)
    greeting = turns[0]
    assert greeting.interrupted and greeting.text == GREETING
    heard = greeting.heard_text.split()
    assert 0 < len(heard) < len(GREETING.split()) and GREETING.split()[:len(heard)] == heard
    barge_in = next(e.payload for e in events if e.kind == CallEvent.Kind.BARGE_IN)
    assert barge_in["heard_text"] == greeting.heard_text
    played_ms, sent_ms = clear.played * 20, clear.received * 20
    print(f"barge-in: the line played {played_ms} ms, the server counts {barge_in['played_ms']} ms heard, "
          f"{sent_ms} ms sent; heard: {greeting.heard_text!r}")
    # What the server counts as heard follows the client's playback, a second behind what it sent.
    assert abs(barge_in["played_ms"] - played_ms) <= 300, (barge_in, played_ms, sent_ms)
    assert sent_ms - barge_in["played_ms"] >= 600
    assert "conference" in words(turns[1].text) and turns[1].speaker == Turn.Speaker.CALLER


async def test_an_answering_machine_gets_the_message_and_the_call_ends(agent, daphne_port):
    call = await sync_to_async(twilio_call)(agent, direction="outbound")
    client = client_for(daphne_port, call)
    assert await client.open()
    try:
        await client.until(lambda: client.audible_after(0.0), timeout=60, what="the greeting")
        # The status webhook, in another process, learns that a machine answered.
        sent_at = time.monotonic()
        await get_channel_layer().group_send(media.voicemail_group(call.provider_call_id), {
            "type": "twilio.voicemail", "message": "Hello, this is the test line. Please call us back."})
        assert await client.until_closed(timeout=60) == media.CLOSE_NORMAL
    finally:
        await client.close()
    assert client.clears and client.audible_after(client.clears[0].at) is not None
    assert client.clears[0].at > sent_at
    call, turns, _ = await sync_to_async(finalized)(call)
    assert call.end_reason == "voicemail" and call.status == Call.Status.COMPLETED
    assert turns[0].partial and turns[-1].text == "Hello, this is the test line. Please call us back."
