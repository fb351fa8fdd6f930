"""A phone network's status reports move a call along its lifecycle, once and in order; a
prepared call is answered when its audio connects, and a stream for an ended call writes nothing."""

import asyncio
import datetime as dt

import pytest
from django.utils import timezone

from agents.tests.factories import AgentConfigFactory
from calls.models import Call, CallEvent
from calls.services import call_connect, call_finalize, call_start, call_status_apply
from calls.session import CallAlreadyEnded, MemoryTransport, VoiceSession

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queued_pipeline():
    """Keep the post-call pipeline queued."""
    from voicecrm.celery import app

    eager, url = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager = False
    app.conf.broker_url = "memory://"
    yield
    app.conf.task_always_eager, app.conf.broker_url = eager, url


def queued_call_with_sid(sid: str) -> Call:
    return call_start(channel=Call.Channel.TWILIO, agent=AgentConfigFactory(), direction=Call.Direction.OUTBOUND,
                      to_number="+14155550123", provider_call_id=sid, answered=False)


def queued_call() -> Call:
    return queued_call_with_sid("CA0001")


def test_reports_move_the_call_forward_and_late_ones_change_nothing():
    call = queued_call()
    assert call_status_apply(call_id=call.pk, status=Call.Status.RINGING, provider_status="ringing")
    assert not call_status_apply(call_id=call.pk, status=Call.Status.RINGING)  # Twilio retried the webhook
    assert call_status_apply(call_id=call.pk, status=Call.Status.BUSY, provider_status="busy")
    # Out of order: a "ringing" and an "in-progress" after the end change nothing.
    assert not call_status_apply(call_id=call.pk, status=Call.Status.RINGING)
    assert not call_status_apply(call_id=call.pk, status=Call.Status.IN_PROGRESS)
    call.refresh_from_db()
    assert (call.status, call.end_reason, call.answered_at) == (Call.Status.BUSY, "busy", None)
    names = list(CallEvent.objects.filter(call=call, kind=CallEvent.Kind.STATUS_CHANGE).values_list("name", flat=True))
    assert names == ["queued", "ringing", "busy"]


def test_the_end_of_a_call_a_session_still_serves_is_left_to_the_session():
    call = queued_call()
    call_connect(call_id=call.pk)
    assert not call_status_apply(call_id=call.pk, status=Call.Status.COMPLETED, provider_status="completed",
                                 duration=42.0)
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS
    event = CallEvent.objects.get(call=call, name="provider_completed")
    assert event.payload == {"provider_status": "completed", "provider_duration_seconds": 42.0}
    # Once the session's process is gone (no heartbeat), the report ends the call.
    Call.objects.filter(pk=call.pk).update(heartbeat_at=timezone.now() - dt.timedelta(minutes=10))
    assert call_status_apply(call_id=call.pk, status=Call.Status.COMPLETED, provider_status="completed")
    call.refresh_from_db()
    assert call.status == Call.Status.COMPLETED


def test_an_answer_report_is_not_a_heartbeat_until_the_audio_connects():
    call = queued_call()
    assert call_status_apply(call_id=call.pk, status=Call.Status.IN_PROGRESS, provider_status="in-progress")
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS and call.answered_at and call.heartbeat_at is None
    # Nobody serves it: its end report ends it.
    assert call_status_apply(call_id=call.pk, status=Call.Status.COMPLETED, provider_status="completed")
    served = queued_call_with_sid("CA0002")
    call_status_apply(call_id=served.pk, status=Call.Status.IN_PROGRESS)
    assert call_connect(call_id=served.pk).heartbeat_at is not None
    assert not call_status_apply(call_id=served.pk, status=Call.Status.COMPLETED)  # the session will end it


def test_connecting_answers_a_prepared_call_once_and_refuses_an_ended_one():
    call = queued_call()
    connected = call_connect(call_id=call.pk)
    assert connected.status == Call.Status.IN_PROGRESS and connected.answered_at and connected.heartbeat_at
    assert call_connect(call_id=call.pk).answered_at == connected.answered_at
    call_finalize(call_id=call.pk, end_reason="caller_hangup")
    assert call_connect(call_id=call.pk) is None


@pytest.mark.django_db(transaction=True)
def test_a_session_for_an_ended_call_writes_nothing():
    call = queued_call()
    call_finalize(call_id=call.pk, status=Call.Status.CANCELED, end_reason="canceled")
    before = CallEvent.objects.filter(call=call).count()
    session = VoiceSession(agent=call.agent, transport=MemoryTransport(8000), channel=Call.Channel.TWILIO, call=call)
    with pytest.raises(CallAlreadyEnded):
        asyncio.run(session.run())
    assert CallEvent.objects.filter(call=call).count() == before and not call.turns.exists()
