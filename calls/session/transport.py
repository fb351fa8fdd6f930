"""The small interface between a VoiceSession and the line it serves.

A transport adapter (browser websocket, Twilio Media Streams, Asterisk AudioSocket) turns
its wire protocol into three inbound calls on the session and implements three outbound
methods. It knows nothing about speech or dialog:

    session = VoiceSession(agent=agent, transport=adapter, channel=Call.Channel.TWILIO, ...)
    task = asyncio.create_task(session.run())     # greeting, turns, persistence
    session.feed_audio(pcm16_16k)                 # any chunk size; framed to 20 ms inside
    session.feed_dtmf("5")
    session.hang_up("caller_hangup")              # the far end went away
    await task                                    # returns once everything is stored

All six run on the session's event loop; none of them blocks.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal, TypedDict

EventType = Literal["state", "caption", "agent_text", "clear", "transfer", "ended"]


class SessionEvent(TypedDict, total=False):
    """What `Transport.send_event` receives (JSON-serializable).

    {"type": "state", "state": "listening" | "thinking" | "speaking"}   "turn": int when speaking
    {"type": "caption", "text": str, "final": bool}     caller speech; partial while they pause
    {"type": "agent_text", "text": str, "turn": int}      a sentence, when its audio starts
    {"type": "clear"}                                     barge-in: drop audio not yet played
    {"type": "transfer", "target": str, "reason": str}    the adapter bridges the call
    {"type": "ended", "reason": str}                      the call is over
    """

    type: EventType
    state: str
    text: str
    final: bool
    turn: int
    target: str
    reason: str


class Transport:
    """Implemented by each transport adapter.

    `sample_rate` is the PCM16 rate the line wants outbound (8000 for Twilio/Asterisk after
    their codecs, 16000-48000 for browsers); the session synthesizes straight to it, so
    each reply is resampled once. `send_audio` gets exactly one 20 ms mono PCM16 frame at a
    real-time 20 ms cadence: encode it (μ-law, base64…) and write it. Awaiting a slow
    socket is fine: the session's outbound queue is bounded and paced, so a slow client
    delays audio rather than growing memory. Raising (a closed socket) ends the call.
    """

    sample_rate: int = 16000

    async def send_audio(self, frame: bytes) -> None:
        raise NotImplementedError

    async def send_event(self, event: SessionEvent) -> None:
        """Captions, state, `clear` (Twilio: send {"event": "clear"}), transfer, ended."""

    async def hang_up(self, reason: str) -> None:
        """The session ended the call (goodbye played, timeout, transfer): close the line.
        Not called when the caller hung up first."""

    def unplayed_samples(self) -> int:
        """How many samples (at `sample_rate`) of the agent audio already sent the far end has
        not played yet. Asked at a barge-in, so the stored heard text leaves them out. Lines
        that play what they are sent at once (paced in real time) keep the default, 0."""
        return 0


class MemoryTransport(Transport):
    """Keeps everything it is sent, with arrival times: `simulate_call`, the latency
    benchmark and tests use it in place of a phone line.

    `send_delay` makes it a slow client (each frame's write takes that long).
    """

    def __init__(self, sample_rate: int = 16000, *, send_delay: float = 0.0, clock=time.monotonic) -> None:
        self.sample_rate = sample_rate
        self.send_delay = send_delay
        self.clock = clock
        self.frames: list[tuple[float, bytes]] = []  # (monotonic time handed over, frame)
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.hung_up: str | None = None
        self.unplayed = 0  # what unplayed_samples() answers: a line with a playback buffer

    def unplayed_samples(self) -> int:
        return self.unplayed

    async def send_audio(self, frame: bytes) -> None:
        self.frames.append((self.clock(), frame))
        if self.send_delay:
            await asyncio.sleep(self.send_delay)

    async def send_event(self, event: SessionEvent) -> None:
        self.events.append((self.clock(), dict(event)))

    async def hang_up(self, reason: str) -> None:
        self.hung_up = reason

    @property
    def audio(self) -> bytes:
        return b"".join(frame for _, frame in self.frames)

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return [event for _, event in self.events if event.get("type") == kind]

    def frames_after(self, t: float) -> list[tuple[float, bytes]]:
        return [(at, frame) for at, frame in self.frames if at > t]
