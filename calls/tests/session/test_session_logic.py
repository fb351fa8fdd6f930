"""The session's bookkeeping around speech, with the fake engines (fast; real VAD)."""

import asyncio

import numpy as np
import pytest

from agents.engine import DialogReply
from agents.tests.factories import CustomerFactory
from agents.tools import tool_run
from calls.models import Call, CallEvent, Turn
from calls.services import call_start
from calls.session import MemoryTransport, VoiceSession
from calls.speech.registry import get_stt

from .conftest import ScriptedEngine, play

pytestmark = pytest.mark.django_db(transaction=True)


def voice(ms: int, rate: int = 16000) -> bytes:
    """A voiced-sounding signal (harmonics of 150 Hz, slow envelope) that the WebRTC VAD takes for speech."""
    t = np.arange(rate * ms // 1000) / rate
    x = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 8)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (x / np.abs(x).max() * 0.5 * 32767).astype("<i2").tobytes()


def gap(ms: int) -> bytes:
    return bytes(32 * ms)


LONG = "This reply is long enough to be talked over by the caller at any point while it plays."


def test_dtmf_digits_are_collected_until_pound(agent, phone, fake_speech):
    engine = ScriptedEngine(["Thanks."])
    p = phone(agent, engine)

    async def scenario(p):
        at = await p.until_listening()
        p.caller.press("12#")
        await p.until_listening(after=at)

    play(p, scenario)
    assert [h["dtmf"] for h in engine.heard] == ["12"]
    caller = Turn.objects.get(speaker="caller")
    assert (caller.text, caller.intent) == ("12", "dtmf")
    assert list(CallEvent.objects.filter(kind=CallEvent.Kind.DTMF).values_list("name", flat=True)) == ["1", "2", "#"]


def test_dtmf_without_pound_is_sent_after_a_pause_and_interrupts_the_agent(agent, phone, fake_speech):
    engine = ScriptedEngine([LONG, "Got it."], greeting=LONG)
    p = phone(agent, engine)

    async def scenario(p):
        await p.until_event("agent_text")
        await asyncio.sleep(0.5)
        p.caller.press("7")
        at, _ = await p.until_event("clear")
        await p.until_event("agent_text", after=at, text=LONG)

    play(p, scenario)
    assert [h["dtmf"] for h in engine.heard] == ["7"]
    greeting = Turn.objects.order_by("index").first()
    assert greeting.interrupted and greeting.heard_text


def test_audio_the_line_had_not_played_at_a_barge_in_is_not_stored_as_heard(agent, phone, fake_speech):
    engine = ScriptedEngine(["Got it."], greeting=LONG)
    p = phone(agent, engine)

    async def scenario(p):
        await p.until_event("agent_text")
        await asyncio.sleep(0.6)
        # The line still buffers everything sent so far (Twilio before its first mark echo).
        p.transport.unplayed = p.transport.sample_rate * 30
        p.caller.press("7")
        await p.until_event("clear")
        await p.until_listening()

    play(p, scenario)
    greeting = Turn.objects.order_by("index").first()
    assert greeting.interrupted and greeting.heard_text == ""
    barge_in = CallEvent.objects.get(kind=CallEvent.Kind.BARGE_IN)
    assert barge_in.payload["played_ms"] == 0 and barge_in.payload["heard_text"] == ""


def test_a_short_sound_over_the_agent_is_not_a_barge_in(agent, phone, fake_speech):
    p = phone(agent, ScriptedEngine(greeting=LONG))

    async def scenario(p):
        await p.until_event("agent_text")
        await asyncio.sleep(0.5)
        await p.caller.say(voice(180))  # "mm-hm": shorter than barge_in_min_ms (200)
        await p.until_listening()

    summary = play(p, scenario)
    assert summary.stats.barge_ins == 0 and summary.stats.ignored_utterances == 1
    assert not p.transport.events_of("clear")
    greeting = Turn.objects.get()
    assert not greeting.interrupted and not greeting.heard_text


def test_without_barge_in_the_agent_finishes_and_talk_over_it_is_ignored(agent, phone, fake_speech):
    agent.barge_in_enabled = False
    agent.save()
    p = phone(agent, ScriptedEngine(greeting=LONG))

    async def scenario(p):
        await p.until_event("agent_text")
        await asyncio.sleep(0.5)
        await p.caller.say(voice(1200))
        await p.until_listening()

    summary = play(p, scenario)
    assert summary.stats.barge_ins == 0 and not p.transport.events_of("clear")
    assert list(Turn.objects.values_list("speaker", "interrupted")) == [("agent", False)]


def test_speculative_transcript_is_discarded_when_the_caller_resumes(agent, phone, fake_speech):
    p = phone(agent, ScriptedEngine(["Okay."]))
    stt = get_stt()
    stt.texts = [f"guess {n}" for n in range(1, 9)]

    async def scenario(p):
        await p.until_listening()
        said = await p.caller.say(voice(500) + gap(140) + voice(500))  # a pause, not an end
        await p.until_listening(after=said)

    summary = play(p, scenario)
    stats = summary.stats
    assert stats.speculative_started >= 2 and stats.speculative_discarded >= 1 and stats.speculative_used == 1
    assert Turn.objects.get(speaker="caller").text == f"guess {len(stt.calls)}"  # the last one
    # The transcript used covers the whole utterance, both halves.
    assert len(stt.calls[-1]["audio"]) >= 32 * (500 + 140 + 500)


def test_partial_and_final_captions(agent, phone, fake_speech):
    p = phone(agent, ScriptedEngine(["Okay."]))

    async def scenario(p):
        await p.until_listening()
        said = await p.caller.say(voice(600))
        await p.until_listening(after=said)

    play(p, scenario)
    captions = p.transport.events_of("caption")
    assert captions[-1] == {"type": "caption", "text": "hello", "final": True}
    states = [e["state"] for e in p.transport.events_of("state")]
    assert states[:3] == ["thinking", "speaking", "listening"] and states[-3:] == ["thinking", "speaking", "listening"]


def test_transfer_ends_the_call_and_tells_the_transport(agent, phone, fake_speech):
    engine = ScriptedEngine([DialogReply(["Putting you through."], action="transfer", action_reason="caller_asked")])
    p = phone(agent, engine)

    async def scenario(p):
        await p.until_listening()
        await p.caller.say(voice(600))
        await p.until_event("ended")

    summary = play(p, scenario)
    assert summary.end_reason == "transfer"
    assert p.transport.events_of("transfer") == [
        {"type": "transfer", "target": agent.transfer_target, "reason": "caller_asked"}]
    assert CallEvent.objects.filter(kind=CallEvent.Kind.TRANSFER, payload__target=agent.transfer_target).exists()
    assert Turn.objects.filter(speaker="agent").last().text == "Putting you through."


class ToolEngine(ScriptedEngine):
    """Answers the first caller turn the way the real engines do: through the CRM tools."""

    def respond(self, ctx, *, text=None, dtmf=None):
        if text is None and dtmf is None:
            return DialogReply([])
        calls = [tool_run(ctx, "find_customer", {"account_number": "73001"}),
                 tool_run(ctx, "transfer_to_human", {"reason": "caller_request"})]
        return DialogReply(["Putting you through."], tool_calls=calls, state=ctx.state, customer_id=ctx.customer_id,
                           action="transfer", action_reason="caller_request")


def test_what_the_dialog_learns_is_recorded_on_the_call_and_a_transfer_once(agent, phone, fake_speech):
    customer = CustomerFactory(account_number="73001")
    p = phone(agent, ToolEngine())

    async def scenario(p):
        await p.until_listening()
        await p.caller.say(voice(600))
        await p.until_event("ended")

    summary = play(p, scenario)
    assert summary.end_reason == "transfer"
    call = Call.objects.get()
    assert call.customer == customer
    assert list(call.events.filter(kind=CallEvent.Kind.TOOL_CALL).values_list("name", flat=True)) == [
        "find_customer", "transfer_to_human"]
    transfer = CallEvent.objects.get(call=call, kind=CallEvent.Kind.TRANSFER)
    assert transfer.payload == {"target": agent.transfer_target, "reason": "caller_request"}


def test_a_dead_line_ends_the_call_with_everything_stored(agent, fake_speech):
    class DeadLine(MemoryTransport):
        async def send_audio(self, frame: bytes) -> None:
            if len(self.frames) >= 5:
                raise ConnectionResetError("socket closed")
            await super().send_audio(frame)

    transport = DeadLine(16000)
    session = VoiceSession(agent=agent, transport=transport, engine=ScriptedEngine(greeting=LONG))
    summary = asyncio.run(asyncio.wait_for(session.run(), 20))
    assert summary.end_reason == "transport_error" and summary.finalized
    greeting = Turn.objects.get()
    assert greeting.partial and transport.hung_up is None


def test_an_existing_call_row_is_used(agent, fake_speech):
    call = call_start(channel=Call.Channel.TWILIO, agent=agent, provider_call_id="CA123", from_number="+15550001")
    transport = MemoryTransport(8000)
    session = VoiceSession(agent=agent, transport=transport, call=call, engine=ScriptedEngine())

    async def main():
        task = asyncio.create_task(session.run())
        await asyncio.sleep(0.8)
        session.hang_up()
        return await task

    summary = asyncio.run(main())
    assert summary.call_id == call.pk and Call.objects.count() == 1
    call.refresh_from_db()
    assert call.status == Call.Status.COMPLETED and call.end_reason == "caller_hangup"


def test_a_failing_dialog_engine_apologizes_and_the_call_goes_on(agent, phone, fake_speech):
    class Broken(ScriptedEngine):
        def respond(self, ctx, *, text=None, dtmf=None):
            raise RuntimeError("knowledge base offline")

    p = phone(agent, Broken())

    async def scenario(p):
        await p.until_listening()
        said = await p.caller.say(voice(600))
        await p.until_listening(after=said)

    summary = play(p, scenario)
    assert summary.finalized and summary.stats.errors == 1
    assert Turn.objects.filter(speaker="agent").last().text == VoiceSession.APOLOGY
    assert CallEvent.objects.filter(kind=CallEvent.Kind.ERROR, name="dialog").exists()
