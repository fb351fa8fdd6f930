"""Outbound calls: placed through the API (or the admin), dialed once through the provider,
retried when busy or unanswered, and refused with a clear error when they cannot be made."""

import datetime as dt

import pytest
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from agents.tests.factories import AgentConfigFactory
from calls.models import Call, CallEvent
from calls.services import call_status_apply
from customers.tests.factories import CustomerFactory
from telephony import fake
from telephony.models import Route
from telephony.outbound import OutboundError, outbound_call_ended, outbound_call_place, outbound_dial, outbound_sweep

pytestmark = pytest.mark.django_db

DRIVER = "+14155550123"


@pytest.fixture(autouse=True)
def fake_provider(settings):
    """Both channels dial through the in-memory provider; Celery runs the dial task in-process,
    with the post-call pipeline left queued."""
    from voicecrm.celery import app

    settings.TELEPHONY_PROVIDERS = {"twilio": "telephony.fake.FakeProvider", "asterisk": "telephony.fake.FakeProvider"}
    fake.outbox.clear()
    fake.FakeProvider.failing, fake.FakeProvider.missing = {}, ""
    eager, url = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager, app.conf.broker_url = True, "memory://"
    yield
    app.conf.task_always_eager, app.conf.broker_url = eager, url
    fake.FakeProvider.failing, fake.FakeProvider.missing = {}, ""
    fake.outbox.clear()


@pytest.fixture(autouse=True)
def no_pipeline(monkeypatch):
    monkeypatch.setattr("calls.services.pipeline_schedule", lambda call: None)


@pytest.fixture(autouse=True)
def roles():
    """Transactional tests start from an empty database: the role groups the migrations made are gone."""
    from django.apps import apps

    from core.roles import roles_sync

    roles_sync(apps)


@pytest.fixture
def dispatch():
    agent = AgentConfigFactory(slug="dispatch", name="Dispatch", retry_attempts=2, retry_spacing_minutes=10)
    Route.objects.create(kind=Route.Kind.PHONE_NUMBER, address="+14155550100", agent=agent)
    return agent


def api_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


@pytest.fixture
def place(django_capture_on_commit_callbacks):
    """Place a call and commit it (the test's transaction stays open, so on-commit work is run here)."""
    def place(agent, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return outbound_call_place(agent=agent, to=kwargs.pop("to", DRIVER), **kwargs)
    return place


def test_a_placed_call_is_queued_with_its_context_and_dialed_once_committed(dispatch, django_capture_on_commit_callbacks):
    driver = CustomerFactory(phone=DRIVER)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call = outbound_call_place(agent=dispatch, to="(415) 555-0123",
                                   variables={"driver_name": "Sam", "load_number": 1042})
        assert fake.outbox == []  # nothing rings before the Call is committed
    assert (call.status, call.direction, call.channel) == (Call.Status.QUEUED, "outbound", "twilio")
    assert (call.from_number, call.to_number, call.customer, call.attempt) == ("+14155550100", DRIVER, driver, 1)
    assert call.variables == {"driver_name": "Sam", "load_number": "1042"} and call.answered_at is None
    for callback in callbacks:
        callback()
    call.refresh_from_db()
    assert [m["action"] for m in fake.outbox] == ["place_call"] and fake.outbox[0]["call"] == str(call.public_id)
    assert call.provider_call_id == fake.outbox[0]["call_id"] and call.status == Call.Status.QUEUED
    assert CallEvent.objects.filter(call=call, name="dialed").count() == 1
    # A redelivered task dials nothing more.
    assert outbound_dial(call_id=call.pk) == "skipped" and len(fake.outbox) == 1


@pytest.mark.parametrize("kwargs,field", [
    ({"to": "12"}, "to"),
    ({"to": ""}, "to"),
    ({"variables": {"bad name": "x"}}, "variables"),
    ({"variables": {"n": {"nested": 1}}}, "variables"),
    ({"variables": {f"v{i}": i for i in range(21)}}, "variables"),
    ({"variables": {"note": "x" * 201}}, "variables"),
    ({"channel": "browser"}, "channel"),
])
def test_bad_requests_are_refused_and_change_nothing(dispatch, kwargs, field, place):
    with pytest.raises(OutboundError) as caught:
        place(dispatch, **kwargs)
    assert field in caught.value.message_dict
    assert not Call.objects.exists() and fake.outbox == []


def test_an_agent_without_a_line_or_a_channel_without_credentials_cannot_call(dispatch, place):
    with pytest.raises(OutboundError) as no_line:
        place(AgentConfigFactory(name="Support"))
    assert "no active phone line" in no_line.value.message_dict["agent"][0]
    fake.FakeProvider.missing = "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set."
    with pytest.raises(OutboundError) as unconfigured:
        place(dispatch)
    assert "TWILIO_ACCOUNT_SID" in unconfigured.value.message_dict["channel"][0]
    assert not Call.objects.exists()


def test_an_agent_on_both_channels_must_say_which(dispatch, place):
    Route.objects.create(kind=Route.Kind.ASTERISK_EXTENSION, address="7001", agent=dispatch)
    with pytest.raises(OutboundError):
        place(dispatch)
    call = place(dispatch, to="2001", channel="asterisk")
    assert (call.channel, call.from_number, call.to_number) == ("asterisk", "7001", "2001")


def test_a_permanent_provider_error_fails_the_call_and_is_recorded(dispatch, place):
    fake.FakeProvider.failing = {DRIVER: True}
    call = place(dispatch)
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (Call.Status.FAILED, "provider_error")
    assert call.provider_error == f"cannot call {DRIVER}"
    assert CallEvent.objects.get(call=call, name="dial_failed").payload["permanent"] is True


def test_a_temporary_provider_error_leaves_the_call_to_be_dialed_again(dispatch, django_capture_on_commit_callbacks, place):
    fake.FakeProvider.failing = {DRIVER: False}
    with django_capture_on_commit_callbacks(execute=False):
        call = outbound_call_place(agent=dispatch, to=DRIVER)
    with pytest.raises(Exception, match="cannot call"):
        outbound_dial(call_id=call.pk)
    call.refresh_from_db()
    assert (call.status, call.provider_call_id, call.provider_error) == (Call.Status.QUEUED, "", f"cannot call {DRIVER}")
    fake.FakeProvider.failing = {}
    assert outbound_dial(call_id=call.pk) == "dialed"
    call.refresh_from_db()
    assert call.provider_call_id.startswith("FAKE") and call.provider_error == ""


def test_in_embedded_mode_a_temporary_error_fails_the_call_after_one_try(dispatch, place):
    fake.FakeProvider.failing = {DRIVER: False}
    call = place(dispatch)
    call.refresh_from_db()
    assert call.status == Call.Status.FAILED and "gave up after 1 tries" in call.provider_error


@pytest.mark.django_db(transaction=True)
def test_busy_and_unanswered_attempts_are_retried_as_the_agent_says(dispatch, place):
    first = place(dispatch, variables={"load_number": "L-7"})
    call_status_apply(call_id=first.pk, status=Call.Status.BUSY, provider_status="busy")
    due = outbound_call_ended(first)
    first.refresh_from_db()
    assert due == first.retry_due_at and due == first.ended_at + dt.timedelta(minutes=10)
    assert outbound_call_ended(first) is None  # a repeated callback schedules nothing more
    assert outbound_sweep(now=due - dt.timedelta(seconds=1))["retried"] == 0
    assert outbound_sweep(now=due)["retried"] == 1
    second = Call.objects.get(retry_of=first)
    assert (second.attempt, second.variables, second.to_number) == (2, {"load_number": "L-7"}, DRIVER)
    assert len(fake.outbox) == 2 and outbound_sweep(now=due)["retried"] == 0
    call_status_apply(call_id=second.pk, status=Call.Status.NO_ANSWER, provider_status="no-answer")
    outbound_sweep(now=outbound_call_ended(second))
    third = Call.objects.get(retry_of=second)
    call_status_apply(call_id=third.pk, status=Call.Status.BUSY, provider_status="busy")
    assert third.attempt == 3 and outbound_call_ended(third) is None  # two retries, then it stops


def test_an_answered_or_failed_call_is_not_retried(dispatch, place):
    answered = place(dispatch)
    call_status_apply(call_id=answered.pk, status=Call.Status.IN_PROGRESS)
    call_status_apply(call_id=answered.pk, status=Call.Status.COMPLETED)
    failed = place(dispatch)
    call_status_apply(call_id=failed.pk, status=Call.Status.FAILED, provider_status="failed")
    assert outbound_call_ended(answered) is None and outbound_call_ended(failed) is None


def test_a_dial_lost_with_its_worker_is_failed_by_the_sweep_not_dialed_again(dispatch, settings,
                                                                              django_capture_on_commit_callbacks, place):
    with django_capture_on_commit_callbacks(execute=False):
        call = outbound_call_place(agent=dispatch, to=DRIVER)
    Call.objects.filter(pk=call.pk).update(provider_call_id=f"dialing:{call.pk}")  # claimed, then the worker died
    assert outbound_sweep()["dial_lost"] == 0  # not yet: it may still be dialing
    later = timezone.now() + dt.timedelta(seconds=settings.OUTBOUND_DIAL_TIMEOUT_SECONDS + 1)
    Call.objects.filter(pk=call.pk).update(updated_at=later - dt.timedelta(seconds=settings.OUTBOUND_DIAL_TIMEOUT_SECONDS + 5))
    assert outbound_sweep(now=later)["dial_lost"] == 1
    call.refresh_from_db()
    assert (call.status, call.end_reason) == (Call.Status.FAILED, "dial_lost") and fake.outbox == []


# --- POST /api/calls/ ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_api_places_a_call_and_answers_202_with_the_queued_call(dispatch, sam):
    response = api_as(sam).post("/api/calls/", {"agent": "dispatch", "to": DRIVER,
                                                "variables": {"driver_name": "Sam"}}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    call = Call.objects.get()
    assert body["id"] == str(call.public_id) and body["direction"] == "outbound" and body["agent"] == "dispatch"
    assert fake.outbox[0]["variables"] == {"driver_name": "Sam"}


@pytest.mark.django_db(transaction=True)
def test_the_api_refuses_who_may_not_place_calls(dispatch, bob, charlie, client):
    request = {"agent": "dispatch", "to": DRIVER}
    assert APIClient().post("/api/calls/", request, format="json").status_code == 401
    assert api_as(charlie).post("/api/calls/", request, format="json").status_code == 403
    assert not Call.objects.exists()
    assert api_as(bob).post("/api/calls/", request, format="json").status_code == 202  # Agents place calls


@pytest.mark.parametrize("body,field", [
    ({"agent": "nobody", "to": DRIVER}, "agent"),
    ({"agent": "dispatch"}, "to"),
    ({"agent": "dispatch", "to": "not a number"}, "to"),
    ({"agent": "dispatch", "to": DRIVER, "variables": ["x"]}, "variables"),
    ({"agent": "dispatch", "to": DRIVER, "channel": "pigeon"}, "channel"),
])
def test_the_api_answers_bad_requests_with_400_naming_the_field(dispatch, sam, body, field):
    response = api_as(sam).post("/api/calls/", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not Call.objects.exists() and fake.outbox == []


@pytest.mark.django_db(transaction=True)
def test_a_retried_request_with_the_same_idempotency_key_never_dials_twice(dispatch, sam, bob):
    client = api_as(sam)
    request = {"agent": "dispatch", "to": DRIVER}
    first = client.post("/api/calls/", request, format="json", HTTP_IDEMPOTENCY_KEY="checkin-1042")
    again = client.post("/api/calls/", {**request, "to": "(415) 555-0123"}, format="json",
                        HTTP_IDEMPOTENCY_KEY="checkin-1042")
    assert first.status_code == again.status_code == 202 and first.json()["id"] == again.json()["id"]
    assert Call.objects.count() == 1 and len(fake.outbox) == 1
    other = client.post("/api/calls/", {**request, "to": "+14155550124"}, format="json", HTTP_IDEMPOTENCY_KEY="checkin-1042")
    assert other.status_code == 409 and Call.objects.count() == 1
    # Keys are per user: another user's same key is another request.
    assert api_as(bob).post("/api/calls/", request, format="json", HTTP_IDEMPOTENCY_KEY="checkin-1042").status_code == 202
    assert Call.objects.count() == 2
    long_key = client.post("/api/calls/", request, format="json", HTTP_IDEMPOTENCY_KEY="k" * 101)
    assert long_key.status_code == 400 and Call.objects.count() == 2


def test_embedded_mode_dials_due_retries_in_the_serving_process():
    from calls import sweeps
    from telephony.outbound import outbound_sweep as sweep

    assert sweep in sweeps._embedded_sweeps  # registered by TelephonyConfig.ready, run by call_sweeper_start
