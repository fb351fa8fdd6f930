import pytest
from django.urls import reverse

from calls.models import Call
from voicecrm.demo.seed import seed_demo

pytestmark = pytest.mark.django_db


def test_dashboard_needs_staff(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_dashboard_shows_live_figures_and_refreshes_with_htmx(client, charlie):
    seed_demo()
    Call.objects.create(channel="browser", status=Call.Status.IN_PROGRESS, from_number="+14155550999")
    client.force_login(charlie)
    page = client.get(reverse("dashboard"))
    assert page.status_code == 200
    assert page.context["stats"]["live_calls"] == 1
    assert b'hx-get="/dashboard/panels/"' in page.content
    panels = client.get(reverse("dashboard-panels"), HTTP_HX_REQUEST="true")
    assert panels.status_code == 200 and b"<html" not in panels.content
    assert b"+14155550999" in panels.content
