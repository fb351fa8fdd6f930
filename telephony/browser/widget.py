"""The browser widget's side of a call: handshake checks and the transport adapter.

The consumer (calls/consumers.py) owns the websocket; this module holds what it needs and
what is worth testing on its own: which key and origin may connect, the per-IP connection
budget, and `BrowserTransport`, which turns VoiceSession output into widget protocol
messages (docs/protocols.md, "Browser widget").
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, BaseCache, caches
from django.core.signals import setting_changed
from django.dispatch import receiver

from calls import services
from calls.models import Call, CallEvent
from calls.session import SessionEvent, Transport, VoiceSession
from calls.speech.audio import ENGINE_RATE, FRAME_MS, frame_bytes
from core.proxies import client_address
from telephony.models import Route

logger = logging.getLogger(__name__)

# Playback rates a client may ask for (the agent's voice is resampled once, server side).
PLAYBACK_RATES = frozenset({8000, 16000, 22050, 24000, 32000, 44100, 48000})
MODES = frozenset({"continuous", "ptt"})
MAX_TEXT_CHARS = 500
ENGINE_FRAME_BYTES = frame_bytes(ENGINE_RATE)  # 640: 20 ms of PCM16 at 16 kHz
DTMF_DIGITS = frozenset("0123456789*#ABCD")
# Caller audio is 16 kHz PCM16 in real time (32,000 bytes/s). Twice that is allowed, with 2 s of
# burst (a stalled network delivers a backlog at once); beyond it frames are dropped and counted.
AUDIO_BYTES_PER_SECOND = 2 * ENGINE_RATE * 2
AUDIO_BURST_BYTES = 2 * ENGINE_RATE * 2

# Close codes (docs/protocols.md). 1000 and 1009 are standard; the 4xxx are ours.
CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009
CLOSE_BAD_PROTOCOL = 4400
CLOSE_FORBIDDEN = 4403
CLOSE_IDLE = 4408
CLOSE_RATE_LIMITED = 4429  # too many connections from the IP, or too many messages on this one
CLOSE_SERVER_ERROR = 4500
CLOSE_BUSY = 4503  # the process is at MAX_CALLS_PER_PROCESS, draining, or its cache is down


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def origin_allowed(route: Route, origin: str | None) -> bool:
    """The key's own allow-list. A key with an empty list works only on VoiceCRM's public origin
    (the demo page and the admin's "Try this agent" link live there): a key that lists origins
    is for those sites alone, so a page at PUBLIC_BASE_URL cannot use it either. No Origin
    header: not a browser; refused."""
    if not origin:
        return False
    if route.origin_list:
        return route.allows_origin(origin)
    return origin.rstrip("/") == _origin_of(settings.PUBLIC_BASE_URL)


def header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def client_ip(scope: dict) -> str:
    """The caller's address: the TCP peer, or behind a proxy in TRUSTED_PROXIES the right-most
    untrusted X-Forwarded-For hop (core/proxies.py); a forged header from anyone else is ignored."""
    client = scope.get("client") or ("unknown", 0)
    forwarded = [value.decode("latin-1") for key, value in scope.get("headers", []) if key.lower() == b"x-forwarded-for"]
    return client_address(str(client[0]), forwarded)


# One cache client for every connection of this process. `django.core.cache.cache` is a new
# backend per async context, so each websocket opened (and never closed) a Redis connection
# pool of its own: 200 sockets held 204 Redis connections. This one backend keeps one pool,
# used from worker threads, so the pool holds about as many connections as there are threads.
_budget_cache: BaseCache | None = None


def _shared_cache() -> BaseCache:
    global _budget_cache
    if _budget_cache is None:
        _budget_cache = caches.create_connection(DEFAULT_CACHE_ALIAS)
    return _budget_cache


@receiver(setting_changed)
def _cache_setting_changed(*, setting: str, **kwargs) -> None:
    global _budget_cache
    if setting == "CACHES" and _budget_cache is not None:
        _budget_cache.close()
        _budget_cache = None


def _count_attempt(key: str) -> int:
    cache = _shared_cache()
    cache.add(key, 0, timeout=120)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add() and incr()
        cache.set(key, 1, timeout=120)
        return 1


async def connection_allowed(ip: str, *, now: float | None = None) -> bool:
    """Count one connection attempt for `ip` in the current minute; False over the budget.

    A fixed one-minute window in the shared cache: add() creates the counter atomically with
    its expiry, incr() is atomic on Redis, so concurrent daphne processes count together.
    Raises the cache's error when it is unreachable (the consumer refuses with 4503).
    """
    window = int((now if now is not None else time.time()) // 60)
    count = await asyncio.to_thread(_count_attempt, f"widget:conn:{ip}:{window}")
    return count <= settings.WIDGET_CONNECTIONS_PER_MINUTE


class TokenBucket:
    """`rate` tokens a second, up to `burst` saved; `take()` is False when the bucket is empty."""

    def __init__(self, *, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.at = time.monotonic()

    def take(self, cost: float = 1.0, *, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


def widget_call_start(*, route: Route, origin: str, mode: str, sample_rate: int) -> Call:
    """The Call row, created before the session so the browser gets its id in `ready`."""
    call = services.call_start(channel=Call.Channel.BROWSER, agent=route.agent, to_number=route.address)
    services.call_event_log(
        call=call, kind=CallEvent.Kind.ACTION, name="widget_connected",
        payload={"origin": origin[:200], "mode": mode, "sample_rate": sample_rate, "key": route.address},
    )
    return call


def call_log_dropped_input(*, call_id: int, counters: dict) -> None:
    """Bad input the widget sent during the call, for whoever debugs a customer's embed."""
    call = Call.objects.filter(pk=call_id).first()
    if call is not None:
        services.call_event_log(call=call, kind=CallEvent.Kind.ERROR, name="widget_dropped_input", payload=counters)


def session_create(*, route: Route, transport: BrowserTransport, call: Call) -> VoiceSession:
    return VoiceSession(
        agent=route.agent, transport=transport, channel=Call.Channel.BROWSER, called_number=route.address, call=call
    )


@dataclass
class Counters:
    """Bad input dropped without ending the call, and outbound flow control, per connection."""

    bad_json: int = 0
    bad_messages: int = 0
    odd_audio: int = 0
    early_audio: int = 0
    over_rate: int = 0  # messages or audio beyond the connection's token buckets
    audio_frames_in: int = 0
    audio_frames_out: int = 0
    flow_waits: int = 0

    @property
    def dropped(self) -> int:
        return self.bad_json + self.bad_messages + self.odd_audio + self.early_audio + self.over_rate

    def as_dict(self) -> dict:
        return {
            "bad_json": self.bad_json, "bad_messages": self.bad_messages, "odd_audio": self.odd_audio,
            "early_audio": self.early_audio, "over_rate": self.over_rate, "audio_frames_in": self.audio_frames_in,
            "audio_frames_out": self.audio_frames_out, "flow_waits": self.flow_waits,
        }


class BrowserTransport(Transport):
    """VoiceSession → widget protocol.

    Agent audio goes out as binary PCM16 frames at the rate the client asked for. The session
    paces them in real time; on top of that the browser reports how much it has played, and
    when more than WIDGET_MAX_UNPLAYED_MS is outstanding `send_audio` waits: a slow or stalled
    client holds the session's bounded queue back instead of growing daphne's socket buffer.
    """

    def __init__(
        self,
        *,
        send_text: Callable[[str], Awaitable[None]],
        send_bytes: Callable[[bytes], Awaitable[None]],
        close: Callable[[int], Awaitable[None]],
        sample_rate: int,
        counters: Counters,
        max_unplayed_ms: int | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self._send_text = send_text
        self._send_bytes = send_bytes
        self._close = close
        self.counters = counters
        self.max_unplayed_ms = max_unplayed_ms or settings.WIDGET_MAX_UNPLAYED_MS
        self.sent_ms = 0
        self.played_ms = 0
        self._room = asyncio.Event()
        self._room.set()
        self.closed = False
        self.call_id: str | None = None
        self.ended_sent = False

    # --- flow control ------------------------------------------------------------------

    def report_played(self, ms: int) -> None:
        """The client has played (or dropped on `clear`) `ms` of agent audio in total."""
        self.played_ms = max(self.played_ms, min(ms, self.sent_ms))
        if self.sent_ms - self.played_ms < self.max_unplayed_ms:
            self._room.set()

    def close_now(self) -> None:
        """The socket is gone: release a sender waiting for room."""
        self.closed = True
        self._room.set()

    async def send_audio(self, frame: bytes) -> None:
        if self.sent_ms - self.played_ms >= self.max_unplayed_ms:
            self._room.clear()
            self.counters.flow_waits += 1
            await self._room.wait()
        if self.closed:
            raise ConnectionError("the browser went away")
        await self._send_bytes(frame)
        self.sent_ms += FRAME_MS
        self.counters.audio_frames_out += 1

    # --- events ---------------------------------------------------------------------------

    async def send_json(self, message: dict) -> None:
        if not self.closed:
            await self._send_text(json.dumps(message, separators=(",", ":")))

    async def send_event(self, event: SessionEvent) -> None:
        message = dict(event)
        kind = message.get("type")
        if kind == "caption":
            message.setdefault("speaker", "caller")  # the session only captions the caller
        elif kind == "ended":
            message["call_id"] = self.call_id
            self.ended_sent = True
        await self.send_json(message)

    async def hang_up(self, reason: str) -> None:
        if not self.ended_sent:
            await self.send_event({"type": "ended", "reason": reason})
        await self._close(CLOSE_NORMAL)
