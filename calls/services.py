"""Writes for calls: start, answer, turns and events as they happen, and the one-time finalization.

Every function here is synchronous ORM code; async callers (voice sessions, consumers)
wrap them in `database_sync_to_async`.
"""

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from calls.models import Call, CallEvent, InformationRecord, Turn
from calls.postcall.pipeline import call_started_notify, pipeline_schedule
from calls.speech.audio import interleave_stereo, resample, wav_bytes

logger = logging.getLogger(__name__)


@transaction.atomic
def call_start(
    *,
    channel: str,
    agent=None,
    direction: str = Call.Direction.INBOUND,
    from_number: str = "",
    to_number: str = "",
    provider_call_id: str = "",
    customer=None,
    answered: bool = True,
) -> Call:
    """Create the Call row the moment a call connects (idempotent per provider call id)."""
    if provider_call_id:
        existing = Call.objects.filter(channel=channel, provider_call_id=provider_call_id).first()
        if existing:
            return existing
    now = timezone.now()
    call = Call(
        channel=channel, direction=direction, from_number=from_number, to_number=to_number,
        provider_call_id=provider_call_id, agent=agent, agent_version=agent.version if agent else None,
        customer=customer, started_at=now,
    )
    if answered:
        call.transition(Call.Status.IN_PROGRESS, at=now)
        call.heartbeat_at = now
    try:
        with transaction.atomic():
            call.save()
    except IntegrityError:
        # Two webhooks for the same provider call raced; the other one created it.
        return Call.objects.get(channel=channel, provider_call_id=provider_call_id)
    call_event_log(call=call, kind=CallEvent.Kind.STATUS_CHANGE, name=call.status)
    transaction.on_commit(lambda: _notify_started(call.pk))
    return call


def _notify_started(call_id: int) -> None:
    call_started_notify(call_id=call_id)


def call_answer(*, call: Call) -> Call:
    call.transition(Call.Status.IN_PROGRESS)
    call.heartbeat_at = call.answered_at
    call.save(update_fields=["status", "answered_at", "heartbeat_at", "updated_at"])
    call_event_log(call=call, kind=CallEvent.Kind.STATUS_CHANGE, name=call.status)
    return call


@transaction.atomic
def call_connect(*, call_id: int) -> Call | None:
    """A prepared call's audio has connected (a Twilio stream started, an AudioSocket connected):
    move a queued or ringing call to in progress and start its heartbeat. None when the call
    has already ended: a stream for it is refused and nothing is written."""
    call = Call.objects.select_for_update().filter(pk=call_id).first()
    if call is None or call.is_finished:
        return None
    if call.status != Call.Status.IN_PROGRESS:
        call_answer(call=call)
    else:  # answered by a status report: its heartbeat starts now that a process serves it
        call.heartbeat_at = timezone.now()
        call.save(update_fields=["heartbeat_at", "updated_at"])
    return call


def call_is_live(call: Call, *, now=None) -> bool:
    """In progress, with a process stamping its heartbeat: that process will finalize it."""
    if call.status != Call.Status.IN_PROGRESS or call.heartbeat_at is None:
        return False
    age = ((now or timezone.now()) - call.heartbeat_at).total_seconds()
    return age < settings.CALL_LOST_AFTER_SECONDS


@transaction.atomic
def call_status_apply(*, call_id: int, status: str, provider_status: str = "", duration: float | None = None) -> bool:
    """A phone network's report of where the call is (Twilio status callbacks). Idempotent and
    safe out of order: a report that is not a step forward changes nothing (a late "ringing"
    after "completed"). Returns True when the call changed.

    A terminal report for a call a voice session is still serving is only logged: the session
    stores its last turns and its recording, then finalizes the call itself, so its post-call
    work runs on the whole call. The lost-call sweep finalizes it if the session never does.
    """
    call = Call.objects.select_for_update().filter(pk=call_id).first()
    if call is None or call.status == status or not call.can_transition(status):
        return False
    payload = {"provider_status": provider_status} if provider_status else {}
    if duration is not None:
        payload["provider_duration_seconds"] = duration
    if status == Call.Status.IN_PROGRESS:
        # Answered, but no process serves it until its audio connects (call_connect): no
        # heartbeat, so a stream that never comes leaves it to the lost-call sweep.
        call.transition(status)
        call.save(update_fields=["status", "answered_at", "updated_at"])
        call_event_log(call=call, kind=CallEvent.Kind.STATUS_CHANGE, name=status, payload=payload)
        return True
    if status not in Call.TERMINAL_STATUSES:
        call.transition(status)
        call.save(update_fields=["status", "updated_at"])
        call_event_log(call=call, kind=CallEvent.Kind.STATUS_CHANGE, name=status, payload=payload)
        return True
    if call_is_live(call):
        call_event_log(call=call, kind=CallEvent.Kind.STATUS_CHANGE, name=f"provider_{status}", payload=payload)
        return False
    return call_finalize(call_id=call.pk, status=status, end_reason=provider_status or status)


def turn_record(*, call: Call, speaker: str, text: str, **fields: Any) -> Turn:
    """Append a turn as soon as it completes; the index is the next free one for the call."""
    for _ in range(3):
        last = Turn.objects.filter(call=call).aggregate(m=Max("index"))["m"]
        index = 0 if last is None else last + 1
        try:
            with transaction.atomic():
                return Turn.objects.create(call=call, index=index, speaker=speaker, text=text, **fields)
        except IntegrityError:
            continue  # another writer took this index first; take the next one
    raise RuntimeError(f"could not append a turn to call {call.pk}")


def call_event_log(*, call: Call, kind: str, name: str = "", payload: dict | None = None) -> CallEvent:
    return CallEvent.objects.create(call=call, kind=kind, name=name, payload=payload or {})


def call_set_customer(*, call: Call, customer_id: int | None) -> None:
    """Put the call on this customer's timeline (no write when it already is)."""
    # Compared in the database, not on `call`: a rolled-back turn may have left `call` ahead of it.
    Call.objects.filter(pk=call.pk).exclude(customer_id=customer_id).update(customer_id=customer_id, updated_at=timezone.now())
    call.customer_id = customer_id


def call_transfer_log(*, call: Call, target: str, reason: str) -> CallEvent | None:
    """Log the hand-over to a person once per call, whoever asks first (a tool, then the channel
    carrying it out); None when it was already logged."""
    # A transfer ends the call, so a second one is the same transfer seen from another layer.
    if CallEvent.objects.filter(call=call, kind=CallEvent.Kind.TRANSFER).exists():
        return None
    return call_event_log(call=call, kind=CallEvent.Kind.TRANSFER, name=reason or "transfer",
                          payload={"target": target, "reason": reason})


def information_record_save(*, call: Call, category: str, items: dict[str, str], customer_id: int | None) -> int:
    """Store facts the caller shared; a later value for the same category and key replaces the
    earlier one. Returns how many were written."""
    rows = [InformationRecord(call=call, category=category, key=key, value=value[:5000], customer_id=customer_id)
            for key, value in items.items()]
    if rows:
        # One upsert for all the facts.
        InformationRecord.objects.bulk_create(rows, update_conflicts=True, unique_fields=["call", "category", "key"],
                                              update_fields=["value", "customer"])
    return len(rows)


@transaction.atomic
def call_finalize(
    *,
    call_id: int,
    status: str = Call.Status.COMPLETED,
    end_reason: str = "",
    intent: str = "",
) -> bool:
    """End the call exactly once, whoever notices first (transport, session, webhook).

    Returns True for the caller that finalized it. The post-call pipeline is scheduled
    in the same transaction, so it cannot be lost between the two.
    """
    call = Call.objects.select_for_update().get(pk=call_id)
    if call.is_finished:
        return False
    if status not in Call.TERMINAL_STATUSES:
        raise ValueError(f"{status!r} is not a final call status")
    if not call.can_transition(status):
        status = Call.Status.COMPLETED if call.status == Call.Status.IN_PROGRESS else Call.Status.CANCELED
    call.transition(status)
    call.end_reason = end_reason[:64]
    if intent and not call.intent:
        call.intent = intent[:64]
    call.save(update_fields=["status", "ended_at", "duration_seconds", "end_reason", "intent", "updated_at"])
    call_event_log(call=call, kind=CallEvent.Kind.STATUS_CHANGE, name=call.status, payload={"end_reason": end_reason})
    pipeline_schedule(call=call)
    return True


def call_attach_recording(*, call: Call, wav_bytes: bytes = b"", wav_file: BinaryIO | None = None) -> None:
    """Store the stereo recording (caller left, agent right) before the call is finalized: from
    bytes, or copied in chunks from an open file (a long call's recording is never held whole)."""
    if call.recording:
        call.recording.delete(save=False)
    content = File(wav_file) if wav_file is not None else ContentFile(wav_bytes)
    call.recording.save(f"{call.public_id}.wav", content, save=False)
    call.save(update_fields=["recording", "updated_at"])


# A hang-up asked for by staff (the REST API), for whichever process serves the call: a row, read
# by that process's heartbeat (calls/session/live.py), so it needs no channel layer.
HANGUP_REQUEST_KEY = "hangup_request"


def call_hangup_request(*, call: Call, requested_by: str = "") -> bool:
    """Ask the process serving `call` to end it; it does within CALL_HEARTBEAT_SECONDS. Logged
    once per call (an ACTION event "hangup_requested"); False when it was already asked."""
    _, created = CallEvent.objects.get_or_create(
        call=call, idempotency_key=HANGUP_REQUEST_KEY,
        defaults={"kind": CallEvent.Kind.ACTION, "name": "hangup_requested", "payload": {"by": requested_by[:150]}},
    )
    return created


def call_hangups_requested(*, call_ids: Iterable[int]) -> set[int]:
    """Which of these calls staff asked to end (one indexed query)."""
    ids = list(call_ids)
    if not ids:
        return set()
    return set(CallEvent.objects.filter(call_id__in=ids, idempotency_key=HANGUP_REQUEST_KEY)
               .values_list("call_id", flat=True))


def call_heartbeat(*, call_ids: Iterable[int]) -> int:
    """Stamp live calls as still served by this process: one conditional UPDATE for them all
    (a call already finalized, by its session or by the sweep, is left alone). Returns the rows
    stamped."""
    ids = list(call_ids)
    if not ids:
        return 0
    return Call.objects.filter(pk__in=ids, status=Call.Status.IN_PROGRESS).update(heartbeat_at=timezone.now())


# --- The recording of a call whose process may die ----------------------------------------------
# A live call appends its recording to two raw PCM files every few seconds, so a call lost with
# its process (kill -9) still gets the recording up to its last heartbeat. Named by rate, so the
# sweep needs nothing from the dead session. On the media volume: the sweep may run elsewhere.

def _spool_dir(call: Call) -> Path:
    return Path(settings.MEDIA_ROOT) / "recordings" / "partial" / str(call.public_id)


def call_recording_spool_append(*, call: Call, caller: bytes, caller_rate: int, agent: bytes, agent_rate: int) -> None:
    """Append the newest PCM16 of each side (caller left, agent right) to the call's spool."""
    folder = _spool_dir(call)
    folder.mkdir(parents=True, exist_ok=True)
    for side, pcm, rate in (("caller", caller, caller_rate), ("agent", agent, agent_rate)):
        with open(folder / f"{side}-{rate}.pcm", "ab") as out:
            out.write(pcm)


def call_recording_spool_discard(*, call: Call) -> None:
    """The call stored its full recording itself: the spool is not needed."""
    shutil.rmtree(_spool_dir(call), ignore_errors=True)


def call_recording_from_spool(*, call: Call) -> bool:
    """Attach what the spool holds as the call's recording (unless it has one); the caller
    discards the spool once that is committed. True when a recording was attached."""
    folder = _spool_dir(call)
    sides: dict[str, tuple[bytes, int]] = {}
    for path in folder.glob("*-*.pcm") if folder.is_dir() else ():
        side, _, rate = path.stem.partition("-")
        if side in ("caller", "agent") and rate.isdigit():
            pcm = path.read_bytes()
            sides[side] = (pcm[: len(pcm) - len(pcm) % 2], int(rate))
    attached = False
    if not call.recording and any(pcm for pcm, _ in sides.values()):
        caller, caller_rate = sides.get("caller", (b"", 16000))
        agent, agent_rate = sides.get("agent", (b"", caller_rate))
        if agent and agent_rate != caller_rate:
            agent = resample(agent, agent_rate, caller_rate)
        call_attach_recording(call=call, wav_bytes=wav_bytes(interleave_stereo(caller, agent), caller_rate, channels=2))
        attached = True
    return attached
