"""What the AudioSocket server does with a peer that breaks the protocol, names a call it must not
serve, or reports an error: that connection closes cleanly, its call (if it has one) is stored
as failed or left untouched, and the other calls go on."""

import asyncio
import ipaddress
import struct
import uuid

import pytest

from calls.models import Call, CallEvent
from calls.services import call_finalize, call_start
from telephony.asterisk import server as audiosocket_server

from .audiosocket_support import (  # noqa: F401 - the *_fixture names are fixtures
    agent_fixture,
    prepared_call,
    queued_pipeline_fixture,
    route_fixture,
    serve,
    warm_speech_fixture,
)
from .fake_asterisk import FakeAsterisk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow,
              pytest.mark.usefixtures("warm_speech", "queued_pipeline", "route")]


def frame(kind: int, payload: bytes = b"", length: int | None = None) -> bytes:
    return struct.pack(">BH", kind, len(payload) if length is None else length) + payload


def snapshot(call: Call) -> tuple:
    call.refresh_from_db()
    return call.status, call.end_reason, call.updated_at, call.events.count(), call.turns.count()


@pytest.mark.parametrize("data, detail", [
    (b"GET / HTTP/1.1\r\nHost: pbx\r\n\r\n", "unknown frame type 0x47"),
    (frame(0x02, b"\x01\x35\x00\x00\x00\x00"), "unknown frame type 0x02"),
    (frame(0x10, bytes(321)), "audio frame of 321 bytes"),
    (frame(0x10, length=40000), "audio frame of 40000 bytes"),
    (frame(0x10), "zero-length audio"),
    (frame(0x01, uuid.uuid4().bytes), "a second UUID frame"),
    (frame(0x11, bytes(480)), "audio at 12000 Hz is not served"),
])
def test_broken_framing_ends_that_call_as_failed_and_no_other(agent, data, detail):
    broken, other = prepared_call(agent, provider_call_id="1.1"), prepared_call(agent, provider_call_id="1.2")

    async def scenario(server):
        lines = FakeAsterisk(server.port, broken.public_id), FakeAsterisk(server.port, other.public_id)
        for line in lines:
            await line.connect()
        await asyncio.gather(*(line.until_audible() for line in lines))
        lines[0].send_raw(data)
        await lines[0].until_closed()
        going_on = len(lines[1].received)
        await asyncio.sleep(1.0)
        assert len(lines[1].received) - going_on >= 40  # the other call did not miss a beat
        await lines[1].hang_up()
        await lines[1].until_closed()
        return lines

    bad_line, good_line = serve(scenario)
    bad_line.check()
    good_line.check()
    assert bad_line.hangup_at is not None  # closed cleanly: a hangup frame, then the socket
    broken.refresh_from_db()
    other.refresh_from_db()
    assert (broken.status, broken.end_reason) == (Call.Status.FAILED, "protocol_error")
    (event,) = CallEvent.objects.filter(call=broken, kind=CallEvent.Kind.ERROR, name="audiosocket_protocol_error")
    assert detail in event.payload["detail"] and event.payload["bytes_in"] > 0
    assert broken.turns.filter(speaker="agent", partial=True).exists()  # the greeting it was in the middle of
    assert (other.status, other.end_reason) == (Call.Status.COMPLETED, "caller_hangup")
    assert not CallEvent.objects.filter(call=other, kind=CallEvent.Kind.ERROR).exists()


@pytest.mark.parametrize("case", ["audio_first", "garbage_first", "silent", "ended_call", "other_channel"])
def test_a_connection_without_a_call_to_serve_is_closed_and_nothing_is_written(agent, case, monkeypatch):
    monkeypatch.setattr(audiosocket_server, "UUID_TIMEOUT_S", 0.5)
    ended = call_start(channel=Call.Channel.ASTERISK, agent=agent, provider_call_id="9.1")
    call_finalize(call_id=ended.pk, end_reason="caller_hangup")
    twilio = call_start(channel=Call.Channel.TWILIO, agent=agent, provider_call_id="CA123", answered=False)
    before = {call.pk: snapshot(call) for call in (ended, twilio)}
    connect = {
        "audio_first": {"first": frame(0x10, bytes(320))},
        "garbage_first": {"first": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"},  # a TLS hello
        "silent": {"first": b"", "send_audio": False},
        "ended_call": {},
        "other_channel": {},
    }[case]
    call_uuid = {"ended_call": ended.public_id, "other_channel": twilio.public_id}.get(case)

    async def scenario(server):
        line = FakeAsterisk(server.port, call_uuid)
        await line.connect(**connect)
        await line.until_closed(timeout=5)
        return line

    line = serve(scenario)
    line.check()
    assert not any(frame.audible for frame in line.received)
    assert {call.pk: snapshot(call) for call in (ended, twilio)} == before
    assert Call.objects.count() == 2


def test_a_second_connection_for_a_live_call_is_closed(agent):
    call = prepared_call(agent)

    async def scenario(server):
        first = FakeAsterisk(server.port, call.public_id)
        await first.connect()
        await first.until_audible()
        second = FakeAsterisk(server.port, call.public_id)
        await second.connect()
        await second.until_closed(timeout=5)
        await asyncio.sleep(0.5)
        await first.hang_up()
        await first.until_closed()
        return first, second

    first, second = serve(scenario)
    first.check()
    second.check()
    assert not any(frame.audible for frame in second.received) and first.closed_at > second.closed_at
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (Call.Status.COMPLETED, "caller_hangup")


@pytest.mark.parametrize("code, status, reason", [
    (b"\x02", Call.Status.FAILED, "asterisk_error"),  # frame forwarding error
    (b"", Call.Status.FAILED, "asterisk_error"),
    (b"\x01", Call.Status.COMPLETED, "caller_hangup"),  # "the calling party hung up": an ordinary end
])
def test_an_error_from_asterisk_is_logged_and_ends_the_call(agent, code, status, reason):
    call = prepared_call(agent)

    async def scenario(server):
        line = FakeAsterisk(server.port, call.public_id)
        await line.connect()
        await line.until_audible()
        line.send_raw(frame(0xFF, code))
        await line.until_closed()
        return line

    line = serve(scenario)
    line.check()
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (status, reason)
    (event,) = CallEvent.objects.filter(call=call, kind=CallEvent.Kind.ERROR, name="audiosocket_error")
    assert event.payload["code"] == (code[0] if code else None)
    assert CallEvent.objects.filter(call=call, kind=CallEvent.Kind.STATUS_CHANGE, name=status).count() == 1


def test_peers_outside_the_allowed_networks_and_connections_over_the_bound_are_closed_unheard(agent):
    call = prepared_call(agent)

    async def scenario(server):
        server.allowed = [ipaddress.ip_network("10.0.0.0/8")]
        stranger = FakeAsterisk(server.port, call.public_id)
        await stranger.connect()
        await stranger.until_closed(timeout=5)
        server.allowed = [ipaddress.ip_network("127.0.0.0/8")]
        server.max_connections = 1
        first, second = FakeAsterisk(server.port, call.public_id), FakeAsterisk(server.port, uuid.uuid4())
        await first.connect()
        await first.until_audible()
        await second.connect()
        await second.until_closed(timeout=5)
        await first.hang_up()
        await first.until_closed()
        return stranger, first, second, dict(server.refused)

    stranger, first, second, refused = serve(scenario)
    assert refused == {"address": 1, "connections": 1}
    for line in (stranger, second):
        line.check()
        assert not line.received and line.hangup_at is None  # closed before a byte was read
    first.check()
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (Call.Status.COMPLETED, "caller_hangup")
    assert Call.objects.count() == 1  # the refused UUID named no call, and none was made for it
