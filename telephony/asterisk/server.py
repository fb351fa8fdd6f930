"""The AudioSocket audio server: one TCP connection per Asterisk call, one VoiceSession each.

    server = AudioSocketServer(host="127.0.0.1", port=9092)
    await server.start()                # refusal messages synthesized, then listening
    await server.drain(grace_s)         # SIGTERM: live calls end politely, the rest is hung up

A connection (docs/protocols.md, "Asterisk AudioSocket"):
1. The first frame must be the UUID, within UUID_TIMEOUT_S. No UUID, or garbage: the socket closes
   and nothing is written.
2. From the UUID on, `Line` writes one 20 ms frame every 20 ms, agent audio or silence, so
   Asterisk (which ends the call after 2 s without traffic) never waits.
3. The UUID names a prepared call, an ended one (closed, nothing written), or none: a new
   inbound call to the default extension's agent (audiocalls.py). No agent, or this process at
   MAX_CALLS_PER_PROCESS or draining: a short message synthesized at start, then hangup.
4. The reply format follows the caller's first audio frame: 0x10 gets 8 kHz slin back, 0x12 (or
   any higher rate) 16 kHz, 0x12. It is awaited up to FORMAT_WAIT_S after the UUID (Asterisk
   sends a frame every 20 ms from the start); without one by then, 8 kHz, which every Asterisk
   accepts. The server's first frame goes out 20 ms after the UUID, when the caller's first
   frame is normally in; silence written before it is known is 8 kHz.
5. Caller audio (resampled to 16 kHz) and DTMF go to the session; a hangup, an Asterisk error
   or the socket closing end the call; broken framing ends it as failed ("protocol_error").
   When the session ends the call (goodbye, transfer, voicemail left) the last queued audio
   plays out, then a hangup frame, then the socket closes.

Nothing here transcribes or synthesizes on the event loop (the session sends that to its
threads), and every ORM call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable

from channels.db import database_sync_to_async
from django.conf import settings

from agents.engine import CallContext, DialogEngine, DialogReply
from calls.models import Call, CallEvent
from calls.session import CallAlreadyEnded, SessionEvent, Transport, VoiceSession, live, phrase_cache
from calls.speech.audio import ENGINE_RATE, FRAME_MS, SUPPORTED_RATES, Resampler, frame_bytes, iter_frames
from telephony.asterisk import audiocalls
from telephony.asterisk.audiosocket import Frame, Kind, Parser, ProtocolError, audio_frame, hangup_frame
from telephony.asterisk.upsample import Upsampler8to16

logger = logging.getLogger(__name__)

FRAME_S = FRAME_MS / 1000
UUID_TIMEOUT_S = 3.0  # Asterisk writes the UUID as soon as it connects
FORMAT_WAIT_S = 0.3  # for the caller's first audio frame, which says the reply format
READ_BYTES = 4096
BUSY_MESSAGE = "All our agents are busy right now. Please call again in a few minutes. Goodbye."
NO_ROUTE_MESSAGE = "Sorry, nobody can take this call at this number. Goodbye."
REFUSAL_RATES = (8000, 16000)


class Line(Transport):
    """VoiceSession → AudioSocket: a frame every 20 ms on absolute deadlines, silence in every gap.

    Agent audio waits in a queue of QUEUED_FRAMES; with the frame on the wire, at most
    LEAD_FRAMES (60 ms) of agent audio is ever ahead of real time. Asterisk plays what it gets
    at once and nothing sent can be recalled, so that lead bounds how long the agent goes on
    after a barge-in; `clear` drops the queue, and `unplayed_samples()` tells the session what
    of the audio it handed over has not been heard yet.

    Two 20 ms clocks meet here: the session's playout hands frames over, this one writes
    them. A reply's first frame waits PREROLL_S in the queue before it goes out, so the
    session's clock runs ahead of this one by at least that much and sleep jitter does not
    starve the queue mid-word.
    """

    LEAD_FRAMES = 3
    QUEUED_FRAMES = LEAD_FRAMES - 1
    PREROLL_S = 0.010
    MAX_LATE_S = 0.060  # later than this (a stalled loop): restart the cadence, don't burst
    MAX_WRITE_BUFFER = 64 * 1024  # bytes Asterisk has not read: beyond it, wait for it to read
    STALL_S = 2.0  # and this long without it reading: the line is dead

    def __init__(self, writer: asyncio.StreamWriter, *, sample_rate: int = 8000) -> None:
        self.sample_rate = sample_rate
        self._writer = writer
        self._queue: deque[bytes] = deque()
        self._room = asyncio.Event()
        self._room.set()
        self._waiting = 0
        self._clears = 0
        self._queued_at = 0.0  # when a reply's first frame arrived in an empty queue
        self._flowing = False  # the last frame written was agent audio
        self._speaking = False  # the session says it is playing a reply
        self._played_until = 0.0
        self._pacer: asyncio.Task | None = None
        self.closed = False
        self.on_event: Callable[[SessionEvent], None] | None = None
        self.frames_out = 0
        self.silence_out = 0
        self.frames_dropped = 0  # handed over after the line closed, or stale after a clear
        self.underruns = 0  # silence written inside a reply because no agent frame was ready
        self.late_restarts = 0
        self.max_gap_s = 0.0  # longest time between two writes
        self.clears: list[tuple[float, int]] = []  # (when, frames written by then) of each barge-in

    def start(self) -> None:
        if self._pacer is None:
            self._pacer = asyncio.create_task(self._pace(), name="audiosocket-pacer")

    # --- Transport ---------------------------------------------------------------------------

    async def send_audio(self, frame: bytes) -> None:
        clears = self._clears
        while len(self._queue) >= self.QUEUED_FRAMES and not self.closed:
            self._room.clear()
            self._waiting += 1
            try:
                await self._room.wait()
            finally:
                self._waiting -= 1
        if self.closed or clears != self._clears:
            # Closed: the far end is gone and the session is told so by the reader; raising
            # here would race that with a "transport_error". Cleared (barge-in) while waiting:
            # this frame belongs to the interrupted reply.
            self.frames_dropped += 1
            return
        if not self._queue and not self._flowing:
            self._queued_at = time.monotonic()
        self._queue.append(frame)

    async def send_event(self, event: SessionEvent) -> None:
        kind = event.get("type")
        if kind == "clear":
            self.clear()
        elif kind == "state":
            self._speaking = event.get("state") == "speaking"
        # "transfer": the dialplan (or ARI) carries it out once the socket closes.
        if self.on_event is not None:
            self.on_event(event)

    async def hang_up(self, reason: str) -> None:
        await self.finish()

    def unplayed_samples(self) -> int:
        """Agent audio handed over and not heard yet: the queue, a frame waiting for room (its
        `on_sent` is still to come and counts it as played), and the rest of the frame on the wire."""
        frames = len(self._queue) + self._waiting
        ahead = max(0.0, self._played_until - time.monotonic()) if self._flowing else 0.0
        return frames * frame_bytes(self.sample_rate) // 2 + round(ahead * self.sample_rate)

    # --- The line ---------------------------------------------------------------------------

    def clear(self) -> None:
        self.clears.append((time.monotonic(), self.frames_out))
        self._clears += 1
        self._queue.clear()
        self._flowing = False
        self._room.set()

    async def finish(self) -> None:
        """Let the queued audio and the frame on the wire play out (60 ms at most), then hang up."""
        deadline = time.monotonic() + (self.LEAD_FRAMES + 1) * FRAME_S
        while not self.closed and time.monotonic() < deadline and (
                self._queue or (self._flowing and self._played_until > time.monotonic())):
            await asyncio.sleep(FRAME_S / 4)
        await self.close()

    async def close(self) -> None:
        """Stop the cadence, send the hangup frame, close the socket (once)."""
        if self.closed:
            return
        self.closed = True
        self._room.set()
        if self._pacer is not None and self._pacer is not asyncio.current_task():
            self._pacer.cancel()
            try:
                await self._pacer
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - it is being stopped
                pass
        try:
            if not self._writer.is_closing():
                self._writer.write(hangup_frame())
                await asyncio.wait_for(self._writer.drain(), 1.0)
        except (OSError, TimeoutError):
            pass
        self._writer.close()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)
        except (OSError, TimeoutError):
            pass

    async def _pace(self) -> None:
        # The first frame goes out one frame after the UUID: Asterisk's first audio frame, which
        # sets the reply format, is usually in by then.
        start = time.monotonic() + FRAME_S
        await asyncio.sleep(FRAME_S)
        written = 0
        last_at: float | None = None
        while not self.closed and not self._writer.is_closing():
            now = time.monotonic()
            if self._queue and (self._flowing or now - self._queued_at >= self.PREROLL_S):
                frame = self._queue.popleft()
                self._flowing = True
                self._room.set()
            else:
                if self._flowing and self._speaking:  # mid-reply and nothing to play: a hole
                    self.underruns += 1
                self._flowing = False
                frame = bytes(frame_bytes(self.sample_rate))
                self.silence_out += 1
            self._writer.write(audio_frame(frame, self.sample_rate))
            self.frames_out += 1
            written += 1
            if last_at is not None:
                self.max_gap_s = max(self.max_gap_s, now - last_at)
            last_at = now
            self._played_until = start + written * FRAME_S
            if self._writer.transport.get_write_buffer_size() > self.MAX_WRITE_BUFFER:
                try:
                    await asyncio.wait_for(self._writer.drain(), self.STALL_S)
                except (OSError, TimeoutError):
                    logger.warning("audiosocket: Asterisk stopped reading; dropping the line")
                    self._writer.transport.abort()  # the reader sees the socket close
                    return
            delay = start + written * FRAME_S - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -self.MAX_LATE_S:
                # The loop stalled: restart the cadence from now rather than burst the missed frames.
                self.late_restarts += 1
                start = time.monotonic() - written * FRAME_S

    def stats(self) -> dict:
        return {"frames_out": self.frames_out, "silence_out": self.silence_out, "underruns": self.underruns,
                "frames_dropped": self.frames_dropped, "late_restarts": self.late_restarts,
                "max_gap_ms": round(self.max_gap_s * 1000)}


class _MessageOnly(DialogEngine):
    """The dialog of a call a machine answered: no greeting, no replies. The server leaves the
    voicemail message with `say_and_end` as soon as the session runs."""

    def start(self, ctx: CallContext) -> DialogReply:
        return DialogReply([])

    def respond(self, ctx: CallContext, *, text: str | None = None, dtmf: str | None = None) -> DialogReply:
        return DialogReply([])


class Connection:
    """One AudioSocket connection, from the UUID to the closed socket."""

    def __init__(self, server: AudioSocketServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.peer = _peer(writer)
        self.parser = Parser()
        self.line = Line(writer)
        self.call_uuid: uuid.UUID | None = None
        self.uuid_at = 0.0
        self.call_id: int | None = None
        self.session: VoiceSession | None = None
        self.first_rate: int | None = None  # of the caller's first audio frame
        self.far_end: tuple[str, bool] | None = None  # (reason, failed) once the far end ended the call
        self.problem: tuple[str, dict] | None = None  # a CallEvent (name, payload) for the call
        self.drain_reason: str | None = None
        self.audio_dropped = 0  # caller audio before the session ran
        self.dtmf_dropped = 0
        self._changed = asyncio.Event()  # the UUID, the first audio frame or the far end's end came
        self._resamplers: dict[int, Resampler | Upsampler8to16] = {}
        self._problem_logged = False
        self._tasks: set[asyncio.Future] = set()

    # --- The call ----------------------------------------------------------------------------

    async def serve(self) -> None:
        reading = asyncio.create_task(self._read(), name="audiosocket-read")
        try:
            got_uuid = await self._until(lambda: self.call_uuid is not None or self.far_end is not None, UUID_TIMEOUT_S)
            if self.call_uuid is not None:
                await self._call(self.call_uuid)
            elif not got_uuid:
                logger.warning("audiosocket %s: no UUID within %.0f s; closing", self.peer, UUID_TIMEOUT_S)
        except Exception:
            logger.exception("audiosocket %s: the connection failed", self.peer)
        finally:
            await self.line.close()
            reading.cancel()
            await asyncio.gather(reading, *self._tasks, return_exceptions=True)

    async def _call(self, call_uuid: uuid.UUID) -> None:
        if call_uuid in self.server.live_uuids:
            logger.warning("audiosocket %s: call %s already has a connection here; closing", self.peer, call_uuid)
            return
        self.server.live_uuids.add(call_uuid)
        try:
            await self._take(call_uuid)
        finally:
            self.server.live_uuids.discard(call_uuid)

    async def _take(self, call_uuid: uuid.UUID) -> None:
        target = await database_sync_to_async(audiocalls.audiosocket_target)(call_uuid=call_uuid)
        if target.outcome == "ended":
            logger.info("audiosocket %s: call %s has ended or is not an Asterisk call; closing", self.peer, call_uuid)
            return
        if target.outcome == "no_route":
            logger.warning("audiosocket %s: no agent for call %s (no active asterisk_extension route%s); refusing",
                           self.peer, call_uuid, f" {settings.AUDIOSOCKET_DEFAULT_EXTENSION!r}"
                           if settings.AUDIOSOCKET_DEFAULT_EXTENSION else "")
            await self._refuse(NO_ROUTE_MESSAGE, target, "no_agent")
            return
        if not live.admit():
            logger.warning("audiosocket %s: busy (%d live calls, draining=%s); refusing call %s",
                           self.peer, live.count(), live.draining(), call_uuid)
            await self._refuse(BUSY_MESSAGE, target, "server_busy")
            return
        live.register(self)  # holds this process's call slot (no await since admit()) until the session has it
        try:
            started = await self._start_session(target, call_uuid)
        finally:
            live.unregister(self)
        if started:
            await self._run_session()

    async def _start_session(self, target: audiocalls.Target, call_uuid: uuid.UUID) -> bool:
        call = target.call
        if call is None:
            if self.far_end is not None:
                return False  # gone (or broken) before a call was made for it: nothing is written
            call = await database_sync_to_async(audiocalls.audiosocket_call_start)(target=target, call_uuid=call_uuid)
        self.call_id = call.pk
        self._log_problem()
        self.line.sample_rate = await self._reply_rate()
        voicemail = call.answered_by.startswith("machine")
        self.session = VoiceSession(
            agent=target.agent, transport=self.line, channel=Call.Channel.ASTERISK, direction=call.direction,
            caller_number=call.from_number, called_number=call.to_number, provider_call_id=call.provider_call_id,
            call=call, engine=_MessageOnly() if voicemail else self.server.engine,
        )
        if voicemail:
            # The session takes `say_and_end` once it has opened the call, which its first event says.
            message = audiocalls.voicemail_text(call, target.agent)
            self.line.on_event = lambda event: self._leave_message(message)
        if self.far_end is not None:  # the far end went away while the call was being set up
            reason, failed = self.far_end
            self.session.hang_up(reason, failed=failed)
        if self.drain_reason is not None:  # the process began shutting down meanwhile
            self.session.end_politely(self.drain_reason)
        live.register(self.session)  # last: a session that never runs must not hold a call slot
        return True

    def _leave_message(self, message: str) -> None:
        self.line.on_event = None
        self.session.say_and_end(message, "voicemail")

    async def _run_session(self) -> None:
        try:
            summary = await self.session.run()
        except CallAlreadyEnded:
            logger.info("audiosocket %s: call %s ended before its audio connected; closing", self.peer, self.call_id)
            return
        except Exception:
            logger.exception("audiosocket %s: the voice session of call %s failed", self.peer, self.call_id)
            return
        finally:
            live.unregister(self.session)
        logger.info("audiosocket %s: call %s ended (%s); line %s, before the session: %d audio frames and %d "
                    "digits dropped", self.peer, summary.call_id, summary.end_reason, self.line.stats(),
                    self.audio_dropped, self.dtmf_dropped)

    async def _refuse(self, message: str, target: audiocalls.Target, reason: str) -> None:
        """Say `message`, then hang up. A prepared call ends as failed with `reason`."""
        if target.call is not None:
            self._spawn(database_sync_to_async(audiocalls.audiosocket_call_refuse)(call_id=target.call.pk, reason=reason))
        rate = self.line.sample_rate = await self._reply_rate()
        for frame in iter_frames(self.server.refusal(message, rate), rate):
            if self.far_end is not None or self.line.closed:
                return
            await self.line.send_audio(frame)
        await self.line.finish()

    async def _reply_rate(self) -> int:
        """8 kHz for a caller on 0x10, 16 kHz for any higher rate; 8 kHz while none has come."""
        await self._until(lambda: self.first_rate is not None or self.far_end is not None,
                          FORMAT_WAIT_S - (time.monotonic() - self.uuid_at))
        return 8000 if self.first_rate in (None, 8000) else ENGINE_RATE

    def end_politely(self, reason: str = "server_shutdown") -> None:
        """live.drain(): the session ends politely; one not created yet is told when it is."""
        self.drain_reason = reason
        if self.session is not None:
            self.session.end_politely(reason)

    async def stop(self, reason: str = "server_shutdown") -> None:
        """Hang up now (the drain's grace period is over): the session stores what it has."""
        self._far_end_ended(reason)
        await self.line.close()

    # --- Inbound -----------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while self.far_end is None:
                data = await self.reader.read(READ_BYTES)
                if not data:
                    self._far_end_ended("caller_hangup")  # socket closure is a hangup too
                    return
                for frame in self.parser.feed(data):
                    self._on_frame(frame)
                    if self.far_end is not None:
                        return
        except ProtocolError as error:
            logger.warning("audiosocket %s (call %s): %s; closing", self.peer, self.call_uuid, error)
            self._far_end_ended("protocol_error", failed=True, problem=("audiosocket_protocol_error", {
                "detail": str(error)[:200], "bytes_in": self.parser.bytes_in, "frames_in": self.parser.frames_in}))
        except OSError:  # reset by the peer
            self._far_end_ended("caller_hangup")

    def _on_frame(self, frame: Frame) -> None:
        if self.call_uuid is None:
            if frame.kind is not Kind.UUID:
                raise ProtocolError(f"the first frame is type 0x{frame.kind:02x}, not the UUID")
            self.call_uuid, self.uuid_at = frame.uuid, time.monotonic()
            self.line.start()  # a frame every 20 ms from here on
            self._changed.set()
            return
        rate = frame.rate
        if rate is not None:
            self._on_audio(frame.payload, rate)
        elif frame.kind is Kind.DTMF:
            if self.session is not None:
                self.session.feed_dtmf(frame.digit)
            else:
                self.dtmf_dropped += 1
        elif frame.kind is Kind.HANGUP:
            self._far_end_ended("caller_hangup")
        elif frame.kind is Kind.ERROR:
            detail = frame.error_text()
            logger.warning("audiosocket %s (call %s): Asterisk reported an error: %s", self.peer, self.call_uuid, detail)
            hung_up = frame.error_code == 0x01  # "the calling party hung up": an ordinary end
            self._far_end_ended("caller_hangup" if hung_up else "asterisk_error", failed=not hung_up,
                                problem=("audiosocket_error", {"code": frame.error_code, "detail": detail}))
        else:
            raise ProtocolError("a second UUID frame")

    def _on_audio(self, pcm: bytes, rate: int) -> None:
        if rate not in SUPPORTED_RATES:
            raise ProtocolError(f"audio at {rate} Hz is not served (the dialplan forces c(slin) or c(slin16))")
        if self.first_rate is None:
            self.first_rate = rate
            if self.session is None:  # the reply format, from the next frame written on
                self.line.sample_rate = 8000 if rate == 8000 else ENGINE_RATE
            self._changed.set()
        if self.session is None:
            self.audio_dropped += 1
            return
        if rate != ENGINE_RATE:
            resampler = self._resamplers.get(rate)
            if resampler is None:
                # 8 kHz through a 1.5 ms interpolator: soxr's stream would hold back 66 ms of each turn.
                resampler = self._resamplers[rate] = Upsampler8to16() if rate == 8000 else Resampler(rate, ENGINE_RATE)
            pcm = resampler.process(pcm)
        self.session.feed_audio(pcm)

    def _far_end_ended(self, reason: str, *, failed: bool = False, problem: tuple[str, dict] | None = None) -> None:
        """The far end hung up, broke the protocol or reported an error: end the call once, and
        close the socket now (nothing more it sends would be read)."""
        if self.far_end is not None:
            return
        self.far_end = (reason, failed)
        self.problem = problem
        if self.session is not None:
            self.session.hang_up(reason, failed=failed)
        self._log_problem()
        self._spawn(self.line.close())
        self._changed.set()

    def _log_problem(self) -> None:
        if self.problem is None or self.call_id is None or self._problem_logged:
            return
        self._problem_logged = True
        name, payload = self.problem
        self._spawn(database_sync_to_async(audiocalls.audiosocket_event_log)(
            call_id=self.call_id, kind=CallEvent.Kind.ERROR, name=name, payload=payload))

    # --- Helpers -----------------------------------------------------------------------------

    async def _until(self, ready: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not ready():
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return ready()
        return True

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("audiosocket %s: a background step failed", self.peer, exc_info=task.exception())


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else str(peer)


class AudioSocketServer:
    """Listens for Asterisk; every connection is a `Connection` (see the module docstring).

    AudioSocket has no authentication: a peer outside `allowed_networks`
    (AUDIOSOCKET_ALLOWED_NETWORKS; empty: any) is closed before a byte is read, and beyond
    `max_connections` (calls plus refusals being spoken) a connection is closed at once.
    """

    def __init__(self, *, host: str | None = None, port: int | None = None, engine: DialogEngine | None = None,
                 allowed_networks: list[str] | None = None, max_connections: int | None = None) -> None:
        self.host = settings.AUDIOSOCKET_BIND if host is None else host
        self.port = settings.AUDIOSOCKET_PORT if port is None else port
        self.engine = engine  # None: the configured DIALOG_ENGINE
        networks = settings.AUDIOSOCKET_ALLOWED_NETWORKS if allowed_networks is None else allowed_networks
        self.allowed = [ipaddress.ip_network(network, strict=False) for network in networks]
        self.max_connections = max_connections or 2 * settings.MAX_CALLS_PER_PROCESS + 8
        self.refused = {"address": 0, "connections": 0}
        self.connections: set[Connection] = set()
        self.live_uuids: set[uuid.UUID] = set()
        self._tasks: set[asyncio.Task] = set()
        self._refusals: dict[tuple[str, int], bytes] = {}
        self._server: asyncio.AbstractServer | None = None

    def prepare(self) -> None:
        """Synthesize the refusal messages at both reply rates (blocking: call it in a thread, or
        before the loop runs). They come from the phrase cache, on disk after the first start."""
        for text in (BUSY_MESSAGE, NO_ROUTE_MESSAGE):
            for rate in REFUSAL_RATES:
                self._refusals[(text, rate)] = phrase_cache(rate).get(text).audio

    def refusal(self, text: str, rate: int) -> bytes:
        return self._refusals.get((text, rate), b"")

    async def start(self) -> None:
        if not self._refusals:
            await asyncio.to_thread(self.prepare)
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def addresses(self) -> list[str]:
        return [f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in self._server.sockets] if self._server else []

    def _allows(self, peer) -> bool:
        if not self.allowed:
            return True
        try:
            address = ipaddress.ip_address(peer[0] if isinstance(peer, tuple) else peer)
        except (TypeError, ValueError):
            return False
        return any(address in network for network in self.allowed)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        refusal = ("address" if not self._allows(peer)
                   else "connections" if len(self.connections) >= self.max_connections else "")
        if refusal:
            self.refused[refusal] += 1
            logger.warning("audiosocket: refused %s (%s)", _peer(writer), "not in AUDIOSOCKET_ALLOWED_NETWORKS"
                           if refusal == "address" else f"{len(self.connections)} connections already")
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # 323-byte frames, now, not batched
        connection = Connection(self, reader, writer)
        task = asyncio.current_task()
        self.connections.add(connection)
        self._tasks.add(task)
        try:
            await connection.serve()
        finally:
            self.connections.discard(connection)
            self._tasks.discard(task)

    async def drain(self, grace_s: float) -> int:
        """SIGTERM: refuse new calls (politely, while the grace period lasts), end the live ones
        with a goodbye, wait up to `grace_s` for them to be stored, then hang up what is left and
        stop. Returns how many calls were still live when the grace period ran out."""
        left = await live.drain(grace_s)
        await self.close()
        return left

    async def close(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            await connection.stop()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        if self._server is not None:
            await self._server.wait_closed()
