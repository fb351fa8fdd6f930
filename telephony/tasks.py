"""Celery entry points of outbound calling: dial a queued call, and the periodic sweep that
dials due retries and fails calls whose dial was lost. Thin: the rules are in telephony/outbound.py."""

from __future__ import annotations

import logging

from celery import shared_task

from telephony.base import TelephonyError
from telephony.outbound import outbound_dial, outbound_dial_gave_up, outbound_sweep

logger = logging.getLogger(__name__)

DIAL_MAX_RETRIES = 4


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True, max_retries=DIAL_MAX_RETRIES)
def outbound_dial_task(self, call_id: int) -> str:
    """Dial once; a temporary provider error is retried after 10, 20, 40, 80 s, then the call fails."""
    try:
        return outbound_dial(call_id=call_id)
    except TelephonyError as error:
        if self.request.retries >= self.max_retries or self.request.is_eager:
            # Eager (embedded) mode cannot wait between tries: one try, then the call fails.
            outbound_dial_gave_up(call_id=call_id, message=f"{error.message} (gave up after "
                                                           f"{self.request.retries + 1} tries)")
            return "failed"
        raise self.retry(countdown=10 * 2 ** self.request.retries, exc=error) from error


@shared_task(acks_late=True, ignore_result=True)
def outbound_sweep_task() -> dict:
    return outbound_sweep()
