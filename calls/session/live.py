"""The live calls of this process: admission, heartbeats and a polite drain on shutdown.

A channel asks `admit()` before it starts a call (False when the process is draining or already
serves MAX_CALLS_PER_PROCESS calls), then `register(session)`; `unregister(session)` once the call
is over. A VoiceSession registers itself while it runs, so every channel's calls are counted
and drained (registering twice is harmless).

Heartbeats: every call this process serves (voice sessions and text chats alike, by call id)
is stamped every CALL_HEARTBEAT_SECONDS by one daemon thread, with one conditional UPDATE for
all of them (services.call_heartbeat), on a connection opened for the beat and closed after
it, so no idle connection is held and none goes stale. Not on the event loop, and not in a
call's own thread, where a slow LLM turn could hold a beat back: the beat stops only when the
process does, and then the sweep (calls/sweeps.py) finalizes the call.

Hang-ups staff ask for (services.call_hangup_request, from any process: the REST API) are read by
the same beat, which ends the voice sessions of this process that serve those calls: the agent
says its closing line and the call ends as "staff_hangup", at most CALL_HEARTBEAT_SECONDS later.

Shutdown: `await drain(grace_s)` (voicecrm/asgi.py calls it on SIGTERM) refuses new calls, asks
each live session to `end_politely()`, and waits up to grace_s for them to be finalized.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Protocol

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

from calls.services import call_hangups_requested, call_heartbeat

logger = logging.getLogger(__name__)


class LiveSession(Protocol):
    def end_politely(self, reason: str = "server_shutdown") -> None: ...


_sessions: set[LiveSession] = set()
_draining = False
_lock = threading.Lock()


def admit() -> bool:
    """May this process take one more call? False while draining or at MAX_CALLS_PER_PROCESS."""
    with _lock:
        return not _draining and len(_sessions) < settings.MAX_CALLS_PER_PROCESS


def register(session: LiveSession) -> None:
    with _lock:
        _sessions.add(session)


def unregister(session: LiveSession) -> None:
    with _lock:
        _sessions.discard(session)


def count() -> int:
    with _lock:
        return len(_sessions)


def draining() -> bool:
    return _draining


async def drain(grace_s: float) -> int:
    """Refuse new calls, ask every live session to end politely, and wait up to `grace_s` for
    them to finish (each unregisters once its call is stored and finalized). Returns how many
    were still live when the grace period ran out."""
    global _draining
    with _lock:
        _draining = True
        sessions = list(_sessions)
    if sessions:
        logger.info("shutting down: ending %d live call(s) within %.0f s", len(sessions), grace_s)
    for session in sessions:
        try:
            session.end_politely("server_shutdown")
        except Exception:  # one broken session must not keep the others on the line
            logger.exception("could not end a live call politely")
    deadline = time.monotonic() + grace_s
    while count() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    left = count()
    if left:
        logger.warning("shutting down with %d call(s) still live: the lost-call sweep will finalize them", left)
    return left


def _reset_for_tests() -> None:
    global _draining
    with _lock:
        _sessions.clear()
        _beating.clear()
        _draining = False
    with _beat_running:  # a beat in flight has finished and closed its connection
        pass


# --- Heartbeats -------------------------------------------------------------------------------

_beating: dict[int, int] = {}  # call id -> how many holders (a session and its channel may both add it)
_beat_wake = threading.Event()
_beat_running = threading.Lock()
_beater: threading.Thread | None = None


def heartbeat_add(call_id: int) -> None:
    """Stamp this call every CALL_HEARTBEAT_SECONDS until `heartbeat_remove`."""
    global _beater
    with _lock:
        _beating[call_id] = _beating.get(call_id, 0) + 1
        if _beater is None or not _beater.is_alive():
            _beater = threading.Thread(target=_beat_forever, name="call-heartbeat", daemon=True)
            _beater.start()


def heartbeat_remove(call_id: int) -> None:
    with _lock:
        holders = _beating.get(call_id, 0) - 1
        if holders > 0:
            _beating[call_id] = holders
        else:
            _beating.pop(call_id, None)


def heartbeat_now() -> None:
    """Beat at once instead of at the next interval (tests, and after a long pause)."""
    _beat_wake.set()


def _beat_forever() -> None:
    while True:
        _beat_wake.wait(settings.CALL_HEARTBEAT_SECONDS)
        _beat_wake.clear()
        with _lock:
            ids = list(_beating)
        if not ids:
            continue
        with _beat_running:
            try:
                _beat(ids)
            except Exception:
                logger.exception("call heartbeat failed")
            finally:
                connection.close()


def _beat(ids: list[int]) -> None:
    try:
        call_heartbeat(call_ids=ids)
    except (OperationalError, InterfaceError):
        # The connection broke under the beat (a database restart): the stamp is idempotent.
        connection.close()
        call_heartbeat(call_ids=ids)
    _end_requested(call_hangups_requested(call_ids=ids))


STAFF_HANGUP = "staff_hangup"


def _end_requested(call_ids: set[int]) -> None:
    """End this process's voice sessions of these calls (say_and_end is thread-safe and ends once)."""
    if not call_ids:
        return
    with _lock:
        sessions = [session for session in _sessions if hasattr(session, "say_and_end")
                    and getattr(getattr(session, "call", None), "pk", None) in call_ids]
    for session in sessions:
        logger.info("ending call %s: staff asked to hang up", session.call.pk)
        session.say_and_end(session.agent.closing, STAFF_HANGUP)
