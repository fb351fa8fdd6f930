"""The Media Streams consumer against a client that plays Twilio exactly, on the full ASGI stack
(channels' WebsocketCommunicator), with the real voice session, Redis channel layer and
PostgreSQL; the speech engines are the fakes (fast), the end-to-end tests run the real ones."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from agents.tests.factories import AgentConfigFactory
from calls.models import Call, CallEvent, Turn
from calls.session import live
from customers.tests.factories import CustomerFactory
from telephony import fake
from telephony.base import TelephonyError
from telephony.twilio import media
from telephony.twilio.security import stream_token

from .media_stream import CommunicatorWire, LineTestEngine, MediaStreamClient, prompt_ulaw, signature, twilio_call

pytestmark = pytest.mark.django_db(transaction=True)

CALLER = "+14155552001"


class FailingProvider(fake.FakeProvider):
    """Twilio's REST API refusing every update."""

    def transfer(self, call, *, target: str) -> None:
        raise TelephonyError("Call is not in-progress. Cannot redirect.", permanent=True)

    def hang_up(self, call) -> None:
        raise TelephonyError("Twilio is unreachable", permanent=False)


@pytest.fixture(autouse=True)
def line_settings(settings):
    settings.TWILIO_AUTH_TOKEN = "test-auth-token"
    settings.PUBLIC_BASE_URL = "https://crm.example"
    settings.TELEPHONY_PROVIDERS = {**settings.TELEPHONY_PROVIDERS, "twilio": "telephony.fake.FakeProvider"}
    settings.STT_ENGINE = "calls.speech.fake.FakeSttEngine"
    settings.TTS_ENGINE = "calls.speech.fake.FakeTtsEngine"
    settings.DIALOG_ENGINE = "telephony.twilio.tests.media_stream.LineTestEngine"
    from voicecrm.celery import app

    eager, broker = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager, app.conf.broker_url = False, "memory://"  # the post-call pipeline stays queued
    fake.outbox.clear()
    LineTestEngine.heard.clear()
    yield
    app.conf.task_always_eager, app.conf.broker_url = eager, broker
    live._reset_for_tests()
    from calls.speech import executor

    executor.shutdown()


@pytest.fixture
def agent(db):
    return AgentConfigFactory(
        endpointing_silence_ms=300, silence_reprompt_seconds=60, silence_hangup_seconds=120, max_call_seconds=300,
        transfer_target="+14155550100",
    )


def client_for(call, *, sig: str | None = "", **kwargs) -> MediaStreamClient:
    headers = [] if sig is None else [(b"x-twilio-signature", (sig or signature()).encode())]
    return MediaStreamClient.for_call(CommunicatorWire(headers=headers), call, **kwargs)


async def finish(client: MediaStreamClient) -> int:
    """Twilio's side of the end: wait for the server's close, then drop the connection."""
    code = await client.until_closed()
    await client.close()
    return code


async def hang_up(client: MediaStreamClient) -> int:
    await client.stop()
    return await finish(client)


def stored(call) -> tuple[Call, list[Turn], list[CallEvent]]:
    call = Call.objects.get(pk=call.pk)
    return call, list(call.turns.order_by("index")), list(call.events.order_by("pk"))


def counts() -> tuple[int, int, int]:
    return Call.objects.count(), CallEvent.objects.count(), Turn.objects.count()


async def greeted(client: MediaStreamClient) -> float:
    return await client.reply_over(after=0.0)


async def test_an_inbound_call_from_greeting_to_stop(agent):
    customer = await sync_to_async(CustomerFactory)(phone=CALLER)
    call = await sync_to_async(twilio_call)(agent, caller=CALLER)
    client = client_for(call)
    assert await client.open()
    await greeted(client)
    # The greeting's two sentences: a mark between them and one at the end, both echoed.
    assert len(client.marks) == 2
    await client.until(lambda: len(client.echoes) == 2, what="the echoes")

    spoken_at = await client.say(prompt_ulaw("hello-world"))
    await client.reply_over(after=spoken_at)
    for digit in "42#":
        await client.dtmf(digit)
    await client.reply_over(after=client.marks[-1][0] + 0.01)
    assert await hang_up(client) == media.CLOSE_NORMAL

    call, turns, events = await sync_to_async(stored)(call)
    assert call.status == Call.Status.COMPLETED and call.end_reason == "caller_hangup"
    assert call.customer_id == customer.pk  # the caller-ID lookup ran on the caller's number
    assert [(t.speaker, t.text) for t in turns] == [
        ("agent", "Hi there. Go ahead."), ("caller", "hello"), ("agent", "You said hello."),
        ("caller", "42"), ("agent", "You pressed 42."),
    ]
    assert turns[3].intent == "dtmf"
    assert LineTestEngine.heard == [{"text": "hello", "dtmf": None, "caller_number": CALLER},
                                    {"text": None, "dtmf": "42", "caller_number": CALLER}]
    assert [e.name for e in events if e.kind == CallEvent.Kind.STATUS_CHANGE].count("completed") == 1
    assert not [e for e in events if e.kind == CallEvent.Kind.ERROR]
    assert fake.outbox == []  # the caller hung up: nothing to tell the REST API
    # Every mark the server sent was echoed back, and every frame was 160 bytes (or check() failed).
    assert {name for _, name, _ in client.marks} == {name for _, name in client.echoes}
    assert len(client.received) > 50 and client.clears == []


async def test_an_outbound_call_is_answered_when_its_stream_starts_and_the_agent_ends_it(agent):
    call = await sync_to_async(twilio_call)(agent, direction="outbound", caller="+14155552002")
    assert call.status == Call.Status.QUEUED
    client = client_for(call)
    assert await client.open()
    await greeted(client)
    answered = await Call.objects.aget(pk=call.pk)
    assert answered.status == Call.Status.IN_PROGRESS and answered.answered_at is not None
    await client.dtmf("0")  # the dialog ends the call
    assert await finish(client) == media.CLOSE_NORMAL
    call, turns, _ = await sync_to_async(stored)(call)
    assert call.status == Call.Status.COMPLETED and call.end_reason == "agent_end"
    assert turns[-1].text == "Bye." and not turns[-1].partial
    # The person called is the caller here, and the REST API hangs the call up before the socket closes.
    assert LineTestEngine.heard[0]["caller_number"] == "+14155552002"
    assert fake.outbox == [{"action": "hang_up", "call_id": call.provider_call_id}]


async def test_a_transfer_goes_to_the_rest_api_and_then_the_stream_closes(agent):
    call = await sync_to_async(twilio_call)(agent)
    client = client_for(call)
    assert await client.open()
    await greeted(client)
    await client.dtmf("9")
    assert await finish(client) == media.CLOSE_NORMAL
    call, turns, events = await sync_to_async(stored)(call)
    assert call.end_reason == "transfer" and turns[-1].text == "Connecting you."
    assert fake.outbox == [{"action": "transfer", "call_id": call.provider_call_id, "target": "+14155550100"}]
    assert [e.payload["target"] for e in events if e.kind == CallEvent.Kind.TRANSFER] == ["+14155550100"]


async def test_a_refused_rest_update_is_logged_on_the_call_and_the_stream_still_closes(agent, settings):
    settings.TELEPHONY_PROVIDERS = {**settings.TELEPHONY_PROVIDERS,
                                    "twilio": "telephony.twilio.tests.test_media_protocol.FailingProvider"}
    call = await sync_to_async(twilio_call)(agent)
    client = client_for(call)
    assert await client.open()
    await greeted(client)
    await client.dtmf("9")
    assert await finish(client) == media.CLOSE_NORMAL
    call, _, events = await sync_to_async(stored)(call)
    errors = [(e.name, e.payload) for e in events if e.kind == CallEvent.Kind.ERROR]
    assert errors == [("twilio_transfer", {"message": "Call is not in-progress. Cannot redirect.", "permanent": True,
                                           "target": "+14155550100"})]
    assert call.status == Call.Status.COMPLETED and call.end_reason == "transfer"


@pytest.mark.parametrize("sig", [None, "", "forged"], ids=["missing", "wrong-token", "forged"])
async def test_a_bad_signature_is_refused_at_the_handshake_and_nothing_is_written(agent, sig):
    call = await sync_to_async(twilio_call)(agent)
    before = await sync_to_async(counts)()
    if sig == "":
        sig = signature(token="another-account-token")
    client = client_for(call, sig=sig)
    assert not await client.open()
    assert client.wire.refused is not None  # closed before accept: daphne answers the upgrade with 403
    assert await sync_to_async(counts)() == before
    assert (await Call.objects.aget(pk=call.pk)).status == Call.Status.IN_PROGRESS


async def test_the_signature_is_over_the_public_url_not_the_one_the_socket_was_opened_on(agent, settings):
    call = await sync_to_async(twilio_call)(agent)
    # What a client would sign if it trusted the Host header behind the proxy.
    client = client_for(call, sig=signature(url="ws://127.0.0.1:8000/ws/telephony/twilio/media/"))
    assert not await client.open()


async def start_refused(call, parameters: dict | None = None) -> tuple[int, tuple]:
    before = await sync_to_async(counts)()
    client = client_for(call)
    client.parameters.update(parameters or {})
    assert await client.open()
    code = await finish(client)
    assert client.received == [] and client.marks == []  # not a sound, not a mark
    return code, before


async def test_a_bad_token_or_an_unknown_call_is_closed_and_nothing_is_written(agent):
    call = await sync_to_async(twilio_call)(agent)
    other = await sync_to_async(twilio_call)(agent)
    stranger = str(uuid.uuid4())
    cases = [
        ({"token": "forged"}, media.CLOSE_FORBIDDEN),
        ({"token": stream_token(other.public_id)}, media.CLOSE_FORBIDDEN),  # another call's token
        ({"call": stranger, "token": stream_token(stranger)}, media.CLOSE_UNKNOWN_CALL),  # no such call
        ({"call": str(other.public_id), "token": stream_token(other.public_id)}, media.CLOSE_UNKNOWN_CALL),  # not this CallSid
        ({"call": "not-a-uuid", "token": stream_token("not-a-uuid")}, media.CLOSE_UNKNOWN_CALL),
    ]
    for parameters, expected in cases:
        code, before = await start_refused(call, parameters)
        assert code == expected, parameters
        assert await sync_to_async(counts)() == before
    assert (await Call.objects.aget(pk=call.pk)).status == Call.Status.IN_PROGRESS


async def test_a_call_of_another_channel_is_refused(agent):
    call = await sync_to_async(twilio_call)(agent)
    await Call.objects.filter(pk=call.pk).aupdate(channel=Call.Channel.ASTERISK)
    code, before = await start_refused(call)
    assert code == media.CLOSE_UNKNOWN_CALL and await sync_to_async(counts)() == before


async def test_a_stream_for_an_ended_call_is_closed_with_4410_and_nothing_is_written(agent):
    call = await sync_to_async(twilio_call)(agent)
    from calls.services import call_finalize

    await sync_to_async(call_finalize)(call_id=call.pk, end_reason="caller_hangup")
    code, before = await start_refused(call)
    assert code == media.CLOSE_GONE
    assert await sync_to_async(counts)() == before


async def test_a_start_that_is_not_mulaw_8khz_is_closed_with_4400(agent):
    call = await sync_to_async(twilio_call)(agent)
    before = await sync_to_async(counts)()
    client = client_for(call)
    assert await client.open(start=False)
    await client.send({"event": "start", "streamSid": client.stream_sid, "start": {
        "streamSid": client.stream_sid, "callSid": client.call_sid, "customParameters": client.parameters,
        "mediaFormat": {"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}}})
    assert await finish(client) == media.CLOSE_BAD_PROTOCOL
    assert await sync_to_async(counts)() == before


async def test_malformed_messages_are_dropped_counted_and_the_call_goes_on(agent):
    call = await sync_to_async(twilio_call)(agent)
    client = client_for(call)
    assert await client.open(start=False)
    payload = base64.b64encode(bytes(160)).decode()
    await client.send({"event": "media", "streamSid": client.stream_sid, "media": {"track": "inbound", "payload": payload}})
    await client.start()
    await greeted(client)
    sid = client.stream_sid
    await client.send("{oops")
    await client.wire.comm.send_to(bytes_data=b"\x00" * 160)
    await client.send({"event": "hello", "streamSid": sid})
    await client.send({"event": "media", "streamSid": sid, "media": {"track": "inbound", "payload": "!!not base64!!"}})
    await client.send({"event": "media", "streamSid": sid,
                       "media": {"track": "inbound", "payload": base64.b64encode(bytes(80)).decode()}})
    await client.send({"event": "media", "streamSid": "MZ" + "f" * 32, "media": {"track": "inbound", "payload": payload}})
    await client.send({"event": "media", "streamSid": sid, "media": {"track": "outbound", "payload": payload}})
    await client.send({"event": "dtmf", "streamSid": sid, "dtmf": {"digit": "x"}})
    await client.send({"event": "mark", "streamSid": sid, "mark": {"name": "never-sent"}})
    await client.send(client.start_message())  # a second start
    await client.send(json.dumps([1, 2, 3]))
    # Still a call: keys reach the dialog.
    await client.dtmf("7")
    await client.dtmf("#")
    await client.until(lambda: LineTestEngine.heard, what="the digits at the dialog")
    await client.reply_over(after=client.marks[-1][0] + 0.01)
    assert await hang_up(client) == media.CLOSE_NORMAL
    call, turns, events = await sync_to_async(stored)(call)
    assert call.status == Call.Status.COMPLETED and call.end_reason == "caller_hangup"
    assert turns[-1].text == "You pressed 7."
    dropped = [e.payload for e in events if e.name == "twilio_dropped_input"]
    assert len(dropped) == 1 and dropped[0] == {
        "bad_json": 3, "unknown_events": 1, "bad_messages": 4, "bad_payload": 1, "bad_size": 1, "early": 1,
        "unknown_marks": 1, "over_rate": 0, "media_in": dropped[0]["media_in"], "dtmf_in": 2,
    }
    assert dropped[0]["media_in"] > 50


async def test_the_voicemail_message_is_spoken_and_ends_the_call(agent):
    call = await sync_to_async(twilio_call)(agent, direction="outbound")
    client = client_for(call)
    assert await client.open()
    greeting_done = await greeted(client)
    message = "Please call us back."
    await get_channel_layer().group_send(media.voicemail_group(call.provider_call_id),
                                         {"type": "twilio.voicemail", "message": message})
    assert await finish(client) == media.CLOSE_NORMAL
    assert client.audible_after(greeting_done) is not None  # the message was played
    call, turns, _ = await sync_to_async(stored)(call)
    assert call.end_reason == "voicemail" and call.status == Call.Status.COMPLETED
    assert turns[-1].speaker == Turn.Speaker.AGENT and turns[-1].text == message and turns[-1].intent == "goodbye"
    assert fake.outbox == [{"action": "hang_up", "call_id": call.provider_call_id}]


async def test_an_empty_voicemail_message_ends_the_call_at_once(agent):
    call = await sync_to_async(twilio_call)(agent, direction="outbound")
    client = client_for(call)
    assert await client.open()
    greeting_done = await greeted(client)
    await get_channel_layer().group_send(media.voicemail_group(call.provider_call_id),
                                         {"type": "twilio.voicemail", "message": ""})
    assert await finish(client) == media.CLOSE_NORMAL
    assert client.audible_after(greeting_done) is None
    call, turns, _ = await sync_to_async(stored)(call)
    assert call.end_reason == "voicemail" and len(turns) == 1
    assert fake.outbox == [{"action": "hang_up", "call_id": call.provider_call_id}]


async def test_without_the_channel_layer_the_call_still_works(agent, settings, caplog):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}}  # nothing listens there
    call = await sync_to_async(twilio_call)(agent)
    client = client_for(call)
    with caplog.at_level(logging.WARNING, logger="telephony.twilio.consumers"):
        assert await client.open()
        await greeted(client)
        await client.dtmf("5")
        await client.dtmf("#")
        await client.reply_over(after=client.marks[-1][0] + 0.01)
        assert await hang_up(client) == media.CLOSE_NORMAL
    assert "channel layer unavailable" in caplog.text
    call, turns, _ = await sync_to_async(stored)(call)
    assert call.status == Call.Status.COMPLETED and turns[-1].text == "You pressed 5."


async def test_a_hang_up_mid_reply_keeps_the_partial_turn_and_finalizes_once(agent):
    call = await sync_to_async(twilio_call)(agent)
    client = client_for(call)
    assert await client.open()
    await client.until(lambda: client.received, what="the greeting's first audio")
    assert await hang_up(client) == media.CLOSE_NORMAL
    call, turns, events = await sync_to_async(stored)(call)
    assert call.status == Call.Status.COMPLETED and call.end_reason == "caller_hangup"
    assert len(turns) == 1 and turns[0].partial and turns[0].text == "Hi there. Go ahead."
    assert len(turns[0].heard_text) < len(turns[0].text)
    assert [e.name for e in events if e.kind == CallEvent.Kind.STATUS_CHANGE].count("completed") == 1


async def test_a_dropped_socket_ends_the_call_once(agent):
    call = await sync_to_async(twilio_call)(agent)
    client = client_for(call)
    assert await client.open()
    await greeted(client)
    await client.close()  # no stop, no close frame: the connection is gone
    call, _, events = await sync_to_async(stored)(call)
    assert call.status == Call.Status.COMPLETED and call.end_reason == "caller_hangup"
    assert [e.name for e in events if e.kind == CallEvent.Kind.STATUS_CHANGE].count("completed") == 1


async def test_a_busy_process_refuses_the_stream_with_4503(agent, settings):
    settings.MAX_CALLS_PER_PROCESS = 0
    call = await sync_to_async(twilio_call)(agent)
    code, before = await start_refused(call)
    assert code == media.CLOSE_BUSY and await sync_to_async(counts)() == before


async def test_a_stream_without_start_is_closed_after_the_deadline(agent, monkeypatch):
    monkeypatch.setattr(media, "START_TIMEOUT_S", 0.3)
    call = await sync_to_async(twilio_call)(agent)
    client = client_for(call)
    assert await client.open(start=False)
    await client.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
    assert await finish(client) == media.CLOSE_IDLE


async def test_a_flood_is_dropped_then_closed_with_4429(agent):
    call = await sync_to_async(twilio_call)(agent)
    client = client_for(call)
    assert await client.open()
    await client.until(lambda: client.received, what="the greeting's first audio")
    message = json.dumps({"event": "mark", "streamSid": client.stream_sid, "mark": {"name": "x"}})
    for _ in range(media.MESSAGE_BURST * 3):
        await client.wire.comm.send_to(text_data=message)
    assert await finish(client) == media.CLOSE_RATE_LIMITED
    call, _, events = await sync_to_async(stored)(call)
    assert call.end_reason == "flooding"
    dropped = next(e.payload for e in events if e.name == "twilio_dropped_input")
    assert dropped["over_rate"] > 0


async def test_a_draining_process_ends_the_call_politely(agent):
    call = await sync_to_async(twilio_call)(agent)
    client = client_for(call)
    assert await client.open()
    await greeted(client)
    left = await asyncio.wait_for(live.drain(30), 40)
    assert left == 0
    assert await finish(client) == media.CLOSE_NORMAL
    call, turns, _ = await sync_to_async(stored)(call)
    assert call.end_reason == "server_shutdown" and "call back" in turns[-1].text
    assert fake.outbox == [{"action": "hang_up", "call_id": call.provider_call_id}]


async def test_a_second_stream_for_a_call_being_streamed_is_closed_with_4409(agent):
    call = await sync_to_async(twilio_call)(agent)
    first = client_for(call)
    assert await first.open()
    await first.until(lambda: first.received, what="the greeting")
    before = await sync_to_async(counts)()
    code, _ = await start_refused(call)  # the same start again: a replay
    assert code == media.CLOSE_DUPLICATE
    assert await sync_to_async(counts)() == before
    await first.until(lambda: len(first.received) > 30, what="more of the greeting")  # the first call goes on
    assert await hang_up(first) == media.CLOSE_NORMAL


async def test_with_twilios_rest_api_the_agents_hang_up_and_transfer_reach_the_call(agent, settings, fake_twilio):
    settings.TELEPHONY_PROVIDERS = {**settings.TELEPHONY_PROVIDERS, "twilio": "telephony.twilio.client.TwilioProvider"}
    for key in "09":  # the dialog ends the call, then transfers the next one
        sid = fake_twilio.add_call(from_=CALLER)
        call = await sync_to_async(twilio_call)(agent, sid=sid)
        client = client_for(call)
        assert await client.open()
        await greeted(client)
        await client.dtmf(key)
        assert await finish(client) == media.CLOSE_NORMAL
        update = fake_twilio.requests[-1]
        assert update.method == "POST" and update.path.endswith(f"/Calls/{sid}.json")
        if key == "0":
            assert update.param("Status") == "completed"
        else:
            assert "<Dial><Number>+14155550100</Number></Dial>" in update.param("Twiml")
        assert not await CallEvent.objects.filter(call=call, kind=CallEvent.Kind.ERROR).aexists()
