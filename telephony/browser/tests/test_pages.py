"""The demo page and the admin's "Try this agent" link."""

import pytest
from django.test import override_settings
from django.urls import reverse

from agents.tests.factories import AgentConfigFactory
from telephony.models import Route

pytestmark = pytest.mark.django_db


def test_demo_page_embeds_the_widget_for_the_chosen_key(client, route, charlie):
    client.force_login(charlie)
    response = client.get(reverse("widget-demo"), {"key": "test-key", "mode": "ptt"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-key="test-key"' in html and 'data-mode="ptt"' in html
    assert "/static/widget/voicecrm.js" in html
    # Served at PUBLIC_BASE_URL's origin (127.0.0.1:8000 by default) the key works here;
    # the test client's host is "testserver", which is neither that nor a listed origin.
    assert "is not in the key" in html


@override_settings(PUBLIC_BASE_URL="http://testserver")
def test_demo_page_picks_an_agents_key_and_lists_all_keys(client, route, alice):
    client.force_login(alice)
    other = Route.objects.create(kind=Route.Kind.WIDGET_KEY, address="other-key", agent=AgentConfigFactory(name="Reception"))
    response = client.get(reverse("widget-demo"), {"agent": other.agent.slug})
    html = response.content.decode()
    # A key without its own origins works on our public origin, where this page is served.
    assert 'data-key="other-key"' in html and "not in the key" not in html
    assert f'value="{route.address}"' in html  # the picker, for staff


@override_settings(PUBLIC_BASE_URL="http://testserver")
def test_the_demo_page_says_a_key_with_its_own_origins_will_not_work_here(client, route, alice):
    client.force_login(alice)
    html = client.get(reverse("widget-demo"), {"key": route.address}).content.decode()
    assert 'data-key="test-key"' in html and "is not in the key" in html


def test_in_production_the_demo_page_is_for_signed_in_staff(client, route, django_user_model):
    # The test run has DEBUG off, as production does.
    response = client.get(reverse("widget-demo"), {"key": "test-key"})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/?next=/widget/demo/")
    client.force_login(django_user_model.objects.create_user("eve", "eve@example.com", "eve-password-123"))
    assert client.get(reverse("widget-demo"), {"key": "test-key"}).status_code == 302
    with override_settings(DEBUG=True):
        assert client.get(reverse("widget-demo"), {"key": "test-key"}).status_code == 200


def test_unknown_or_inactive_keys_say_so(client, route, charlie):
    client.force_login(charlie)
    response = client.get(reverse("widget-demo"), {"key": "nope"})
    assert response.status_code == 404 and "no active widget key" in response.content.decode()
    response = client.get(reverse("widget-demo"), {"agent": "nobody"})
    assert response.status_code == 404 and "has no active widget key" in response.content.decode()


def test_agent_admin_links_to_the_widget_or_to_adding_a_key(client, alice, route):
    keyless = AgentConfigFactory(name="Dispatch")
    client.force_login(alice)
    html = client.get(reverse("admin:agents_agentconfig_changelist")).content.decode()
    assert f'href="/widget/demo/?agent={route.agent.slug}"' in html and "Try this agent" in html
    assert "Add a widget key to try it" in html
    html = client.get(reverse("admin:agents_agentconfig_change", args=[route.agent.pk])).content.decode()
    assert "Try this agent" in html
    html = client.get(reverse("admin:agents_agentconfig_change", args=[keyless.pk])).content.decode()
    assert f"/admin/telephony/route/add/?kind=widget_key&amp;agent={keyless.pk}" in html
