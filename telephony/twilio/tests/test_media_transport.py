"""TwilioTransport on its own: the messages it writes, and what it makes of mark echoes, on a
clock the test moves by hand."""

from __future__ import annotations

import asyncio
import base64
import json

import numpy as np
import pytest

from calls.speech.audio import ulaw_decode, ulaw_encode
from telephony.twilio.transport import CLOSE_GONE, CLOSE_NORMAL, FRAME_SAMPLES, TwilioTransport

SID = "MZ00000000000000000000000000000001"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Line:
    """What the transport wrote, parsed, and how it closed."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.closed: int | None = None
        self.steered: list[tuple] = []

    async def send(self, text: str) -> None:
        message = json.loads(text)
        # Only what Twilio accepts (anything else is its error 31924), always for this stream.
        assert message["event"] in {"media", "mark", "clear"}, message
        assert message["streamSid"] == SID
        self.messages.append(message)

    async def close(self, code: int) -> None:
        self.closed = code

    def of(self, event: str) -> list[dict]:
        return [m for m in self.messages if m["event"] == event]


def tone(ms: int = 20, amplitude: int = 8000) -> bytes:
    t = np.arange(8 * ms) / 8000
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def line():
    return Line()


@pytest.fixture
def transport(clock, line):
    return TwilioTransport(stream_sid=SID, send_text=line.send, close=line.close, clock=clock)


async def sentence(transport, text: str = "A sentence.") -> None:
    await transport.send_event({"type": "agent_text", "text": text, "turn": 0})


async def play(transport, clock, frames: int, *, pace: bool = True) -> None:
    """Send `frames` 20 ms frames, 20 ms apart as the session's playout does."""
    for _ in range(frames):
        await transport.send_audio(tone())
        if pace:
            clock.advance(0.02)


async def test_agent_audio_goes_out_as_160_bytes_of_mulaw_per_frame(transport, line):
    pcm = tone(60)
    for i in range(0, len(pcm), 320):
        await transport.send_audio(pcm[i:i + 320])
    media = line.of("media")
    assert len(media) == 3 and set(media[0]) == {"event", "streamSid", "media"} and set(media[0]["media"]) == {"payload"}
    payloads = [base64.b64decode(m["media"]["payload"]) for m in media]
    assert [len(p) for p in payloads] == [160, 160, 160]
    assert b"".join(payloads) == ulaw_encode(pcm)
    decoded = np.frombuffer(ulaw_decode(b"".join(payloads)), dtype="<i2")
    assert np.abs(decoded).max() > 7000  # the tone survives the codec
    assert transport.sent == 3 * FRAME_SAMPLES


async def test_marks_at_sentence_boundaries_and_at_the_end_of_a_reply(transport, line):
    await transport.send_event({"type": "state", "state": "speaking", "turn": 0})
    await transport.send_event({"type": "agent_text", "text": "One.", "turn": 0})  # nothing to mark yet
    await transport.send_audio(tone())
    await transport.send_event({"type": "agent_text", "text": "Two.", "turn": 0})  # "One." is complete
    await transport.send_audio(tone())
    await transport.send_audio(tone())
    await transport.send_event({"type": "state", "state": "listening"})  # the reply is over
    await transport.send_event({"type": "state", "state": "listening"})  # no new audio: no mark
    await transport.send_event({"type": "caption", "text": "hi", "final": True})
    # The next reply: its first sentence's event may come after its first frame; no mark there.
    await transport.send_audio(tone())
    await transport.send_event({"type": "agent_text", "text": "Three.", "turn": 1})
    await transport.send_audio(tone())
    await transport.send_event({"type": "ended", "reason": "caller_hangup"})
    assert [m["event"] for m in line.messages] == ["media", "mark", "media", "media", "mark", "media", "media"]
    names = [m["mark"]["name"] for m in line.of("mark")]
    assert len(set(names)) == 2 and transport.pending_marks == 2


async def test_unplayed_audio_follows_the_echoes_and_real_time(transport, line, clock):
    await sentence(transport)
    # Twilio's buffer is behind what was sent: 25 frames (500 ms) go out in real time, a mark
    # after the 10th.
    await play(transport, clock, 10)
    await sentence(transport, "Second.")
    await play(transport, clock, 15)
    assert transport.unplayed_samples() == 0  # no echo yet: assumed played as sent
    # The echo of the mark after 200 ms of audio arrives now: Twilio is 300 ms behind.
    assert transport.mark_echoed(line.of("mark")[0]["mark"]["name"])
    assert transport.unplayed_samples() == 25 * FRAME_SAMPLES - 10 * FRAME_SAMPLES
    clock.advance(0.1)
    assert transport.unplayed_samples() == 15 * FRAME_SAMPLES - 800
    clock.advance(10)
    assert transport.unplayed_samples() == 0  # capped at what was sent, never negative


async def test_a_clear_drops_everything_and_the_late_echoes_it_causes_change_nothing(transport, line, clock):
    await sentence(transport)
    await play(transport, clock, 10)
    await sentence(transport, "Second.")
    await play(transport, clock, 10)
    await sentence(transport, "Third.")
    await play(transport, clock, 10)
    first, second = (m["mark"]["name"] for m in line.of("mark"))
    assert transport.mark_echoed(first)  # Twilio is at 200 ms of 600
    clock.advance(0.05)
    unplayed = transport.unplayed_samples()
    assert unplayed == 30 * FRAME_SAMPLES - 10 * FRAME_SAMPLES - 400
    # Barge-in: the session reads unplayed_samples(), then clears.
    await transport.send_event({"type": "clear"})
    assert line.messages[-1] == {"event": "clear", "streamSid": SID}
    assert transport.unplayed_samples() == 0
    # Twilio echoes the pending mark at once; it says nothing about playback.
    assert transport.mark_echoed(second)
    assert transport.unplayed_samples() == 0
    # The next reply: counted from the clear, not from the dropped audio or the voided mark.
    clock.advance(1.0)
    await play(transport, clock, 5, pace=False)
    assert transport.unplayed_samples() == 5 * FRAME_SAMPLES
    assert not transport.mark_echoed(second)  # an echo is used once
    assert not transport.mark_echoed("never-sent")
    assert transport.unplayed_samples() == 5 * FRAME_SAMPLES


async def test_an_idle_line_starts_playing_the_next_reply_when_it_is_sent(transport, line, clock):
    await sentence(transport)
    await play(transport, clock, 10)
    await transport.send_event({"type": "state", "state": "listening"})
    assert transport.mark_echoed(line.of("mark")[0]["mark"]["name"])
    clock.advance(3.0)  # the caller talks; Twilio plays silence
    await play(transport, clock, 5, pace=False)  # a burst: five frames at one instant
    # Not "3 s since the echo, so all played": the buffer had run dry.
    assert transport.unplayed_samples() == 5 * FRAME_SAMPLES
    clock.advance(0.04)
    assert transport.unplayed_samples() == 3 * FRAME_SAMPLES


async def test_echoes_never_move_playback_back(transport, line, clock):
    await sentence(transport)
    await play(transport, clock, 5)
    await sentence(transport, "b")
    await play(transport, clock, 5)
    await sentence(transport, "c")
    await play(transport, clock, 5)
    first, second = (m["mark"]["name"] for m in line.of("mark"))
    assert transport.mark_echoed(second)  # an echo covers the marks before it
    settled = transport.unplayed_samples()
    assert settled == 5 * FRAME_SAMPLES
    assert not transport.mark_echoed(first)  # already settled by the later echo
    assert transport.unplayed_samples() == settled


async def test_hang_up_asks_the_network_first_then_closes(clock, line):
    order: list[str] = []

    async def on_hang_up(reason: str) -> None:
        order.append(f"rest:{reason}")

    async def close(code: int) -> None:
        order.append(f"close:{code}")

    transport = TwilioTransport(stream_sid=SID, send_text=line.send, close=close, on_hang_up=on_hang_up, clock=clock)
    await transport.hang_up("agent_end")
    assert order == ["rest:agent_end", f"close:{CLOSE_NORMAL}"]
    with pytest.raises(ConnectionError):
        await transport.send_audio(tone())
    assert line.messages == []


async def test_a_transfer_is_steered_before_the_socket_closes(clock, line):
    order: list[str] = []
    release = asyncio.Event()

    async def on_transfer(target: str) -> None:
        await release.wait()  # the REST update is slow
        order.append(f"dial:{target}")

    async def on_hang_up(reason: str) -> None:
        order.append("hang_up")

    async def close(code: int) -> None:
        order.append(f"close:{code}")

    transport = TwilioTransport(stream_sid=SID, send_text=line.send, close=close, on_transfer=on_transfer,
                                on_hang_up=on_hang_up, clock=clock)
    await transport.send_event({"type": "transfer", "target": "+14155550100", "reason": "caller_asked"})
    hang_up = asyncio.create_task(transport.hang_up("transfer"))
    await asyncio.sleep(0.05)
    assert order == []  # the socket stays open while Twilio is told to <Dial>
    release.set()
    await hang_up
    assert order == ["dial:+14155550100", f"close:{CLOSE_NORMAL}"]  # no REST hang-up after a transfer
    assert line.messages == []  # nothing for Twilio on the stream itself


async def test_a_call_that_had_ended_is_closed_with_4410_and_not_hung_up_again(clock, line):
    hung_up = []

    async def on_hang_up(reason: str) -> None:
        hung_up.append(reason)

    transport = TwilioTransport(stream_sid=SID, send_text=line.send, close=line.close, on_hang_up=on_hang_up,
                                clock=clock)
    await transport.hang_up("already_ended")
    assert line.closed == CLOSE_GONE and hung_up == []
