"""WebSocket adapters for calls. Thin: check, accept, route frames to the voice session.

One client cannot hurt the others (docs/security.md): every connection has token buckets for
its messages and its audio, a bounded inbox between the socket and the call, a deadline to
`start`, and an idle timer that only valid input resets; the process caps its live calls
(calls/session/live.py) and refuses more with 4503.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from calls.session import live
from telephony.browser import widget
from telephony.selectors import widget_route_for_key

logger = logging.getLogger(__name__)


class VoiceWidgetConsumer(AsyncWebsocketConsumer):
    """/ws/voice/<key>/: one browser call (protocol: docs/protocols.md, "Browser widget")."""

    # The widget talks to its own socket only. Without a channel layer no socket holds a Redis
    # receive loop, and a Redis outage cannot kill a call that is already running.
    channel_layer_alias = None

    session = None
    call = None
    session_task: asyncio.Task | None = None
    watchdog: asyncio.Task | None = None
    pump: asyncio.Task | None = None
    transport: widget.BrowserTransport | None = None
    drain_reason: str | None = None

    async def connect(self) -> None:
        self.counters = widget.Counters()
        self.closing = False
        self.connected_at = self.last_valid = time.monotonic()
        rate, burst = settings.WIDGET_MESSAGES_PER_SECOND, settings.WIDGET_MESSAGE_BURST
        self.messages = widget.TokenBucket(rate=rate, burst=burst)
        self.audio = widget.TokenBucket(rate=widget.AUDIO_BYTES_PER_SECOND, burst=widget.AUDIO_BURST_BYTES)
        # Drops beyond the buckets spend this one; once it is empty too the flood has lasted, and
        # the socket is closed.
        self.patience = widget.TokenBucket(rate=rate, burst=burst)
        # Between the socket and the handlers. daphne queues what a socket sends without limit
        # while a handler awaits (creating the call), so the handlers run from here and this
        # bound is what holds.
        self.inbox: asyncio.Queue = asyncio.Queue(maxsize=settings.WIDGET_INBOUND_QUEUE)
        key = self.scope["url_route"]["kwargs"]["key"]
        origin = widget.header(self.scope, b"origin")
        ip = widget.client_ip(self.scope)
        # Refusals are sent as close codes after accepting: a refused handshake only gives the
        # browser a bare 403 (error code 1006), and the widget could not say why.
        if not live.admit():
            logger.warning("widget: busy (%d live calls, draining=%s); refusing %s", live.count(), live.draining(), ip)
            return await self.refuse(widget.CLOSE_BUSY)
        try:
            allowed = await widget.connection_allowed(ip)
        except Exception as error:  # noqa: BLE001 - Redis down: refuse on purpose, not with a 500
            logger.error("widget: cannot check the connection budget (cache unavailable: %r); refusing %s", error, ip)
            return await self.refuse(widget.CLOSE_BUSY)
        if not allowed:
            logger.warning("widget: rate limit for %s", ip)
            return await self.refuse(widget.CLOSE_RATE_LIMITED)
        self.route = await database_sync_to_async(widget_route_for_key)(key)
        if self.route is None or not widget.origin_allowed(self.route, origin):
            logger.info("widget: refused key=%r origin=%r", key, origin)
            return await self.refuse(widget.CLOSE_FORBIDDEN)
        await self.accept()
        self.watchdog = asyncio.create_task(self.watch_idle())
        self.pump = asyncio.create_task(self.pump_inbox())

    async def refuse(self, code: int) -> None:
        self.closing = True
        await self.accept()
        await self.close(code=code)

    async def close_with(self, code: int) -> None:
        if self.closing:
            return
        self.closing = True
        if self.transport:
            self.transport.close_now()
        try:
            await self.close(code=code)
        except Exception:  # daphne lets applications send only 1000 and 3000-4999 (1009 included)
            await self.close(code=widget.CLOSE_BAD_PROTOCOL)

    async def watch_idle(self) -> None:
        """Closes a socket that has not sent `start` in time, or no valid input for a while
        (garbage and dropped messages do not count as input)."""
        idle, start = settings.WIDGET_IDLE_TIMEOUT_SECONDS, settings.WIDGET_START_TIMEOUT_SECONDS
        while not self.closing:
            await asyncio.sleep(min(1.0, idle / 4, start / 4))
            now = time.monotonic()
            if self.transport is None and now - self.connected_at > start:
                logger.info("widget: no start within %ss, closing", start)
                return await self.close_with(widget.CLOSE_IDLE)
            if now - self.last_valid > idle:
                logger.info("widget: idle for %ss, closing", idle)
                await self.end_call("idle_timeout")
                return await self.close_with(widget.CLOSE_IDLE)

    def end_politely(self, reason: str = "server_shutdown") -> None:
        """live.drain(): holds the process's call slot while the call is being created."""
        self.drain_reason = reason
        if self.session is not None:
            self.session.end_politely(reason)

    async def disconnect(self, code: int) -> None:
        self.closing = True
        if self.transport:
            self.transport.close_now()
        if self.watchdog and self.watchdog is not asyncio.current_task():
            self.watchdog.cancel()
        await self.stop_pump()
        live.unregister(self)
        await self.end_call("caller_hangup")
        if self.session_task:
            try:
                await self.session_task
            except Exception:
                logger.exception("widget: the voice session failed")
        if self.session is not None:
            live.unregister(self.session)
        if self.counters.dropped and self.call is not None:
            await database_sync_to_async(widget.call_log_dropped_input)(
                call_id=self.call.pk, counters=self.counters.as_dict()
            )

    async def stop_pump(self) -> None:
        """Let the handler in progress finish (a call being created is then ended and stored
        like any other), drop what is still queued."""
        if self.pump is None:
            return
        while not self.inbox.empty():
            self.inbox.get_nowait()
        self.inbox.put_nowait(None)
        await self.pump

    async def end_call(self, reason: str) -> None:
        if self.session is not None and not self.session_task.done():
            self.session.hang_up(reason)

    # --- inbound -------------------------------------------------------------------------

    async def dispatch(self, message: dict) -> None:
        # channels closes stale database connections (a hop to the sync thread) before every
        # handler. Frames arrive 50 times a second and touch no database (the session writes in
        # its own thread), so they skip that hop.
        if message["type"] == "websocket.receive":
            return await self.websocket_receive(message)
        return await super().dispatch(message)

    async def websocket_receive(self, message: dict) -> None:
        """Admission of one message, in the order: size, rate, room in the inbox."""
        if self.closing:
            return
        # Checked before channels decodes anything: too big closes the socket (1009).
        data = message.get("bytes") if message.get("bytes") is not None else message.get("text")
        if data is not None and len(data) > settings.WEBSOCKET_MAX_MESSAGE_BYTES:
            await self.end_call("message_too_big")
            return await self.close_with(widget.CLOSE_TOO_BIG)
        is_audio = message.get("bytes") is not None
        if not (self.audio.take(len(data)) if is_audio else self.messages.take()):
            self.counters.over_rate += 1
            if not self.patience.take():
                logger.warning("widget: flooding (%s), closing", self.counters.as_dict())
                await self.end_call("flooding")
                return await self.close_with(widget.CLOSE_RATE_LIMITED)
            return
        try:
            self.inbox.put_nowait(message)
        except asyncio.QueueFull:
            self.counters.over_rate += 1
            logger.warning("widget: inbox full (%d messages), closing", self.inbox.qsize())
            await self.end_call("flooding")
            await self.close_with(widget.CLOSE_RATE_LIMITED)

    async def pump_inbox(self) -> None:
        """Runs the handlers, one message at a time, in the order the client sent them."""
        while (message := await self.inbox.get()) is not None:
            if self.closing:
                continue
            dropped = self.counters.dropped
            try:
                await super().websocket_receive(message)
            except Exception:
                logger.exception("widget: handling a message failed")
                await self.end_call("error")
                await self.close_with(widget.CLOSE_SERVER_ERROR)
                continue
            if self.counters.dropped == dropped:
                self.last_valid = time.monotonic()  # only valid input keeps the socket open

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        if bytes_data is not None:
            return self.receive_audio(bytes_data)
        try:
            message = json.loads(text_data)
            kind = message["type"]
        except (ValueError, TypeError, KeyError):
            self.counters.bad_json += 1
            return await self.reject_message("bad_json", "Messages are JSON objects with a type.")
        handler = getattr(self, f"on_{kind}", None) if isinstance(kind, str) and kind.isidentifier() else None
        if handler is None:
            self.counters.bad_messages += 1
            return await self.reject_message("unknown_type", f"Unknown message type {str(kind)[:40]!r}.")
        await handler(message)

    def receive_audio(self, data: bytes) -> None:
        if self.session is None:
            self.counters.early_audio += 1  # before "start": nowhere to send it
            return
        if len(data) % 2:
            self.counters.odd_audio += 1  # not whole 16-bit samples
            return
        self.counters.audio_frames_in += max(1, len(data) // widget.ENGINE_FRAME_BYTES)
        self.session.feed_audio(data)

    async def reject_message(self, code: str, detail: str) -> None:
        """Bad input is dropped and counted; the first few get an error back, for developers."""
        if self.counters.dropped <= 5:
            await self.send_json({"type": "error", "code": code, "message": detail, "fatal": False})

    async def send_json(self, message: dict) -> None:
        if not self.closing:
            await self.send(text_data=json.dumps(message, separators=(",", ":")))

    async def on_start(self, message: dict) -> None:
        if self.session is not None:
            self.counters.bad_messages += 1
            return await self.reject_message("already_started", "The call has already started.")
        rate = message.get("sample_rate", 16000)
        mode = message.get("mode", "continuous")
        if rate not in widget.PLAYBACK_RATES or mode not in widget.MODES:
            self.counters.bad_messages += 1
            return await self.reject_message(
                "bad_start", f"sample_rate must be one of {sorted(widget.PLAYBACK_RATES)}; mode continuous or ptt."
            )
        if not live.admit():
            logger.warning("widget: busy (%d live calls, draining=%s), closing", live.count(), live.draining())
            return await self.close_with(widget.CLOSE_BUSY)
        # Holds this process's call slot from here (no await since admit()), until the session
        # takes it over below.
        live.register(self)
        try:
            await self.start_call(rate=rate, mode=mode)
        finally:
            live.unregister(self)

    async def start_call(self, *, rate: int, mode: str) -> None:
        self.transport = widget.BrowserTransport(
            send_text=lambda text: self.send(text_data=text),
            send_bytes=lambda frame: self.send(bytes_data=frame),
            close=self.close_with,
            sample_rate=rate,
            counters=self.counters,
        )
        self.mode = mode
        self.call = await database_sync_to_async(widget.widget_call_start)(
            route=self.route, origin=widget.header(self.scope, b"origin") or "", mode=mode, sample_rate=rate
        )
        self.transport.call_id = str(self.call.public_id)
        self.session = widget.session_create(route=self.route, transport=self.transport, call=self.call)
        live.register(self.session)
        if self.drain_reason is not None:  # the process began shutting down meanwhile
            self.session.end_politely(self.drain_reason)
        # Before the session runs, so "ready" is the first thing the browser hears.
        await self.transport.send_json({
            "type": "ready", "call_id": self.transport.call_id, "agent": self.route.agent.name,
            "sample_rate": rate, "mode": mode,
        })
        self.session_task = asyncio.create_task(self.run_session())

    async def run_session(self) -> None:
        try:
            summary = await self.session.run()
        except Exception:
            logger.exception("widget: the voice session failed")
            await self.transport.send_json(
                {"type": "error", "code": "server_error", "message": "The call failed.", "fatal": True}
            )
            return await self.close_with(widget.CLOSE_SERVER_ERROR)
        if not self.closing:
            # The session is over (its own hang-up already closed the socket in most cases).
            await self.transport.hang_up(summary.end_reason or "ended")

    async def on_stop(self, message: dict) -> None:
        if self.session is None:
            return await self.close_with(widget.CLOSE_NORMAL)
        await self.end_call("caller_hangup")

    async def on_ptt(self, message: dict) -> None:
        pressed = message.get("pressed")
        if self.session is None or not isinstance(pressed, bool):
            self.counters.bad_messages += 1
            return await self.reject_message("bad_ptt", '{"type": "ptt", "pressed": true|false} after start.')
        self.session.push_to_talk(pressed)

    async def on_dtmf(self, message: dict) -> None:
        digits = message.get("digits")
        if self.session is None or not isinstance(digits, str) or not 0 < len(digits) <= 16 or set(digits) - widget.DTMF_DIGITS:
            self.counters.bad_messages += 1
            return await self.reject_message("bad_dtmf", "digits: up to 16 of 0-9 * # A-D, after start.")
        for digit in digits:
            self.session.feed_dtmf(digit)

    async def on_text(self, message: dict) -> None:
        text = message.get("text")
        if self.session is None or not isinstance(text, str) or not text.strip() or len(text) > widget.MAX_TEXT_CHARS:
            self.counters.bad_messages += 1
            return await self.reject_message("bad_text", f"text: 1 to {widget.MAX_TEXT_CHARS} characters, after start.")
        self.session.feed_text(text.strip())

    async def on_latency(self, message: dict) -> None:
        ms, turn = message.get("ms"), message.get("turn")
        valid_ms = isinstance(ms, int | float) and not isinstance(ms, bool) and 0 < ms < 60_000
        valid_turn = turn is None or (isinstance(turn, int) and not isinstance(turn, bool) and turn >= 0)
        if self.session is None or not valid_ms or not valid_turn:
            self.counters.bad_messages += 1
            return await self.reject_message("bad_latency", '{"type": "latency", "turn": N, "ms": X}, 0 < X < 60000.')
        self.session.report_client_latency(turn, round(ms))

    async def on_played(self, message: dict) -> None:
        ms = message.get("ms")
        if self.transport is None or not isinstance(ms, int | float) or isinstance(ms, bool) or ms < 0:
            self.counters.bad_messages += 1
            return await self.reject_message("bad_played", '{"type": "played", "ms": X} after start.')
        self.transport.report_played(int(ms))
