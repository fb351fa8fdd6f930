"""/api/tickets/ creates and edits through the services: PATCH and PUT keep due times and resolution right."""

import datetime as dt

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from customers.tests.factories import CustomerFactory
from tickets.models import Ticket
from tickets.tests.factories import TicketFactory

pytestmark = pytest.mark.django_db


def api_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


def patch(user, ticket: Ticket, **fields) -> dict:
    response = api_as(user).patch(f"/api/tickets/{ticket.pk}/", fields, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_create_applies_the_policy_and_takes_status_and_assignee(bob, policies):
    customer = CustomerFactory()
    response = api_as(bob).post("/api/tickets/", {
        "subject": "Outage", "priority": "urgent", "customer": customer.pk, "assignee": bob.pk, "status": "open",
    }, format="json")
    assert response.status_code == 201, response.content
    ticket = Ticket.objects.get()
    assert (ticket.customer, ticket.assignee, ticket.status) == (customer, bob, "open")
    assert ticket.sla_due_at - ticket.created_at == dt.timedelta(hours=4)
    assert response.json()["sla_due_at"] is not None and response.json()["reference"] == ticket.reference


def test_patching_priority_moves_both_due_times(bob, policies):
    ticket = TicketFactory(priority="normal")
    body = patch(bob, ticket, priority="urgent")
    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.sla_due_at - stored.created_at == dt.timedelta(hours=4)
    assert stored.first_response_due_at - stored.created_at == dt.timedelta(minutes=15)
    assert body["priority"] == "urgent" and dt.datetime.fromisoformat(body["sla_due_at"]) == stored.sla_due_at


def test_patching_status_stamps_resolution_and_reopening_clears_it(bob, policies):
    ticket = TicketFactory()
    body = patch(bob, ticket, status="resolved")
    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.resolved_at is not None and body["resolved_at"] is not None
    body = patch(bob, ticket, status="open")
    assert Ticket.objects.get(pk=ticket.pk).resolved_at is None and body["resolved_at"] is None


def test_put_goes_through_the_same_rules(bob, policies):
    ticket = TicketFactory(priority="normal")
    response = api_as(bob).put(f"/api/tickets/{ticket.pk}/", {
        "subject": ticket.subject, "category": "technical", "priority": "urgent", "status": "closed",
    }, format="json")
    assert response.status_code == 200, response.content
    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.sla_due_at - stored.created_at == dt.timedelta(hours=4) and stored.resolved_at is not None


def test_derived_fields_cannot_be_written(bob, policies):
    ticket = TicketFactory(priority="normal")
    due = ticket.sla_due_at
    patch(bob, ticket, sla_due_at="2000-01-01T00:00:00Z", resolved_at="2000-01-01T00:00:00Z")
    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.sla_due_at == due and stored.resolved_at is None


def test_a_viewer_cannot_edit(charlie, policies):
    ticket = TicketFactory()
    response = api_as(charlie).patch(f"/api/tickets/{ticket.pk}/", {"status": "resolved"}, format="json")
    assert response.status_code == 403
    assert Ticket.objects.get(pk=ticket.pk).status == "new"
