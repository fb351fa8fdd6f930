"""ticket_update: the rules every entry point gets (due times follow priority, resolution stamps follow status)."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from customers.tests.factories import CustomerFactory
from tickets.models import Ticket
from tickets.selectors import ticket_list_open_for_customer
from tickets.services import ticket_create, ticket_update
from tickets.signals import ticket_created
from tickets.tests.factories import TicketFactory

pytestmark = pytest.mark.django_db


def test_raising_priority_moves_both_due_times_from_the_opening_time(policies):
    ticket = TicketFactory(priority="normal")
    ticket_update(ticket=ticket, priority="urgent")
    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.priority == "urgent"
    assert stored.first_response_due_at - stored.created_at == dt.timedelta(minutes=15)
    assert stored.sla_due_at - stored.created_at == dt.timedelta(hours=4)
    assert (ticket.first_response_due_at, ticket.sla_due_at) == (stored.first_response_due_at, stored.sla_due_at)


def test_a_priority_without_a_policy_clears_the_due_times(policies):
    ticket = TicketFactory(priority="normal")
    ticket_update(ticket=ticket, priority="low")
    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.sla_due_at is None and stored.first_response_due_at is None


def test_resolving_stamps_closing_keeps_the_stamp_and_reopening_clears_it(policies):
    ticket = TicketFactory()
    ticket_update(ticket=ticket, status=Ticket.Status.RESOLVED)
    resolved_at = Ticket.objects.get(pk=ticket.pk).resolved_at
    assert resolved_at is not None and ticket.resolved_at == resolved_at
    ticket_update(ticket=ticket, status=Ticket.Status.CLOSED)
    assert Ticket.objects.get(pk=ticket.pk).resolved_at == resolved_at
    ticket_update(ticket=ticket, status=Ticket.Status.PENDING)
    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.status == "pending" and stored.resolved_at is None and ticket.resolved_at is None


def test_changes_are_compared_with_the_stored_row_not_the_instance(policies):
    """The admin hands in an instance its form already changed."""
    ticket = TicketFactory(priority="normal")
    ticket.priority, ticket.status = "urgent", Ticket.Status.RESOLVED
    ticket_update(ticket=ticket, priority="urgent", status=Ticket.Status.RESOLVED)
    stored = Ticket.objects.get(pk=ticket.pk)
    assert stored.sla_due_at - stored.created_at == dt.timedelta(hours=4) and stored.resolved_at is not None


def test_other_fields_are_saved_without_touching_the_rules(policies, bob):
    ticket = TicketFactory(priority="normal")
    due = ticket.sla_due_at
    ticket_update(ticket=ticket, subject="Router dead", assignee=bob, category="billing")
    stored = Ticket.objects.get(pk=ticket.pk)
    assert (stored.subject, stored.assignee, stored.category, stored.sla_due_at) == ("Router dead", bob, "billing", due)
    assert stored.resolved_at is None


def test_nothing_changed_saves_nothing(policies):
    ticket = TicketFactory()
    updated_at = Ticket.objects.get(pk=ticket.pk).updated_at
    ticket_update(ticket=ticket, priority=ticket.priority, subject=ticket.subject)
    assert Ticket.objects.get(pk=ticket.pk).updated_at == updated_at


def test_bad_values_are_refused_and_change_nothing(policies):
    ticket = TicketFactory()
    with pytest.raises(ValidationError):
        ticket_update(ticket=ticket, status="lost")
    with pytest.raises(TypeError):
        ticket_update(ticket=ticket, sla_due_at=None)  # derived, never set directly
    assert Ticket.objects.get(pk=ticket.pk).status == "new"


def test_ticket_created_is_sent_once_for_a_new_ticket_and_never_for_an_edit():
    received = []

    def receiver(sender, ticket, **kwargs):
        received.append(ticket.reference)

    ticket_created.connect(receiver)
    try:
        ticket = TicketFactory()
        ticket_update(ticket=ticket, status=Ticket.Status.OPEN, priority="urgent")
        ticket.save()
    finally:
        ticket_created.disconnect(receiver)
    assert received == [ticket.reference]


def test_a_ticket_opened_resolved_is_stamped():
    ticket = TicketFactory(status=Ticket.Status.RESOLVED)
    assert ticket.resolved_at == ticket.created_at


def test_a_customers_open_tickets_newest_first(policies):
    alice_customer, other = CustomerFactory(), CustomerFactory()
    first = ticket_create(subject="First", customer=alice_customer)
    second = ticket_create(subject="Second", customer=alice_customer)
    closed = ticket_create(subject="Done", customer=alice_customer)
    ticket_update(ticket=closed, status=Ticket.Status.RESOLVED)
    ticket_create(subject="Someone else's", customer=other)
    assert list(ticket_list_open_for_customer(customer_id=alice_customer.pk)) == [second, first]
    assert list(ticket_list_open_for_customer(customer_id=alice_customer.pk, limit=1)) == [second]
