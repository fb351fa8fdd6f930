"""Twilio's side of a bidirectional Media Stream, for the tests and bench/twilio_latency.py.

`MediaStreamClient` does what Twilio does (https://www.twilio.com/docs/voice/media-streams):
it opens the socket with X-Twilio-Signature over the public stream URL, sends `connected`, then
`start` (with the call's `customParameters`), then one `media` message of 160 μ-law bytes every
20 ms for the whole call (silence between utterances) with increasing `chunk`, `timestamp` and
`sequenceNumber` strings, plus `dtmf` and `stop` when told. It plays what the server sends the
way Twilio's buffer does: in real time, optionally `lag_s` behind (a slow line), echoing each
`mark` when playback reaches it, and on `clear` dropping what is buffered and echoing the
pending marks at once.

It checks the server as Twilio would: any message but `media`, `mark` or `clear`, another
stream's streamSid, extra fields, or a media payload that is not 160 bytes of base64 μ-law is a
protocol violation, which fails the test (`check()` and every `until()` raise it).

The socket is a `wire`: channels' WebsocketCommunicator for unit tests, or a real WebSocket
(aiohttp) to a daphne server.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import json
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from twilio.request_validator import RequestValidator

from agents.deterministic import DeterministicEngine
from agents.engine import CallContext, DialogEngine, DialogReply
from calls.session.simulate import last_speech_sample
from calls.speech.audio import ulaw_decode, ulaw_encode
from telephony.twilio.security import stream_token, stream_url

FRAME = 160  # μ-law bytes in 20 ms at 8 kHz
FRAME_S = 0.02
SILENCE = ulaw_encode(bytes(2 * FRAME))
ACCOUNT_SID = "AC" + "0" * 32
AUDIBLE = 500  # peak |sample| of agent audio that a caller hears as sound


def new_call_sid() -> str:
    return "CA" + uuid.uuid4().hex


def signature(url: str | None = None, token: str | None = None) -> str:
    """X-Twilio-Signature of the stream URL's upgrade (no params), as Twilio computes it."""
    return RequestValidator(token or settings.TWILIO_AUTH_TOKEN).compute_signature(url or stream_url(), {})


def peak(ulaw: bytes) -> int:
    return int(np.abs(np.frombuffer(ulaw_decode(ulaw), dtype="<i2").astype(np.int32)).max(initial=0))


class ProtocolViolation(AssertionError):
    """The server sent what Twilio would refuse."""


# --- wires ------------------------------------------------------------------------------------

class CommunicatorWire:
    """channels' WebsocketCommunicator on the project's full ASGI application."""

    def __init__(self, *, headers: list[tuple[bytes, bytes]], path: str = "/ws/telephony/twilio/media/") -> None:
        from channels.testing import WebsocketCommunicator

        from voicecrm.asgi import application

        self.comm = WebsocketCommunicator(application, path, headers=headers)
        self.comm.scope["client"] = ("127.0.0.1", 40000)
        self.refused: int | None = None

    async def connect(self) -> bool:
        connected, code = await self.comm.connect(timeout=5)
        if not connected:
            self.refused = code
        return connected

    async def send(self, text: str) -> None:
        await self.comm.send_to(text_data=text)

    async def receive(self) -> tuple[str, object]:
        while True:
            # receive_output(timeout=) would cancel the application when it times out.
            if await self.comm.receive_nothing(timeout=0.05, interval=0.005):
                continue
            message = await self.comm.receive_output()
            if message["type"] == "websocket.close":
                return "close", message.get("code", 1000)
            if message.get("text") is not None:
                return "text", message["text"]
            return "binary", message.get("bytes")

    async def close(self) -> None:
        # What Twilio does after a close frame, or after its `stop`: the connection goes away.
        await self.comm.disconnect(timeout=30)


class AiohttpWire:
    """A real WebSocket to a server (daphne)."""

    def __init__(self, url: str, *, headers: dict[str, str]) -> None:
        self.url, self.headers = url, headers
        self.refused: int | None = None
        self.session = self.ws = None

    async def connect(self) -> bool:
        import aiohttp

        self.session = aiohttp.ClientSession()
        try:
            self.ws = await self.session.ws_connect(self.url, headers=self.headers, autoping=True)
        except aiohttp.WSServerHandshakeError as error:
            self.refused = error.status
            await self.session.close()
            return False
        return True

    async def send(self, text: str) -> None:
        await self.ws.send_str(text)

    async def receive(self) -> tuple[str, object]:
        import aiohttp

        message = await self.ws.receive()
        if message.type == aiohttp.WSMsgType.TEXT:
            return "text", message.data
        if message.type == aiohttp.WSMsgType.BINARY:
            return "binary", message.data
        return "close", self.ws.close_code if message.type != aiohttp.WSMsgType.CLOSE else message.data

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()


# --- the client -------------------------------------------------------------------------------

@dataclass
class _Utterance:
    frames: list[bytes]
    last: int  # index of the frame holding the last speech sample
    done: asyncio.Future
    position: int = 0
    last_sent_at: float | None = None


@dataclass
class Clear:
    at: float
    played: int  # frames played before it
    received: int  # frames received before it
    dropped: int  # frames it dropped from the buffer


@dataclass
class MediaStreamClient:
    wire: object
    call_sid: str
    parameters: dict[str, str]
    lag_s: float = 0.0  # how far behind arrival the buffer plays
    stream_sid: str = field(default_factory=lambda: "MZ" + uuid.uuid4().hex)
    received: list[tuple[float, bytes]] = field(default_factory=list)  # (arrival, μ-law frame)
    marks: list[tuple[float, str, int]] = field(default_factory=list)  # (arrival, name, frames received before)
    echoes: list[tuple[float, str]] = field(default_factory=list)
    clears: list[Clear] = field(default_factory=list)
    played: list[bytes] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    closed: int | None = None
    sent_media: int = 0

    def __post_init__(self) -> None:
        self._sequence = 0
        self._buffer: deque = deque()  # ("frame", ulaw, arrival) | ("mark", name, arrival)
        self._utterances: deque[_Utterance] = deque()
        self._tasks: list[asyncio.Task] = []
        self._sending = False
        self._changed = asyncio.Event()
        self._t0 = time.monotonic()
        self._audible: list[float] = []  # arrival times of the frames with sound in them

    @classmethod
    def for_call(cls, wire, call, **kwargs) -> MediaStreamClient:
        """The stream the TwiML for `call` opens: its CallSid and the two <Parameter>s."""
        public_id = str(call.public_id)
        return cls(wire, call.provider_call_id, {"call": public_id, "token": stream_token(public_id)}, **kwargs)

    # --- what Twilio sends -----------------------------------------------------------------

    async def open(self, *, start: bool = True) -> bool:
        """Connect; then `connected` and `start` unless told not to. False: the handshake was refused."""
        if not await self.wire.connect():
            return False
        self._tasks.append(asyncio.create_task(self._receive_loop()))
        if start:
            await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            await self.start()
        return True

    def start_message(self) -> dict:
        return {
            "event": "start", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
            "start": {
                "accountSid": ACCOUNT_SID, "streamSid": self.stream_sid, "callSid": self.call_sid,
                "tracks": ["inbound"], "customParameters": dict(self.parameters),
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }

    async def start(self) -> None:
        """Send `start`, then stream caller audio and play the server's."""
        await self.send(self.start_message())
        self._t0 = time.monotonic()
        self._sending = True
        self._tasks.append(asyncio.create_task(self._media_loop()))
        self._tasks.append(asyncio.create_task(self._play_loop()))

    async def send(self, message: dict | str) -> None:
        await self.wire.send(message if isinstance(message, str) else json.dumps(message))

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    def say(self, ulaw: bytes) -> asyncio.Future:
        """Queue μ-law audio after what is already queued. The future resolves to the monotonic
        time the frame holding its last speech sample was sent."""
        frames = [ulaw[i:i + FRAME].ljust(FRAME, SILENCE[:1]) for i in range(0, len(ulaw), FRAME)]
        last = min(len(frames) - 1, last_speech_sample(ulaw_decode(ulaw), 8000) // FRAME)
        done = asyncio.get_running_loop().create_future()
        self._utterances.append(_Utterance(frames, last, done))
        return done

    async def dtmf(self, digit: str) -> None:
        await self.send({"event": "dtmf", "streamSid": self.stream_sid, "sequenceNumber": self._next(),
                         "dtmf": {"track": "inbound_track", "digit": digit}})

    async def stop(self) -> None:
        """The caller hung up: Twilio sends `stop` and stops streaming."""
        self._sending = False
        await self.send({"event": "stop", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                         "stop": {"accountSid": ACCOUNT_SID, "callSid": self.call_sid}})

    async def close(self) -> None:
        self._sending = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.wire.close()

    async def _media_loop(self) -> None:
        next_at = time.monotonic()
        chunk = 0
        while self._sending:
            utterance = self._utterances[0] if self._utterances else None
            frame = utterance.frames[utterance.position] if utterance else SILENCE
            chunk += 1
            await self.send({
                "event": "media", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
                "media": {"track": "inbound", "chunk": str(chunk),
                          "timestamp": str(round((time.monotonic() - self._t0) * 1000)),
                          "payload": base64.b64encode(frame).decode()},
            })
            self.sent_media += 1
            if utterance is not None:
                if utterance.position == utterance.last:
                    utterance.last_sent_at = time.monotonic()
                utterance.position += 1
                if utterance.position == len(utterance.frames):
                    self._utterances.popleft()
                    utterance.done.done() or utterance.done.set_result(utterance.last_sent_at)
            next_at += FRAME_S
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.5:  # far behind (a loaded box): restart the clock rather than burst
                next_at = time.monotonic()

    # --- what the server sends ----------------------------------------------------------------

    def _violation(self, what: str) -> None:
        self.violations.append(what)

    async def _receive_loop(self) -> None:
        while True:
            kind, data = await self.wire.receive()
            now = time.monotonic()
            if kind == "close":
                self.closed = data
                self._changed.set()
                return
            if kind != "text":
                self._violation(f"a binary message: Twilio takes JSON text ({len(data or b'')} bytes)")
                continue
            self._handle(data, now)
            self._changed.set()

    def _handle(self, text: str, now: float) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return self._violation(f"not JSON: {text[:80]!r}")
        event = message.get("event") if isinstance(message, dict) else None
        shape = {"media": ({"event", "streamSid", "media"}, {"payload"}), "mark": ({"event", "streamSid", "mark"}, {"name"}),
                 "clear": ({"event", "streamSid"}, None)}.get(event)
        if shape is None:
            return self._violation(f"event {event!r}: only media, mark and clear (Twilio error 31924)")
        keys, inner = shape
        if set(message) != keys or (inner is not None and (not isinstance(message[event], dict) or set(message[event]) != inner)):
            return self._violation(f"fields of {event}: {text[:200]}")
        if message["streamSid"] != self.stream_sid:
            return self._violation(f"streamSid {message['streamSid']!r} is not this stream's")
        if event == "media":
            try:
                ulaw = base64.b64decode(message["media"]["payload"], validate=True)
            except (binascii.Error, ValueError, TypeError):
                return self._violation("media payload is not base64")
            if len(ulaw) != FRAME:
                return self._violation(f"media payload of {len(ulaw)} bytes, not 160 (20 ms of μ-law)")
            self.received.append((now, ulaw))
            if peak(ulaw) >= AUDIBLE:
                self._audible.append(now)
            self._buffer.append(("frame", ulaw, now))
        elif event == "mark":
            name = message["mark"]["name"]
            if not isinstance(name, str) or not name:
                return self._violation(f"mark name {name!r}")
            self.marks.append((now, name, len(self.received)))
            self._buffer.append(("mark", name, now))
        else:
            dropped = sum(1 for item in self._buffer if item[0] == "frame")
            marks = [item[1] for item in self._buffer if item[0] == "mark"]
            self._buffer.clear()
            self.clears.append(Clear(now, len(self.played), len(self.received), dropped))
            for name in marks:  # Twilio echoes the pending marks at once
                self._echo(name)

    def _echo(self, name: str) -> None:
        self.echoes.append((time.monotonic(), name))
        self._tasks = [task for task in self._tasks if not task.done()]
        self._tasks.append(asyncio.ensure_future(self.send({
            "event": "mark", "sequenceNumber": self._next(), "streamSid": self.stream_sid, "mark": {"name": name}})))

    async def _play_loop(self) -> None:
        """Twilio's playback: one buffered frame every 20 ms, `lag_s` after it arrived."""
        next_at = time.monotonic()
        while True:
            now = time.monotonic()
            while self._buffer and self._buffer[0][0] == "mark":  # everything before it has played
                self._echo(self._buffer.popleft()[1])
            if self._buffer and self._buffer[0][2] + self.lag_s <= now:
                self.played.append(self._buffer.popleft()[1])
            next_at += FRAME_S
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    # --- for the tests ---------------------------------------------------------------------------

    def check(self) -> None:
        if self.violations:
            raise ProtocolViolation("; ".join(self.violations[:5]))

    async def until(self, predicate, *, timeout: float = 20.0, what: str = "the server"):
        """Wait until `predicate()` is true (returns its value); fails on a protocol violation, a
        close the predicate did not ask for, or the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            self.check()
            result = predicate()
            if result:
                return result
            if self.closed is not None:
                raise AssertionError(f"closed with {self.closed} while waiting for {what}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.1))
            except TimeoutError:
                pass

    async def until_closed(self, *, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while self.closed is None:
            if time.monotonic() > deadline:
                raise AssertionError("the server did not close the stream")
            await asyncio.sleep(0.02)
        self.check()
        return self.closed

    def audible_after(self, t: float) -> float | None:
        """Arrival of the first agent frame with sound (peak |sample| ≥ 500) received after `t`."""
        i = bisect.bisect_right(self._audible, t)
        return self._audible[i] if i < len(self._audible) else None

    async def reply_over(self, *, after: float, quiet_s: float = 0.4, timeout: float = 30.0) -> float:
        """Wait until audible agent audio arrived after `after` and its reply is over: a mark with
        no media for `quiet_s` after it (a reply's last mark is sent right after its last frame;
        the one between two sentences comes with the next sentence's audio). Returns the time
        of that mark."""
        def over():
            if self.audible_after(after) is None or not self.marks:
                return None
            at = self.marks[-1][0]
            if at < after or time.monotonic() - at < quiet_s:
                return None
            return at if not self.received or self.received[-1][0] <= at else None

        return await self.until(over, timeout=timeout, what="the end of the agent's reply")


# --- a scripted dialog, for tests that check what reaches the dialog --------------------------

class LineTestEngine(DialogEngine):
    """Greets (after the caller-ID lookup every channel gets), answers what it hears, and acts on
    keys: 9 transfers the call, 0 ends it. `heard` records every turn (one engine per process)."""

    GREETING = ["Hi there.", "Go ahead."]
    heard: list[dict] = []

    def start(self, ctx: CallContext) -> DialogReply:
        DeterministicEngine.caller_id_lookup(ctx)
        return DialogReply(list(self.GREETING), intent="greeting", customer_id=ctx.customer_id)

    def respond(self, ctx: CallContext, *, text: str | None = None, dtmf: str | None = None) -> DialogReply:
        if not text and not dtmf:
            return DialogReply([])
        self.heard.append({"text": text, "dtmf": dtmf, "caller_number": ctx.caller_number})
        if dtmf == "9":
            return DialogReply(["Connecting you."], intent="transfer", action="transfer", action_reason="caller_asked")
        if dtmf == "0":
            return DialogReply(["Bye."], intent="goodbye", action="end_call", action_reason="agent_end")
        if dtmf:
            return DialogReply([f"You pressed {dtmf}."], intent="keys")
        return DialogReply([f"You said {text}."], intent="speech")


# --- calls and audio ----------------------------------------------------------------------------

def twilio_call(agent, *, direction: str = "inbound", caller: str = "+14155552001", line: str = "+14155550000",
                sid: str = ""):
    """The Call the voice webhook (inbound) or an outbound dial has created for a Twilio call:
    inbound calls are in progress, outbound ones queued until their stream connects."""
    from calls import services
    from calls.models import Call

    inbound = direction == Call.Direction.INBOUND
    return services.call_start(
        channel=Call.Channel.TWILIO, agent=agent, direction=direction, from_number=caller if inbound else line,
        to_number=line if inbound else caller, provider_call_id=sid or new_call_sid(), answered=inbound,
    )


def prompt_ulaw(name: str) -> bytes:
    """An Asterisk prompt (real 8 kHz telephone speech), μ-law encoded as Twilio sends it."""
    from calls.tests.speech.helpers import asterisk_prompt

    return ulaw_encode(asterisk_prompt(name, 8000))
