"""Twilio's incoming-call webhook and status callbacks: documented request bodies replayed with
real signatures; refused requests write nothing; calls move forward once, in order."""

import datetime as dt
import logging
import xml.etree.ElementTree as ET

import pytest
from django.utils import timezone

from agents.tests.factories import AgentConfigFactory
from calls.models import Call, CallEvent
from calls.services import call_connect, call_start
from telephony.models import Route
from telephony.twilio.security import stream_token_valid
from telephony.twilio.tests.signing import PUBLIC_BASE_URL, fixture, post_signed, sign

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("twilio_settings")]

VOICE = "/telephony/twilio/voice/"
STATUS = "/telephony/twilio/status/"
NUMBER = "+14155550100"


@pytest.fixture(autouse=True)
def queued_pipeline():
    """Post-call work stays queued (an in-memory broker) instead of running in the test."""
    from voicecrm.celery import app

    eager, url = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager, app.conf.broker_url = False, "memory://"
    yield
    app.conf.task_always_eager, app.conf.broker_url = eager, url


@pytest.fixture
def agent():
    return AgentConfigFactory(name="Front desk", slug="front-desk")


@pytest.fixture
def route(agent):
    return Route.objects.create(kind=Route.Kind.PHONE_NUMBER, address=NUMBER, agent=agent)


def stream_of(response) -> tuple[str, dict[str, str]]:
    """(stream URL, {parameter: value}) of Connect/Stream TwiML."""
    root = ET.fromstring(response.content)
    assert root.tag == "Response" and [child.tag for child in root] == ["Connect"]
    (stream,) = list(root.find("Connect"))
    assert stream.tag == "Stream"
    return stream.get("url"), {p.get("name"): p.get("value") for p in stream.findall("Parameter")}


# --- Signatures -----------------------------------------------------------------------------------


def test_an_incoming_call_to_a_routed_number_is_connected_to_the_stream(client, route):
    params = fixture("voice_inbound")
    response = post_signed(client, VOICE, params)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
    call = Call.objects.get()
    assert (call.channel, call.direction, call.status) == ("twilio", "inbound", "queued")
    assert (call.provider_call_id, call.from_number, call.to_number) == (params["CallSid"], "+14155550123", NUMBER)
    assert call.agent == route.agent and call.answered_at is None
    url, parameters = stream_of(response)
    assert url == "wss://crm.example.com/ws/telephony/twilio/media/"  # no query string: Twilio refuses one
    assert parameters["call"] == str(call.public_id)
    assert stream_token_valid(parameters["token"], str(call.public_id))


def test_behind_a_tls_proxy_the_signature_is_checked_against_the_public_url(client, route, settings):
    # The proxy forwards https://crm.example.com/... as http://internal-host:8000/...
    settings.ALLOWED_HOSTS = ["internal-host"]
    proxy = {"SERVER_NAME": "internal-host", "SERVER_PORT": "8000", "HTTP_HOST": "internal-host:8000"}
    params = fixture("voice_inbound")
    signed_internally = sign(f"http://internal-host:8000{VOICE}", params)
    assert post_signed(client, VOICE, params, signature=signed_internally, **proxy).status_code == 403
    assert not Call.objects.exists()
    response = post_signed(client, VOICE, params, **proxy)  # signed for https://crm.example.com/...
    assert response.status_code == 200 and Call.objects.count() == 1


@pytest.mark.parametrize("case", ["missing", "wrong token", "tampered", "other url"])
def test_a_request_without_a_valid_signature_is_refused_and_writes_nothing(client, route, case):
    params = fixture("voice_inbound")
    signature = {
        "missing": "",
        "wrong token": sign(PUBLIC_BASE_URL + VOICE, params, token="not-the-auth-token"),
        "tampered": sign(PUBLIC_BASE_URL + VOICE, {**params, "From": "+14155550999"}),
        "other url": sign(PUBLIC_BASE_URL + STATUS, params),
    }[case]
    response = post_signed(client, VOICE, params, signature=signature)
    assert response.status_code == 403 and response.content == b""
    assert not Call.objects.exists() and not CallEvent.objects.exists()


def test_without_an_auth_token_every_webhook_is_refused_without_a_traceback(client, route, settings, caplog):
    settings.TWILIO_AUTH_TOKEN = ""
    caplog.set_level(logging.WARNING)
    for path, params in [(VOICE, fixture("voice_inbound")), (STATUS, fixture("status_callbacks")["ringing"]),
                         ("/telephony/twilio/amd/", fixture("amd_callbacks")["machine_end_beep"])]:
        assert post_signed(client, path, params).status_code == 403
    assert not Call.objects.exists()
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "TWILIO_AUTH_TOKEN is not set" in caplog.text


@pytest.mark.parametrize("path", [VOICE, STATUS, "/telephony/twilio/amd/"])
def test_only_post_is_allowed(client, path):
    assert client.get(path).status_code == 405
    assert client.put(path).status_code == 405


@pytest.mark.parametrize("change", [
    {"CallSid": "CA123"}, {"CallSid": "XX5f0c9d8e7b6a5f4e3d2c1b0a9f8e7d6c"}, {"CallStatus": "exploded"},
    {"To": ""}, {"To": "+1" + "4" * 80}, {"From": "+1415\x00555"}, {"AccountSid": "nope"},
])
def test_garbage_params_are_a_400_even_when_signed(client, route, change):
    params = {**fixture("voice_inbound"), **change}
    assert post_signed(client, VOICE, params).status_code == 400
    assert not Call.objects.exists()


def test_a_body_over_the_webhook_limit_is_a_413(client, route, settings):
    params = {**fixture("voice_inbound"), "Padding": "x" * 40_000}
    assert post_signed(client, VOICE, params).status_code == 413
    # Beyond Django's own limit too: a 413, not the 400 Django gives a RequestDataTooBig.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    params = {**fixture("voice_inbound"), "Padding": "x" * 2000}
    assert post_signed(client, VOICE, params).status_code == 413
    assert not Call.objects.exists()


# --- Incoming calls -------------------------------------------------------------------------------


def test_a_repeated_incoming_call_webhook_makes_one_call(client, route):
    params = fixture("voice_inbound")
    first = stream_of(post_signed(client, VOICE, params))[1]
    second = stream_of(post_signed(client, VOICE, params))[1]
    call = Call.objects.get()
    assert first["call"] == second["call"] == str(call.public_id)
    assert CallEvent.objects.filter(call=call, kind=CallEvent.Kind.STATUS_CHANGE).count() == 1


def _says_goodbye(response) -> bool:
    root = ET.fromstring(response.content)
    return [child.tag for child in root] == ["Say", "Hangup"] and "not in service" in root.find("Say").text


def test_an_unknown_number_gets_a_polite_goodbye_and_no_call(client, route, caplog):
    caplog.set_level(logging.WARNING, logger="telephony.twilio.services")
    params = {**fixture("voice_inbound"), "To": "+14155550177", "Called": "+14155550177"}
    response = post_signed(client, VOICE, params)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
    assert _says_goodbye(response)
    assert not Call.objects.exists()
    assert "+14155550177" in caplog.text and params["CallSid"] in caplog.text


def test_an_inactive_route_or_agent_is_not_in_service(client, route, agent):
    params = fixture("voice_inbound")
    Route.objects.filter(pk=route.pk).update(active=False)
    assert _says_goodbye(post_signed(client, VOICE, params))
    Route.objects.filter(pk=route.pk).update(active=True)
    type(agent).objects.filter(pk=agent.pk).update(active=False)
    assert _says_goodbye(post_signed(client, VOICE, params))
    assert not Call.objects.exists()


def test_a_webhook_for_a_call_that_already_ended_hangs_up(client, route):
    params = fixture("voice_inbound")
    post_signed(client, VOICE, params)
    Call.objects.update(status=Call.Status.CANCELED, ended_at=timezone.now())
    root = ET.fromstring(post_signed(client, VOICE, params).content)
    assert [child.tag for child in root] == ["Hangup"]


# --- Status callbacks -----------------------------------------------------------------------------


def outbound_call(*, agent, call_sid: str, retry_attempts: int = 0) -> Call:
    type(agent).objects.filter(pk=agent.pk).update(retry_attempts=retry_attempts, retry_spacing_minutes=15)
    agent.refresh_from_db()
    return call_start(channel=Call.Channel.TWILIO, agent=agent, direction=Call.Direction.OUTBOUND,
                      from_number=NUMBER, to_number="+14155550123", provider_call_id=call_sid, answered=False)


def status_names(call: Call) -> list[str]:
    return list(CallEvent.objects.filter(call=call, kind=CallEvent.Kind.STATUS_CHANGE).values_list("name", flat=True))


def report(client, call: Call, name: str, *, by_ref: bool = True):
    """Replay one documented status callback; outbound calls' URLs carry ?call=<public id>."""
    path = f"{STATUS}?call={call.public_id}" if by_ref else STATUS
    return post_signed(client, path, fixture("status_callbacks")[name])


def test_status_reports_move_an_outbound_call_forward_and_record_its_duration(client, agent):
    events = fixture("status_callbacks")
    call = outbound_call(agent=agent, call_sid=events["ringing"]["CallSid"])
    for name in ("initiated", "ringing", "in-progress"):
        assert report(client, call, name).status_code == 200
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS and call.answered_at is not None
    # No voice session stamps this call (its stream never came), so the final report ends it.
    Call.objects.filter(pk=call.pk).update(heartbeat_at=timezone.now() - dt.timedelta(minutes=5))
    assert report(client, call, "completed").status_code == 200
    call.refresh_from_db()
    assert (call.status, call.end_reason, call.duration_seconds) == (Call.Status.COMPLETED, "completed", 102.0)
    assert status_names(call) == ["queued", "ringing", "in_progress", "completed"]


def test_reports_out_of_order_or_repeated_change_nothing(client, agent):
    events = fixture("status_callbacks")
    call = outbound_call(agent=agent, call_sid=events["busy"]["CallSid"])
    assert report(client, call, "busy").status_code == 200
    for late in ("ringing", "in-progress", "busy", "completed", "initiated"):
        assert report(client, call, late).status_code == 200
    call.refresh_from_db()
    assert (call.status, call.answered_at, call.duration_seconds) == (Call.Status.BUSY, None, 0.0)
    assert status_names(call) == ["queued", "busy"]


def test_a_live_sessions_call_is_left_to_the_session_with_the_duration_noted(client, agent):
    events = fixture("status_callbacks")
    call = outbound_call(agent=agent, call_sid=events["completed"]["CallSid"])
    call_connect(call_id=call.pk)  # the stream started: a session serves the call and stamps it
    assert report(client, call, "completed").status_code == 200
    call.refresh_from_db()
    assert call.status == Call.Status.IN_PROGRESS and call.duration_seconds is None
    event = CallEvent.objects.get(call=call, name="provider_completed")
    assert event.payload == {"provider_status": "completed", "provider_duration_seconds": 102.0}


def test_a_busy_outbound_call_schedules_its_retry_once(client, agent):
    events = fixture("status_callbacks")
    call = outbound_call(agent=agent, call_sid=events["busy"]["CallSid"], retry_attempts=2)
    assert report(client, call, "busy").status_code == 200
    assert report(client, call, "busy").status_code == 200  # Twilio retried the callback
    call.refresh_from_db()
    assert call.status == Call.Status.BUSY and call.retry_due_at is not None
    assert call.retry_due_at - call.ended_at == dt.timedelta(minutes=15)
    assert CallEvent.objects.filter(call=call, name="retry_scheduled").count() == 1


def test_no_answer_without_retries_left_schedules_nothing(client, agent):
    events = fixture("status_callbacks")
    call = outbound_call(agent=agent, call_sid=events["no-answer"]["CallSid"], retry_attempts=0)
    assert report(client, call, "no-answer").status_code == 200
    call.refresh_from_db()
    assert (call.status, call.retry_due_at) == (Call.Status.NO_ANSWER, None)


def test_a_report_before_the_callsid_is_stored_finds_the_call_by_its_url(client, agent):
    events = fixture("status_callbacks")
    call = outbound_call(agent=agent, call_sid="")  # the dial request has not returned yet
    Call.objects.filter(pk=call.pk).update(provider_call_id=f"dialing:{call.pk}")
    assert report(client, call, "ringing").status_code == 200
    call.refresh_from_db()
    assert call.status == Call.Status.RINGING
    # Without the reference it is found by CallSid, once stored; an unknown call is a 404.
    assert report(client, call, "in-progress", by_ref=False).status_code == 404
    Call.objects.filter(pk=call.pk).update(provider_call_id=events["ringing"]["CallSid"])
    assert report(client, call, "in-progress", by_ref=False).status_code == 200


def test_a_report_whose_url_names_another_calls_callsid_is_refused(client, agent):
    call = outbound_call(agent=agent, call_sid="CA" + "0" * 32)
    assert report(client, call, "ringing").status_code == 404
    call.refresh_from_db()
    assert call.status == Call.Status.QUEUED


@pytest.mark.parametrize("change", [{"CallStatus": "answered-ish"}, {"CallDuration": "-3"}, {"CallSid": ""},
                                    {"SequenceNumber": "one"}])
def test_garbage_status_reports_are_a_400(client, agent, change):
    events = fixture("status_callbacks")
    call = outbound_call(agent=agent, call_sid=events["ringing"]["CallSid"])
    assert post_signed(client, f"{STATUS}?call={call.public_id}", {**events["ringing"], **change}).status_code == 400
    assert post_signed(client, f"{STATUS}?call=not-a-uuid", events["ringing"]).status_code == 400
    call.refresh_from_db()
    assert call.status == Call.Status.QUEUED
