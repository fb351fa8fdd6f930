import pytest

from calls.models import Call
from telephony import fake
from telephony.base import TelephonyError
from telephony.registry import get_provider


@pytest.fixture(autouse=True)
def _fake_outbox():
    fake.outbox.clear()
    fake.FakeProvider.failing = {}
    yield
    fake.outbox.clear()


def _call(to: str) -> Call:
    # Unsaved: the provider reads the row, it never writes it.
    return Call(channel=Call.Channel.TWILIO, direction=Call.Direction.OUTBOUND, to_number=to,
                from_number="+14155550100", variables={"load_number": "L-7"})


def test_provider_is_chosen_by_dotted_path(settings):
    settings.TELEPHONY_PROVIDERS = {"fake": "telephony.fake.FakeProvider"}
    provider = get_provider("fake")
    call = _call("+14155550123")
    call.provider_call_id = provider.place_call(call)
    provider.transfer(call, target="+14155550199")
    provider.hang_up(call)
    assert [item["action"] for item in fake.outbox] == ["place_call", "transfer", "hang_up"]
    assert fake.outbox[0]["to"] == "+14155550123" and fake.outbox[0]["variables"] == {"load_number": "L-7"}
    assert fake.outbox[1]["call_id"] == call.provider_call_id


def test_an_unconfigured_provider_is_a_permanent_error(settings):
    settings.TELEPHONY_PROVIDERS = {}
    with pytest.raises(TelephonyError) as caught:
        get_provider("twilio")
    assert caught.value.permanent


def test_provider_errors_carry_permanence(settings):
    settings.TELEPHONY_PROVIDERS = {"fake": "telephony.fake.FakeProvider"}
    fake.FakeProvider.failing = {"+14155550000": True, "+14155550001": False}
    provider = get_provider("fake")
    with pytest.raises(TelephonyError) as permanent:
        provider.place_call(_call("+14155550000"))
    with pytest.raises(TelephonyError) as temporary:
        provider.place_call(_call("+14155550001"))
    assert permanent.value.permanent and not temporary.value.permanent
    assert fake.outbox == []
