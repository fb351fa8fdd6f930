import pytest

from agents.models import AgentConfig
from telephony.models import Route
from telephony.selectors import widget_route_for_agent, widget_route_for_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent():
    return AgentConfig.objects.create(slug="front-desk", name="Front desk", greeting="Hello.")


def test_a_widget_key_reaches_its_agent_only_while_both_are_active(agent):
    route = Route.objects.create(kind=Route.Kind.WIDGET_KEY, address="key-1", agent=agent)
    assert widget_route_for_key("key-1") == route
    assert widget_route_for_key("key-2") is None
    Route.objects.filter(pk=route.pk).update(active=False)
    assert widget_route_for_key("key-1") is None
    Route.objects.filter(pk=route.pk).update(active=True)
    AgentConfig.objects.filter(pk=agent.pk).update(active=False)
    assert widget_route_for_key("key-1") is None


def test_an_agents_widget_is_its_oldest_active_key(agent):
    oldest = Route.objects.create(kind=Route.Kind.WIDGET_KEY, address="key-a", agent=agent)
    Route.objects.create(kind=Route.Kind.WIDGET_KEY, address="key-b", agent=agent)
    Route.objects.create(kind=Route.Kind.PHONE_NUMBER, address="+14155550100", agent=agent)
    assert widget_route_for_agent("front-desk") == oldest
    Route.objects.filter(pk=oldest.pk).update(active=False)
    assert widget_route_for_agent("front-desk").address == "key-b"
    assert widget_route_for_agent("nobody") is None
