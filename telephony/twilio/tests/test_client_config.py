"""Missing Twilio settings: the provider says what is missing before anything is dialed, and the
system check warns once phone numbers are routed."""

import pytest
from django.core import checks

from agents.tests.factories import AgentConfigFactory
from calls.models import Call
from telephony.base import TelephonyError
from telephony.models import Route
from telephony.outbound import OutboundError, outbound_call_place
from telephony.twilio.checks import twilio_settings_check
from telephony.twilio.client import TwilioProvider

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("setting, value, named", [
    ("TWILIO_ACCOUNT_SID", "", "TWILIO_ACCOUNT_SID"),
    ("TWILIO_AUTH_TOKEN", "", "TWILIO_AUTH_TOKEN"),
    ("PUBLIC_BASE_URL", "http://crm.example.com", "an https PUBLIC_BASE_URL"),
])
def test_check_configured_names_what_is_missing(fake_twilio, settings, setting, value, named):
    TwilioProvider().check_configured()  # all set: no error
    setattr(settings, setting, value)
    with pytest.raises(TelephonyError) as caught:
        TwilioProvider().check_configured()
    assert caught.value.permanent and named in caught.value.message
    call = Call(channel=Call.Channel.TWILIO, direction=Call.Direction.OUTBOUND, from_number="+14155550100",
                to_number="+14155550123")
    with pytest.raises(TelephonyError):
        TwilioProvider().place_call(call)
    assert fake_twilio.requests == []  # nothing was sent


def test_an_outbound_call_is_refused_before_it_is_queued_without_credentials(settings):
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "", ""
    agent = AgentConfigFactory()
    Route.objects.create(kind=Route.Kind.PHONE_NUMBER, address="+14155550100", agent=agent)
    with pytest.raises(OutboundError) as caught:
        outbound_call_place(agent=agent, to="+14155550123", channel="twilio")
    assert "TWILIO_ACCOUNT_SID" in str(caught.value) and not Call.objects.exists()


def warning_ids(**kwargs) -> list[str]:
    return [message.id for message in twilio_settings_check(**kwargs)]


def test_the_system_check_warns_once_numbers_are_routed(settings, twilio_settings):
    settings.DEBUG = False
    assert warning_ids(databases=["default"]) == []  # nothing routed yet
    Route.objects.create(kind=Route.Kind.PHONE_NUMBER, address="+14155550100", agent=AgentConfigFactory())
    assert warning_ids(databases=["default"]) == []  # configured
    settings.TWILIO_AUTH_TOKEN = ""
    (warning,) = twilio_settings_check(databases=["default"])
    assert warning.id == "telephony.W001" and "TWILIO_AUTH_TOKEN" in warning.msg and warning.level == checks.WARNING
    settings.PUBLIC_BASE_URL = "http://crm.example.com"
    # The account SID is still set: the static check warns about http (W002), not this one again.
    assert warning_ids(databases=["default"]) == ["telephony.W001"]
    settings.TWILIO_ACCOUNT_SID = ""
    assert warning_ids(databases=["default"]) == ["telephony.W001", "telephony.W002"]
    settings.DEBUG = True  # development may use plain http
    assert warning_ids(databases=["default"]) == ["telephony.W001"]


def test_the_system_check_is_a_database_check(settings, twilio_settings):
    settings.TWILIO_ACCOUNT_SID = ""
    Route.objects.create(kind=Route.Kind.PHONE_NUMBER, address="+14155550100", agent=AgentConfigFactory())
    # Registered, and run as Django runs database checks: only when databases are named.
    assert twilio_settings_check in checks.registry.registry.get_checks()
    assert checks.Tags.database in twilio_settings_check.tags
    assert warning_ids(databases=None) == []
    ran = checks.run_checks(tags=[checks.Tags.database], databases=["default"])
    assert "telephony.W001" in [message.id for message in ran]
    # Widget keys and inactive numbers are not phone numbers Twilio can reach.
    Route.objects.filter(kind=Route.Kind.PHONE_NUMBER).update(active=False)
    Route.objects.create(kind=Route.Kind.WIDGET_KEY, address="key", agent=AgentConfigFactory())
    assert warning_ids(databases=["default"]) == []


def test_half_set_credentials_and_plain_http_are_warned_by_every_check(settings):
    from django.core import checks

    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC" + "0" * 32, ""
    settings.DEBUG, settings.PUBLIC_BASE_URL = False, "http://crm.example.com"
    ids = [message.id for message in checks.run_checks() if message.id.startswith("telephony.")]
    assert ids == ["telephony.W003", "telephony.W002"]  # static: no database needed
    settings.PUBLIC_BASE_URL, settings.TWILIO_AUTH_TOKEN = "https://crm.example.com", "secret"
    assert not [m for m in checks.run_checks() if m.id.startswith("telephony.")]
