"""Calls through the AudioSocket server end to end: a fake Asterisk on a real TCP socket, the real
voice session, Whisper and Piper, the deterministic dialog engine, PostgreSQL.

The caller speaks real 8 kHz telephone prompts (the Asterisk core sounds) as 0x10 frames in real
time; what the server sends back is checked frame by frame (tests/fake_asterisk.py) and what
the agent said is transcribed back with Whisper.
"""

import asyncio
import uuid

import pytest

from agents.engine import CallContext, DialogEngine, DialogReply
from agents.tests.factories import CustomerFactory
from calls.models import Call, CallEvent, Turn
from calls.tests.speech.helpers import asterisk_prompt
from telephony.asterisk.server import BUSY_MESSAGE, NO_ROUTE_MESSAGE, Line

from .audiosocket_support import (  # noqa: F401 - the *_fixture names are fixtures
    EXTENSION,
    MAX_WER,
    agent_fixture,
    prepared_call,
    queued_pipeline_fixture,
    route_fixture,
    serve,
    transcribe,
    warm_speech_fixture,
    wer,
    words,
)
from .fake_asterisk import FakeAsterisk

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow,
              pytest.mark.usefixtures("warm_speech", "queued_pipeline")]

PASSWORD = ("agent-pass", "Please enter your password followed by the pound key.")
NOBODY = ("vm-nobodyavail", "Nobody is available to take your call at the moment.")
LONG_GREETING = ("Thanks for calling the dispatch line of Northwind Freight. We can help with pickups, "
                 "deliveries, invoices and detention charges. Tell me in a few words what you need today.")


def turns(call: Call) -> list[Turn]:
    return list(call.turns.order_by("index"))


def line_of(server) -> Line:
    (connection,) = server.connections
    return connection.line


def test_a_prepared_call_with_speech_and_keypad(agent, route):
    agent.trust_caller_id = True
    agent.save()
    customer = CustomerFactory(first_name="Ada")
    call = prepared_call(agent, from_number=customer.phone)

    async def scenario(server):
        line = FakeAsterisk(server.port, call.public_id)
        await line.connect()
        greeted = await line.until_audible()
        greeting_end = await line.until_quiet(after=greeted)
        said = await line.say(asterisk_prompt(PASSWORD[0], 8000))
        answered = await line.until_audible(after=said)
        await line.until_quiet(after=answered)
        line.press("42#")
        await asyncio.sleep(1.0)  # "#" ends the digits at once; the turn is stored as they arrive
        await line.hang_up()
        await line.until_closed()
        return line, line.audio(start=greeted - 0.1, end=greeting_end + 0.1)

    line, greeting_audio = serve(scenario)
    line.check()
    assert line.kinds() == {0x10}  # the caller sends slin 8 kHz: so does the server, from the first frame

    call.refresh_from_db()
    assert (call.status, call.end_reason, call.channel) == (Call.Status.COMPLETED, "caller_hangup", "asterisk")
    assert call.answered_at is not None and call.provider_call_id == "1733040000.42" and call.recording
    assert call.customer == customer  # the caller ID identified them (the agent trusts it)
    greeting, caller, answer, *rest = turns(call)
    assert greeting.speaker == "agent" and greeting.text == "Hi Ada. Thanks for calling. How can I help?"
    assert wer(greeting.text, transcribe(greeting_audio, 8000)) <= MAX_WER
    assert caller.speaker == "caller" and wer(PASSWORD[1], caller.text) <= MAX_WER, caller.text
    assert answer.speaker == "agent" and answer.text and answer.voice_to_voice_ms is not None
    keypad = [t for t in rest if t.speaker == "caller"]
    assert [(t.text, t.intent) for t in keypad] == [("42", "dtmf")]
    assert list(CallEvent.objects.filter(call=call, kind=CallEvent.Kind.DTMF).values_list("name", flat=True)) == [
        "4", "2", "#"]
    assert CallEvent.objects.filter(call=call, kind=CallEvent.Kind.STATUS_CHANGE, name="completed").count() == 1


def test_barge_in_stops_the_agent_at_once_and_keeps_what_was_heard(agent, route):
    agent.greeting = LONG_GREETING
    agent.save()
    call_uuid = uuid.uuid4()  # no FastAGI: a new inbound call to the default extension
    marks = {}

    async def scenario(server):
        line = FakeAsterisk(server.port, call_uuid)
        await line.connect()
        await line.until_audible()
        await asyncio.sleep(2.0)  # the caller lets the agent talk, then cuts in
        utterance = line.say(asterisk_prompt(NOBODY[0], 8000))
        await asyncio.sleep(0.1)
        marks["spoke"] = line.spoke_at[-1]
        marks["clears"] = line_of(server).clears
        marks["said"] = said = await utterance
        answered = await line.until_audible(after=said)
        await line.until_quiet(after=answered)
        await line.hang_up()
        await line.until_closed()
        return line

    line = serve(scenario)
    line.check()
    call = Call.objects.get()
    assert (call.provider_call_id, call.to_number, call.agent, call.direction) == (
        str(call_uuid), EXTENSION, agent, Call.Direction.INBOUND)
    assert (call.status, call.end_reason) == (Call.Status.COMPLETED, "caller_hangup")

    # From the caller's side: the agent went quiet while the caller was still speaking.
    over = [f.at for f in line.received if marks["spoke"] < f.at < marks["said"] and f.audible]
    print(f"agent audio stopped {(over[-1] - marks['spoke']) * 1000:.0f} ms after the caller started speaking")
    assert over and marks["said"] - over[-1] > 0.5
    # Nothing of the greeting was written after the barge-in: every frame from the one the server
    # wrote next is silence until the agent answers (the lead it had sent was 60 ms at most).
    (cleared_at, written), = marks["clears"]
    after = line.received[written:written + 25]
    assert len(after) == 25 and not any(frame.audible for frame in after)
    assert any(frame.audible for frame in line.received[written - 5:written])  # it was talking until then

    greeting, caller, answer, *_ = turns(call)
    assert greeting.interrupted and greeting.text == LONG_GREETING
    heard = words(greeting.heard_text)
    assert 3 <= len(heard) < len(words(LONG_GREETING)) and heard == words(LONG_GREETING)[:len(heard)]
    assert caller.speaker == "caller" and wer(NOBODY[1], caller.text) <= MAX_WER, caller.text
    assert answer.speaker == "agent"
    assert CallEvent.objects.filter(call=call, kind=CallEvent.Kind.BARGE_IN, name="speech").count() == 1


def test_a_hang_up_mid_reply_keeps_the_partial_turn(agent, route):
    agent.greeting = LONG_GREETING
    agent.save()
    call = prepared_call(agent)

    async def scenario(server):
        line = FakeAsterisk(server.port, call.public_id)
        await line.connect()
        await line.until_audible()
        await asyncio.sleep(1.5)
        await line.hang_up()
        await line.until_closed()
        return line

    line = serve(scenario)
    line.check()
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (Call.Status.COMPLETED, "caller_hangup")
    (greeting,) = turns(call)
    assert greeting.partial and not greeting.interrupted and greeting.text == LONG_GREETING
    heard = words(greeting.heard_text)
    assert 1 <= len(heard) < len(words(LONG_GREETING)) and heard == words(LONG_GREETING)[:len(heard)]
    # Finalized once, by the session.
    assert CallEvent.objects.filter(call=call, kind=CallEvent.Kind.STATUS_CHANGE, name="completed").count() == 1
    assert Call.objects.count() == 1


def test_slin16_in_is_answered_in_slin16(agent, route):
    call = prepared_call(agent)

    async def scenario(server):
        line = FakeAsterisk(server.port, call.public_id, rate=16000)
        await line.connect()
        greeted = await line.until_audible()
        greeting_end = await line.until_quiet(after=greeted)
        said = await line.say(asterisk_prompt(PASSWORD[0], 16000))
        answered = await line.until_audible(after=said)
        await line.until_quiet(after=answered)
        await line.hang_up()
        await line.until_closed()
        return line, line.audio(start=greeted - 0.1, end=greeting_end + 0.1)

    line, greeting_audio = serve(scenario)
    line.check()
    assert line.kinds() == {0x12} and {len(f.payload) for f in line.received} == {640}
    assert wer("Thanks for calling. How can I help?", transcribe(greeting_audio, 16000)) <= MAX_WER
    greeting, caller, answer, *_ = turns(Call.objects.get())
    assert wer(PASSWORD[1], caller.text) <= MAX_WER, caller.text
    assert answer.speaker == "agent"


def test_an_answering_machine_gets_the_voicemail_message(agent, route):
    agent.voicemail_message = "Hi {context.driver_name}, this is dispatch about load {context.load}. Please call us back."
    agent.save()
    call = prepared_call(agent, direction=Call.Direction.OUTBOUND, provider_call_id="ari-7")
    Call.objects.filter(pk=call.pk).update(answered_by="machine_end_beep", variables={"driver_name": "Sam"})

    async def scenario(server):
        line = FakeAsterisk(server.port, call.public_id)
        await line.connect()
        await line.until_closed()
        return line

    line = serve(scenario)
    line.check()
    assert line.hangup_at is not None  # the server hung up once the message was left
    heard = transcribe(line.audio(), 8000)
    message = "Hi Sam, this is dispatch about load. Please call us back."
    assert wer(message, heard) <= MAX_WER, heard
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (Call.Status.COMPLETED, "voicemail")
    (left,) = turns(call)  # no greeting: the machine hears the message only
    assert (left.speaker, left.text) == ("agent", message)


def test_an_answering_machine_and_no_message_ends_at_once(agent, route):
    call = prepared_call(agent, direction=Call.Direction.OUTBOUND, provider_call_id="ari-8")
    Call.objects.filter(pk=call.pk).update(answered_by="machine_start")

    async def scenario(server):
        line = FakeAsterisk(server.port, call.public_id)
        await line.connect()
        await line.until_closed()
        return line

    line = serve(scenario)
    line.check()
    assert line.hangup_at is not None and not any(frame.audible for frame in line.received)
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (Call.Status.COMPLETED, "voicemail") and not turns(call)


class PutThrough(DialogEngine):
    """Greets, and hands the call to a person when the caller presses 0."""

    def start(self, ctx: CallContext) -> DialogReply:
        return DialogReply(["Hello, dispatch."])

    def respond(self, ctx: CallContext, *, text: str | None = None, dtmf: str | None = None) -> DialogReply:
        if dtmf == "0":
            return DialogReply(["Let me put you through to a dispatcher."], action="transfer",
                               action_reason="caller_asked")
        return DialogReply(["Press zero for a dispatcher."])


def test_a_transfer_is_announced_then_the_line_hung_up_for_the_dialplan(agent, route):
    call = prepared_call(agent)

    async def scenario(server):
        line = FakeAsterisk(server.port, call.public_id)
        await line.connect()
        greeted = await line.until_audible()
        await line.until_quiet(after=greeted)
        pressed = asyncio.get_running_loop().time()
        line.press("0#")
        await line.until_closed()
        return line, pressed

    line, pressed = serve(scenario, engine=PutThrough())
    line.check()
    assert line.hangup_at is not None  # the announcement played out, then the hangup frame
    heard = transcribe(line.audio(start=pressed), 8000)
    assert wer("Let me put you through to a dispatcher.", heard) <= MAX_WER, heard
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (Call.Status.COMPLETED, "transfer")
    (transfer,) = CallEvent.objects.filter(call=call, kind=CallEvent.Kind.TRANSFER)  # logged once, by the session
    assert transfer.payload["target"] == agent.transfer_target


def test_over_the_cap_a_caller_hears_that_everyone_is_busy(agent, route, settings):
    settings.MAX_CALLS_PER_PROCESS = 1
    first, second = prepared_call(agent, provider_call_id="1.1"), prepared_call(agent, provider_call_id="1.2")

    async def scenario(server):
        served = FakeAsterisk(server.port, first.public_id)
        await served.connect()
        await served.until_audible()
        refused = FakeAsterisk(server.port, second.public_id)
        await refused.connect()
        await refused.until_closed()
        await served.hang_up()
        await served.until_closed()
        return served, refused

    served, refused = serve(scenario)
    served.check()
    refused.check()
    assert refused.hangup_at is not None  # the message, then a hangup frame
    heard = transcribe(refused.audio(), 8000)
    assert wer(BUSY_MESSAGE, heard) <= MAX_WER, heard
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.end_reason) == (Call.Status.COMPLETED, "caller_hangup") and turns(first)
    assert (second.status, second.end_reason) == (Call.Status.FAILED, "server_busy") and not turns(second)


def test_with_no_agent_for_the_line_the_caller_is_told_so(db):
    async def scenario(server):
        line = FakeAsterisk(server.port, uuid.uuid4())
        await line.connect()
        await line.until_closed()
        return line

    line = serve(scenario)
    line.check()
    assert line.hangup_at is not None
    heard = transcribe(line.audio(), 8000)
    assert wer(NO_ROUTE_MESSAGE, heard) <= MAX_WER, heard
    assert not Call.objects.exists()
