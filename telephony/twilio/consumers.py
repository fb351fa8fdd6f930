"""Twilio Media Streams: one phone call's audio over a WebSocket, into a voice session.

Thin, like the widget's consumer (telephony/browser/consumers.py): check, accept, route
messages to the session. The gate is Twilio's signature on the upgrade; then `start` names the
call, with the token only this server can make for it. Every connection has a token bucket, a
bounded inbox, a deadline to `start` and an idle timer; the process caps its live calls.
Protocol, limits and close codes: docs/protocols.md, "Twilio Media Streams".
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from calls.session import CallAlreadyEnded, live
from calls.speech.audio import ENGINE_RATE, Resampler, ulaw_decode
from telephony.browser.widget import TokenBucket, header
from telephony.twilio import media
from telephony.twilio.client import signature_valid
from telephony.twilio.security import stream_token_valid, stream_url
from telephony.twilio.transport import RATE, TwilioTransport

logger = logging.getLogger(__name__)

# Calls this process is streaming (Call pks). Twilio opens one stream per <Connect>; a second
# one for the same call (a replayed start) must not start a second session on it.
_streaming: set[int] = set()


class MediaStreamConsumer(AsyncWebsocketConsumer):
    """/ws/telephony/twilio/media/: the bidirectional stream of one Twilio call."""

    # channels' own channel-layer loop would end the call with an exception if Redis went away;
    # the one group this stream joins (the answering-machine result) has a loop of its own that
    # survives that (listen_to_group).
    channel_layer_alias = None

    session = None
    call = None
    transport: TwilioTransport | None = None
    session_task: asyncio.Task | None = None
    watchdog: asyncio.Task | None = None
    pump: asyncio.Task | None = None
    listener: asyncio.Task | None = None
    drain_reason: str | None = None
    stream_sid = ""

    async def connect(self) -> None:
        self.counters = media.Counters()
        self.closing = False
        self.connected_at = self.last_valid = time.monotonic()
        self.messages = TokenBucket(rate=media.MESSAGES_PER_SECOND, burst=media.MESSAGE_BURST)
        self.patience = TokenBucket(rate=media.MESSAGES_PER_SECOND, burst=media.MESSAGE_BURST)
        self.inbox: asyncio.Queue = asyncio.Queue(maxsize=media.INBOUND_QUEUE)
        # Twilio signs the public wss:// URL it was given; behind the proxy that is not the URL
        # this socket was opened on, so the check uses stream_url(), never the Host header.
        if not signature_valid(url=stream_url(), params={}, signature=header(self.scope, b"x-twilio-signature")):
            logger.warning("twilio media: bad or missing X-Twilio-Signature from %s; refused",
                           (self.scope.get("client") or ["?"])[0])
            self.closing = True
            return await self.close()  # before accept(): the handshake is refused with a 403
        if not live.admit():
            logger.warning("twilio media: busy (%d live calls, draining=%s); refusing", live.count(), live.draining())
            return await self.refuse(media.CLOSE_BUSY)
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
        if self.transport is not None:
            self.transport.close_now()
        try:
            await self.close(code=code)
        except Exception:  # daphne lets applications send only 1000 and 3000-4999 (1009 included)
            await self.close(code=media.CLOSE_BAD_PROTOCOL)

    async def watch_idle(self) -> None:
        while not self.closing:
            await asyncio.sleep(min(1.0, media.START_TIMEOUT_S / 4, media.IDLE_TIMEOUT_S / 4))
            now = time.monotonic()
            if self.transport is None and now - self.connected_at > media.START_TIMEOUT_S:
                logger.info("twilio media: no start within %ss, closing", media.START_TIMEOUT_S)
                return await self.close_with(media.CLOSE_IDLE)
            if now - self.last_valid > media.IDLE_TIMEOUT_S:
                logger.info("twilio media: nothing valid for %ss, closing", media.IDLE_TIMEOUT_S)
                self.end_call("idle_timeout")
                return await self.close_with(media.CLOSE_IDLE)

    def end_politely(self, reason: str = "server_shutdown") -> None:
        """live.drain(): holds the process's call slot while the call is being set up."""
        self.drain_reason = reason
        if self.session is not None:
            self.session.end_politely(reason)

    def end_call(self, reason: str) -> None:
        if self.session is not None and not self.session_task.done():
            self.session.hang_up(reason)

    async def disconnect(self, code: int) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close_now()
        if self.watchdog is not None and self.watchdog is not asyncio.current_task():
            self.watchdog.cancel()
        await self.stop_pump()
        live.unregister(self)
        self.end_call("caller_hangup")  # the session stores what it has and finalizes the call once
        if self.session_task is not None:
            try:
                await self.session_task
            except Exception:
                logger.exception("twilio media: the voice session failed")
        if self.session is not None:
            live.unregister(self.session)
        if self.call is not None:
            _streaming.discard(self.call.pk)
        if self.listener is not None:
            self.listener.cancel()
            await self.leave_group()
        if self.counters.dropped and self.call is not None:
            await database_sync_to_async(media.call_log_dropped_input)(call_id=self.call.pk,
                                                                      counters=self.counters.as_dict())

    async def stop_pump(self) -> None:
        if self.pump is None:
            return
        while not self.inbox.empty():
            self.inbox.get_nowait()
        self.inbox.put_nowait(None)
        await self.pump

    # --- inbound --------------------------------------------------------------------------

    async def dispatch(self, message: dict) -> None:
        # 50 media messages a second touch no database: skip channels' per-message hop to the
        # sync thread (closing stale connections) for them.
        if message["type"] == "websocket.receive":
            return await self.websocket_receive(message)
        return await super().dispatch(message)

    async def websocket_receive(self, message: dict) -> None:
        """Admission of one message: size, rate, room in the inbox."""
        if self.closing:
            return
        data = message.get("bytes") if message.get("bytes") is not None else message.get("text")
        if data is not None and len(data) > settings.WEBSOCKET_MAX_MESSAGE_BYTES:
            self.end_call("message_too_big")
            return await self.close_with(media.CLOSE_TOO_BIG)
        if not self.messages.take():
            self.counters.over_rate += 1
            if not self.patience.take():
                logger.warning("twilio media: flooding (%s), closing", self.counters.as_dict())
                self.end_call("flooding")
                return await self.close_with(media.CLOSE_RATE_LIMITED)
            return
        try:
            self.inbox.put_nowait(message)
        except asyncio.QueueFull:
            self.counters.over_rate += 1
            logger.warning("twilio media: inbox full (%d messages), closing", self.inbox.qsize())
            self.end_call("flooding")
            await self.close_with(media.CLOSE_RATE_LIMITED)

    async def pump_inbox(self) -> None:
        """Runs the handlers one message at a time, in order (a `start` awaits the database
        while the media behind it waits here)."""
        while (message := await self.inbox.get()) is not None:
            if self.closing:
                continue
            dropped = self.counters.dropped
            try:
                await super().websocket_receive(message)
            except Exception:
                logger.exception("twilio media: handling a message failed")
                self.end_call("error")
                await self.close_with(media.CLOSE_SERVER_ERROR)
                continue
            if self.counters.dropped == dropped:
                self.last_valid = time.monotonic()  # only valid input keeps the stream open

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        try:
            message = json.loads(text_data) if text_data is not None else None
        except ValueError:
            message = None
        event = message.get("event") if isinstance(message, dict) else None
        if not isinstance(event, str):
            self.counters.bad_json += 1  # Twilio sends JSON text only
            return
        handler = self.HANDLERS.get(event)
        if handler is None:
            self.counters.unknown_events += 1
            return
        if event not in ("connected", "start", "stop") and self.transport is None:
            self.counters.early += 1
            return
        if self.transport is not None and message.get("streamSid", self.stream_sid) != self.stream_sid:
            self.counters.bad_messages += 1
            return
        await handler(self, message)

    async def on_connected(self, message: dict) -> None:
        """Twilio's first message; nothing to do."""

    async def on_start(self, message: dict) -> None:
        if self.transport is not None:
            self.counters.bad_messages += 1
            return
        start = media.start_parse(message)
        if start is None:
            logger.warning("twilio media: malformed start or not μ-law 8 kHz mono; closing")
            return await self.close_with(media.CLOSE_BAD_PROTOCOL)
        if not stream_token_valid(start.token, start.call_id):
            logger.warning("twilio media: bad stream token for call %r (CallSid %s); closing", start.call_id[:64],
                           start.call_sid)
            return await self.close_with(media.CLOSE_FORBIDDEN)
        call, refusal = await database_sync_to_async(media.stream_call)(public_id=start.call_id,
                                                                       call_sid=start.call_sid)
        if call is None:
            logger.warning("twilio media: call %s (CallSid %s) refused with %d", start.call_id, start.call_sid, refusal)
            return await self.close_with(refusal)
        if call.pk in _streaming:
            logger.warning("twilio media: call %s already has a stream in this process; closing", call.pk)
            return await self.close_with(media.CLOSE_DUPLICATE)
        if not live.admit():
            logger.warning("twilio media: busy (%d live calls, draining=%s); closing", live.count(), live.draining())
            return await self.close_with(media.CLOSE_BUSY)
        # Holds this process's call slot from here (no await since admit()) until the session
        # takes it over.
        live.register(self)
        try:
            self.start_call(start, call)
        finally:
            live.unregister(self)

    def start_call(self, start: media.StreamStart, call) -> None:
        self.call, self.stream_sid, self.call_sid = call, start.stream_sid, start.call_sid
        _streaming.add(call.pk)
        self.transport = TwilioTransport(
            stream_sid=start.stream_sid, send_text=lambda text: self.send(text_data=text), close=self.close_with,
            on_transfer=self.transfer, on_hang_up=self.agent_hang_up,
        )
        # soxr's "QQ" streams without delay; HQ releases its output in 100 ms blocks, which would
        # hold back the caller's last syllable (and every reply) by up to that. Whisper tiny.en's
        # WER on 60 Asterisk prompts through μ-law: QQ 2.2 %, HQ 2.7 %.
        self.resampler = Resampler(RATE, ENGINE_RATE, quality="QQ")
        # QQ holds 4 output samples back, so each 20 ms message would leave its frame 4 samples
        # short and the session would get it with the next message (+20 ms on every turn). Two
        # samples of silence in front make every message one whole 20 ms frame at once.
        self.resampler.process(bytes(4))
        self.session = media.session_create(call=call, transport=self.transport)
        live.register(self.session)
        if self.drain_reason is not None:  # the process began shutting down meanwhile
            self.session.end_politely(self.drain_reason)
        self.session_task = asyncio.create_task(self.run_session())
        self.listener = asyncio.create_task(self.listen_to_group())

    async def run_session(self) -> None:
        try:
            await self.session.run()
        except CallAlreadyEnded:
            logger.info("twilio media: call %s ended before its stream started", self.call.pk)
            return await self.close_with(media.CLOSE_GONE)
        except Exception:
            logger.exception("twilio media: the voice session failed")
            return await self.close_with(media.CLOSE_SERVER_ERROR)
        await self.close_with(media.CLOSE_NORMAL)  # usually closed already by the session's hang-up

    async def on_media(self, message: dict) -> None:
        body = message.get("media")
        payload = body.get("payload") if isinstance(body, dict) else None
        if not isinstance(payload, str) or body.get("track", "inbound") != "inbound":
            self.counters.bad_messages += 1
            return
        try:
            ulaw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            self.counters.bad_payload += 1
            return
        if len(ulaw) != media.MEDIA_BYTES:
            self.counters.bad_size += 1
            return
        self.counters.media_in += 1
        self.session.feed_audio(self.resampler.process(ulaw_decode(ulaw)))

    async def on_dtmf(self, message: dict) -> None:
        body = message.get("dtmf")
        digit = body.get("digit") if isinstance(body, dict) else None
        if not isinstance(digit, str) or digit.upper() not in media.DTMF_DIGITS:
            self.counters.bad_messages += 1
            return
        self.counters.dtmf_in += 1
        self.session.feed_dtmf(digit.upper())

    async def on_mark(self, message: dict) -> None:
        body = message.get("mark")
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not self.transport.mark_echoed(name):
            self.counters.unknown_marks += 1

    async def on_stop(self, message: dict) -> None:
        if self.session is None:
            return await self.close_with(media.CLOSE_NORMAL)
        self.end_call("caller_hangup")  # Twilio closes the socket next

    HANDLERS = {"connected": on_connected, "start": on_start, "media": on_media, "dtmf": on_dtmf, "mark": on_mark,
                "stop": on_stop}

    # --- the call's end on the phone network ----------------------------------------------------

    async def transfer(self, target: str) -> None:
        await asyncio.to_thread(media.call_steer, call=self.call, action="transfer", target=target)

    async def agent_hang_up(self, reason: str) -> None:
        await asyncio.to_thread(media.call_steer, call=self.call, action="hang_up")

    # --- the answering-machine result, through the channel layer ---------------------------------

    async def listen_to_group(self) -> None:
        """Join `twilio_call_<CallSid>` and handle what arrives. With the channel layer down the
        call goes on without it: logged, retried with backoff."""
        layer = get_channel_layer()
        if layer is None:
            return
        self.group, self.channel, joined, delay = media.voicemail_group(self.call_sid), None, False, 1.0
        while not self.closing:
            try:
                if not joined:
                    self.channel = self.channel or await layer.new_channel()
                    await layer.group_add(self.group, self.channel)
                    joined, delay = True, 1.0
                message = await layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - Redis unreachable: the call does not need it
                log = logger.warning if delay == 1.0 else logger.debug
                log("twilio media: channel layer unavailable (%r); call %s goes on without it", error,
                    self.call.pk)
                joined = False
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)
                continue
            if message.get("type") == "twilio.voicemail":
                self.on_voicemail(message)

    def on_voicemail(self, message: dict) -> None:
        """An answering machine took the call: leave the message (none: end at once)."""
        text = message.get("message")
        text = text.strip() if isinstance(text, str) else ""
        logger.info("twilio media: call %s reached voicemail; %s", self.call.pk,
                    "leaving the message" if text else "ending it")
        self.session.say_and_end(text, "voicemail")

    async def leave_group(self) -> None:
        layer = get_channel_layer()
        if layer is None or getattr(self, "channel", None) is None:
            return
        try:
            await asyncio.wait_for(layer.group_discard(self.group, self.channel), 2.0)
        except Exception as error:  # noqa: BLE001 - the group expires on its own
            logger.info("twilio media: could not leave %s: %r", self.group, error)
