"""Calls whose process died are finalized by the sweep: failed, "lost", with their turns, the
recording their spool holds, the post-call pipeline and the call.ended webhook."""

import datetime as dt
import io
import wave

import pytest
from django.utils import timezone

from agents.tests.factories import AgentConfigFactory
from calls.models import AnalysisRun, Call, Turn, WebhookDelivery, WebhookEndpoint
from calls.services import call_heartbeat, call_recording_spool_append, call_start, turn_record
from calls.sweeps import call_sweep_lost
from calls.tasks import call_sweep_lost_task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queued_pipeline():
    """Keep the post-call pipeline queued (it would transcribe recordings with Whisper)."""
    from voicecrm.celery import app

    eager, url = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager = False
    app.conf.broker_url = "memory://"
    yield
    app.conf.task_always_eager, app.conf.broker_url = eager, url


@pytest.fixture
def ended_hook(db):
    return WebhookEndpoint.objects.create(name="crm", url="https://hooks.example.com/calls", events=["call.ended"])


def live_call(*, beat_seconds_ago: float) -> Call:
    call = call_start(channel=Call.Channel.BROWSER, agent=AgentConfigFactory())
    Call.objects.filter(pk=call.pk).update(heartbeat_at=timezone.now() - dt.timedelta(seconds=beat_seconds_ago))
    return call


def test_a_call_whose_heartbeat_stopped_is_finalized_as_lost(settings, ended_hook):
    settings.CALL_LOST_AFTER_SECONDS = 60
    lost = live_call(beat_seconds_ago=61)
    turn_record(call=lost, speaker=Turn.Speaker.CALLER, text="Hi, where is my order?")
    alive = live_call(beat_seconds_ago=5)

    result = call_sweep_lost()

    assert result["finalized"] == 1
    lost.refresh_from_db()
    assert (lost.status, lost.end_reason) == (Call.Status.FAILED, "lost")
    assert lost.ended_at is not None
    assert list(lost.turns.values_list("text", flat=True)) == ["Hi, where is my order?"]
    assert AnalysisRun.objects.filter(call=lost).count() == 1
    assert WebhookDelivery.objects.filter(endpoint=ended_hook, event="call.ended").count() == 1
    alive.refresh_from_db()
    assert alive.status == Call.Status.IN_PROGRESS
    # Exactly once: a second sweep (or the session waking up) changes nothing.
    assert call_sweep_lost()["finalized"] == 0
    assert WebhookDelivery.objects.filter(event="call.ended").count() == 1


def test_a_call_from_before_heartbeats_is_swept_by_its_start_time(settings):
    settings.CALL_LOST_AFTER_SECONDS = 60
    call = call_start(channel=Call.Channel.BROWSER, agent=AgentConfigFactory())
    old = timezone.now() - dt.timedelta(hours=2)
    Call.objects.filter(pk=call.pk).update(heartbeat_at=None, started_at=old, answered_at=old)
    call_sweep_lost_task()
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (Call.Status.FAILED, "lost")


def test_a_heartbeat_keeps_a_call_alive_and_skips_finished_calls(settings):
    settings.CALL_LOST_AFTER_SECONDS = 60
    call = live_call(beat_seconds_ago=600)
    assert call_heartbeat(call_ids=[call.pk]) == 1
    assert call_sweep_lost()["finalized"] == 0
    Call.objects.filter(pk=call.pk).update(status=Call.Status.COMPLETED)
    assert call_heartbeat(call_ids=[call.pk]) == 0


def test_the_spooled_recording_is_attached_to_a_lost_call(settings, tmp_path, django_capture_on_commit_callbacks):
    settings.MEDIA_ROOT = tmp_path
    settings.CALL_LOST_AFTER_SECONDS = 60
    call = live_call(beat_seconds_ago=120)
    caller = (b"\x10\x00" * 16000)  # 1 s at 16 kHz
    agent = (b"\x20\x00" * 4000)  # 0.5 s at 8 kHz
    call_recording_spool_append(call=call, caller=caller[:16000], caller_rate=16000, agent=agent, agent_rate=8000)
    call_recording_spool_append(call=call, caller=caller[16000:], caller_rate=16000, agent=b"", agent_rate=8000)

    with django_capture_on_commit_callbacks(execute=True):
        assert call_sweep_lost()["recordings"] == 1

    call.refresh_from_db()
    with call.recording.open("rb") as f, wave.open(io.BytesIO(f.read())) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (2, 16000, 16000)
    assert not (tmp_path / "recordings" / "partial" / str(call.public_id)).exists()
