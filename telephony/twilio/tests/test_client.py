"""TwilioProvider through the real twilio client against a loopback fake of Twilio's REST API:
what is sent to place, transfer and hang up a call, and how Twilio's errors are classified."""

import base64
import socket
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest

from agents.tests.factories import AgentConfigFactory
from calls.models import Call, CallEvent
from calls.services import call_start
from telephony.base import TelephonyError
from telephony.models import Route
from telephony.outbound import outbound_call_place, outbound_dial
from telephony.registry import get_provider
from telephony.twilio import client as twilio_client
from telephony.twilio.client import TwilioProvider
from telephony.twilio.security import stream_token_valid
from telephony.twilio.tests.signing import ACCOUNT_SID, AUTH_TOKEN

pytestmark = pytest.mark.django_db

FROM, TO = "+14155550100", "+14155550123"


@pytest.fixture
def agent():
    agent = AgentConfigFactory(name="Dispatch", slug="dispatch")
    Route.objects.create(kind=Route.Kind.PHONE_NUMBER, address=FROM, agent=agent)
    return agent


def outbound(agent, *, to: str = TO) -> Call:
    return call_start(channel=Call.Channel.TWILIO, agent=agent, direction=Call.Direction.OUTBOUND,
                      from_number=FROM, to_number=to, answered=False)


def live(agent, fake_twilio) -> Call:
    """An answered call Twilio knows, with its CallSid stored."""
    call = outbound(agent)
    Call.objects.filter(pk=call.pk).update(provider_call_id=fake_twilio.add_call(to=TO, direction="outbound-api"))
    call.refresh_from_db()
    return call


def update_path(call_sid: str) -> str:
    return f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json"


def test_the_registry_gives_the_twilio_provider():
    assert isinstance(get_provider("twilio"), TwilioProvider)


def test_placing_a_call_sends_the_stream_twiml_status_callbacks_and_async_amd(agent, fake_twilio):
    call = outbound(agent)
    call_sid = TwilioProvider().place_call(call)
    assert call_sid in fake_twilio.calls and fake_twilio.calls[call_sid]["status"] == "queued"
    (request,) = fake_twilio.requests
    assert (request.method, request.path) == ("POST", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json")
    assert request.authorization == "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    ref = f"?call={call.public_id}"
    twiml = request.params.pop("Twiml")
    assert request.params == {
        "To": [TO], "From": [FROM],
        "StatusCallback": [f"https://crm.example.com/telephony/twilio/status/{ref}"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "StatusCallbackMethod": ["POST"],
        "MachineDetection": ["DetectMessageEnd"], "AsyncAmd": ["true"],
        "AsyncAmdStatusCallback": [f"https://crm.example.com/telephony/twilio/amd/{ref}"],
        "AsyncAmdStatusCallbackMethod": ["POST"],
    }
    stream = ET.fromstring(twiml[0]).find("Connect/Stream")
    assert stream.get("url") == "wss://crm.example.com/ws/telephony/twilio/media/"
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert parameters["call"] == str(call.public_id) and stream_token_valid(parameters["token"], str(call.public_id))
    # The callback URLs name the call, so a report that comes before the CallSid is stored finds it.
    assert parse_qs(urlsplit(request.param("StatusCallback")).query) == {"call": [str(call.public_id)]}


def test_the_outbound_dial_stores_the_callsid_twilio_gave(agent, fake_twilio):
    call = outbound_call_place(agent=agent, to=TO, variables={"driver_name": "Sam"}, channel="twilio")
    assert outbound_dial(call_id=call.pk) == "dialed"
    call.refresh_from_db()
    assert call.provider_call_id in fake_twilio.calls and call.provider_error == ""


def test_a_number_twilio_refuses_fails_the_outbound_call_for_good(agent, fake_twilio):
    call = outbound_call_place(agent=agent, to="+14155550124", channel="twilio")
    fake_twilio.fail_next(400, 21215, "Account not authorized to call +14155550124.")
    assert outbound_dial(call_id=call.pk) == "failed"
    call.refresh_from_db()
    assert call.status == Call.Status.FAILED and "21215" in call.provider_error


def test_transfer_replaces_the_twiml_with_a_dial_and_logs_the_transfer(agent, fake_twilio):
    call = live(agent, fake_twilio)
    TwilioProvider().transfer(call, target="(415) 555-0199")
    (request,) = fake_twilio.requests
    assert request.path == update_path(call.provider_call_id)
    root = ET.fromstring(request.param("Twiml"))
    assert [child.tag for child in root] == ["Dial"] and root.find("Dial/Number").text == "+14155550199"
    assert request.param("Status") is None
    event = CallEvent.objects.get(call=call, kind=CallEvent.Kind.TRANSFER)
    assert event.payload["target"] == "+14155550199"
    TwilioProvider().transfer(call, target="sip:desk@pbx.example.com")
    assert ET.fromstring(fake_twilio.requests[-1].param("Twiml")).find("Dial/Sip").text == "sip:desk@pbx.example.com"
    assert CallEvent.objects.filter(call=call, kind=CallEvent.Kind.TRANSFER).count() == 1  # logged once per call


def test_a_transfer_that_cannot_happen_is_a_permanent_error(agent, fake_twilio):
    call = live(agent, fake_twilio)
    with pytest.raises(TelephonyError) as bad_target:
        TwilioProvider().transfer(call, target="the manager")
    assert bad_target.value.permanent and fake_twilio.requests == []
    fake_twilio.end_call(call.provider_call_id)
    with pytest.raises(TelephonyError) as ended:
        TwilioProvider().transfer(call, target=TO)
    assert ended.value.permanent and "21220" in ended.value.message
    assert not CallEvent.objects.filter(call=call, kind=CallEvent.Kind.TRANSFER).exists()


def test_hang_up_completes_the_call(agent, fake_twilio):
    call = live(agent, fake_twilio)
    TwilioProvider().hang_up(call)
    (request,) = fake_twilio.requests
    assert (request.path, request.params) == (update_path(call.provider_call_id), {"Status": ["completed"]})
    assert fake_twilio.calls[call.provider_call_id]["status"] == "completed"


def test_hanging_up_a_call_that_already_ended_is_not_an_error(agent, fake_twilio):
    call = live(agent, fake_twilio)
    Call.objects.filter(pk=call.pk).update(provider_call_id="CA" + "9" * 32)  # Twilio: 404, code 20404
    call.refresh_from_db()
    TwilioProvider().hang_up(call)
    assert fake_twilio.requests[-1].path == update_path(call.provider_call_id)
    fake_twilio.fail_next(404, raw="<html>Not Found</html>")  # a 404 without Twilio's JSON
    TwilioProvider().hang_up(call)
    never_dialed = outbound(agent)
    TwilioProvider().hang_up(never_dialed)  # nothing on Twilio's side to end
    assert len(fake_twilio.requests) == 2


def test_a_hang_up_that_fails_for_another_reason_is_raised(agent, fake_twilio):
    call = live(agent, fake_twilio)
    fake_twilio.fail_next(503, 20503, "Service Unavailable")
    with pytest.raises(TelephonyError) as caught:
        TwilioProvider().hang_up(call)
    assert not caught.value.permanent


@pytest.mark.parametrize("status, code, permanent", [
    (400, 21211, True),   # invalid To number
    (400, 21214, True),   # the To number cannot be reached
    (400, 21215, True),   # no geographic permission for that country
    (401, 20003, True),   # wrong credentials
    (404, 20404, True),   # an account that does not exist
    (429, 20429, False),  # too many requests
    (500, 20500, False),
    (503, 20503, False),
])
def test_rest_errors_carry_their_permanence(agent, fake_twilio, status, code, permanent):
    fake_twilio.fail_next(status, code, "Twilio says no")
    with pytest.raises(TelephonyError) as caught:
        TwilioProvider().place_call(outbound(agent))
    assert caught.value.permanent is permanent
    assert str(code) in caught.value.message and "Twilio says no" in caught.value.message
    assert AUTH_TOKEN not in caught.value.message


def test_an_invalid_number_is_refused_by_twilio_and_permanent(agent, fake_twilio):
    with pytest.raises(TelephonyError) as caught:
        TwilioProvider().place_call(outbound(agent, to="+1234"))
    assert caught.value.permanent and "21211" in caught.value.message


def test_a_non_json_5xx_is_temporary(agent, fake_twilio):
    fake_twilio.fail_next(502, raw="<html>Bad Gateway</html>")
    with pytest.raises(TelephonyError) as caught:
        TwilioProvider().place_call(outbound(agent))
    assert not caught.value.permanent and "HTTP 502" in caught.value.message


def test_a_timeout_is_temporary(agent, fake_twilio, monkeypatch):
    monkeypatch.setattr(twilio_client, "REST_TIMEOUT_S", 0.2)
    fake_twilio.delay_s = 1.0
    with pytest.raises(TelephonyError) as caught:
        TwilioProvider().place_call(outbound(agent))
    assert not caught.value.permanent and "did not answer in time" in caught.value.message


def test_a_refused_connection_is_temporary(agent, fake_twilio, settings):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{unused.getsockname()[1]}"  # nothing listens there
        with pytest.raises(TelephonyError) as caught:
            TwilioProvider().place_call(outbound(agent))
    assert not caught.value.permanent and "could not be reached" in caught.value.message
