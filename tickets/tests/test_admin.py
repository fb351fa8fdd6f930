"""The ticket admin edits through the services: due times, resolution stamps, first responses."""

import datetime as dt

import pytest
from django.urls import reverse

from tickets.models import Ticket, TicketComment
from tickets.tests.factories import TicketFactory, ticket_form

pytestmark = pytest.mark.django_db


def admin_save(client, ticket: Ticket | None = None, **kwargs) -> Ticket:
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk]) if ticket else reverse("admin:tickets_ticket_add")
    response = client.post(url, ticket_form(ticket, **kwargs))
    assert response.status_code == 302, response.content.decode()[:3000]
    return Ticket.objects.get(pk=ticket.pk) if ticket else Ticket.objects.get()


def test_an_agent_adds_a_ticket_with_due_times_and_a_first_response(client, bob, policies):
    client.force_login(bob)
    ticket = admin_save(client, priority="urgent", comments=["We are sending an engineer"])
    assert ticket.first_response_due_at - ticket.created_at == dt.timedelta(minutes=15)
    assert ticket.sla_due_at - ticket.created_at == dt.timedelta(hours=4)
    comment = TicketComment.objects.get(ticket=ticket)
    assert comment.author == bob and ticket.first_responded_at == comment.created_at


def test_changing_priority_in_the_admin_moves_the_due_times(client, bob, policies):
    ticket = TicketFactory(priority="normal")
    client.force_login(bob)
    changed = admin_save(client, ticket, priority="urgent")
    assert changed.sla_due_at - changed.created_at == dt.timedelta(hours=4)
    assert changed.first_response_due_at - changed.created_at == dt.timedelta(minutes=15)


def test_resolving_in_the_admin_stamps_and_reopening_clears(client, bob, policies):
    ticket = TicketFactory()
    client.force_login(bob)
    resolved = admin_save(client, ticket, status="resolved")
    assert resolved.status == "resolved" and resolved.resolved_at is not None
    reopened = admin_save(client, resolved, status="open")
    assert reopened.status == "open" and reopened.resolved_at is None


def test_a_comment_added_on_its_own_page_counts_as_the_first_response(client, bob, charlie, policies):
    ticket = TicketFactory()
    client.force_login(bob)
    response = client.post(reverse("admin:tickets_ticketcomment_add"),
                           {"ticket": ticket.pk, "body": "Refund issued", "author": charlie.pk})
    assert response.status_code == 302, response.content.decode()[:3000]
    comment = TicketComment.objects.get()
    ticket.refresh_from_db()
    assert comment.author == bob  # whoever wrote it, not whoever the form names
    assert ticket.first_responded_at == comment.created_at
