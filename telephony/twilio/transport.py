"""The voice session's side of a Twilio Media Stream: agent audio out as μ-law `media`
messages, `mark`s between sentences, `clear` on barge-in, and how much Twilio has really played.

Twilio buffers what it is sent and plays it in real time; the only news of how far it got are
mark echoes: a `mark` we send comes back once playback reaches it. So every mark remembers how
many samples had been sent before it, an echo anchors the playback position there, and between
echoes the position runs on at real time, capped at what was sent:

    unplayed = sent - min(sent, anchor + elapsed since the anchor)

Two more anchors keep the estimate honest. When the estimate says Twilio's buffer ran dry (a
pause between replies), the next frame starts playing when it is sent, not in the past. And a
`clear` drops everything buffered: what was sent is gone, and the pending marks that Twilio then
echoes at once say nothing about playback, so their echoes are ignored (an echo never moves the
position behind one already known, and the count never goes negative).

Until the first echo of a reply the estimate assumes Twilio plays what it gets at once, so it
can be short by the line's delay (~0.1-0.2 s) early in a reply's first sentence.

Only `media`, `mark` and `clear` are ever sent: anything else is Twilio error 31924.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable

from calls.session import SessionEvent, Transport
from calls.speech.audio import ulaw_encode

logger = logging.getLogger(__name__)

RATE = 8000  # Twilio streams G.711 μ-law at 8 kHz, mono
FRAME_SAMPLES = RATE * 20 // 1000  # 160 samples = 160 μ-law bytes per 20 ms message
OUTBOUND_EVENTS = frozenset({"media", "mark", "clear"})
# Close codes the transport uses (the consumer has the full list: telephony/twilio/media.py).
CLOSE_NORMAL = 1000
CLOSE_GONE = 4410
# How long the end of a call waits for the REST update that steers it (a transfer's <Dial>, the
# agent's hang-up) before it closes the socket anyway.
STEER_WAIT_S = 10.0


class TwilioTransport(Transport):
    """VoiceSession → Twilio Media Streams messages on one socket.

    `on_transfer(target)` is started when the session transfers the call, and `on_hang_up(reason)`
    awaited when the session ends it (not after a transfer, nor for a call that had already
    ended): the REST side steers the call, then the socket is closed. Nothing else is sent.
    """

    sample_rate = RATE

    def __init__(
        self,
        *,
        stream_sid: str,
        send_text: Callable[[str], Awaitable[None]],
        close: Callable[[int], Awaitable[None]],
        on_transfer: Callable[[str], Awaitable[None]] | None = None,
        on_hang_up: Callable[[str], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream_sid = stream_sid
        self._send_text = send_text
        self._close = close
        self._on_transfer = on_transfer
        self._on_hang_up = on_hang_up
        self.clock = clock
        self.closed = False
        self.sent = 0  # samples of agent audio sent
        self.frames_sent = 0
        self.marks_sent = 0
        self.marks_echoed = 0
        self.clears = 0
        self._names = itertools.count(1)
        self._pending: dict[str, int] = {}  # mark name -> samples sent before it, oldest first
        self._voided: set[str] = set()  # marks a clear made meaningless; Twilio still echoes them
        self._marked = 0  # samples sent when the last mark went out
        self._anchor = (0, clock())  # (samples, time): playback was at that position then
        self._heard = 0  # the furthest position an echo or a clear has settled
        self._steering: asyncio.Task | None = None
        self._in_reply = False  # a sentence of the current reply has started

    # --- playback accounting -----------------------------------------------------------------

    def _played(self, now: float) -> int:
        position, at = self._anchor
        return min(self.sent, position + max(0, round((now - at) * RATE)))

    def unplayed_samples(self) -> int:
        return self.sent - self._played(self.clock())

    def mark_echoed(self, name: str) -> bool:
        """Twilio played everything sent before mark `name` (or a clear dropped it). False for a
        name this stream never sent."""
        if name in self._voided:
            self._voided.discard(name)
            self.marks_echoed += 1
            return True
        position = self._pending.get(name)
        if position is None:
            return False
        # Twilio echoes in order: this echo settles every mark sent before it too.
        for older in list(self._pending):
            del self._pending[older]
            if older == name:
                break
        self.marks_echoed += 1
        if position >= self._heard:
            self._heard = position
            self._anchor = (position, self.clock())
        return True

    @property
    def pending_marks(self) -> int:
        return len(self._pending)

    # --- Transport ----------------------------------------------------------------------------

    async def send_audio(self, frame: bytes) -> None:
        if self.closed:
            raise ConnectionError("the media stream is closed")
        payload = base64.b64encode(ulaw_encode(frame)).decode("ascii")
        now = self.clock()
        if self._played(now) >= self.sent:
            self._anchor = (self.sent, now)  # Twilio's buffer ran dry: this frame plays from now
        self.sent += len(frame) // 2
        self.frames_sent += 1
        await self._send({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}})

    async def send_event(self, event: SessionEvent) -> None:
        kind = event.get("type")
        if kind == "agent_text":
            # The next sentence starts: the previous one of this reply is complete. The first
            # sentence of a reply has none before it (the last reply was marked when it ended),
            # though its event may come a frame after its audio began.
            if self._in_reply:
                await self._mark()
            self._in_reply = True
        elif kind == "state" and event.get("state") == "listening":  # the reply is over
            await self._mark()
            self._in_reply = False
        elif kind == "clear":
            await self._clear()
            self._in_reply = False
        elif kind == "transfer" and self._on_transfer is not None and self._steering is None:
            self._steering = asyncio.ensure_future(self._on_transfer(str(event.get("target") or "")))
        # Captions, other states and `ended` have no Twilio message (it would refuse them).

    async def hang_up(self, reason: str) -> None:
        """The session ended the call: let the REST side steer it, then close the socket."""
        try:
            if self._steering is not None:
                await asyncio.wait_for(asyncio.shield(self._steering), STEER_WAIT_S)
            elif reason != "already_ended" and self._on_hang_up is not None and not self.closed:
                await asyncio.wait_for(self._on_hang_up(reason), STEER_WAIT_S)
        except TimeoutError:
            logger.warning("twilio media: steering the call took over %.0f s; closing the stream", STEER_WAIT_S)
        except Exception:  # noqa: BLE001 - the hooks log their own errors; the socket still closes
            logger.exception("twilio media: steering the call failed")
        if not self.closed:
            self.closed = True
            await self._close(CLOSE_GONE if reason == "already_ended" else CLOSE_NORMAL)

    def close_now(self) -> None:
        """The socket is gone: later audio raises, so the session ends the call."""
        self.closed = True

    # --- messages -----------------------------------------------------------------------------

    async def _mark(self) -> None:
        if self.sent <= self._marked or self.closed:
            return
        name = f"m{next(self._names)}"
        self._pending[name] = self._marked = self.sent
        self.marks_sent += 1
        await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})

    async def _clear(self) -> None:
        # Everything sent is now played or dropped; Twilio echoes the pending marks at once.
        now = self.clock()
        self._voided.update(self._pending)
        self._pending.clear()
        self._marked = self._heard = self.sent
        self._anchor = (self.sent, now)
        self.clears += 1
        if not self.closed:
            await self._send({"event": "clear", "streamSid": self.stream_sid})

    async def _send(self, message: dict) -> None:
        if message["event"] not in OUTBOUND_EVENTS:  # never reached: the one place that sends
            raise ValueError(f"Twilio accepts only {sorted(OUTBOUND_EVENTS)}")
        await self._send_text(json.dumps(message, separators=(",", ":")))
