"""AriProvider against a loopback ARI that answers as Asterisk's documentation says: originate
parameters and variables, hang-up, an already-gone channel, and errors sorted into permanent
(4xx) and temporary (5xx, unreachable, too slow)."""

from __future__ import annotations

import base64

import pytest

from agents.tests.factories import AgentConfigFactory
from calls.models import Call, CallEvent
from calls.services import call_start
from telephony.asterisk.ari import AriProvider
from telephony.asterisk.tests.fastagi_live import *  # noqa: F403 - the fixtures
from telephony.base import TelephonyError
from telephony.registry import get_provider

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(db):
    return AgentConfigFactory(slug="front-desk")


def outbound(agent, to="+14155550123") -> Call:
    return call_start(channel=Call.Channel.ASTERISK, agent=agent, direction=Call.Direction.OUTBOUND,
                      from_number="7000", to_number=to, answered=False)


def test_place_call_originates_into_the_outbound_context_with_the_calls_variables(ari, agent):
    call = outbound(agent)
    provider = get_provider("asterisk")
    assert isinstance(provider, AriProvider)

    channel_id = provider.place_call(call)

    assert channel_id == str(call.public_id)
    [request] = ari.requests
    assert (request["method"], request["path"]) == ("POST", "/ari/channels")
    assert request["query"] == {
        "endpoint": "Local/+14155550123@voicecrm-dial", "context": "voicecrm-outbound", "extension": "s",
        "priority": "1", "timeout": "35", "channelId": str(call.public_id), "callerId": "7000",
    }
    assert request["json"] == {"variables": {
        "VOICECRM_CALL_UUID": str(call.public_id), "VOICECRM_AGENT": "front-desk", "VOICECRM_RING_SECONDS": "30"}}
    assert request["auth"] == "Basic " + base64.b64encode(b"voicecrm:s3cret pass").decode()


def test_placing_a_call_whose_channel_exists_dials_nothing_new(ari, agent):
    call = outbound(agent)
    provider = AriProvider()
    assert provider.place_call(call) == provider.place_call(call) == str(call.public_id)
    assert [r["method"] for r in ari.requests] == ["POST", "POST"]
    assert ari.channels == {str(call.public_id)}  # the second request got 409


def test_an_internal_extension_is_dialed_too_but_nothing_else(ari, agent):
    AriProvider().place_call(outbound(agent, to="201"))
    assert ari.requests[-1]["query"]["endpoint"] == "Local/201@voicecrm-dial"
    with pytest.raises(TelephonyError) as error:
        AriProvider().place_call(outbound(agent, to="201@evil/x"))
    assert error.value.permanent and len(ari.requests) == 1


def test_hang_up_deletes_the_channel_and_an_already_gone_one_is_no_error(ari, agent):
    call = outbound(agent)
    provider = AriProvider()
    call.provider_call_id = provider.place_call(call)
    provider.hang_up(call)
    provider.hang_up(call)  # 404: hung up already

    deletes = [r for r in ari.requests if r["method"] == "DELETE"]
    assert [(r["path"], r["query"]) for r in deletes] == [(f"/ari/channels/{call.public_id}", {"reason": "normal"})] * 2
    assert not ari.channels


def test_hang_up_of_a_call_never_dialed_asks_nothing(ari, agent):
    call = outbound(agent)
    for provider_call_id in ("", f"dialing:{call.pk}"):
        call.provider_call_id = provider_call_id
        AriProvider().hang_up(call)
    assert ari.requests == []


@pytest.mark.parametrize(("status", "message", "permanent"), [
    (400, "Invalid parameters for originating a channel", True),
    (401, "Authentication required", True),
    (422, "Endpoint is not valid", True),
    (500, "Allocation failed", False),
    (503, "ARI is shutting down", False),
])
def test_ari_errors_are_permanent_for_4xx_and_temporary_for_5xx(ari, agent, status, message, permanent):
    ari.responses["POST /ari/channels"] = (status, {"message": message})
    with pytest.raises(TelephonyError) as error:
        AriProvider().place_call(outbound(agent))
    assert error.value.permanent is permanent
    assert str(status) in error.value.message
    assert (message in error.value.message) or status == 401


def test_an_unreachable_or_slow_ari_is_a_temporary_error(ari, agent, settings, monkeypatch):
    monkeypatch.setattr(AriProvider, "timeout", 0.5)
    ari.release.clear()  # the fake ARI holds every request
    with pytest.raises(TelephonyError) as slow:
        AriProvider().place_call(outbound(agent))
    ari.release.set()
    settings.ASTERISK_ARI_URL = "http://127.0.0.1:9"  # nothing listens on discard
    with pytest.raises(TelephonyError) as unreachable:
        AriProvider().hang_up(Call(provider_call_id="1733031000.1"))
    assert not slow.value.permanent and not unreachable.value.permanent


@pytest.mark.parametrize("missing", ["ASTERISK_ARI_URL", "ASTERISK_ARI_USER", "ASTERISK_ARI_PASSWORD"])
def test_missing_settings_are_named_by_check_configured(ari, agent, settings, missing):
    setattr(settings, missing, "")
    with pytest.raises(TelephonyError) as error:
        AriProvider().check_configured()
    assert error.value.permanent and missing in error.value.message
    with pytest.raises(TelephonyError):
        AriProvider().place_call(outbound(agent))
    assert ari.requests == []


def test_transfer_records_the_target_for_the_dialplan_once(agent):
    call = outbound(agent)
    provider = AriProvider()
    provider.transfer(call, target="+14155550100")
    provider.transfer(call, target="+14155550100")
    assert CallEvent.objects.filter(call=call, kind=CallEvent.Kind.TRANSFER).count() == 1
    with pytest.raises(TelephonyError) as error:
        provider.transfer(call, target="100,,U(evil)")
    assert error.value.permanent
