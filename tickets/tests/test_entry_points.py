"""Every way a ticket is opened sends ticket.created exactly once, with the policy's due times applied."""

import json

import pytest
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from agents.engine import CallContext
from agents.tests.factories import AgentConfigFactory
from agents.tools import tool_run
from calls.models import Call, WebhookDelivery, WebhookEndpoint
from calls.postcall.act import call_act
from calls.services import call_start
from tickets.models import Ticket
from tickets.tests.factories import TicketFactory, ticket_form

pytestmark = pytest.mark.django_db


@pytest.fixture
def endpoint():
    return WebhookEndpoint.objects.create(name="helpdesk", url="http://127.0.0.1:9/t", events=["ticket.created"])


def ticket_created_deliveries(ticket: Ticket) -> list[dict]:
    return [json.loads(d.body) for d in WebhookDelivery.objects.filter(event="ticket.created")
            if json.loads(d.body)["data"]["ticket"]["reference"] == ticket.reference]


def assert_sent_once(ticket: Ticket, django_capture_on_commit_callbacks) -> None:
    """One delivery written with the ticket, one send queued for after commit; edits add none."""
    assert [body["type"] for body in ticket_created_deliveries(ticket)] == ["ticket.created"]
    assert ticket.sla_due_at is not None
    with django_capture_on_commit_callbacks() as callbacks:
        ticket.subject = "Still broken"
        ticket.save()
    assert len(ticket_created_deliveries(ticket)) == 1 and callbacks == []


def test_the_admin(client, bob, policies, endpoint, django_capture_on_commit_callbacks):
    client.force_login(bob)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("admin:tickets_ticket_add"), ticket_form())
    assert response.status_code == 302 and len(callbacks) == 1
    ticket = Ticket.objects.get()
    assert_sent_once(ticket, django_capture_on_commit_callbacks)
    client.post(reverse("admin:tickets_ticket_change", args=[ticket.pk]), ticket_form(ticket, status="resolved"))
    assert Ticket.objects.get().status == "resolved" and len(ticket_created_deliveries(ticket)) == 1


def test_the_api(bob, policies, endpoint, django_capture_on_commit_callbacks):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=bob)[1]}")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/api/tickets/", {"subject": "Router dead"}, format="json")
    assert response.status_code == 201 and len(callbacks) == 1
    ticket = Ticket.objects.get()
    assert_sent_once(ticket, django_capture_on_commit_callbacks)
    client.patch(f"/api/tickets/{ticket.pk}/", {"priority": "urgent", "status": "open"}, format="json")
    assert Ticket.objects.get().priority == "urgent" and len(ticket_created_deliveries(ticket)) == 1


def test_the_agents_tool(policies, endpoint, django_capture_on_commit_callbacks):
    agent = AgentConfigFactory()
    call = call_start(channel=Call.Channel.TEXT, agent=agent)
    result = tool_run(CallContext(agent=agent, call_id=call.pk), "create_ticket", {"subject": "Router broken"})
    ticket = Ticket.objects.get(reference=result.result["reference"])
    assert ticket.call == call
    assert_sent_once(ticket, django_capture_on_commit_callbacks)
    [body] = ticket_created_deliveries(ticket)
    assert body["data"]["call"]["id"] == str(call.public_id)


def test_the_post_call_rules(policies, endpoint, django_capture_on_commit_callbacks):
    agent = AgentConfigFactory(escalation_rules=[{"when": {"intent": "complaint"}, "action": "ticket"}])
    call = call_start(channel=Call.Channel.TEXT, agent=agent)
    Call.objects.filter(pk=call.pk).update(intent="complaint", summary="The caller's router keeps dropping.")
    call_act(call=Call.objects.get(pk=call.pk))
    ticket = Ticket.objects.get(call=call)
    assert ticket.category == "complaint" and ticket.priority == "normal"
    assert_sent_once(ticket, django_capture_on_commit_callbacks)
    call_act(call=Call.objects.get(pk=call.pk))  # a re-run opens nothing new and sends nothing
    assert Ticket.objects.filter(call=call).count() == 1 and len(ticket_created_deliveries(ticket)) == 1


def test_the_service_and_the_test_data_factory(policies, endpoint, django_capture_on_commit_callbacks):
    assert_sent_once(TicketFactory(), django_capture_on_commit_callbacks)
