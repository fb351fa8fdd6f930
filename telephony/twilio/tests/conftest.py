"""Twilio test settings and the loopback fake of Twilio's REST API (fake_api.py)."""

import pytest

from telephony.twilio.tests.fake_api import FakeTwilioApi
from telephony.twilio.tests.signing import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE_URL


@pytest.fixture
def twilio_settings(settings):
    """Credentials and a public https origin, as production has them."""
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = PUBLIC_BASE_URL
    settings.TWILIO_API_BASE_URL = ""
    return settings


@pytest.fixture
def fake_twilio(twilio_settings):
    """The real twilio client talks to a fake Twilio on 127.0.0.1."""
    api = FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN).start()
    twilio_settings.TWILIO_API_BASE_URL = api.base_url
    yield api
    api.stop()
