import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from calls.models import Call, Turn
from customers.tests.factories import CustomerFactory
from tickets.models import SlaPolicy, Ticket

pytestmark = pytest.mark.django_db


def api_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


def test_anonymous_requests_are_refused():
    assert APIClient().get("/api/customers/").status_code == 401


def test_viewer_reads_but_cannot_write(charlie):
    CustomerFactory(phone="+14155550123")
    client = api_as(charlie)
    listing = client.get("/api/customers/", {"phone": "+14155550123"})
    assert listing.status_code == 200 and listing.json()["count"] == 1
    response = client.post("/api/customers/", {"first_name": "Eve"}, format="json")
    assert response.status_code == 403


def test_agent_creates_a_ticket_with_sla(bob):
    SlaPolicy.objects.create(priority="high", first_response_minutes=60, resolution_minutes=480)
    customer = CustomerFactory()
    response = api_as(bob).post(
        "/api/tickets/", {"subject": "Router dead", "priority": "high", "category": "technical", "customer": customer.pk},
        format="json",
    )
    assert response.status_code == 201, response.content
    ticket = Ticket.objects.get()
    assert response.json()["reference"] == ticket.reference and ticket.sla_due_at is not None


def test_bad_input_gets_a_clear_error_and_changes_nothing(sam):
    response = api_as(sam).post("/api/customers/", {"first_name": "Eve", "phone": "12"}, format="json")
    assert response.status_code == 400 and "phone" in response.json()
    assert not CustomerFactory._meta.model.objects.exists()


def test_call_detail_includes_turns_by_public_id(charlie):
    call = Call.objects.create(channel="browser", status="completed")
    Turn.objects.create(call=call, index=0, speaker="agent", text="Hello", voice_to_voice_ms=512)
    response = api_as(charlie).get(f"/api/calls/{call.public_id}/")
    assert response.status_code == 200
    assert response.json()["turns"][0]["voice_to_voice_ms"] == 512
    assert api_as(charlie).get(f"/api/calls/{call.pk}/").status_code == 404
