"""The customers' "Call now" admin action: pick an agent and context, one outbound call per customer."""

import pytest

from agents.tests.factories import AgentConfigFactory
from calls.models import Call
from customers.tests.factories import CustomerFactory
from telephony import fake
from telephony.models import Route

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fake_provider(settings, monkeypatch):
    settings.TELEPHONY_PROVIDERS = {"twilio": "telephony.fake.FakeProvider"}
    monkeypatch.setattr("telephony.outbound._enqueue_dial", lambda call_id: None)  # dialing is test_outbound's


@pytest.fixture
def dispatch():
    agent = AgentConfigFactory(slug="dispatch", name="Dispatch")
    Route.objects.create(kind=Route.Kind.PHONE_NUMBER, address="+14155550100", agent=agent)
    AgentConfigFactory(slug="lineless", name="No line")
    return agent


def action(customers, **extra):
    return {"action": "call_now", "_selected_action": [c.pk for c in customers], **extra}


def test_the_action_asks_for_an_agent_with_a_line_then_places_one_call_each(client, sam, dispatch):
    ada, sam_driver = CustomerFactory(phone="+14155550123", first_name="Ada"), CustomerFactory(phone="+14155550124")
    client.force_login(sam)
    page = client.post("/admin/customers/customer/", action([ada, sam_driver]))
    assert page.status_code == 200 and b"Call now" in page.content
    assert list(page.context["form"].fields["agent"].queryset) == [dispatch]  # the agent without a line is not offered
    done = client.post("/admin/customers/customer/", action([ada, sam_driver], apply="1", agent=dispatch.pk,
                                                             variables="load_number = L-1042\n\n"), follow=True)
    assert b"Placed 2 call(s)" in done.content
    calls = Call.objects.order_by("to_number")
    assert [c.to_number for c in calls] == ["+14155550123", "+14155550124"]
    assert calls[0].variables == {"first_name": "Ada", "load_number": "L-1042"} and calls[0].customer == ada
    assert {c.status for c in calls} == {Call.Status.QUEUED} and fake.outbox == []


def test_bad_context_is_shown_on_the_form_and_nothing_is_placed(client, sam, dispatch):
    client.force_login(sam)
    page = client.post("/admin/customers/customer/", action([CustomerFactory()], apply="1", agent=dispatch.pk,
                                                             variables="no equals sign"))
    assert page.status_code == 200 and b"Line 1: name=value." in page.content
    assert not Call.objects.exists()


def test_a_customer_without_a_number_is_reported_not_called(client, sam, dispatch):
    client.force_login(sam)
    done = client.post("/admin/customers/customer/", action([CustomerFactory(phone="")], apply="1", agent=dispatch.pk),
                       follow=True)
    assert b"Not called:" in done.content and not Call.objects.exists()


def test_only_roles_that_place_calls_see_the_action(client, charlie, bob):
    CustomerFactory()  # the changelist shows its actions only when it lists something
    client.force_login(charlie)
    assert b"call_now" not in client.get("/admin/customers/customer/").content
    client.force_login(bob)  # Agents place calls
    assert b"call_now" in client.get("/admin/customers/customer/").content
