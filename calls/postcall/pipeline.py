"""The post-call pipeline: one run per ended call, its stages on Celery queues, and its outbox.

    call_finalize ──(same transaction)──► pipeline_schedule: AnalysisRun + stages + call.ended deliveries
          │ commit
          ▼
    analysis_run_dispatch ──► transcribe (stt) ► summarize ► extract ► act (postcall) ► notify (default) ► analytics
          │ broker down?                each stage task claims its row, runs, then queues the next
          ▼
    AnalysisRun.dispatched_at stays empty ──► postcall_sweep (celery beat) sends it when the broker is back

A stage is claimed with a conditional UPDATE: a pending stage, or a running one whose lease ran
out, or one held by the same Celery message (a redelivery after the worker died: acks_late +
reject_on_worker_lost). A duplicate message finds the stage taken and does nothing; the
actions themselves are keyed per call (calls.postcall.act), so a stage that runs twice
writes nothing twice. A stage that fails permanently stops the run, except transcription:
the live turns stand in for a recording that cannot be read.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterable

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from calls.models import AnalysisBatch, AnalysisRun, AnalysisStage, AnalysisStageName, Call
from calls.postcall.act import call_act
from calls.postcall.analytics import call_analytics
from calls.postcall.conversation import conversation_for
from calls.postcall.errors import StageError, StageSkipped
from calls.postcall.extract import call_extract
from calls.postcall.summarize import call_summarize
from calls.postcall.transcribe import recording_transcribe
from calls.webhooks import call_analyzed_emit, call_ended_emit, call_started_emit
from core.queues import PUBLISH_RETRY, celery_is_eager

logger = logging.getLogger(__name__)

Stage = AnalysisStageName
STAGES_FULL = [Stage.TRANSCRIBE, Stage.SUMMARIZE, Stage.EXTRACT, Stage.ACT, Stage.NOTIFY, Stage.ANALYTICS]
STAGES_REEXTRACT = [Stage.EXTRACT, Stage.ACT, Stage.NOTIFY, Stage.ANALYTICS]
CONTINUE_AFTER_FAILURE = {Stage.TRANSCRIBE}
# Each lease outlives its task's hard time limit (calls/tasks.py), so a live task keeps its stage.
STAGE_TIME_LIMIT_SECONDS = {Stage.TRANSCRIBE: 3600}
SHORT_STAGE_TIME_LIMIT_SECONDS = 300
# The sweep re-sends a stage whose message seems lost after this long without progress.
REQUEUE_AFTER_SECONDS = 900
# An unfinished run younger than this blocks a re-run of the same call.
ACTIVE_RUN_SECONDS = 3600
# The on-commit dispatch gets this long before the sweep sends a run it has not tried yet.
DISPATCH_GRACE_SECONDS = 30
# A publish must not hang the caller (a voice session, an admin request) while the broker is down.


class StageRetry(Exception):
    """A transient failure: the task retries the stage with backoff."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def stage_time_limit(name: str) -> int:
    return STAGE_TIME_LIMIT_SECONDS.get(name, SHORT_STAGE_TIME_LIMIT_SECONDS)



# --- scheduling -------------------------------------------------------------------------------------

def pipeline_schedule(*, call: Call) -> AnalysisRun:
    """The call has just ended (inside call_finalize's transaction): write the run and the call.ended
    deliveries now, send them after commit. Twice for one call still makes one run."""
    run = analysis_run_create(call=call, reason=AnalysisRun.Reason.CALL_ENDED)
    call_ended_emit(call=call)
    return run


def call_started_notify(*, call_id: int) -> None:
    """call.started to subscribed endpoints, after call_start commits. Never raises: the call goes on."""
    try:
        call = Call.objects.select_related("agent", "customer").filter(pk=call_id).first()
        if call is not None:
            with transaction.atomic():
                call_started_emit(call=call)
    except Exception:
        logger.exception("could not queue call.started for call %s", call_id)


def analysis_run_create(
    *,
    call: Call,
    reason: str,
    stages: Iterable[str] | None = None,
    batch: AnalysisBatch | None = None,
    requested_by=None,
) -> AnalysisRun:
    """A new run with its stages, dispatched after commit. For a call's end, the existing run if any."""
    with transaction.atomic():
        Call.objects.select_for_update().filter(pk=call.pk).first()  # one numbering at a time per call
        if reason == AnalysisRun.Reason.CALL_ENDED:
            existing = AnalysisRun.objects.filter(call=call, reason=reason).first()
            if existing is not None:
                return existing
        number = (AnalysisRun.objects.filter(call=call).aggregate(m=Max("number"))["m"] or 0) + 1
        names = list(stages or STAGES_FULL)
        try:
            with transaction.atomic():
                run = AnalysisRun.objects.create(call=call, number=number, reason=reason, batch=batch,
                                                 requested_by=requested_by)
        except IntegrityError:
            return AnalysisRun.objects.get(call=call, reason=AnalysisRun.Reason.CALL_ENDED)
        AnalysisStage.objects.bulk_create(
            [AnalysisStage(run=run, name=name, position=i) for i, name in enumerate(names)]
        )
        Call.objects.filter(pk=call.pk).update(analysis_status=Call.AnalysisStatus.PENDING, analysis_error="")
        call.analysis_status = Call.AnalysisStatus.PENDING
        transaction.on_commit(lambda: analysis_run_dispatch(run_id=run.pk))
    return run


# --- dispatch -----------------------------------------------------------------------------------------

def _stage_task(name: str):
    # Cycle: calls.tasks imports this module to run the stages it dispatches.
    from calls import tasks  # noqa: PLC0415

    return {
        Stage.TRANSCRIBE: tasks.call_transcribe_task,
        Stage.SUMMARIZE: tasks.call_summarize_task,
        Stage.EXTRACT: tasks.call_extract_task,
        Stage.ACT: tasks.call_act_task,
        Stage.NOTIFY: tasks.call_notify_task,
        Stage.ANALYTICS: tasks.call_analytics_task,
    }[name]


def stage_enqueue(*, run_id: int, name: str) -> None:
    """Publish the stage's task. Raises if the broker cannot be reached."""
    _stage_task(name).apply_async((run_id,), retry=True, retry_policy=PUBLISH_RETRY)
    stage = AnalysisStage.objects.filter(run_id=run_id, name=name, status=AnalysisStage.Status.PENDING).first()
    if stage is not None:
        AnalysisStage.objects.filter(pk=stage.pk).update(
            detail={**(stage.detail or {}), "enqueued_at": timezone.now().isoformat()}
        )


def _first_open_stage(run_id: int) -> AnalysisStage | None:
    return (AnalysisStage.objects.filter(run_id=run_id).exclude(status__in=AnalysisStage.FINISHED)
            .order_by("position").first())


def analysis_run_dispatch(*, run_id: int) -> bool:
    """Hand the run to the broker. If it is down, the run stays undispatched for the sweep."""
    run = AnalysisRun.objects.filter(pk=run_id, dispatched_at__isnull=True).first()
    if run is None:
        return False
    if celery_is_eager():
        # Embedded mode (no Redis): run it here and now, as Celery's eager mode would.
        AnalysisRun.objects.filter(pk=run_id).update(dispatched_at=timezone.now(), dispatch_attempts=F("dispatch_attempts") + 1)
        analysis_run_execute_sync(run=run)
        return True
    stage = _first_open_stage(run_id)
    try:
        if stage is not None:
            stage_enqueue(run_id=run_id, name=stage.name)
    except Exception as exc:  # kombu/redis raise several types when the broker is away
        AnalysisRun.objects.filter(pk=run_id).update(dispatch_attempts=F("dispatch_attempts") + 1,
                                                     dispatch_error=f"{type(exc).__name__}: {exc}"[:500])
        logger.warning("analysis run %s not queued (%s); the sweep will send it", run_id, exc)
        return False
    AnalysisRun.objects.filter(pk=run_id, dispatched_at__isnull=True).update(
        dispatched_at=timezone.now(), dispatch_attempts=F("dispatch_attempts") + 1, dispatch_error="")
    return True


# --- execution ------------------------------------------------------------------------------------------

def _stage_transcribe(run: AnalysisRun, call: Call) -> dict:
    return recording_transcribe(call=call)


def _stage_summarize(run: AnalysisRun, call: Call) -> dict:
    return call_summarize(call=call, conversation=conversation_for(call))


def _stage_extract(run: AnalysisRun, call: Call) -> dict:
    detail = call_extract(call=call, conversation=conversation_for(call))
    AnalysisRun.objects.filter(pk=run.pk).update(changes=detail["changes"])
    return detail


def _stage_act(run: AnalysisRun, call: Call) -> dict:
    return call_act(call=call)


def _stage_notify(run: AnalysisRun, call: Call) -> dict:
    with transaction.atomic():
        ids = call_analyzed_emit(call=call, run_number=run.number)
    return {"deliveries": len(ids)}


def _stage_analytics(run: AnalysisRun, call: Call) -> dict:
    return call_analytics(call=call)


STAGE_FUNCTIONS = {
    Stage.TRANSCRIBE: _stage_transcribe,
    Stage.SUMMARIZE: _stage_summarize,
    Stage.EXTRACT: _stage_extract,
    Stage.ACT: _stage_act,
    Stage.NOTIFY: _stage_notify,
    Stage.ANALYTICS: _stage_analytics,
}


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, StageError):
        return not exc.permanent
    return isinstance(exc, (OperationalError, InterfaceError))


def analysis_stage_execute(*, run_id: int, name: str, task_id: str) -> str | None:
    """Run one stage if this task may claim it. Returns the next stage to queue, or None.

    Raises StageRetry for a transient failure (the stage is pending again)."""
    now = timezone.now()
    lease = now + dt.timedelta(seconds=stage_time_limit(name) + 60)
    rows = AnalysisStage.objects.filter(run_id=run_id, name=name)
    before = rows.values("status", "detail").first()
    claimed = rows.filter(
        Q(status=AnalysisStage.Status.PENDING)
        | Q(status=AnalysisStage.Status.RUNNING, task_id=task_id)
        | Q(status=AnalysisStage.Status.RUNNING, lease_expires_at__lt=now)
    ).update(status=AnalysisStage.Status.RUNNING, task_id=task_id[:64], lease_expires_at=lease,
             attempts=F("attempts") + 1, started_at=now, error="")
    stage = rows.select_related("run").first()
    if stage is None:
        logger.info("analysis stage %s of run %s is gone", name, run_id)
        return None
    if not claimed:
        if stage.status in AnalysisStage.FINISHED and stage.task_id == task_id[:64]:
            # Our own message again: the stage finished but the worker died before queuing the next.
            return _next_after(stage.run)
        logger.info("analysis stage %s of run %s is %s (task %s); nothing to do", name, run_id, stage.status, stage.task_id)
        return None
    run = stage.run
    interrupted = int((stage.detail or {}).get("interrupted", 0))
    if before and before["status"] == AnalysisStage.Status.RUNNING:
        # Taken over while "running": the attempt before this one never finished (its worker died).
        interrupted += 1
        rows.filter(pk=stage.pk).update(detail={**(stage.detail or {}), "interrupted": interrupted})
        if interrupted >= settings.POSTCALL_STAGE_MAX_ATTEMPTS:
            return _stage_failed(stage, f"gave up: the worker stopped {interrupted} times while running it")
    _run_started(run)
    call = Call.objects.select_related("agent", "customer").get(pk=run.call_id)
    started = time.perf_counter()
    status, detail, error = AnalysisStage.Status.DONE, {}, ""
    try:
        detail = STAGE_FUNCTIONS[name](run, call) or {}
    except StageSkipped as skip:
        status, detail = AnalysisStage.Status.SKIPPED, {"reason": skip.reason}
    except Exception as exc:
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        if is_transient(exc):
            rows.filter(task_id=task_id[:64]).update(status=AnalysisStage.Status.PENDING, error=f"retrying: {message}"[:2000])
            raise StageRetry(message) from exc
        if isinstance(exc, SoftTimeLimitExceeded):
            message = f"took longer than {stage_time_limit(name) - 60} s"
        elif not isinstance(exc, StageError):
            logger.exception("analysis stage %s of run %s failed", name, run_id)
        return _stage_failed(stage, message)
    duration_ms = int((time.perf_counter() - started) * 1000)
    if interrupted:
        detail = {**detail, "interrupted": interrupted}
    finished = rows.filter(task_id=task_id[:64], status=AnalysisStage.Status.RUNNING).update(
        status=status, detail=detail, error=error, finished_at=timezone.now(), duration_ms=duration_ms,
        lease_expires_at=None,
    )
    if not finished:
        # Our lease ran out and another task took the stage over: it decides what comes next.
        logger.warning("analysis stage %s of run %s was taken over while task %s ran it", name, run_id, task_id)
        return None
    return _next_after(run)


def analysis_stage_fail(*, run_id: int, name: str, error: str) -> str | None:
    """Fail a stage whose retries ran out; returns the next stage if the run goes on."""
    stage = AnalysisStage.objects.filter(run_id=run_id, name=name).select_related("run").first()
    if stage is None or stage.status in AnalysisStage.FINISHED:
        return None
    return _stage_failed(stage, error)


def _run_started(run: AnalysisRun) -> None:
    now = timezone.now()
    if AnalysisRun.objects.filter(pk=run.pk, status=AnalysisRun.Status.PENDING).update(
            status=AnalysisRun.Status.RUNNING, started_at=now):
        Call.objects.filter(pk=run.call_id).update(analysis_status=Call.AnalysisStatus.RUNNING)


def _stage_failed(stage: AnalysisStage, error: str) -> str | None:
    AnalysisStage.objects.filter(pk=stage.pk).update(
        status=AnalysisStage.Status.FAILED, error=error[:2000], finished_at=timezone.now(), lease_expires_at=None,
    )
    logger.warning("analysis stage %s of run %s failed: %s", stage.name, stage.run_id, error)
    if stage.name in CONTINUE_AFTER_FAILURE:
        return _next_after(stage.run)
    label = AnalysisStageName(stage.name).label
    AnalysisRun.objects.filter(pk=stage.run_id).update(status=AnalysisRun.Status.FAILED, finished_at=timezone.now(),
                                                       error=f"{label}: {error}"[:2000])
    Call.objects.filter(pk=stage.run.call_id).update(analysis_status=Call.AnalysisStatus.FAILED,
                                                     analysis_error=f"{label}: {error}"[:2000])
    return None


def _next_after(run: AnalysisRun) -> str | None:
    if AnalysisRun.objects.filter(pk=run.pk, status=AnalysisRun.Status.FAILED).exists():
        return None  # a stage failed for good: the run stops there
    stage = _first_open_stage(run.pk)
    if stage is not None:
        return stage.name
    _run_finish(run)
    return None


def _run_finish(run: AnalysisRun) -> None:
    failed = list(AnalysisStage.objects.filter(run=run, status=AnalysisStage.Status.FAILED).values_list("name", "error"))
    if any(name not in CONTINUE_AFTER_FAILURE for name, _ in failed):
        return
    note = "; ".join(f"{AnalysisStageName(name).label} failed, the live turns were used: {error}" for name, error in failed)
    if AnalysisRun.objects.filter(pk=run.pk, status__in=[AnalysisRun.Status.PENDING, AnalysisRun.Status.RUNNING]).update(
            status=AnalysisRun.Status.DONE, finished_at=timezone.now(), error=note[:2000]):
        Call.objects.filter(pk=run.call_id).update(analysis_status=Call.AnalysisStatus.DONE, analysis_error=note[:2000])


def analysis_run_execute_sync(*, run: AnalysisRun) -> AnalysisRun:
    """Every open stage of the run, here and in order (analyze_call --sync, the embedded mode)."""
    task_id = f"sync-{uuid.uuid4()}"
    AnalysisRun.objects.filter(pk=run.pk, dispatched_at__isnull=True).update(dispatched_at=timezone.now())
    stage = _first_open_stage(run.pk)
    name = stage.name if stage else None
    while name:
        try:
            name = analysis_stage_execute(run_id=run.pk, name=name, task_id=task_id)
        except StageRetry as exc:
            name = analysis_stage_fail(run_id=run.pk, name=name, error=exc.message)
    run.refresh_from_db()
    return run


# --- re-runs ---------------------------------------------------------------------------------------------

def call_active_run(call: Call) -> AnalysisRun | None:
    recent = timezone.now() - dt.timedelta(seconds=ACTIVE_RUN_SECONDS)
    return (AnalysisRun.objects.filter(call=call, status__in=[AnalysisRun.Status.PENDING, AnalysisRun.Status.RUNNING],
                                       created_at__gte=recent).order_by("-created_at").first())


def analysis_rerun(*, calls: Iterable[Call], kind: str = AnalysisBatch.Kind.RERUN, user=None,
                   reason: str | None = None) -> tuple[AnalysisBatch, list[str]]:
    """Queue a new run for each ended call (all stages, or re-extraction with the current schema).

    Returns the batch (for its progress page) and why any call was left out."""
    stages = STAGES_REEXTRACT if kind == AnalysisBatch.Kind.REEXTRACT else STAGES_FULL
    reason = reason or (AnalysisRun.Reason.REEXTRACT if kind == AnalysisBatch.Kind.REEXTRACT else AnalysisRun.Reason.RERUN)
    skipped: list[str] = []
    with transaction.atomic():
        batch = AnalysisBatch.objects.create(kind=kind, requested_by=user)
        total = 0
        for call in calls:
            label = str(call.public_id)[:8]
            if not call.is_finished:
                skipped.append(f"{label}: the call has not ended")
                continue
            if call_active_run(call) is not None:
                skipped.append(f"{label}: an analysis is already under way")
                continue
            analysis_run_create(call=call, reason=reason, stages=stages, batch=batch, requested_by=user)
            total += 1
        batch.total = total
        batch.save(update_fields=["total"])
    return batch, skipped


def batch_progress(batch: AnalysisBatch) -> dict:
    counts = {status: 0 for status in AnalysisRun.Status.values}
    for status in batch.runs.values_list("status", flat=True):
        counts[status] += 1
    finished = counts[AnalysisRun.Status.DONE] + counts[AnalysisRun.Status.FAILED]
    return {**counts, "total": batch.total, "finished": finished,
            "percent": round(100 * finished / batch.total) if batch.total else 100,
            "complete": finished >= batch.total}


# --- the periodic sweep -----------------------------------------------------------------------------------

def postcall_sweep(*, now: dt.datetime | None = None) -> dict:
    """Send runs a broker outage kept back, and re-send stages whose message was lost."""
    now = now or timezone.now()
    undispatched = list(
        AnalysisRun.objects.filter(dispatched_at__isnull=True)
        .filter(Q(dispatch_attempts__gt=0) | Q(created_at__lt=now - dt.timedelta(seconds=DISPATCH_GRACE_SECONDS)))
        .order_by("created_at").values_list("pk", flat=True)[:200]
    )
    dispatched = 0
    for run_id in undispatched:
        if not analysis_run_dispatch(run_id=run_id):
            break  # the broker is still away; try again next sweep
        dispatched += 1
    requeued = 0
    open_runs = AnalysisRun.objects.filter(
        status__in=[AnalysisRun.Status.PENDING, AnalysisRun.Status.RUNNING], dispatched_at__isnull=False,
        created_at__gte=now - dt.timedelta(days=7),
    ).order_by("created_at")[:500]
    for run in open_runs:
        stage = _first_open_stage(run.pk)
        if stage is None or not _stalled(stage, run, now):
            continue
        try:
            stage_enqueue(run_id=run.pk, name=stage.name)
        except Exception as exc:
            logger.warning("sweep could not re-queue run %s: %s", run.pk, exc)
            break
        requeued += 1
    return {"dispatched": dispatched, "requeued": requeued, "waiting": len(undispatched) - dispatched}


def _stalled(stage: AnalysisStage, run: AnalysisRun, now: dt.datetime) -> bool:
    if stage.status == AnalysisStage.Status.RUNNING:
        return stage.lease_expires_at is not None and stage.lease_expires_at < now - dt.timedelta(seconds=60)
    last = stage.detail.get("enqueued_at") if isinstance(stage.detail, dict) else None
    try:
        since = dt.datetime.fromisoformat(last) if last else None
    except ValueError:
        since = None
    if since is None:
        previous = (AnalysisStage.objects.filter(run=run, position__lt=stage.position)
                    .aggregate(m=Max("finished_at"))["m"])
        since = previous or run.dispatched_at
    return since is not None and since < now - dt.timedelta(seconds=REQUEUE_AFTER_SECONDS)
