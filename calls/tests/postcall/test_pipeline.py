"""Scheduling, the outbox, stage claiming, failures and re-runs, without a worker."""

import datetime as dt

import pytest
from django.utils import timezone

from calls.models import AnalysisRun, AnalysisStage, Call, CallTranscript
from calls.postcall.errors import StageError
from calls.postcall.pipeline import (
    REQUEUE_AFTER_SECONDS,
    STAGE_FUNCTIONS,
    StageRetry,
    analysis_rerun,
    analysis_run_execute_sync,
    analysis_stage_execute,
    analysis_stage_fail,
    batch_progress,
    call_started_notify,
    pipeline_schedule,
    postcall_sweep,
)
from calls.services import call_attach_recording, call_finalize
from calls.tests.postcall import scenarios
from calls.tests.postcall.conftest import call_with_turns

pytestmark = pytest.mark.django_db


def ended(scenario=scenarios.CHECK_IN, capture=None) -> Call:
    call = call_with_turns(scenario)
    call_finalize(call_id=call.pk, end_reason="agent_end")
    call.refresh_from_db()
    return call


def test_the_end_of_a_call_writes_one_run_and_queues_it_after_commit(broker, django_capture_on_commit_callbacks):
    call = call_with_turns(scenarios.CHECK_IN)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert call_finalize(call_id=call.pk, end_reason="caller_hangup") is True
        assert call_finalize(call_id=call.pk, end_reason="agent_end") is False
        pipeline_schedule(call=Call.objects.get(pk=call.pk))
        assert broker.sent == []  # nothing leaves before the transaction commits
    run = AnalysisRun.objects.get(call=call)
    assert len(callbacks) == 1
    assert [s.name for s in run.stages.order_by("position")] == [
        "transcribe", "summarize", "extract", "act", "notify", "analytics"]
    assert broker.names() == ["call_transcribe_task"] and broker.sent[0][1] == (run.pk,)
    run.refresh_from_db()
    assert run.dispatched_at is not None and run.dispatch_attempts == 1
    call.refresh_from_db()
    assert call.analysis_status == Call.AnalysisStatus.PENDING


def test_a_broker_outage_leaves_the_run_for_the_sweep(broker, django_capture_on_commit_callbacks):
    call = call_with_turns(scenarios.CHECK_IN)
    broker.down = True
    with django_capture_on_commit_callbacks(execute=True):
        assert call_finalize(call_id=call.pk, end_reason="agent_end") is True  # the caller never sees the outage
    run = AnalysisRun.objects.get(call=call)
    assert run.dispatched_at is None and run.dispatch_attempts == 1 and "Connection refused" in run.dispatch_error

    assert postcall_sweep() == {"dispatched": 0, "requeued": 0, "waiting": 1}  # still down
    broker.down = False
    assert postcall_sweep() == {"dispatched": 1, "requeued": 0, "waiting": 0}
    run.refresh_from_db()
    assert run.dispatched_at is not None and run.dispatch_attempts == 3 and run.dispatch_error == ""
    assert broker.names() == ["call_transcribe_task"]
    assert postcall_sweep()["dispatched"] == 0


def test_the_sweep_leaves_a_fresh_run_to_its_on_commit_dispatch(broker):
    call = ended()  # on_commit never ran: as if the process died right after the commit
    run = AnalysisRun.objects.get(call=call)
    assert postcall_sweep()["dispatched"] == 0
    assert postcall_sweep(now=timezone.now() + dt.timedelta(seconds=31))["dispatched"] == 1
    run.refresh_from_db()
    assert run.dispatched_at is not None


def test_the_sweep_resends_a_stage_whose_message_was_lost(broker):
    run = AnalysisRun.objects.get(call=ended())
    analysis_run_execute_sync_until(run, "extract")
    later = timezone.now() + dt.timedelta(seconds=REQUEUE_AFTER_SECONDS + 5)
    AnalysisRun.objects.filter(pk=run.pk).update(dispatched_at=timezone.now())
    assert postcall_sweep()["requeued"] == 0
    assert postcall_sweep(now=later)["requeued"] == 1
    assert broker.names()[-1] == "call_extract_task"


def analysis_run_execute_sync_until(run: AnalysisRun, stop: str) -> None:
    name = "transcribe"
    while name != stop:
        name = analysis_stage_execute(run_id=run.pk, name=name, task_id=f"task-{name}")


def test_a_duplicate_message_finds_the_stage_taken_and_a_redelivery_picks_up_after_it(broker):
    run = AnalysisRun.objects.get(call=ended())
    assert analysis_stage_execute(run_id=run.pk, name="transcribe", task_id="t1") == "summarize"
    assert analysis_stage_execute(run_id=run.pk, name="summarize", task_id="s1") == "extract"
    assert analysis_stage_execute(run_id=run.pk, name="summarize", task_id="s2") is None  # a duplicate
    # The same message again (its worker died after the stage, before acknowledging): go on.
    assert analysis_stage_execute(run_id=run.pk, name="summarize", task_id="s1") == "extract"
    assert AnalysisStage.objects.get(run=run, name="summarize").attempts == 1


def test_a_running_stage_is_taken_over_only_by_its_own_message_or_after_its_lease(broker):
    run = AnalysisRun.objects.get(call=ended())
    stage = AnalysisStage.objects.get(run=run, name="transcribe")
    AnalysisStage.objects.filter(pk=stage.pk).update(status="running", task_id="t1", attempts=1,
                                                     lease_expires_at=timezone.now() + dt.timedelta(minutes=5))
    assert analysis_stage_execute(run_id=run.pk, name="transcribe", task_id="t2") is None
    assert analysis_stage_execute(run_id=run.pk, name="transcribe", task_id="t1") == "summarize"
    stage.refresh_from_db()
    assert stage.attempts == 2 and stage.status == "skipped"

    summarize = AnalysisStage.objects.get(run=run, name="summarize")
    AnalysisStage.objects.filter(pk=summarize.pk).update(status="running", task_id="s1", attempts=1,
                                                         lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert analysis_stage_execute(run_id=run.pk, name="summarize", task_id="s9") == "extract"


def test_a_stage_whose_worker_keeps_dying_fails_instead_of_looping(broker, settings):
    settings.POSTCALL_STAGE_MAX_ATTEMPTS = 3
    call = ended()
    run = AnalysisRun.objects.get(call=call)
    analysis_run_execute_sync_until(run, "extract")
    extract = AnalysisStage.objects.filter(run=run, name="extract")
    extract.update(status="running", task_id="e1", attempts=1)
    assert analysis_stage_execute(run_id=run.pk, name="extract", task_id="e1") == "act"  # one crash: run again
    assert extract.get().detail["interrupted"] == 1
    extract.update(status="running", task_id="e1", attempts=3, detail={"interrupted": 2})
    assert analysis_stage_execute(run_id=run.pk, name="extract", task_id="e1") is None
    stage = extract.get()
    call.refresh_from_db()
    assert stage.status == "failed" and stage.error == "gave up: the worker stopped 3 times while running it"
    assert call.analysis_status == "failed" and call.analysis_error.startswith("Extract fields: gave up")


def test_a_transient_error_puts_the_stage_back_for_a_retry(broker, monkeypatch):
    run = AnalysisRun.objects.get(call=ended())

    def flaky(run, call):
        raise StageError("database restarting")

    monkeypatch.setitem(STAGE_FUNCTIONS, "transcribe", flaky)
    with pytest.raises(StageRetry):
        analysis_stage_execute(run_id=run.pk, name="transcribe", task_id="t1")
    stage = AnalysisStage.objects.get(run=run, name="transcribe")
    assert stage.status == "pending" and stage.error == "retrying: database restarting"
    assert analysis_stage_fail(run_id=run.pk, name="transcribe", error="database restarting") == "summarize"


def test_the_celery_task_retries_a_transient_error_then_fails_it(broker, monkeypatch):
    from types import SimpleNamespace

    from calls.tasks import STAGE_MAX_RETRIES, _run_stage

    call = ended()
    run = AnalysisRun.objects.get(call=call)
    analysis_run_execute_sync_until(run, "summarize")

    def flaky(run, call):
        raise StageError("LLM timed out")

    class Retry(Exception):
        pass

    def task(retries: int):
        def retry(countdown, exc):
            assert 0 < countdown <= 300 and isinstance(exc, StageRetry)
            raise Retry

        return SimpleNamespace(request=SimpleNamespace(id="s1", retries=retries), max_retries=STAGE_MAX_RETRIES,
                               retry=retry)

    monkeypatch.setitem(STAGE_FUNCTIONS, "summarize", flaky)
    for retries in range(STAGE_MAX_RETRIES):
        with pytest.raises(Retry):
            _run_stage(task(retries), run.pk, "summarize")
        assert AnalysisStage.objects.get(run=run, name="summarize").status == "pending"
    assert _run_stage(task(STAGE_MAX_RETRIES), run.pk, "summarize") is None
    call.refresh_from_db()
    assert call.analysis_status == "failed" and "still failing after 5 retries" in call.analysis_error


def test_a_permanent_error_fails_the_run_visibly(broker, monkeypatch):
    call = ended()

    def broken(run, call):
        raise ValueError("schema references a missing field")

    monkeypatch.setitem(STAGE_FUNCTIONS, "extract", broken)
    run = analysis_run_execute_sync(run=AnalysisRun.objects.get(call=call))
    call.refresh_from_db()
    assert run.status == "failed" and call.analysis_status == "failed"
    assert call.analysis_error == "Extract fields: ValueError: schema references a missing field"
    assert set(run.stages.filter(position__gt=2).values_list("status", flat=True)) == {"pending"}


def test_an_unreadable_recording_falls_back_to_the_live_turns(broker):
    call = call_with_turns(scenarios.CHECK_IN)
    call_attach_recording(call=call, wav_bytes=b"RIFF-not-really-a-wav")
    call_finalize(call_id=call.pk, end_reason="agent_end")
    run = analysis_run_execute_sync(run=AnalysisRun.objects.get(call=call))
    call.refresh_from_db()
    assert run.status == "done" and call.analysis_status == "done"
    assert run.stages.get(name="transcribe").status == "failed"
    assert call.analysis_error.startswith("Transcribe recording failed, the live turns were used")
    assert call.structured_data["driver_status"] == "delayed"
    assert not CallTranscript.objects.filter(call=call).exists()


def test_reruns_skip_live_calls_and_calls_already_being_analyzed(broker, django_capture_on_commit_callbacks):
    done = ended()
    analysis_run_execute_sync(run=done.analysis_runs.get())
    busy = ended()
    live = call_with_turns(scenarios.CHECK_IN)
    with django_capture_on_commit_callbacks(execute=True):
        batch, skipped = analysis_rerun(calls=[done, busy, live])
    assert batch.total == 1 and len(skipped) == 2
    assert "already under way" in skipped[0] and "has not ended" in skipped[1]
    run = done.analysis_runs.get(number=2)
    assert run.batch == batch and run.reason == "rerun"
    assert batch_progress(batch)["finished"] == 0
    analysis_run_execute_sync(run=run)
    assert batch_progress(batch) == {"pending": 0, "running": 0, "done": 1, "failed": 0, "total": 1, "finished": 1,
                                     "percent": 100, "complete": True}


def test_each_task_goes_to_its_queue():
    from voicecrm.celery import app

    expected = {
        "call_transcribe_task": "stt", "call_summarize_task": "postcall", "call_extract_task": "postcall",
        "call_act_task": "postcall", "call_notify_task": "default", "call_analytics_task": "postcall",
        "webhook_deliver_task": "default", "postcall_sweep_task": "default", "webhook_sweep_task": "default",
        "agent_phrases_presynthesize_task": "tts",
    }
    router = app.amqp.router
    for name, queue in expected.items():
        route = router.route({}, f"calls.tasks.{name}")
        assert route["queue"].name == queue, name
        task = app.tasks[f"calls.tasks.{name}"]
        assert task.acks_late and task.ignore_result


def test_reliability_settings(settings):
    from voicecrm.celery import app

    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    longest = max(t.time_limit or 0 for name, t in app.tasks.items() if name.startswith("calls.tasks."))
    assert app.conf.broker_transport_options["visibility_timeout"] > longest
    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} >= {
        "calls.tasks.postcall_sweep_task", "calls.tasks.webhook_sweep_task"}


def test_call_started_is_queued_for_subscribed_endpoints_and_never_breaks_the_call(broker, monkeypatch):
    from calls.models import WebhookDelivery, WebhookEndpoint

    WebhookEndpoint.objects.create(name="CRM sync", url="http://127.0.0.1:9/hook", events=["call.started"])
    call = call_with_turns(scenarios.CHECK_IN)
    call_started_notify(call_id=call.pk)
    call_started_notify(call_id=call.pk)  # twice: still one delivery
    assert WebhookDelivery.objects.filter(event="call.started", call=call).count() == 1

    def boom(**kwargs):
        raise RuntimeError("database is gone")

    monkeypatch.setattr("calls.webhooks.call_started_emit", boom)
    call_started_notify(call_id=call.pk)  # logged, not raised


def test_a_call_nobody_answered_is_summarized_but_not_extracted(broker):
    from calls.services import call_start

    call = call_start(channel=Call.Channel.TWILIO, agent=call_with_turns(scenarios.CHECK_IN).agent,
                      provider_call_id="CA123", answered=False)
    call_finalize(call_id=call.pk, status=Call.Status.NO_ANSWER)
    run = analysis_run_execute_sync(run=AnalysisRun.objects.get(call=call))
    call.refresh_from_db()
    stages = {s.name: (s.status, s.detail.get("reason")) for s in run.stages.all()}
    assert stages["extract"] == ("skipped", "nobody spoke on the call")
    assert run.status == "done" and call.outcome == "not_reached" and call.extraction_errors == []


def test_a_redelivered_message_of_a_failed_stage_does_not_restart_the_run(broker, monkeypatch):
    call = ended()
    run = AnalysisRun.objects.get(call=call)
    analysis_run_execute_sync_until(run, "extract")

    def broken(run, call):
        raise ValueError("bad schema")

    monkeypatch.setitem(STAGE_FUNCTIONS, "extract", broken)
    assert analysis_stage_execute(run_id=run.pk, name="extract", task_id="e1") is None
    assert analysis_stage_execute(run_id=run.pk, name="extract", task_id="e1") is None  # redelivered
    assert set(AnalysisStage.objects.filter(run=run, position__gt=2).values_list("status", flat=True)) == {"pending"}
