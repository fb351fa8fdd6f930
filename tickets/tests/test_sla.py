import datetime as dt

import pytest

from customers.tests.factories import CustomerFactory
from tickets.models import SlaPolicy, Ticket
from tickets.services import ticket_comment_add, ticket_create, ticket_set_priority

pytestmark = pytest.mark.django_db


@pytest.fixture
def policies():
    SlaPolicy.objects.create(priority="urgent", first_response_minutes=15, resolution_minutes=240)
    SlaPolicy.objects.create(priority="normal", first_response_minutes=240, resolution_minutes=1440)


def test_due_times_come_from_the_priority_policy(policies):
    ticket = ticket_create(subject="Outage", priority="urgent", customer=CustomerFactory())
    assert ticket.first_response_due_at - ticket.created_at == dt.timedelta(minutes=15)
    assert ticket.sla_due_at - ticket.created_at == dt.timedelta(hours=4)
    assert ticket.reference.startswith("T") and len(ticket.reference) == 7


def test_changing_priority_moves_due_times_from_the_opening_time(policies):
    ticket = ticket_create(subject="Slow line", priority="urgent")
    ticket_set_priority(ticket=ticket, priority="normal")
    ticket.refresh_from_db()
    assert ticket.sla_due_at - ticket.created_at == dt.timedelta(hours=24)


def test_no_policy_means_no_due_time():
    ticket = ticket_create(subject="Question", priority="low")
    assert ticket.sla_due_at is None and not ticket.is_overdue


def test_first_public_reply_stamps_first_response_once(policies, django_user_model):
    agent = django_user_model.objects.create_user("dana")
    ticket = ticket_create(subject="Bill", priority="normal")
    ticket_comment_add(ticket=ticket, author=agent, body="Looking into it", internal=True)
    assert ticket.first_responded_at is None
    first = ticket_comment_add(ticket=ticket, author=agent, body="Refund issued")
    ticket_comment_add(ticket=ticket, author=agent, body="Anything else?")
    ticket.refresh_from_db()
    assert ticket.first_responded_at == first.created_at


def test_resolving_stamps_and_reopening_clears(policies):
    ticket = ticket_create(subject="Bill", priority="normal")
    ticket.set_status(Ticket.Status.RESOLVED)
    assert ticket.resolved_at is not None
    ticket.set_status(Ticket.Status.OPEN)
    assert ticket.resolved_at is None


def test_overdue_only_while_open(policies):
    ticket = ticket_create(subject="Old", priority="urgent")
    ticket.sla_due_at = ticket.created_at - dt.timedelta(minutes=1)
    assert ticket.is_overdue
    ticket.set_status(Ticket.Status.CLOSED)
    assert not ticket.is_overdue
