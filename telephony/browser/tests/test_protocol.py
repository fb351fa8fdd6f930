"""The widget protocol after `start`, against the real voice session and dialog engine with the
fake speech engines (fast and deterministic; the browser tests run the real ones)."""

from __future__ import annotations

import json
import time

import pytest
from django.test import override_settings

from calls.models import Call, CallEvent, Turn
from telephony.browser import widget

from .conftest import communicator

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fake_speech"),
]

QUESTION = "I want to check the status of my order."


@pytest.fixture
def fake_speech():
    with override_settings(STT_ENGINE="calls.speech.fake.FakeSttEngine", TTS_ENGINE="calls.speech.fake.FakeTtsEngine"):
        yield


@pytest.fixture
def short_greeting(agent):
    agent.greeting = "Hi."  # the fake voice speaks 60 ms a character
    agent.save()
    return agent


class Client:
    """Drives one widget connection: collects events and agent audio, and reports playback
    the way the widget does (unless told not to), within the connection's message rate."""

    def __init__(self, comm, *, ack: bool = True) -> None:
        self.comm = comm
        self.ack = ack
        self.events: list[dict] = []
        self.frames: list[bytes] = []
        self.close_code: int | None = None

    async def start(self, **fields) -> dict:
        connected, _ = await self.comm.connect()
        assert connected
        await self.send({"type": "start", "sample_rate": 24000, "mode": "continuous", **fields})
        return await self.until(lambda e: e["type"] == "ready")

    async def send(self, message) -> None:
        await self.comm.send_to(text_data=json.dumps(message) if not isinstance(message, str) else message)

    async def until(self, predicate, *, timeout: float = 10.0) -> dict | None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; events so far: {self.events}")
            # receive_output(timeout=) would cancel the application when it times out.
            if await self.comm.receive_nothing(timeout=min(0.05, left), interval=0.01):
                continue
            message = await self.comm.receive_output()
            if message["type"] == "websocket.close":
                self.close_code = message.get("code", 1000)
                if predicate({"type": "websocket.close", "code": self.close_code}):
                    return None
                raise AssertionError(f"closed with {self.close_code}; events: {self.events}")
            if message.get("bytes") is not None:
                self.frames.append(message["bytes"])
                if self.ack and len(self.frames) % 5 == 0:  # every 100 ms; the widget reports ~4 times a second
                    await self.send({"type": "played", "ms": 20 * len(self.frames)})
                continue
            event = json.loads(message["text"])
            self.events.append(event)
            if predicate(event):
                return event

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["type"] == kind]

    async def hang_up(self) -> dict:
        await self.send({"type": "stop"})
        ended = await self.until(lambda e: e["type"] == "ended", timeout=20)
        await self.until(lambda e: e["type"] == "websocket.close", timeout=5)
        await self.comm.disconnect(timeout=20)  # what the browser does after the close frame
        return ended


async def test_a_typed_call_from_ready_to_ended(short_greeting, route):
    client = Client(communicator())
    ready = await client.start()
    assert ready["agent"] == "Support" and ready["sample_rate"] == 24000 and ready["mode"] == "continuous"
    call = await Call.objects.aget(public_id=ready["call_id"])
    assert call.channel == Call.Channel.BROWSER and call.status == Call.Status.IN_PROGRESS
    assert call.to_number == "test-key"
    assert await CallEvent.objects.filter(call=call, name="widget_connected", payload__origin="https://shop.example").aexists()

    greeting = await client.until(lambda e: e["type"] == "agent_text")
    assert greeting == {"type": "agent_text", "text": "Hi.", "turn": 0}
    await client.until(lambda e: e["type"] == "state" and e["state"] == "listening")
    # Agent audio: one 20 ms PCM16 frame per message at the rate asked for.
    assert client.frames and {len(f) for f in client.frames} == {960}
    assert any(e["type"] == "state" and e["state"] == "speaking" and e.get("turn") == 0 for e in client.events)

    await client.send({"type": "text", "text": f"  {QUESTION} "})
    caption = await client.until(lambda e: e["type"] == "caption")
    assert caption == {"type": "caption", "text": QUESTION, "final": True, "speaker": "caller"}
    answer = await client.until(lambda e: e["type"] == "agent_text" and e["turn"] == 1)
    await client.send({"type": "latency", "turn": 1, "ms": 777.4})
    await client.until(lambda e: e["type"] == "state" and e["state"] == "listening")

    ended = await client.hang_up()
    assert ended == {"type": "ended", "reason": "caller_hangup", "call_id": ready["call_id"]}
    assert client.close_code == widget.CLOSE_NORMAL

    call = await Call.objects.aget(public_id=ready["call_id"])
    assert call.status == Call.Status.COMPLETED and call.end_reason == "caller_hangup"
    assert call.intent == "order_status"
    turns = [t async for t in Turn.objects.filter(call=call).order_by("index")]
    assert [(t.speaker, t.text) for t in turns[:2]] == [(Turn.Speaker.AGENT, "Hi."), (Turn.Speaker.CALLER, QUESTION)]
    assert turns[2].speaker == Turn.Speaker.AGENT and turns[2].text.startswith(answer["text"])
    assert turns[2].client_voice_to_voice_ms == 777
    assert not await CallEvent.objects.filter(call=call, name="widget_dropped_input").aexists()


async def test_bad_input_after_start_is_dropped_counted_and_the_call_goes_on(short_greeting, route):
    client = Client(communicator())
    ready = await client.start()
    await client.comm.send_to(bytes_data=b"\x00" * 641)  # odd: not whole samples
    await client.send("{oops")
    await client.send({"type": "start", "sample_rate": 16000})
    await client.send({"type": "ptt", "pressed": "yes"})
    await client.send({"type": "dtmf", "digits": "12x"})
    await client.send({"type": "latency", "turn": 0, "ms": -5})
    await client.send({"type": "text", "text": "   "})
    codes = []
    for _ in range(4):  # errors come back for the first five drops only (the odd frame was one)
        codes.append((await client.until(lambda e: e["type"] == "error"))["code"])
    assert codes == ["bad_json", "already_started", "bad_ptt", "bad_dtmf"]
    assert all(not e["fatal"] for e in client.of("error"))
    # Still a call: a good frame, a digit and a typed turn all work.
    await client.comm.send_to(bytes_data=b"\x00" * 640)
    await client.send({"type": "dtmf", "digits": "5"})
    await client.send({"type": "text", "text": QUESTION})
    await client.until(lambda e: e["type"] == "caption" and e["text"] == QUESTION, timeout=15)
    await client.until(lambda e: e["type"] == "agent_text", timeout=15)
    assert len(client.of("error")) == 4
    await client.hang_up()
    call = await Call.objects.aget(public_id=ready["call_id"])
    dropped = await CallEvent.objects.aget(call=call, name="widget_dropped_input")
    assert dropped.kind == CallEvent.Kind.ERROR
    assert dropped.payload["odd_audio"] == 1 and dropped.payload["bad_json"] == 1
    assert dropped.payload["bad_messages"] == 5
    assert await CallEvent.objects.filter(call=call, kind=CallEvent.Kind.DTMF, name="5").aexists()


@override_settings(WIDGET_MAX_UNPLAYED_MS=200)
async def test_agent_audio_waits_for_a_slow_client(agent, route):
    agent.greeting = "Hello there, this greeting lasts for a few seconds."
    await agent.asave()
    client = Client(communicator(), ack=False)
    await client.start()
    with pytest.raises(AssertionError, match="timed out"):
        await client.until(lambda e: False, timeout=1.0)
    # 200 ms outstanding = 10 frames; nothing more until the client reports playback.
    assert len(client.frames) == 10
    await client.send({"type": "played", "ms": 200})
    with pytest.raises(AssertionError, match="timed out"):
        await client.until(lambda e: False, timeout=0.6)
    assert len(client.frames) == 20
    client.ack = True
    await client.send({"type": "played", "ms": 400})
    await client.until(lambda e: e["type"] == "state" and e["state"] == "listening", timeout=10)
    assert len(client.frames) * 20 / 1000 > 2.5  # the whole greeting, once the client kept up
    await client.hang_up()


async def test_stop_before_start_just_closes(route):
    client = Client(communicator())
    connected, _ = await client.comm.connect()
    assert connected
    await client.send({"type": "stop"})
    await client.until(lambda e: e["type"] == "websocket.close")
    assert client.close_code == widget.CLOSE_NORMAL
    assert not await Call.objects.aexists()


async def test_a_browser_that_disconnects_ends_and_stores_the_call(short_greeting, route):
    client = Client(communicator())
    ready = await client.start()
    await client.until(lambda e: e["type"] == "state" and e["state"] == "listening")
    await client.comm.disconnect(timeout=20)
    call = await Call.objects.aget(public_id=ready["call_id"])
    assert call.status == Call.Status.COMPLETED and call.end_reason == "caller_hangup"


async def test_a_failing_session_is_reported_and_closed_with_4500(route, monkeypatch):
    class Broken:
        def __init__(self, **kwargs):
            pass

        async def run(self):
            raise RuntimeError("boom")

        def hang_up(self, reason):
            pass

    monkeypatch.setattr(widget, "VoiceSession", Broken)
    client = Client(communicator())
    await client.start()
    error = await client.until(lambda e: e["type"] == "error")
    assert error["fatal"] and error["code"] == "server_error"
    await client.until(lambda e: e["type"] == "websocket.close")
    assert client.close_code == widget.CLOSE_SERVER_ERROR
