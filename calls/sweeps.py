"""Calls whose process died: finalized by a sweep, never left in progress.

Every live call is stamped by its process every CALL_HEARTBEAT_SECONDS (calls/session/live.py).
A call in progress whose stamp is older than CALL_LOST_AFTER_SECONDS lost its process (kill -9,
a crash, a host gone): `call_sweep_lost` finalizes it as failed with end_reason "lost", with the
turns it stored and the recording its spool holds, through `call_finalize`, so its post-call
pipeline and the call.ended webhook run as for any other call.

Who runs the sweep: Celery beat (`calls.tasks.call_sweep_lost_task`, CELERY_BEAT_SCHEDULE) when
there is a broker; in embedded mode (eager Celery, no beat) the ASGI process starts
`call_sweeper_start()`: a daemon thread that sweeps at start and every CALL_SWEEP_SECONDS, with
the other apps' sweeps registered by `embedded_sweep_register` (outbound retries).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from calls.models import Call
from calls.services import call_finalize, call_recording_from_spool, call_recording_spool_discard

logger = logging.getLogger(__name__)

LOST_END_REASON = "lost"
_BATCH = 200


def _stale(cutoff: dt.datetime) -> Q:
    # Calls from before heartbeats existed have none: their start time stands in for it.
    return Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)


def call_sweep_lost(*, now: dt.datetime | None = None) -> dict:
    """Finalize calls in progress whose heartbeat stopped. Safe to run anywhere and concurrently:
    each call is re-checked under its row lock, and call_finalize ends it exactly once."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.CALL_LOST_AFTER_SECONDS)
    candidates = list(Call.objects.filter(_stale(cutoff), status=Call.Status.IN_PROGRESS)
                      .order_by("started_at").values_list("pk", flat=True)[:_BATCH])
    finalized = recordings = 0
    for call_id in candidates:
        try:
            with transaction.atomic():
                # A beat may have landed since the read above (a process that was only slow).
                call = Call.objects.select_for_update().filter(_stale(cutoff), pk=call_id,
                                                               status=Call.Status.IN_PROGRESS).first()
                if call is None:
                    continue
                try:
                    recordings += call_recording_from_spool(call=call)
                except Exception:  # the call is still finalized without its recording
                    logger.exception("sweep: could not rebuild the recording of call %s", call_id)
                if call_finalize(call_id=call_id, status=Call.Status.FAILED, end_reason=LOST_END_REASON):
                    finalized += 1
                    logger.warning("call %s lost its process (last heartbeat %s): finalized", call_id,
                                   call.heartbeat_at)
                transaction.on_commit(lambda call=call: call_recording_spool_discard(call=call))
        except Exception:
            logger.exception("sweep: could not finalize lost call %s", call_id)
    return {"finalized": finalized, "recordings": recordings, "more": len(candidates) == _BATCH}


_sweeper: threading.Thread | None = None
_sweeper_lock = threading.Lock()
# Other apps' periodic work that beat runs in production (outbound retries): in embedded mode
# this thread runs it too, after the lost-call sweep. Registered from their AppConfig.ready().
_embedded_sweeps: list = []


def embedded_sweep_register(sweep) -> None:
    """Run `sweep()` with the lost-call sweep in embedded mode (no beat)."""
    if sweep not in _embedded_sweeps:
        _embedded_sweeps.append(sweep)


def call_sweeper_start() -> threading.Thread:
    """Embedded mode: sweep now and every CALL_SWEEP_SECONDS in a daemon thread of this process
    (once per process; later calls return the running thread)."""
    global _sweeper
    with _sweeper_lock:
        if _sweeper is None or not _sweeper.is_alive():
            _sweeper = threading.Thread(target=_sweep_forever, name="call-sweeper", daemon=True)
            _sweeper.start()
        return _sweeper


def _sweep_forever() -> None:
    while True:
        for sweep in [call_sweep_lost, *_embedded_sweeps]:
            try:
                sweep()
            except Exception:
                logger.exception("sweep %s failed", getattr(sweep, "__name__", sweep))
            finally:
                connection.close()  # hold none between sweeps; the next one opens a fresh one
        time.sleep(settings.CALL_SWEEP_SECONDS)
