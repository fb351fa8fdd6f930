"""VoiceSession: one live call, from the first frame to the finalized Call row.

The session owns the turn loop and nothing about wire protocols (see transport.py):

    inbound frame ─► VAD ─► Endpointer ─ pause ──► speculative STT (discarded on resume)
                                       └ end ────► STT result ─► dialog (stream) ─► TTS per
    sentence ─► Playout (bounded, paced 20 ms) ─► transport.send_audio

Everything on the event loop is cheap bookkeeping (WebRTC VAD is ~20 µs a frame, the
endpointer a few list operations). Whisper and Piper run in the speech executor's shared
pool (or on Celery), and the dialog engine and every ORM write run in one thread owned
by this call, so one call's database or LLM wait never stalls another call, and this
call's writes happen in the order they were made.

Timing (all `time.monotonic()`): the arrival time of every inbound frame is kept, so a
turn's voice-to-voice latency is measured from the arrival of the caller's last voiced
frame to the moment the reply's first frame is handed to the transport.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache, partial

import numpy as np
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from agents.engine import CallContext, DialogEngine, DialogReply
from agents.models import AgentConfig
from agents.registry import get_dialog_engine
from calls import phrases, services
from calls.models import Call, CallEvent, Turn
from calls.phrases import fixed_phrases
from calls.recorder import CallRecorderService
from calls.speech import executor
from calls.speech.audio import ENGINE_RATE, FRAME_MS, AudioError, Framer, check_rate, iter_frames
from calls.speech.base import Speech, Transcript, Vad
from calls.speech.errors import SpeechError
from calls.speech.registry import get_stt, get_tts, get_vad
from calls.speech.synthesis import PhraseCache
from calls.speech.vad import Endpointer, EndpointEvent
from core.text import split_sentences

from . import live
from .heard import PlayedSentence, heard_text, speech_span
from .playout import FRAME_S, Playout
from .recording import Recorder
from .transport import SessionEvent, Transport

logger = logging.getLogger(__name__)

_ARRIVAL_RING = 4096  # frames (82 s) of arrival times; utterances are capped at 30 s
_END_ACTIONS = {"end_call", "transfer"}
_DONE = object()


@lru_cache(maxsize=16)
def _phrase_cache(engine_path: str, voice: str, sample_rate: int) -> PhraseCache:
    return PhraseCache(sample_rate=sample_rate)


def phrase_cache(sample_rate: int) -> PhraseCache:
    """The process-wide cache of fixed phrases at one output rate (per TTS engine setting)."""
    return _phrase_cache(settings.TTS_ENGINE, settings.TTS_VOICE, check_rate(sample_rate))


def session_warm_up(*, agents: Iterable[AgentConfig] = (), sample_rates: Iterable[int] = (ENGINE_RATE,)) -> None:
    """Load the models and fill the phrase cache before the first caller connects (blocking:
    run it at process start, or in a worker thread). Everything it loads is shared by all
    sessions in the process."""
    agents = list(agents)
    for model in {a.stt_model for a in agents} or {settings.STT_MODEL}:
        engine = get_stt(model)
        if hasattr(engine, "warm_up"):
            engine.warm_up()
    tts = get_tts()
    if hasattr(tts, "warm_up"):
        tts.warm_up()
    get_vad()
    for rate in sample_rates:
        cache = phrase_cache(rate)
        for agent in agents:
            cache.warm(fixed_phrases(agent), voice=agent.voice, rate=agent.speaking_rate)


def _close_connection() -> None:
    connection.close()  # looked up in the calling thread: this call's own connection


# The call's thread keeps one connection for the whole call. Django never reopens a connection
# the database dropped (a restart, a failover, pg_terminate_backend): every later query fails.
# So it is checked (one SELECT 1) before a job that follows a pause or an error, reopened if
# dead, and a job that is safe to repeat is retried once on a fresh connection.
_DB_CHECK_AFTER_IDLE_S = 1.0
_DB_LOST = (OperationalError, InterfaceError)


class _CallDb:
    """Runs jobs in the call's thread (every method here runs in that thread only)."""

    def __init__(self) -> None:
        self.last_used = 0.0

    def run(self, fn, args, kwargs, retry: bool):
        self._reopen_if_dead()
        try:
            return fn(*args, **kwargs)
        except _DB_LOST:
            if connection.in_atomic_block:
                raise
            connection.close()  # the next job (or the retry) opens a fresh one
            if not retry:
                raise
            logger.warning("database connection lost; retrying %s once", getattr(fn, "__name__", fn))
            return fn(*args, **kwargs)
        finally:
            self.last_used = time.monotonic()

    def _reopen_if_dead(self) -> None:
        if connection.connection is None or connection.in_atomic_block:
            return
        if connection.errors_occurred or time.monotonic() - self.last_used >= _DB_CHECK_AFTER_IDLE_S:
            if not connection.is_usable():
                logger.warning("database connection lost; reopening it")
                connection.close()
            connection.errors_occurred = False


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else max(0, round(seconds * 1000))


@dataclass
class SessionStats:
    frames_in: int = 0
    frames_dropped: int = 0  # overflow, wrong size or unreadable by the VAD
    bytes_dropped: int = 0  # trailing partial frame at hang-up, non-bytes chunks
    frames_out: int = 0
    frames_cleared: int = 0  # queued agent audio dropped by barge-in
    underruns: int = 0  # silences over 60 ms inside one reply
    max_gap_ms: int = 0
    barge_ins: int = 0
    speculative_started: int = 0
    speculative_used: int = 0
    speculative_discarded: int = 0
    dtmf_dropped: int = 0
    client_latency_dropped: int = 0  # reports for an unknown or already stored reply
    ignored_utterances: int = 0  # caller speech over the agent that was not a barge-in
    fillers: int = 0
    reprompts: int = 0
    errors: int = 0


@dataclass
class SessionSummary:
    call_id: int | None
    end_reason: str
    finalized: bool
    stats: SessionStats

    def as_dict(self) -> dict:
        return {**asdict(self), "stats": asdict(self.stats)}


@dataclass
class _Utterance:
    start_ms: int
    voiced_frames: int
    reply: _Reply | None  # the agent reply that was active when the caller started
    peak_db: float = 0.0  # loudest frame so far (10·log10 of the mean square)
    barged: bool = False
    ended: bool = False
    speculative: asyncio.Task | None = None
    speculative_audio: bytes = b""
    stale: asyncio.Task | None = None  # a discarded guess that may still occupy a speech worker


@dataclass
class _Reply:
    number: int
    kind: str  # greeting | answer | reprompt | goodbye
    requested_at: float
    epoch: int
    interruptible: bool = True
    end_reason: str = ""  # goodbye: why the call ends after it
    caller_text: str | None = None
    dtmf: str | None = None
    jobs: asyncio.Queue = field(default_factory=asyncio.Queue)  # sentences, then None
    texts: list[str] = field(default_factory=list)  # what the dialog generated
    sentences: list[PlayedSentence] = field(default_factory=list)  # what was queued for playback
    result: DialogReply | None = None
    failed: bool = False
    # Timing (time.monotonic()); the caller side is set for answers.
    last_voiced_at: float | None = None
    endpoint_at: float | None = None
    transcript_at: float | None = None
    first_sentence_at: float | None = None
    first_audio_at: float | None = None
    first_frame_at: float | None = None
    last_frame_at: float | None = None
    filler: PlayedSentence | None = None
    filler_first_frame_at: float | None = None
    filler_last_frame_at: float | None = None
    interrupted: bool = False
    partial: bool = False
    finished: bool = False
    tts_engine: str = ""
    client_voice_to_voice_ms: int | None = None  # reported by the caller's browser
    gather_task: asyncio.Task | None = None
    speak_task: asyncio.Task | None = None
    task: asyncio.Task | None = None

    @property
    def text(self) -> str:
        if self.result is not None and self.result.sentences:
            return " ".join(self.result.sentences)
        return " ".join(self.texts)


class CallAlreadyEnded(Exception):
    """`run()` was given a Call that has ended (a late stream for a finished call): nothing is
    written, and the transport should close the line."""


class VoiceSession:
    """One live call. Transports use `feed_audio`, `feed_dtmf`, `hang_up` and `await run()`.

    `engine` defaults to the configured dialog engine. `call` is an existing Call row (a
    Twilio webhook may have created it); otherwise `run()` creates one with `call_start`.
    """

    FILLER_AFTER_S = 0.7
    FILLERS = phrases.FILLERS
    REPROMPT = phrases.REPROMPT
    SILENCE_GOODBYE = phrases.SILENCE_GOODBYE
    TIME_LIMIT_GOODBYE = phrases.TIME_LIMIT_GOODBYE
    APOLOGY = phrases.APOLOGY
    DTMF_DIGITS = frozenset("0123456789*#ABCD")
    _STT_PAD = bytes(ENGINE_RATE)  # 500 ms of silence after the caller's last word
    DTMF_GAP_S = 1.5  # digits are collected until "#" or this pause
    # Silence after which STT starts speculatively. WebRTC's VAD already holds "speech" ~90 ms
    # past the true end, so 40 ms here starts STT ~130 ms after the caller's last sound, and
    # costs few wasted transcriptions (1.23 pauses per utterance on the Asterisk prompts at
    # 40 ms, 1.19 at 100 ms); see docs/voice.md.
    PAUSE_MS = 40
    # Long sentences are synthesized in clause-sized pieces, so the first audio of a long
    # reply waits for its first clause only (Piper's cost grows with the text).
    CHUNK_MIN_WORDS = 3
    CHUNK_SPLIT_OVER_WORDS = 8
    FIRST_CHUNK_MIN_WORDS = 2
    FIRST_CHUNK_SPLIT_OVER_WORDS = 5
    BARGE_IN_RANGE_DB = 25.0  # voiced frames this far below the utterance's peak are a tail, not speech
    MAX_INBOUND_FRAMES = 250  # 5 s of input waiting for the loop: beyond that, frames are dropped
    SHUTDOWN_WAIT_S = 15.0  # for the last STT / dialog step when the call drops mid-turn
    # Said when the server must end the call (SIGTERM: live.drain); a fixed phrase, so cached.
    SHUTDOWN_GOODBYE = "I'm sorry, we have to end this call now. Please call back in a moment."

    def __init__(
        self,
        *,
        agent: AgentConfig,
        transport: Transport,
        channel: str = Call.Channel.BROWSER,
        direction: str = Call.Direction.INBOUND,
        caller_number: str = "",
        called_number: str = "",
        provider_call_id: str = "",
        call: Call | None = None,
        engine: DialogEngine | None = None,
        vad: Vad | None = None,
    ) -> None:
        self.agent = agent
        self.transport = transport
        self.out_rate = check_rate(transport.sample_rate)
        self.channel = channel
        self.direction = direction
        self.caller_number = caller_number
        self.called_number = called_number
        self.provider_call_id = provider_call_id
        self.call = call
        self.engine = engine or get_dialog_engine()
        self.ctx: CallContext | None = None
        self.stats = SessionStats()
        self.recorder = Recorder(agent_rate=self.out_rate, max_seconds=agent.max_call_seconds + 60)
        self._vad = vad or get_vad()
        self._endpointer = Endpointer(rate=ENGINE_RATE, silence_ms=agent.endpointing_silence_ms, pause_ms=self.PAUSE_MS)
        self._framer = Framer(ENGINE_RATE)
        self._inbound: asyncio.Queue = asyncio.Queue()
        self._events: asyncio.Queue = asyncio.Queue()
        self._ended = asyncio.Event()
        self._end_reason: str | None = None
        self._ended_by_caller = False
        self._ending = False
        self._closed = False
        self._goodbye = False
        self._failed = False
        self._started = False
        self._t0 = time.monotonic()
        self._arrivals = np.zeros(_ARRIVAL_RING, dtype=np.float64)
        self._frames_seen = 0
        self._utt: _Utterance | None = None
        self._reply: _Reply | None = None
        self._numbers = itertools.count()
        self._last_handler: asyncio.Task | None = None
        self._handlers: set[asyncio.Task] = set()
        self._replies: set[asyncio.Task] = set()
        self._writes: set[asyncio.Future] = set()
        self._caller_quiet_since = self._t0  # reprompts do not reset it; caller speech and real replies do
        self._agent_done_at = self._t0
        self._dtmf = ""
        self._dtmf_at = 0.0
        self._intent = ""
        self._fixed = set(fixed_phrases(agent)) | set(split_sentences(self.SHUTDOWN_GOODBYE))
        self._fillers = itertools.cycle(self.FILLERS)
        self._playout: Playout | None = None
        self._db_pool: ThreadPoolExecutor | None = None
        self._call_db = _CallDb()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._beating: int | None = None  # the call id this process stamps
        self._spooled = (0, 0)  # bytes of each recording track already in the call's spool
        self._spool_at = 0.0
        self._spool_task: asyncio.Future | None = None

    # --- What transports call --------------------------------------------------------------

    def feed_audio(self, pcm16: bytes) -> None:
        """Caller audio: PCM16 mono at 16 kHz, any chunk size (framed to 20 ms here). Bad
        chunks are dropped and counted, never raised."""
        if self._ending:
            return
        now = time.monotonic()
        for frame in self._framer.push(pcm16):
            if self._inbound.qsize() >= self.MAX_INBOUND_FRAMES:
                self.stats.frames_dropped += 1
                continue
            self._inbound.put_nowait(("audio", frame, now))

    def feed_dtmf(self, digit: str) -> None:
        if not self._ending:
            self._inbound.put_nowait(("dtmf", digit, time.monotonic()))

    def hang_up(self, reason: str = "caller_hangup", *, failed: bool = False) -> None:
        """The far end went away. Frames already fed are still processed first. `failed`: the line
        broke (a protocol error), so the call is stored as failed."""
        self._inbound.put_nowait(("hangup", (reason, failed), time.monotonic()))

    # Optional, for transports that have them (the browser widget):

    def push_to_talk(self, pressed: bool) -> None:
        """Push-to-talk: pressing interrupts the agent at once; releasing ends the caller's
        turn now instead of after the endpointing silence."""
        if not self._ending:
            self._inbound.put_nowait(("ptt", bool(pressed), time.monotonic()))

    def feed_text(self, text: str) -> None:
        """A typed caller turn (no microphone): handled like an utterance, without STT."""
        if not self._ending and text.strip():
            self._inbound.put_nowait(("text", text.strip(), time.monotonic()))

    def report_client_latency(self, turn: int | None, ms: int) -> None:
        """Voice-to-voice latency measured on the caller's device for agent reply `turn` (the
        `turn` of its agent_text events; None: the current one). Stored on the agent's Turn
        with the server's own figure; a report for a reply already stored is dropped."""
        reply = self._reply
        if reply is None or (turn is not None and reply.number != turn) or reply.finished:
            self.stats.client_latency_dropped += 1
            return
        reply.client_voice_to_voice_ms = max(0, int(ms))

    def end_politely(self, reason: str = "server_shutdown") -> None:
        """The server must end the call (shutdown): say SHUTDOWN_GOODBYE, then end and finalize
        it with `reason`. Callable from any thread; a goodbye already playing is left to end it."""
        self.say_and_end(self.SHUTDOWN_GOODBYE, reason)

    def say_and_end(self, text: str, reason: str) -> None:
        """Stop whatever the agent is saying, say `text` (not interruptible), then end the call
        with `reason`: a shutdown goodbye, a voicemail message after the beep. Callable from any
        thread; a goodbye already playing is left to end the call. Empty text: end at once."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                loop.call_soon_threadsafe(self.say_and_end, text, reason)
                return
        if self._ending or self._goodbye:
            return
        if self._playout is None or self.ctx is None or not text.strip():
            self._end(reason)  # nothing said yet, or nothing to say: nothing to interrupt
            return
        self._say_goodbye(text, reason)

    # --- Lifecycle ----------------------------------------------------------------------------

    async def run(self) -> SessionSummary:
        """Greet, converse, and return once the call is stored and finalized."""
        if self._started:
            raise RuntimeError("a VoiceSession runs once")
        self._started = True
        self._loop = asyncio.get_running_loop()
        live.register(self)
        self._t0 = self._caller_quiet_since = self._agent_done_at = time.monotonic()
        self._db_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voice-call")
        self._playout = Playout(self._send_frame, rate=self.out_rate)
        background: list[asyncio.Task] = []
        finalized = False
        try:
            try:
                self.call = await self._db(self._open_call)
            except CallAlreadyEnded:
                self.call = None  # nothing of this session is written to the ended call
                self._end("already_ended")
                raise
            except Exception:
                logger.exception("voice session could not create its Call")
                self._end("error")
                raise
            self._beating = self.call.pk
            live.heartbeat_add(self.call.pk)
            self.ctx = CallContext(agent=self.agent, call_id=self.call.pk, caller_number=self.caller_number,
                                   direction=self.call.direction, variables=dict(self.call.variables or {}),
                                   customer_id=self.call.customer_id, recorder=CallRecorderService(self.call))
            background = [
                asyncio.create_task(self._playout.run(), name="voice-playout"),
                asyncio.create_task(self._send_events(), name="voice-events"),
                asyncio.create_task(self._listen(), name="voice-listen"),
                asyncio.create_task(self._watchdog(), name="voice-watchdog"),
            ]
            self._warm_phrases()
            self._begin_reply("greeting")
            await self._ended.wait()
        except Exception:
            if self.call is None:
                raise
            logger.exception("voice session for call %s failed", self.call.pk)
            self._failed = True
            self._end("error")
        finally:
            try:
                finalized = await self._close(background)
            finally:
                if self._beating is not None:
                    live.heartbeat_remove(self._beating)
                live.unregister(self)
        return SessionSummary(self.call.pk if self.call else None, self._end_reason or "", finalized, self.stats)

    def _open_call(self) -> Call:
        if self.call is not None:
            # Prepared by a webhook, FastAGI or an outbound dial: it is answered now.
            call = services.call_connect(call_id=self.call.pk)
            if call is None:
                raise CallAlreadyEnded(f"call {self.call.pk} has already ended")
            return call
        # The dialog engine identifies the caller (caller ID, then verification) and the
        # session records it on the call as soon as it does (see _gather).
        return services.call_start(
            channel=self.channel, agent=self.agent, direction=self.direction, from_number=self.caller_number,
            to_number=self.called_number, provider_call_id=self.provider_call_id,
        )

    def _end(self, reason: str, *, by_caller: bool = False) -> None:
        if self._end_reason is None:
            self._end_reason = reason
            self._ended_by_caller = by_caller
        self._ended.set()

    async def _close(self, background: list[asyncio.Task]) -> bool:
        """Store whatever the call was in the middle of, the recording, then finalize once."""
        self._ending = True
        listen = next((t for t in background if t.get_name() == "voice-listen"), None)
        if listen is not None and not listen.done():
            listen.cancel()
        for task in background:
            if task.get_name() == "voice-watchdog":
                task.cancel()
        # 1. The caller was mid-utterance: close it as if silence followed and keep it, flagged.
        for event in self._endpointer.flush():
            utt, self._utt = self._utt, None
            if event.kind == "speech_end" and utt is not None and not self._ignored(utt):
                self._track(self._handle_utterance(utt, event, time.monotonic(), partial=True), self._handlers)
        self._framer.flush()
        self.stats.bytes_dropped = self._framer.dropped_bytes + self._framer.dropped_chunks
        await self._wait(self._handlers, self.SHUTDOWN_WAIT_S)
        # 2. The agent was mid-reply: stop the audio, keep what was heard, flagged partial.
        reply = self._active_reply()
        if reply is not None:
            reply.partial = True
            self._stop_audio(reply)
        await self._wait(self._replies, self.SHUTDOWN_WAIT_S + 1)
        for task in background:
            if task.get_name() == "voice-playout":
                task.cancel()
        self.stats.frames_out = self._playout.frames_sent if self._playout else 0
        self.stats.underruns = self._playout.underruns if self._playout else 0
        self.stats.max_gap_ms = _ms(self._playout.max_gap_s) if self._playout else 0
        # 3. Tell the line.
        reason = self._end_reason or "ended"
        self._emit({"type": "ended", "reason": reason})
        await self._wait({t for t in background if t.get_name() == "voice-events"}, 2.0, cancel=False)
        if not self._ended_by_caller:
            try:
                await self.transport.hang_up(reason)
            except Exception:  # noqa: BLE001 - the line may already be gone
                logger.warning("transport hang-up failed", exc_info=True)
        for task in background:
            task.cancel()
        # 4. Persist: queued writes first, then the recording, then the one finalization.
        await self._wait(self._writes, 30.0, cancel=False)
        if self._spool_task is not None:
            await self._wait({self._spool_task}, 10.0, cancel=False)
        self._closed = True  # anything later (a stale speculative STT failing) is not written
        finalized = False
        if self.call is not None and self._db_pool is not None:
            status = Call.Status.FAILED if self._failed else Call.Status.COMPLETED
            try:
                # Safe to repeat: call_finalize ends the call once, the recording replaces itself.
                finalized = await self._db(self._persist_end, status, reason, retry=True)
            except Exception:
                logger.exception("could not finalize call %s", self.call.pk)
        if self._db_pool is not None:
            try:
                await self._db(_close_connection)
            except Exception:  # noqa: BLE001
                pass
            self._db_pool.shutdown(wait=False)
        return finalized

    def _persist_end(self, status: str, reason: str) -> bool:
        if not self.recorder.empty:
            try:
                with self.recorder.stereo_wav_file() as wav:
                    services.call_attach_recording(call=self.call, wav_file=wav)
            except Exception:
                logger.exception("could not store the recording of call %s", self.call.pk)
        finalized = services.call_finalize(call_id=self.call.pk, status=status, end_reason=reason, intent=self._intent)
        services.call_recording_spool_discard(call=self.call)  # the full recording is stored
        self.recorder.close()  # only now: a retry after a database error renders the recording again
        return finalized

    @staticmethod
    async def _wait(tasks, timeout: float, *, cancel: bool = True) -> None:
        pending = [t for t in tasks if not t.done()]
        if not pending:
            return
        done, still = await asyncio.wait(pending, timeout=timeout)
        if still:
            logger.warning("voice session: %d tasks still running at shutdown", len(still))
            if cancel:
                for t in still:
                    t.cancel()

    # --- Threads: ORM + dialog in this call's thread --------------------------------------------

    async def _db(self, fn, *args, retry: bool = False, **kwargs):
        """Run `fn` in this call's thread; `retry`: it is safe to run twice (retried once if the
        database connection turns out to be lost)."""
        return await self._loop.run_in_executor(self._db_pool, partial(self._call_db.run, fn, args, kwargs, retry))

    def _write(self, fn, **kwargs) -> None:
        """Fire-and-forget write, in order with every other write of this call."""
        if self._closed:
            logger.info("voice session: write after the end of call %s dropped", self.call.pk if self.call else None)
            return
        future = asyncio.ensure_future(self._db(fn, **kwargs))
        self._writes.add(future)
        future.add_done_callback(self._write_done)

    def _write_done(self, future: asyncio.Future) -> None:
        self._writes.discard(future)
        if not future.cancelled() and future.exception() is not None:
            self.stats.errors += 1
            logger.error("voice session write failed", exc_info=future.exception())

    def _log_event(self, kind: str, name: str = "", payload: dict | None = None) -> None:
        if self.call is not None:
            self._write(services.call_event_log, call=self.call, kind=kind, name=name, payload=payload or {})

    def _track(self, coro, bucket: set) -> asyncio.Task:
        task = asyncio.create_task(coro)
        bucket.add(task)
        task.add_done_callback(bucket.discard)
        return task

    # --- Events to the transport ---------------------------------------------------------------

    def _emit(self, event: SessionEvent) -> None:
        self._events.put_nowait(event)

    def _state(self, state: str, *, turn: int | None = None) -> None:
        self._emit({"type": "state", "state": state} if turn is None else {"type": "state", "state": state, "turn": turn})

    async def _send_events(self) -> None:
        while True:
            event = await self._events.get()
            try:
                await self.transport.send_event(event)
            except Exception:  # noqa: BLE001 - a closed socket: the hang-up will follow
                logger.debug("transport send_event failed", exc_info=True)
            if event.get("type") == "ended":
                return

    async def _send_frame(self, frame: bytes) -> None:
        self.recorder.agent.write(frame, time.monotonic() - self._t0)
        try:
            await self.transport.send_audio(frame)
        except Exception:  # noqa: BLE001 - the line is gone
            logger.info("transport send_audio failed; ending the call", exc_info=True)
            self._ended_by_caller = True
            self._end("transport_error", by_caller=True)

    # --- Inbound ---------------------------------------------------------------------------------

    async def _listen(self) -> None:
        while True:
            kind, payload, at = await self._inbound.get()
            try:
                if self._on_inbound(kind, payload, at):
                    return
            except Exception:  # a bug on one frame must not deafen the rest of the call
                self.stats.errors += 1
                logger.exception("voice session: inbound %s failed", kind)

    def _on_inbound(self, kind: str, payload, at: float) -> bool:
        """Handle one inbound item; True once the caller has hung up."""
        if kind == "audio":
            self._on_audio(payload, at)
        elif kind == "dtmf":
            self._on_dtmf(payload, at)
        elif kind == "ptt":
            self._on_push_to_talk(payload, at)
        elif kind == "text":
            self._on_text(payload, at)
        elif kind == "hangup":
            reason, failed = payload
            self._failed = self._failed or failed
            self._end(str(reason) or "caller_hangup", by_caller=True)
            return True
        return False

    def _arrival(self, stream_ms: int) -> float | None:
        index = stream_ms // FRAME_MS
        if index < 0 or index >= self._frames_seen or index < self._frames_seen - _ARRIVAL_RING:
            return None
        return float(self._arrivals[index % _ARRIVAL_RING])

    def _on_audio(self, frame: bytes, at: float) -> None:
        self._arrivals[self._frames_seen % _ARRIVAL_RING] = at
        self._frames_seen += 1
        self.stats.frames_in += 1
        self.recorder.caller.write(frame, at - self._t0)
        try:
            speech = self._vad.is_speech(frame, ENGINE_RATE)
        except AudioError:
            self.stats.frames_dropped += 1
            speech = False
        was_in_speech = self._endpointer.in_speech
        events = self._endpointer.process(frame, speech=speech)
        utt = self._utt
        if was_in_speech and speech and utt is not None:
            # WebRTC's VAD keeps saying "speech" for ~90 ms after a sound stops. Frames far below
            # the utterance's loudest are that tail and don't count towards a barge-in, so a
            # short "mm" over the agent is not taken for 200 ms of speech. (The endpointer still
            # sees them: cutting the tail would end turns ~90 ms sooner, but at every comma-length
            # pause too; see docs/voice.md.)
            x = np.frombuffer(frame, dtype="<i2").astype(np.float32)
            level = 10 * float(np.log10(np.mean(x * x) + 1.0))
            utt.peak_db = max(utt.peak_db, level)
            if level >= utt.peak_db - self.BARGE_IN_RANGE_DB:
                utt.voiced_frames += 1
        for event in events:
            self._on_endpoint(event, at)
        self._maybe_barge_in(at)

    def _on_endpoint(self, event: EndpointEvent, at: float) -> None:
        utt = self._utt
        if event.kind == "speech_start":
            self._utt = _Utterance(start_ms=event.start_ms or 0, voiced_frames=self._endpointer.start_frames,
                                   reply=self._active_reply())
            self._caller_quiet_since = at
        elif event.kind == "pause" and utt is not None:
            # Speculative STT: the caller may be done. If they resume it is thrown away; if not,
            # the endpoint finds the transcript (nearly) ready. Skipped while the caller talks
            # over the agent without barging in (that speech is not a turn), and while this
            # call's previous guess is still running: a pool thread cannot be stopped, and two
            # guesses at once would hold both speech workers and make other calls wait.
            busy = utt.stale is not None and not utt.stale.done()
            if (utt.reply is None or utt.barged) and not busy:
                utt.speculative_audio = event.audio
                utt.speculative = asyncio.create_task(self._transcribe(event.audio, utt=utt))
                self.stats.speculative_started += 1
        elif event.kind == "resume" and utt is not None:
            self._discard_speculative(utt)
        elif event.kind in ("speech_end", "discard"):
            self._utt = None
            self._caller_quiet_since = at
            if utt is None:
                return
            utt.ended = True
            if event.kind == "discard" or self._ignored(utt):
                self.stats.ignored_utterances += event.kind == "speech_end"
                self._discard_speculative(utt)
                return
            self._last_handler = self._track(self._handle_utterance(utt, event, at), self._handlers)

    def _discard_speculative(self, utt: _Utterance) -> None:
        if utt.speculative is not None:
            # Not cancelled: a pool thread cannot be stopped, and the task must stay pending
            # while it runs, so the next pause can see this call's worker is still busy.
            utt.stale = utt.speculative
            utt.speculative = None
            utt.speculative_audio = b""
            self.stats.speculative_discarded += 1

    def _ignored(self, utt: _Utterance) -> bool:
        """Speech over the agent that never amounted to a barge-in (a cough, "mm-hm") is not a turn."""
        return (utt.reply is not None and not utt.barged and utt.reply is self._reply and not utt.reply.finished
                and not utt.reply.interrupted)  # cut off (push-to-talk, DTMF, typing): the caller has the floor

    def _active_reply(self) -> _Reply | None:
        reply = self._reply
        return reply if reply is not None and not reply.finished else None

    def _maybe_barge_in(self, at: float) -> None:
        utt, reply = self._utt, self._active_reply()
        if utt is None or reply is None or utt.barged or not reply.interruptible or self._ending:
            return
        if not self.agent.barge_in_enabled or utt.voiced_frames * FRAME_MS < self.agent.barge_in_min_ms:
            return
        utt.barged = True
        self._interrupt(reply, cause="speech", at=at)

    def _interrupt(self, reply: _Reply, *, cause: str, at: float) -> None:
        reply.interrupted = True
        self._forget_unplayed(reply)
        self._stop_audio(reply)
        self._emit({"type": "clear"})
        self.stats.barge_ins += 1
        played_ms = sum(s.played for s in reply.sentences) * 1000 // self.out_rate
        self._log_event(CallEvent.Kind.BARGE_IN, cause, {
            "reply": reply.number, "at_ms": _ms(at - self._t0), "played_ms": played_ms,
            "heard_text": heard_text(reply.sentences),
        })

    def _forget_unplayed(self, reply: _Reply) -> None:
        """Audio handed to the transport that the far end had not played yet (Twilio buffers
        what it is sent, and says how far it got with mark echoes) was never heard: take it
        off the reply's last sentences, so the stored heard text is what the caller heard."""
        try:
            unplayed = max(0, int(self.transport.unplayed_samples()))
        except Exception:  # an estimate: never worth failing a barge-in over
            logger.exception("transport could not say how much audio is unplayed")
            return
        for sentence in reversed(reply.sentences):
            if unplayed <= 0:
                break
            taken = min(unplayed, sentence.played)
            sentence.played -= taken
            unplayed -= taken

    def _stop_audio(self, reply: _Reply) -> None:
        self.stats.frames_cleared += self._playout.clear()
        if reply.speak_task is not None:
            reply.speak_task.cancel()

    def _on_dtmf(self, digit, at: float) -> None:
        digit = str(digit).strip().upper()
        if len(digit) != 1 or digit not in self.DTMF_DIGITS:
            self.stats.dtmf_dropped += 1
            return
        self._caller_quiet_since = at
        self._log_event(CallEvent.Kind.DTMF, digit)
        reply = self._active_reply()
        if reply is not None and reply.interruptible and self.agent.barge_in_enabled and not reply.interrupted:
            self._interrupt(reply, cause="dtmf", at=at)
        self._dtmf += digit
        self._dtmf_at = at
        if digit == "#":
            self._flush_dtmf()

    def _on_push_to_talk(self, pressed: bool, at: float) -> None:
        if pressed:
            reply = self._active_reply()
            if reply is not None and reply.interruptible and self.agent.barge_in_enabled and not reply.interrupted:
                self._interrupt(reply, cause="push_to_talk", at=at)
            return
        for event in self._endpointer.flush():  # released: the utterance ends here
            self._on_endpoint(event, at)

    def _on_text(self, text: str, at: float) -> None:
        self._caller_quiet_since = at
        reply = self._active_reply()
        if reply is not None and reply.interruptible and self.agent.barge_in_enabled and not reply.interrupted:
            self._interrupt(reply, cause="text", at=at)
        if not self._goodbye:
            self._last_handler = self._track(self._handle_text(text, at), self._handlers)

    def _flush_dtmf(self) -> None:
        digits, self._dtmf = self._dtmf, ""
        if digits.endswith("#") and len(digits) > 1:
            digits = digits[:-1]
        if digits and not self._ending and not self._goodbye:
            self._last_handler = self._track(self._handle_dtmf(digits), self._handlers)

    # --- Caller turns ------------------------------------------------------------------------------

    async def _transcribe(self, audio: bytes, *, utt: _Utterance | None = None) -> Transcript | None:
        try:
            # Whisper does better with some silence after the last word than with the endpointer's
            # tight cut (WER 4.9 % -> 4.3 % on 190 endpointed telephone prompts), and the 15 s
            # window has room for it.
            transcript = await executor.run_stt(audio + self._STT_PAD, model=self.agent.stt_model,
                                                language=self.agent.language or None, live=True)
        except Exception as exc:  # noqa: BLE001 - a failed transcription loses one turn, not the call
            logger.warning("STT failed on call %s: %s", self.call.pk if self.call else None, exc)
            self.stats.errors += 1
            self._log_event(CallEvent.Kind.ERROR, "stt", {"message": str(exc)[:500]})
            return None
        if utt is not None and not utt.ended and transcript.text.strip():
            self._emit({"type": "caption", "text": transcript.text.strip(), "final": False})
        return transcript

    async def _handle_utterance(self, utt: _Utterance, event: EndpointEvent, endpoint_at: float, *,
                                partial: bool = False) -> None:
        previous = self._last_handler if self._last_handler is not asyncio.current_task() else None
        last_voiced_at = self._arrival((event.end_ms or FRAME_MS) - FRAME_MS) or endpoint_at
        if not partial and self._active_reply() is None:
            self._state("thinking")
        transcript = None
        speculative = utt.speculative
        if speculative is not None and utt.speculative_audio == event.audio:
            try:
                transcript = await speculative
                self.stats.speculative_used += transcript is not None
            except asyncio.CancelledError:
                if not speculative.cancelled():
                    raise
        elif speculative is not None:
            self._discard_speculative(utt)
        if transcript is None:
            transcript = await self._transcribe(event.audio)
        transcript_at = time.monotonic()
        if previous is not None and not previous.done():
            await asyncio.wait({previous})  # keep turns in the order they were spoken
        text = transcript.text.strip() if transcript is not None else ""
        if not text:
            if self._active_reply() is None and not self._ending:
                self._state("listening")
            return
        self._emit({"type": "caption", "text": text, "final": True})
        start_at = self._arrival(event.start_ms or 0)
        self._write(
            services.turn_record, call=self.call, speaker=Turn.Speaker.CALLER, text=text,
            confidence=transcript.confidence, partial=partial,
            start_ms=_ms(start_at - self._t0) if start_at is not None else None,
            end_ms=_ms(last_voiced_at - self._t0) + FRAME_MS if last_voiced_at else None,
            endpointing_ms=_ms(endpoint_at - last_voiced_at), stt_ms=_ms(transcript_at - endpoint_at),
        )
        if partial or self._ending or self._goodbye:
            return
        await self._answer(text=text, last_voiced_at=last_voiced_at, endpoint_at=endpoint_at,
                           transcript_at=transcript_at)

    async def _handle_text(self, text: str, at: float) -> None:
        previous = self._last_handler if self._last_handler is not asyncio.current_task() else None
        if previous is not None and not previous.done():
            await asyncio.wait({previous})
        self._emit({"type": "caption", "text": text, "final": True})
        self._write(services.turn_record, call=self.call, speaker=Turn.Speaker.CALLER, text=text,
                    start_ms=_ms(at - self._t0))
        await self._answer(text=text, last_voiced_at=None, endpoint_at=at, transcript_at=at)

    async def _handle_dtmf(self, digits: str) -> None:
        previous = self._last_handler if self._last_handler is not asyncio.current_task() else None
        if previous is not None and not previous.done():
            await asyncio.wait({previous})
        now = time.monotonic()
        self._write(services.turn_record, call=self.call, speaker=Turn.Speaker.CALLER, text=digits, intent="dtmf",
                    start_ms=_ms(now - self._t0))
        await self._answer(dtmf=digits, last_voiced_at=None, endpoint_at=now, transcript_at=now)

    async def _answer(self, **kwargs) -> None:
        previous = self._reply
        if previous is not None and previous.task is not None and not previous.task.done():
            await asyncio.wait({previous.task})  # its dialog step folds state first
        if self._ending or self._goodbye:
            return
        self._begin_reply("answer", **kwargs)

    # --- Agent turns -------------------------------------------------------------------------------

    def _begin_reply(self, kind: str, *, text: str | None = None, dtmf: str | None = None,
                     fixed: list[str] | None = None, interruptible: bool = True, end_reason: str = "",
                     last_voiced_at: float | None = None, endpoint_at: float | None = None,
                     transcript_at: float | None = None) -> _Reply:
        reply = _Reply(number=next(self._numbers), kind=kind, requested_at=time.monotonic(),
                       epoch=self._playout.epoch, interruptible=interruptible, end_reason=end_reason,
                       caller_text=text, dtmf=dtmf, last_voiced_at=last_voiced_at, endpoint_at=endpoint_at,
                       transcript_at=transcript_at)
        self._reply = reply
        self._state("thinking")
        reply.gather_task = asyncio.create_task(self._gather(reply, fixed))
        reply.speak_task = asyncio.create_task(self._speak(reply))
        reply.task = self._track(self._conclude(reply), self._replies)
        return reply

    def _dialog_open(self, reply: _Reply):
        """In the call's thread: the dialog's sentences as an iterator (greeting: `start`)."""
        if reply.kind == "greeting":
            result = self.engine.start(self.ctx)
            return iter([*result.sentences, result])
        return iter(self.engine.stream(self.ctx, text=reply.caller_text, dtmf=reply.dtmf))

    async def _gather(self, reply: _Reply, fixed: list[str] | None) -> None:
        """Feed the reply's sentences to the speaker as the dialog produces them."""
        try:
            if fixed is not None:
                for sentence in fixed:
                    reply.texts.append(sentence)
                    reply.jobs.put_nowait(sentence)
                return
            items = await self._db(self._dialog_open, reply)
            streamed = False
            while True:
                item = await self._db(next, items, _DONE)
                if item is _DONE:
                    break
                if isinstance(item, DialogReply):
                    reply.result = item
                    if item.action in _END_ACTIONS:
                        reply.interruptible = False  # a goodbye or a transfer announcement plays out
                    continue
                for sentence in split_sentences(str(item)):
                    reply.first_sentence_at = reply.first_sentence_at or time.monotonic()
                    reply.texts.append(sentence)
                    reply.jobs.put_nowait(sentence)
                    streamed = True
            result = reply.result
            if result is not None and not streamed:  # an engine that returns sentences only at the end
                for sentence in result.sentences:
                    reply.first_sentence_at = reply.first_sentence_at or time.monotonic()
                    reply.texts.append(sentence)
                    reply.jobs.put_nowait(sentence)
            if not reply.texts and reply.kind == "reprompt":
                reply.texts.append(self.REPROMPT)
                reply.jobs.put_nowait(self.REPROMPT)
            if result is not None:
                # The engine reported the customer to the call's recorder as it identified them.
                self.ctx.state = result.state
                self.ctx.customer_id = result.customer_id if result.customer_id is not None else self.ctx.customer_id
                if result.intent and reply.kind == "answer" and not self._intent and result.intent != "unknown":
                    self._intent = result.intent
            if reply.caller_text is not None:
                self.ctx.history.append(("caller", reply.caller_text))
            if reply.text:
                self.ctx.history.append(("agent", reply.text))
        except Exception as exc:
            logger.exception("dialog engine failed on call %s", self.call.pk if self.call else None)
            reply.failed = True
            self.stats.errors += 1
            self._log_event(CallEvent.Kind.ERROR, "dialog", {"message": str(exc)[:500]})
            if not reply.texts:
                reply.texts.append(self.APOLOGY)
                reply.jobs.put_nowait(self.APOLOGY)
        finally:
            reply.jobs.put_nowait(None)

    async def _synthesize(self, reply: _Reply, text: str) -> Speech | None:
        voice, rate = self.agent.voice or None, self.agent.speaking_rate or None
        if text in self._fixed:
            cache = phrase_cache(self.out_rate)
            speech = cache.cached(text, voice=voice, rate=rate)
            if speech is not None:
                return speech
            try:
                return await executor.run_cpu(cache.get, text, voice=voice, rate=rate)
            except SpeechError:
                pass  # the primary engine failed: run_tts below falls back to espeak
        try:
            speech = await executor.run_tts(text, voice=voice, rate=rate, sample_rate=self.out_rate)
        except (SpeechError, AudioError) as exc:
            self.stats.errors += 1
            self._log_event(CallEvent.Kind.ERROR, "tts", {"message": str(exc)[:500], "text": text[:200]})
            return None
        if speech.fallback_reason and not reply.tts_engine:
            reply.tts_engine = speech.engine
            self._log_event(CallEvent.Kind.ERROR, "tts_fallback", {"engine": speech.engine,
                                                                   "reason": speech.fallback_reason[:500]})
        return speech

    def _chunks(self, sentence: str, *, first: bool = False) -> list[str]:
        """A long sentence split after commas (or ; : —) into clauses of a few words at least.
        The first sentence of a reply is split even at a short opening clause ("I'm sorry,"):
        its audio is what the caller waits for."""
        words = len(sentence.split())
        if sentence in self._fixed or words <= (self.FIRST_CHUNK_SPLIT_OVER_WORDS if first
                                                else self.CHUNK_SPLIT_OVER_WORDS):
            return [sentence]
        pieces = [p for p in re.split(r"(?<=[,;:\u2014])\s+", sentence) if p]
        minimum = self.FIRST_CHUNK_MIN_WORDS if first else self.CHUNK_MIN_WORDS
        chunks: list[str] = []
        for piece in pieces:
            if chunks and len(chunks[-1].split()) < (minimum if len(chunks) == 1 else self.CHUNK_MIN_WORDS):
                chunks[-1] = f"{chunks[-1]} {piece}"
            else:
                chunks.append(piece)
        if len(chunks) > 1 and len(chunks[-1].split()) < self.CHUNK_MIN_WORDS:
            chunks[-2:] = [f"{chunks[-2]} {chunks[-1]}"]
        return chunks

    async def _synthesizer(self, reply: _Reply, ready: asyncio.Queue) -> None:
        """Piece n+1 is synthesized while piece n plays; `ready` holds one piece."""
        while True:
            text = await reply.jobs.get()
            if text is None:
                await ready.put(None)
                return
            for chunk in self._chunks(text, first=not reply.sentences and ready.empty()):
                speech = await self._synthesize(reply, chunk)
                if speech is not None and speech.audio:
                    await ready.put((chunk, speech))

    async def _speak(self, reply: _Reply) -> None:
        ready: asyncio.Queue = asyncio.Queue(maxsize=1)
        synthesizer = asyncio.create_task(self._synthesizer(reply, ready))
        getter: asyncio.Task | None = None
        try:
            while True:
                getter = getter or asyncio.create_task(ready.get())
                if reply.kind == "answer" and reply.filler is None and reply.first_sentence_at is None:
                    # The dialog is slow (a lookup, an LLM): say something rather than nothing.
                    wait = reply.requested_at + self.FILLER_AFTER_S - time.monotonic()
                    done, _ = await asyncio.wait({getter}, timeout=max(0.0, wait))
                    if not done:
                        if reply.first_sentence_at is None:
                            await self._play_filler(reply)
                        else:
                            await asyncio.wait({getter})
                        continue
                item = await getter
                getter = None
                if item is None:
                    break
                text, speech = item
                reply.first_audio_at = reply.first_audio_at or time.monotonic()
                await self._queue_sentence(reply, text, speech)
            await self._playout.drained(epoch=reply.epoch)
        finally:
            synthesizer.cancel()
            if getter is not None:
                getter.cancel()

    async def _play_filler(self, reply: _Reply) -> None:
        text = next(self._fillers)
        speech = await self._synthesize(reply, text)
        if speech is None or reply.first_sentence_at is not None:
            reply.filler = PlayedSentence("", 0, (0, 0))  # don't try again
            return
        self.stats.fillers += 1
        reply.filler = PlayedSentence(text, len(speech.audio) // 2, speech_span(speech.audio, speech.sample_rate))
        unit = ("filler", reply.number)

        def sent(samples: int, at: float) -> None:
            reply.filler.played += samples
            reply.filler_first_frame_at = reply.filler_first_frame_at or at
            reply.filler_last_frame_at = at + FRAME_S

        await self._playout.mark(lambda: self._state("speaking", turn=reply.number), epoch=reply.epoch)
        for frame in iter_frames(speech.audio, self.out_rate):
            if not await self._playout.put(frame, on_sent=sent, unit=unit, epoch=reply.epoch):
                return

    async def _queue_sentence(self, reply: _Reply, text: str, speech: Speech) -> None:
        sentence = PlayedSentence(text, len(speech.audio) // 2, speech_span(speech.audio, speech.sample_rate))
        reply.sentences.append(sentence)
        first = len(reply.sentences) == 1

        def started() -> None:
            if first:
                self._state("speaking", turn=reply.number)
            self._emit({"type": "agent_text", "text": text, "turn": reply.number})

        def sent(samples: int, at: float) -> None:
            sentence.played += samples
            reply.first_frame_at = reply.first_frame_at or at
            reply.last_frame_at = at + FRAME_S

        if not await self._playout.mark(started, epoch=reply.epoch):
            raise asyncio.CancelledError
        for frame in iter_frames(speech.audio, self.out_rate):
            if not await self._playout.put(frame, on_sent=sent, unit=reply, epoch=reply.epoch):
                raise asyncio.CancelledError

    async def _conclude(self, reply: _Reply) -> None:
        """Once the reply has played (or was cut off): store it and act on the dialog's decision."""
        try:
            await reply.speak_task
        except asyncio.CancelledError:
            if not (reply.interrupted or reply.partial):
                raise
        except Exception:
            logger.exception("speaking reply %s failed", reply.number)
            self.stats.errors += 1
        try:
            await asyncio.wait_for(asyncio.shield(reply.gather_task), timeout=self.SHUTDOWN_WAIT_S if self._ending else None)
        except TimeoutError:
            logger.warning("dialog still running at the end of call %s", self.call.pk)
        reply.finished = True
        now = time.monotonic()
        self._agent_done_at = now
        if reply.kind != "reprompt":
            self._caller_quiet_since = max(self._caller_quiet_since, now)
        self._record_reply(reply)
        if self._reply is reply and not self._ending:
            self._state("listening")
        result = reply.result
        if reply.end_reason:
            self._end(reply.end_reason)
        elif result is not None and not reply.partial:
            if result.action == "end_call":
                self._end(result.action_reason or "agent_end")
            elif result.action == "transfer":
                target = self.agent.transfer_target
                # Logged once per call: not again when the dialog's transfer tool already did.
                self._write(self.ctx.recorder.transfer_requested, target=target, reason=result.action_reason)
                self._emit({"type": "transfer", "target": target, "reason": result.action_reason})
                self._end("transfer")
            elif result.action == "escalate":
                self._log_event(CallEvent.Kind.ESCALATION, result.action_reason, {"reply": reply.number})

    def _record_reply(self, reply: _Reply) -> None:
        if reply.filler is not None and reply.filler.played:
            self._write(
                services.turn_record, call=self.call, speaker=Turn.Speaker.AGENT, text=reply.filler.text,
                intent="filler", start_ms=_ms(reply.filler_first_frame_at - self._t0),
                end_ms=_ms(reply.filler_last_frame_at - self._t0),
                voice_to_voice_ms=_ms(reply.filler_first_frame_at - reply.last_voiced_at) if reply.last_voiced_at else None,
            )
        text = reply.text
        played = any(s.played for s in reply.sentences)
        if not text and not played:
            return
        cut = reply.interrupted or reply.partial
        if cut and self.ctx.history and self.ctx.history[-1] == ("agent", text):
            heard = heard_text(reply.sentences)  # the dialog's memory holds what the caller heard
            self.ctx.history[-1:] = [("agent", heard)] if heard else []
        since = reply.transcript_at if reply.kind == "answer" else reply.requested_at
        result = reply.result
        self._write(
            services.turn_record, call=self.call, speaker=Turn.Speaker.AGENT, text=text,
            heard_text=heard_text(reply.sentences) if cut else "", interrupted=reply.interrupted,
            partial=reply.partial and not reply.interrupted,
            intent=((result.intent if result is not None else "") or ("" if reply.kind == "answer" else reply.kind))[:64],
            start_ms=_ms(reply.first_frame_at - self._t0) if reply.first_frame_at else None,
            end_ms=_ms(reply.last_frame_at - self._t0) if reply.last_frame_at else None,
            agent_ms=_ms(reply.first_sentence_at - since) if reply.first_sentence_at and since else None,
            tts_first_audio_ms=_ms(reply.first_audio_at - (reply.first_sentence_at or reply.requested_at))
            if reply.first_audio_at else None,
            voice_to_voice_ms=_ms(reply.first_frame_at - reply.last_voiced_at)
            if reply.first_frame_at and reply.last_voiced_at else None,
            client_voice_to_voice_ms=reply.client_voice_to_voice_ms,
            tts_engine=reply.tts_engine,
        )

    # --- Timers ------------------------------------------------------------------------------------

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            if now - self._spool_at >= settings.CALL_HEARTBEAT_SECONDS and not self._ending:
                self._spool_recording(now)
            if self._ending or self._goodbye:
                continue
            if now - self._t0 >= self.agent.max_call_seconds:
                self._say_goodbye(self.TIME_LIMIT_GOODBYE, "max_duration")
                continue
            if self._dtmf and now - self._dtmf_at >= self.DTMF_GAP_S:
                self._flush_dtmf()
            if self._active_reply() is not None or self._utt is not None or self._handlers or self._dtmf:
                continue
            caller_quiet = now - self._caller_quiet_since
            if caller_quiet >= self.agent.silence_hangup_seconds:
                self._say_goodbye(self.SILENCE_GOODBYE, "silence_timeout")
            elif min(caller_quiet, now - self._agent_done_at) >= self.agent.silence_reprompt_seconds:
                self.stats.reprompts += 1
                self._begin_reply("reprompt")

    def _spool_recording(self, now: float) -> None:
        """Append the recording's newest audio to the call's spool (a file per side), so a call
        lost with its process still gets the recording up to here (calls/sweeps.py)."""
        if self.call is None or (self._spool_task is not None and not self._spool_task.done()):
            return
        self._spool_at = now
        caller, agent = self.recorder.caller, self.recorder.agent
        (caller_pcm, caller_end), (agent_pcm, agent_end) = _track_since(caller, self._spooled[0]), \
            _track_since(agent, self._spooled[1])
        if not caller_pcm and not agent_pcm:
            return
        self._spooled = (caller_end, agent_end)
        self._spool_task = asyncio.ensure_future(asyncio.to_thread(
            services.call_recording_spool_append, call=self.call, caller=caller_pcm, caller_rate=caller.rate,
            agent=agent_pcm, agent_rate=agent.rate))
        self._spool_task.add_done_callback(lambda f: f.cancelled() or f.exception() is None
                                           or logger.warning("recording spool failed: %s", f.exception()))

    def _say_goodbye(self, text: str, reason: str) -> None:
        self._goodbye = True
        reply = self._active_reply()
        if reply is not None:
            reply.partial = True
            self._stop_audio(reply)
            self._emit({"type": "clear"})
        self._begin_reply("goodbye", fixed=split_sentences(text), interruptible=False, end_reason=reason)

    def _warm_phrases(self) -> None:
        """Synthesize this agent's fixed phrases in the background if the process hasn't yet."""
        cache = phrase_cache(self.out_rate)
        voice, rate = self.agent.voice or None, self.agent.speaking_rate or None
        missing = [p for p in self._fixed if cache.cached(p, voice=voice, rate=rate) is None]
        greeting = set(split_sentences(self.agent.greeting))
        missing = [p for p in missing if p not in greeting]  # the greeting is fetched right away anyway
        if missing:
            future = asyncio.ensure_future(executor.run_cpu(cache.warm, missing, voice=voice, rate=rate))
            future.add_done_callback(lambda f: f.cancelled() or f.exception() is None
                                     or logger.warning("phrase warm-up failed: %s", f.exception()))


def _track_since(track, offset: int) -> tuple[bytes, int]:
    """A recording track's PCM from byte `offset` to its current end, and that end."""
    if hasattr(track, "read"):  # tracks that spool to a temporary file
        end = len(track)
        return track.read(offset, end - offset), end
    pcm = track.pcm
    return pcm[offset:], len(pcm)
