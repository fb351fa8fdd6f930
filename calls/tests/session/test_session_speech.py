"""The voice session end to end with the real engines: WebRTC VAD, Whisper tiny.en, Piper.

The caller is Piper speech streamed in real time, 20 ms a frame, like a phone line; what
the agent says is transcribed back with Whisper. Each test is a real call of a few
seconds, so they are marked slow (they still run by default).
"""

import asyncio
import io
import re
import wave

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from agents.engine import DialogReply
from calls.models import Call, CallEvent, Turn
from calls.session.recording import split_stereo
from calls.session.session import VoiceSession
from calls.speech.audio import resample
from calls.tests.speech.helpers import say, whisper_engine

from .conftest import ScriptedEngine, play

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.usefixtures("warm_speech")]

LONG_REPLY = ("We are open Monday to Friday from nine in the morning until six in the evening. "
              "On Saturdays we open at ten and close at four. "
              "We are closed on Sundays and on public holidays.")


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


# Whisper tiny.en's int8 kernels differ by CPU: one machine hears "rise" for "arrive" on every
# run. A turn must hold the utterance, not one exact word: at most a third of its words wrong
# (a fragment of it, another utterance or silence is far beyond). bench/stt_wer.py measures accuracy.
MAX_WER = 1 / 3


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: substituted, inserted and deleted words per word of the reference."""
    ref = words(reference)
    return Levenshtein.distance(ref, words(hypothesis)) / len(ref)


def transcribe(pcm: bytes, rate: int) -> str:
    return whisper_engine().transcribe(resample(pcm, rate, 16000)).text


def frames_between(transport, start: float, end: float) -> bytes:
    return b"".join(frame for at, frame in transport.frames if start <= at < end)


def recording(call: Call) -> tuple[np.ndarray, np.ndarray, int]:
    with call.recording.open("rb") as fh, wave.open(io.BytesIO(fh.read())) as wav:
        assert wav.getnchannels() == 2 and wav.getsampwidth() == 2
        rate = wav.getframerate()
        left, right = split_stereo(wav.readframes(wav.getnframes()))
    return left, right, rate


def level(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0


def agent_turns():
    return list(Turn.objects.filter(speaker=Turn.Speaker.AGENT).order_by("index"))


def test_a_call_end_to_end(agent, phone):
    engine = ScriptedEngine([DialogReply(["Your order will arrive on Tuesday morning.", "Goodbye."], intent="order_status",
                                         action="end_call", action_reason="caller_done")])
    p = phone(agent, engine, sample_rate=8000)  # a telephone line: everything resampled once, to 8 kHz
    question = "Hi, when will my order arrive?"
    marks = {}

    async def scenario(p):
        await p.until_listening()
        marks["said"] = await p.caller.say(say(question))
        await p.until_event("ended", timeout=20)

    summary = play(p, scenario)

    call = Call.objects.get()
    assert (call.status, call.end_reason, summary.end_reason, summary.finalized) == (
        Call.Status.COMPLETED, "caller_done", "caller_done", True)
    assert call.intent == "order_status"
    assert p.transport.hung_up == "caller_done"  # the session ended it, so it hung up the line
    assert CallEvent.objects.filter(call=call, kind=CallEvent.Kind.STATUS_CHANGE, name="completed").count() == 1

    greeting, caller, answer = Turn.objects.order_by("index")
    assert (greeting.speaker, greeting.text) == ("agent", "Hello.")
    assert caller.speaker == "caller" and wer(question, caller.text) <= MAX_WER, caller.text
    assert engine.heard[0]["text"] == caller.text
    assert 250 <= caller.endpointing_ms <= 600 and caller.stt_ms is not None and caller.confidence > 0.5
    assert caller.start_ms < caller.end_ms < answer.start_ms
    assert answer.text == "Your order will arrive on Tuesday morning. Goodbye." and not answer.interrupted
    assert answer.agent_ms is not None and answer.tts_first_audio_ms is not None
    assert answer.voice_to_voice_ms >= caller.endpointing_ms
    # The session's own figure is within the VAD's hangover of the one measured from outside.
    first_frame = next(at for at, _ in p.transport.frames if at > marks["said"])
    assert abs((first_frame - marks["said"]) * 1000 - answer.voice_to_voice_ms) < 200

    heard_back = transcribe(frames_between(p.transport, marks["said"], 1e12), 8000)
    assert wer(answer.text, heard_back) <= MAX_WER, heard_back
    # Underruns are a load figure (bench/voice_latency.py reports them), not asserted here.
    assert summary.stats.speculative_used == 1, summary.stats

    left, right, rate = recording(call)
    assert rate == 16000
    # Caller on the left while they spoke, agent on the right while it answered.
    said = slice(caller.start_ms * 16, caller.end_ms * 16)
    answered = slice(answer.start_ms * 16, answer.end_ms * 16)
    assert level(left[said]) > 10 * max(1.0, level(right[said]))
    assert level(right[answered]) > 10 * max(1.0, level(left[answered]))


def test_barge_in_stores_only_what_was_heard(agent, phone):
    engine = ScriptedEngine([LONG_REPLY, "Sure, go ahead."])
    p = phone(agent, engine)
    marks = {}

    async def scenario(p):
        await p.until_listening()
        said = await p.caller.say(say("What are your opening hours?"))
        marks["speaking"], _ = await p.until_event("agent_text", after=said, timeout=20)
        await asyncio.sleep(2.5)  # the caller lets the agent talk for a while, then cuts in
        marks["cut"] = await p.caller.say(say("Sorry, one more question please."))
        await p.until_listening(after=marks["cut"])

    summary = play(p, scenario)
    assert summary.stats.barge_ins == 1

    clear_at, _ = next((at, e) for at, e in p.transport.events if e["type"] == "clear")
    # Agent audio stops within one frame of the barge-in.
    assert len([at for at, _ in p.transport.frames if clear_at < at < marks["cut"]]) <= 1

    greeting, question, interrupted, caller, answer = Turn.objects.order_by("index")
    assert interrupted.interrupted and interrupted.text == LONG_REPLY
    heard = words(interrupted.heard_text)
    assert 3 <= len(heard) < len(words(LONG_REPLY)) and heard == words(LONG_REPLY)[: len(heard)]
    # The estimate matches what a listener makes of the audio that was actually played.
    played = transcribe(frames_between(p.transport, marks["speaking"] - 0.1, clear_at), 16000)
    assert abs(len(words(played)) - len(heard)) <= 3, (played, interrupted.heard_text)
    assert {"question"} <= set(words(caller.text)) and answer.text == "Sure, go ahead."
    # The dialog remembers what the caller heard, not what was generated.
    assert ("agent", interrupted.heard_text) in engine.heard[1]["history"]
    event = CallEvent.objects.get(kind=CallEvent.Kind.BARGE_IN)
    assert event.payload["heard_text"] == interrupted.heard_text

    # The recording is the call as heard: the agent side stops where the caller cut in.
    left, right, rate = recording(Call.objects.get())
    cut = int((interrupted.end_ms + 40) * rate / 1000)
    assert level(right[interrupted.start_ms * 16: interrupted.end_ms * 16]) > 300
    assert level(right[cut: caller.end_ms * 16]) < 30
    assert interrupted.end_ms < caller.end_ms


def test_hang_up_mid_reply_keeps_every_earlier_turn(agent, phone):
    engine = ScriptedEngine(["Okay, I have noted that.", LONG_REPLY])
    p = phone(agent, engine)

    async def scenario(p):
        await p.until_listening()
        said = await p.caller.say(say("My name is Anna."))
        await p.until_listening(after=said)
        said = await p.caller.say(say("When are you open?"))
        await p.until_event("agent_text", after=said, timeout=20)
        await asyncio.sleep(1.5)
        p.caller.hang_up()

    summary = play(p, scenario)
    call = Call.objects.get()
    assert (call.status, call.end_reason, summary.finalized) == (Call.Status.COMPLETED, "caller_hangup", True)
    assert p.transport.hung_up is None  # the caller hung up; nothing to close
    turns = list(Turn.objects.order_by("index"))
    assert [t.speaker for t in turns] == ["agent", "caller", "agent", "caller", "agent"]
    assert [t.partial for t in turns] == [False, False, False, False, True]
    assert "anna" in words(turns[1].text) and turns[2].text == "Okay, I have noted that."
    cut = turns[4]
    assert not cut.interrupted and cut.text == LONG_REPLY
    assert 1 <= len(words(cut.heard_text)) < len(words(LONG_REPLY))
    assert call.recording


def test_hang_up_mid_utterance_stores_the_partial_caller_turn(agent, phone):
    p = phone(agent, ScriptedEngine(["Okay."]))

    async def scenario(p):
        await p.until_listening()
        p.caller.queue(say("I would like to book an appointment for next Wednesday afternoon please."))
        await asyncio.sleep(1.6)  # "...book an appointment" of 3.5 s
        p.caller.hang_up()

    summary = play(p, scenario)
    assert summary.finalized and summary.end_reason == "caller_hangup"
    greeting, partial = Turn.objects.order_by("index")
    assert partial.speaker == "caller" and partial.partial
    assert {"book", "appointment"} & set(words(partial.text)), partial.text
    assert not {"afternoon", "please"} & set(words(partial.text)), partial.text


def test_garbage_frames_end_cleanly_with_nothing_lost(agent, phone):
    p = phone(agent, ScriptedEngine(["I'm here."]))
    rng = np.random.default_rng(7)

    async def scenario(p):
        await p.until_listening()
        p.caller.stop()  # this test feeds the session by hand
        for junk in (None, "text", 42, b"", b"\x01", bytearray(b"\x02\x03\x04"), memoryview(b"\x05" * 333)):
            p.session.feed_audio(junk)
        for _ in range(60):  # 1.2 s of full-scale random bytes in odd-sized chunks
            p.session.feed_audio(rng.integers(0, 256, 641, dtype=np.uint8).tobytes())
            await asyncio.sleep(0.02)
        for _ in range(60):
            p.session.feed_audio(bytes(640))
            await asyncio.sleep(0.02)
        p.session.feed_dtmf("not a digit")
        p.session.hang_up()

    summary = play(p, scenario)
    assert summary.finalized and summary.end_reason == "caller_hangup"
    assert summary.stats.bytes_dropped > 0 and summary.stats.dtmf_dropped == 1
    call = Call.objects.get()
    assert call.status == Call.Status.COMPLETED and call.recording
    turns = list(Turn.objects.order_by("index"))
    assert turns[0].text == "Hello."
    # Whatever the noise turned into, every caption the caller saw is a stored turn.
    captions = [e for e in p.transport.events_of("caption") if e["final"]]
    assert len(captions) == Turn.objects.filter(speaker="caller").count()


def test_silence_reprompts_then_hangs_up_politely(agent, phone):
    agent.silence_reprompt_seconds, agent.silence_hangup_seconds = 1, 4
    agent.save()
    p = phone(agent, ScriptedEngine(), noise_dbfs=-65)  # a quiet line, never digital silence

    async def scenario(p):
        await p.until_event("ended", timeout=20)

    summary = play(p, scenario)
    call = Call.objects.get()
    assert (call.end_reason, call.status, summary.finalized) == ("silence_timeout", Call.Status.COMPLETED, True)
    assert p.transport.hung_up == "silence_timeout"
    turns = list(Turn.objects.order_by("index"))
    assert turns[0].text == "Hello." and turns[-1].text == VoiceSession.SILENCE_GOODBYE
    reprompts = [t for t in turns if t.intent == "reprompt"]
    assert reprompts and all(t.text == VoiceSession.REPROMPT for t in reprompts)
    assert not Turn.objects.filter(speaker="caller").exists()
    # The goodbye played to the end before the line was closed.
    goodbye = turns[-1]
    ended_at, _ = next((at, e) for at, e in p.transport.events if e["type"] == "ended")
    assert not goodbye.partial and goodbye.end_ms > goodbye.start_ms + 2000


def test_max_call_duration_cuts_in_with_a_goodbye(agent, phone):
    agent.max_call_seconds = 3
    agent.save()
    p = phone(agent, ScriptedEngine(greeting=LONG_REPLY))

    async def scenario(p):
        await p.until_event("ended", timeout=20)

    summary = play(p, scenario)
    call = Call.objects.get()
    assert call.end_reason == "max_duration" and summary.finalized
    greeting, goodbye = Turn.objects.order_by("index")
    assert greeting.partial and 2 <= len(words(greeting.heard_text)) < len(words(LONG_REPLY))
    assert goodbye.text == VoiceSession.TIME_LIMIT_GOODBYE and not goodbye.partial
    assert 2800 <= goodbye.start_ms <= 4000


def test_a_slow_dialog_gets_a_filler_phrase(agent, phone):
    p = phone(agent, ScriptedEngine(["Your balance is forty two dollars."], delay=1.6))
    marks = {}

    async def scenario(p):
        await p.until_listening()
        marks["said"] = await p.caller.say(say("What is my balance?"))
        await p.until_event("agent_text", after=marks["said"], timeout=20, text="Your balance is forty two dollars.")
        await p.until_listening(after=marks["said"])

    summary = play(p, scenario)
    assert summary.stats.fillers == 1, summary.stats
    greeting, caller, filler, answer = Turn.objects.order_by("index")
    assert filler.intent == "filler" and filler.text in VoiceSession.FILLERS
    assert answer.agent_ms >= 1500 and filler.voice_to_voice_ms < answer.voice_to_voice_ms
    assert filler.end_ms <= answer.start_ms
    # The filler was spoken about 0.7 s into the dialog's 1.5 s wait, before the answer was ready.
    assert filler.voice_to_voice_ms < caller.endpointing_ms + caller.stt_ms + 1400
    heard = words(transcribe(frames_between(p.transport, marks["said"], 1e12), 16000))
    assert {"balance"} <= set(heard) and set(words(filler.text)) <= set(heard), heard
