"""Escalation rules as CRM actions: each once per call, whatever re-runs or redeliveries happen."""

import pytest
from django.contrib.auth.models import Group
from django.core import mail

from calls.models import Call, CallEvent
from calls.postcall.act import call_act, rule_matches
from calls.postcall.pipeline import analysis_run_execute_sync
from calls.services import call_finalize
from calls.tests.postcall import scenarios
from calls.tests.postcall.conftest import call_with_turns, consultation_service, demo_agent

pytestmark = pytest.mark.django_db


def analyzed(scenario) -> Call:
    call = call_with_turns(scenario)
    call_finalize(call_id=call.pk, end_reason="agent_end")
    analysis_run_execute_sync(run=call.analysis_runs.get())
    call.refresh_from_db()
    return call


@pytest.fixture
def supervisors(django_user_model):
    sam = django_user_model.objects.create_user("sam", "sam@example.com", "x", is_staff=True)
    sam.groups.add(Group.objects.get(name="Supervisor"))
    django_user_model.objects.create_user("bob", "bob@example.com", "x", is_staff=True)  # not a supervisor
    django_user_model.objects.create_superuser("root", "root@example.com", "x")
    return sam


def test_an_injury_opens_one_urgent_ticket_and_alerts_supervisors_once(broker, supervisors):
    from tickets.models import Ticket

    call = analyzed(scenarios.EMERGENCY)
    ticket = Ticket.objects.get(call=call)
    assert (ticket.priority, ticket.category) == ("urgent", "emergency")
    assert ticket.sla_due_at is None or ticket.sla_due_at > ticket.created_at
    event = CallEvent.objects.get(call=call, idempotency_key="ticket")
    assert event.kind == "escalation" and event.name == "urgent_ticket" and event.payload["ticket"] == ticket.reference
    # Both dispatch rules matched (injury and collision): one ticket carries both.
    assert event.payload["rules"] == [{"injury_status": ["minor", "serious"]},
                                      {"emergency_type": ["collision", "fire", "medical", "security"]}]
    assert len(mail.outbox) == 1 and sorted(mail.outbox[0].to) == ["root@example.com", "sam@example.com"]
    assert ticket.reference in mail.outbox[0].subject

    again = call_act(call=Call.objects.get(pk=call.pk))
    assert Ticket.objects.filter(call=call).count() == 1 and len(mail.outbox) == 1
    assert [a.get("already_done") for a in again["actions"]] == [True, True]


def test_a_ticket_the_agent_opened_during_the_call_is_kept_and_raised(broker):
    from tickets.models import Ticket
    from tickets.services import ticket_create

    call = call_with_turns(scenarios.SUPPORT)
    opened = ticket_create(subject="Missed appointment", category="complaint", call=call, customer=call.customer)
    call_finalize(call_id=call.pk, end_reason="agent_end")
    analysis_run_execute_sync(run=call.analysis_runs.get())

    assert list(Ticket.objects.filter(call=call)) == [opened]
    opened.refresh_from_db()
    assert opened.priority == "high"  # the support agent's complaint rule
    event = CallEvent.objects.get(call=call, idempotency_key="ticket")
    assert event.payload["adopted"] is True and event.payload["created"] is False


def test_a_qualified_lead_gets_one_follow_up_appointment(broker):
    from customers.models import Appointment, Customer

    consultation_service()
    call = analyzed(scenarios.LEAD)
    appointment = Appointment.objects.get(source_call=call)
    assert appointment.service.slug == "consultation" and appointment.status == "booked"
    customer = appointment.customer
    assert (customer.first_name, customer.last_name, customer.email, customer.status) == (
        "Maria", "Garcia", "maria.garcia@example.com", Customer.Status.PROSPECT)
    assert Call.objects.get(pk=call.pk).customer == customer

    call_act(call=Call.objects.get(pk=call.pk))
    assert Appointment.objects.filter(source_call=call).count() == 1
    assert Customer.objects.filter(email="maria.garcia@example.com").count() == 1


def test_a_missing_service_is_reported_not_raised(broker):
    call = analyzed(scenarios.LEAD)
    assert call.analysis_status == "done"
    error = CallEvent.objects.get(call=call, kind="error", name="follow_up_appointment")
    assert error.payload == {"error": "no active service 'consultation'"}


def verified_during_the_call(call: Call, customer) -> None:
    """What the dialog records when the caller passes verification (agents/tools/base.py)."""
    CallEvent.objects.create(call=call, kind="action", name="customer_verified",
                             payload={"customer_id": customer.pk, "method": "verify_customer"})


def test_changed_contact_details_update_the_customer_once(broker):
    from customers.models import Customer

    customer = Customer.objects.create(account_number="55501", first_name="Maria", last_name="Garcia",
                                       email="old@example.com", phone="+14155550100")
    call = call_with_turns(scenarios.LEAD)
    Call.objects.filter(pk=call.pk).update(customer=customer)
    verified_during_the_call(call, customer)
    call_finalize(call_id=call.pk, end_reason="agent_end")
    analysis_run_execute_sync(run=call.analysis_runs.get())

    customer.refresh_from_db()
    assert customer.email == "maria.garcia@example.com"
    event = CallEvent.objects.get(call=call, name="update_customer")
    assert event.payload["changes"] == {"email": {"before": "old@example.com", "after": "maria.garcia@example.com"}}
    call_act(call=Call.objects.get(pk=call.pk))
    assert CallEvent.objects.filter(call=call, name="update_customer").count() == 1


def test_contact_details_from_a_caller_who_was_not_verified_change_nothing(broker):
    from customers.models import Customer

    # The probe: an anonymous caller said this customer's phone number and first name, and the
    # e-mail address they gave replaced the customer's.
    customer = Customer.objects.create(account_number="55503", first_name="Maria", last_name="Garcia",
                                       email="old@example.com", phone="+14155550100")
    call = call_with_turns(scenarios.LEAD)
    Call.objects.filter(pk=call.pk).update(customer=customer)
    # Verified as someone else does not count either.
    other = Customer.objects.create(account_number="55504", first_name="Ana")
    verified_during_the_call(call, other)
    call_finalize(call_id=call.pk, end_reason="agent_end")
    analysis_run_execute_sync(run=call.analysis_runs.get())

    customer.refresh_from_db()
    assert customer.email == "old@example.com"
    assert not CallEvent.objects.filter(call=call, kind="action", name="update_customer").exists()
    error = CallEvent.objects.get(call=call, kind="error", name="update_customer")
    assert "not verified" in error.payload["error"] and error.payload["changes"]["email"]["after"] == "maria.garcia@example.com"
    call_act(call=Call.objects.get(pk=call.pk))
    assert CallEvent.objects.filter(call=call, name="update_customer").count() == 1


def test_no_follow_up_is_booked_onto_a_customer_the_caller_was_not_verified_as(broker):
    from customers.models import Appointment, Customer

    consultation_service()
    customer = Customer.objects.create(account_number="55505", first_name="Maria", phone="+14155550100")
    call = call_with_turns(scenarios.LEAD)
    Call.objects.filter(pk=call.pk).update(customer=customer)
    call_finalize(call_id=call.pk, end_reason="agent_end")
    analysis_run_execute_sync(run=call.analysis_runs.get())
    assert not Appointment.objects.filter(customer=customer).exists()
    assert "not verified" in CallEvent.objects.get(call=call, kind="error", name="follow_up_appointment").payload["error"]

    # Verified during the call: booked.
    verified_during_the_call(call, customer)
    call_act(call=Call.objects.get(pk=call.pk))
    assert Appointment.objects.get(source_call=call).customer == customer


def test_contact_updates_can_be_switched_off_per_agent(broker):
    from customers.models import Customer

    agent = demo_agent("leads")
    agent.escalation_rules = [*agent.escalation_rules, {"action": "update_customer", "enabled": False}]
    agent.save()
    customer = Customer.objects.create(account_number="55502", first_name="Maria", email="old@example.com")
    call = call_with_turns(scenarios.LEAD)
    Call.objects.filter(pk=call.pk).update(customer=customer)
    call_finalize(call_id=call.pk, end_reason="agent_end")
    analysis_run_execute_sync(run=call.analysis_runs.get())
    customer.refresh_from_db()
    assert customer.email == "old@example.com"


def test_a_check_in_without_trouble_takes_no_action(broker):
    from tickets.models import Ticket

    call = analyzed(scenarios.CHECK_IN)
    assert not Ticket.objects.filter(call=call).exists()
    assert not CallEvent.objects.filter(call=call).exclude(idempotency_key="").exists()


@pytest.mark.parametrize("when,facts,expected", [
    ({"qualified": [True]}, {"qualified": True}, True),
    ({"qualified": [True]}, {"qualified": 1}, False),
    ({"qualified": [True]}, {}, False),
    ({"injury_status": ["minor", "serious"]}, {"injury_status": "none"}, False),
    ({"debt_amount": {"gte": 10000}}, {"debt_amount": 25000}, True),
    ({"debt_amount": {"gte": 10000, "lt": 20000}}, {"debt_amount": 25000}, False),
    ({"debt_amount": {"gte": 10000}}, {"debt_amount": "lots"}, False),
    ({"email": {"set": True}}, {"email": "a@b.co"}, True),
    ({"intent": "complaint", "sentiment": ["negative"]}, {"intent": "complaint", "sentiment": "negative"}, True),
    ({}, {}, True),
])
def test_rule_conditions(when, facts, expected):
    assert rule_matches(when, facts) is expected
