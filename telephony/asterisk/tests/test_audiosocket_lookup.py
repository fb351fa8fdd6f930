"""Which call a UUID names, the agent that answers a call no FastAGI step prepared, the voicemail
message, and the line's outbound queue (no speech models here)."""

import asyncio
import socket
import time
import uuid

import pytest

from agents.tests.factories import AgentConfigFactory
from calls.models import Call
from calls.services import call_finalize, call_start
from telephony.asterisk import audiocalls
from telephony.asterisk.audiosocket import Frame, Kind, Parser
from telephony.asterisk.server import Line
from telephony.models import Route


@pytest.fixture
def routes(db):
    first, second = AgentConfigFactory(name="First"), AgentConfigFactory(name="Second")
    Route.objects.create(kind=Route.Kind.ASTERISK_EXTENSION, address="7002", agent=second)
    Route.objects.create(kind=Route.Kind.ASTERISK_EXTENSION, address="7001", agent=first)
    Route.objects.create(kind=Route.Kind.ASTERISK_EXTENSION, address="7000", agent=first, active=False)
    Route.objects.create(kind=Route.Kind.WIDGET_KEY, address="0000", agent=second)
    return first, second


def test_the_default_extension(routes, settings):
    first, second = routes
    assert audiocalls.audiosocket_default_route().address == "7001"  # the first active one by address
    settings.AUDIOSOCKET_DEFAULT_EXTENSION = "7002"
    assert audiocalls.audiosocket_default_route().agent == second
    second.active = False
    second.save()
    assert audiocalls.audiosocket_default_route() is None  # an inactive agent takes no calls
    settings.AUDIOSOCKET_DEFAULT_EXTENSION = "7000"
    assert audiocalls.audiosocket_default_route() is None  # nor does an inactive route


def test_what_a_uuid_names(routes):
    first, second = routes
    prepared = call_start(channel=Call.Channel.ASTERISK, agent=second, provider_call_id="1.1", answered=False)
    target = audiocalls.audiosocket_target(call_uuid=prepared.public_id)
    assert (target.outcome, target.call, target.agent, target.prepared) == ("call", prepared, second, True)

    unknown = uuid.uuid4()
    target = audiocalls.audiosocket_target(call_uuid=unknown)
    assert (target.outcome, target.call, target.agent, target.route.address) == ("call", None, first, "7001")
    started = audiocalls.audiosocket_call_start(target=target, call_uuid=unknown)
    assert (started.status, started.direction, started.to_number, started.provider_call_id, started.agent) == (
        Call.Status.IN_PROGRESS, Call.Direction.INBOUND, "7001", str(unknown), first)
    # A second connection with that UUID finds the call it started, and once it has ended, refuses it.
    assert audiocalls.audiosocket_target(call_uuid=unknown).call == started
    call_finalize(call_id=started.pk, end_reason="caller_hangup")
    assert audiocalls.audiosocket_target(call_uuid=unknown).outcome == "ended"

    twilio = call_start(channel=Call.Channel.TWILIO, agent=first, provider_call_id="CA1", answered=False)
    assert audiocalls.audiosocket_target(call_uuid=twilio.public_id).outcome == "ended"

    second.active = False  # the prepared call's agent was switched off meanwhile: the default one answers
    second.save()
    assert audiocalls.audiosocket_target(call_uuid=prepared.public_id).agent == first
    Route.objects.all().delete()
    target = audiocalls.audiosocket_target(call_uuid=prepared.public_id)
    assert (target.outcome, target.call) == ("no_route", prepared)
    assert audiocalls.audiosocket_call_refuse(call_id=prepared.pk, reason="no_agent")
    prepared.refresh_from_db()
    assert (prepared.status, prepared.end_reason) == (Call.Status.FAILED, "no_agent")
    assert audiocalls.audiosocket_target(call_uuid=uuid.uuid4()).outcome == "no_route"


@pytest.mark.parametrize("template, text", [
    ("Hi {context.driver_name}, about load {context.load}. Call us back.", "Hi Sam, about load 42. Call us back."),
    ("Hi {context.driver_name}, this is {context.company}.", "Hi Sam, this is."),  # a missing name is empty
    ("Hi {context.}, call {context.driver_name.first} back {", "Hi, call back"),  # unreadable fields are left out
    ("", ""),
])
def test_the_voicemail_message(db, template, text):
    agent = AgentConfigFactory(voicemail_message=template)
    call = Call(variables={"driver_name": "Sam", "load": "42"})
    assert audiocalls.voicemail_text(call, agent) == text


def frames_from(sock: socket.socket) -> list[Frame]:
    data = b""
    sock.setblocking(False)
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except BlockingIOError:
        pass
    return list(Parser().feed(data))


def test_the_line_queues_two_frames_drops_them_on_clear_and_hangs_up_last():
    async def scenario():
        ours, asterisk = socket.socketpair()
        _, writer = await asyncio.open_connection(sock=ours)
        line = Line(writer, sample_rate=8000)
        speech = [bytes([n]) * 320 for n in range(1, 5)]
        await line.send_audio(speech[0])
        await line.send_audio(speech[1])
        waiting = asyncio.create_task(line.send_audio(speech[2]))  # no room: 60 ms would be ahead
        await asyncio.sleep(0.05)
        assert not waiting.done() and line.unplayed_samples() == 3 * 160
        line.clear()  # a barge-in: the queue and the frame waiting for room are never played
        await waiting
        assert line.unplayed_samples() == 0 and line.frames_dropped == 1
        await line.send_audio(speech[3])
        line.start()
        await asyncio.sleep(0.1)
        await line.finish()
        return frames_from(asterisk)

    frames = asyncio.run(scenario())
    assert frames[-1] == Frame(Kind.HANGUP)
    audio = frames[:-1]
    assert {f.kind for f in audio} == {Kind.SLIN} and {len(f.payload) for f in audio} == {320}
    assert [f.payload for f in audio if any(f.payload)] == [bytes([4]) * 320]  # the rest is silence


def test_a_peer_that_stops_reading_is_dropped():
    async def scenario():
        ours, asterisk = socket.socketpair()
        for sock in (ours, asterisk):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        _, writer = await asyncio.open_connection(sock=ours)
        line = Line(writer, sample_rate=16000)
        line.MAX_WRITE_BUFFER, line.STALL_S = 8192, 0.2  # the server's are 64 KiB and 2 s
        line.start()
        for _ in range(300):  # asterisk never reads: the kernel's buffers fill, then ours
            if writer.is_closing():
                break
            await asyncio.sleep(0.02)
        closing = writer.is_closing()
        await line.close()
        asterisk.close()
        return closing, line.frames_out

    closing, written = asyncio.run(scenario())
    assert closing and written < 300


def test_after_a_stalled_loop_the_line_restarts_its_cadence_instead_of_bursting():
    async def scenario():
        ours, asterisk = socket.socketpair()
        _, writer = await asyncio.open_connection(sock=ours)
        line = Line(writer, sample_rate=8000)
        line.start()
        await asyncio.sleep(0.2)
        before = line.frames_out
        time.sleep(0.4)  # the whole event loop stalls (20 frames' worth)
        await asyncio.sleep(0.1)
        after = line.frames_out
        await line.close()
        return before, after, line.late_restarts, frames_from(asterisk)

    before, after, restarts, frames = asyncio.run(scenario())
    assert restarts == 1
    assert after - before <= 8  # the 100 ms after the stall, not the 500 ms since `before`
    assert frames[-1] == Frame(Kind.HANGUP) and len(frames) == after + 1
