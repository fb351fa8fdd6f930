"""telephony/services.py: routes are written with Route.clean()'s rules, whoever writes them."""

import pytest
from django.core.exceptions import ValidationError

from agents.tests.factories import AgentConfigFactory
from telephony.models import Route
from telephony.services import route_create, route_update

pytestmark = pytest.mark.django_db


def test_route_create_normalises_numbers_and_generates_widget_keys():
    agent = AgentConfigFactory()
    number = route_create(kind="phone_number", address="(415) 555-0100", agent=agent)
    key = route_create(kind="widget_key", address="", agent=agent, allowed_origins="https://shop.example")
    assert Route.objects.get(pk=number.pk).address == "+14155550100"
    assert len(Route.objects.get(pk=key.pk).address) >= 20
    with pytest.raises(ValidationError) as raised:
        route_create(kind="phone_number", address="+1 415 555 0100", agent=agent)
    assert "already exists" in str(raised.value)
    with pytest.raises(ValidationError) as raised:
        route_create(kind="asterisk_extension", address="10 01", agent=agent)
    assert list(raised.value.message_dict) == ["address"]
    assert Route.objects.count() == 2


def test_route_update_validates_the_whole_route_and_saves_the_normalised_address():
    agent = AgentConfigFactory()
    route = route_create(kind="asterisk_extension", address="1001", agent=agent)
    with pytest.raises(ValidationError):
        route_update(route=route, allowed_origins="ftp://files.example")
    with pytest.raises(ValidationError):
        route_update(route=route, kind="phone_number")
    assert Route.objects.get(pk=route.pk).kind == "asterisk_extension"
    updated = route_update(route=route, kind="phone_number", address="415-555-0199", label="Sales")
    stored = Route.objects.get(pk=route.pk)
    assert (stored.kind, stored.address, stored.label) == ("phone_number", "+14155550199", "Sales") == (
        updated.kind, updated.address, updated.label)
    with pytest.raises(TypeError):
        route_update(route=route, created_at=None)
