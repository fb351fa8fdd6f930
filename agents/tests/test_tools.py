import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.engine import CallContext
from agents.recorder import MemoryRecorder
from agents.tests.factories import (
    AgentConfigFactory,
    AppointmentFactory,
    CustomerFactory,
    KnowledgeEntryFactory,
    OrderFactory,
    ServiceFactory,
)
from agents.tools import REGISTRY, tool_run
from calls.models import Call, CallEvent, InformationRecord
from calls.recorder import CallRecorderService
from calls.services import call_start
from customers.models import Appointment, Customer
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

TOOLS = [
    "find_customer", "verify_customer", "get_account_summary", "create_ticket", "create_customer_account",
    "get_appointments", "check_availability", "create_appointment", "reschedule_appointment", "cancel_appointment",
    "get_orders", "search_knowledge_base", "share_information", "transfer_to_human", "end_call",
]


@pytest.fixture
def agent():
    return AgentConfigFactory()


@pytest.fixture
def call(agent):
    return call_start(channel=Call.Channel.TEXT, agent=agent)


@pytest.fixture
def ctx(agent, call):
    return CallContext(agent=agent, call_id=call.pk, recorder=CallRecorderService(call))


def verified(ctx, customer):
    ctx.customer_id = customer.pk
    ctx.state["identity"] = {"customer_id": customer.pk, "verified": True, "attempts": 0, "locked": False}
    return ctx


def tomorrow_at(hour):
    day = timezone.localdate() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=timezone.get_current_timezone())


def test_the_registry_has_the_fifteen_tools_with_valid_openai_schemas():
    assert sorted(REGISTRY) == sorted(TOOLS)
    for tool in REGISTRY.values():
        schema = tool.openai_schema()
        assert schema["type"] == "function" and schema["function"]["parameters"]["type"] == "object"
        assert tool.description


def test_every_tool_call_is_logged_with_arguments_and_result(ctx, call):
    customer = CustomerFactory(account_number="55501")
    result = tool_run(ctx, "find_customer", {"account_number": "55501"})
    assert result.ok and result.result == {"found": True, "verified": False}
    events = list(CallEvent.objects.filter(call=call, kind__in=["tool_call", "tool_result"]).order_by("id"))
    assert [(e.kind, e.name) for e in events] == [("tool_call", "find_customer"), ("tool_result", "find_customer")]
    assert events[0].payload == {"arguments": {"account_number": "55501"}}
    assert events[1].payload["ok"] is True and events[1].payload["result"]["found"] is True
    call.refresh_from_db()
    assert call.customer == customer  # on the customer's timeline


def test_a_tool_the_agent_is_not_allowed_is_refused_and_logged(call):
    agent = AgentConfigFactory(enabled_tools=["find_customer"])
    ctx = CallContext(agent=agent, call_id=call.pk, recorder=CallRecorderService(call))
    result = tool_run(ctx, "create_ticket", {"subject": "Hello there"})
    assert not result.ok and result.result["error"] == "not_allowed"
    assert not Ticket.objects.exists()
    assert CallEvent.objects.filter(call=call, kind="tool_result", name="create_ticket", payload__ok=False).exists()


def test_arguments_are_validated_against_the_schema(ctx):
    result = tool_run(ctx, "find_customer", {"account_number": "12ab"})
    assert not result.ok and result.result["error"] == "invalid_arguments" and "account_number" in result.result["message"]
    assert tool_run(ctx, "find_customer", {}).result["error"] == "invalid_arguments"
    assert tool_run(ctx, "create_ticket", {"subject": "ok subject", "priority": "whenever"}).result["error"] == "invalid_arguments"
    assert tool_run(ctx, "no_such_tool", {}).result["error"] == "unknown_tool"


def test_find_customer_by_phone_and_by_name_and_postcode(ctx):
    customer = CustomerFactory(phone="+14155550999", last_name="Hopper", first_name="Grace", postcode="10001")
    assert tool_run(ctx, "find_customer", {"phone": "(415) 555-0999"}).result["found"] and ctx.customer_id == customer.pk
    assert tool_run(ctx, "find_customer", {"name": "Grace Hopper", "postcode": "10001"}).result["found"]
    assert not tool_run(ctx, "find_customer", {"name": "Grace Hopper", "postcode": "99999"}).result["found"]


def test_account_tools_need_a_verified_caller(ctx):
    customer = CustomerFactory(balance=Decimal("42.50"))
    assert tool_run(ctx, "get_account_summary", {}).result["error"] == "not_identified"
    ctx.customer_id = customer.pk
    assert tool_run(ctx, "get_account_summary", {}).result["error"] == "not_verified"
    summary = tool_run(verified(ctx, customer), "get_account_summary", {})
    assert summary.ok and summary.result["balance"] == "42.50" and summary.result["balance_text"] == "$42.50 owing"


# Every tool that reads a customer's private data or changes their account. A new tool that does
# either belongs here, with requires="verified".
GUARDED = ["cancel_appointment", "create_appointment", "get_account_summary", "get_appointments", "get_orders",
           "reschedule_appointment"]


def test_the_tools_that_read_or_change_an_account_all_need_a_verified_caller():
    assert sorted(name for name, tool in REGISTRY.items() if tool.requires == "verified") == GUARDED
    assert REGISTRY["verify_customer"].requires == "identified"


@pytest.mark.parametrize("name", GUARDED)
def test_an_identified_caller_who_is_not_verified_gets_nothing_and_changes_nothing(call, name):
    customer = CustomerFactory()
    appointment = AppointmentFactory(customer=customer, starts_at=tomorrow_at(11), ends_at=tomorrow_at(12))
    OrderFactory(customer=customer, number="NW7", tracking_number="1Z7")
    ServiceFactory(name="Repair visit", slug="repair-visit")
    # Even a flow that says verification is not required: the tools check for themselves.
    agent = AgentConfigFactory.build(flow={"identity": {"require_verification": False}, "start": "a", "steps": {}})
    ctx = CallContext(agent=agent, call_id=call.pk, recorder=CallRecorderService(call))
    tool_run(ctx, "find_customer", {"account_number": customer.account_number})
    args = {"cancel_appointment": {"appointment_id": appointment.pk},
            "reschedule_appointment": {"appointment_id": appointment.pk, "starts_at": tomorrow_at(14).isoformat()},
            "create_appointment": {"service": "repair-visit", "starts_at": tomorrow_at(15).isoformat()}}.get(name, {})
    result = tool_run(ctx, name, args)
    assert not result.ok and result.result["error"] == "not_verified"
    assert "NW7" not in str(result.result) and "1Z7" not in str(result.result)
    assert Appointment.objects.get(pk=appointment.pk).status == "booked" and Appointment.objects.count() == 1


def test_find_customer_says_nothing_about_the_record(ctx):
    customer = CustomerFactory(account_number="55509", first_name="Hedy", phone="+14155550909")
    for args in ({"account_number": "55509"}, {"phone": "+14155550909"}, {"name": f"Hedy {customer.last_name}", "postcode": customer.postcode}):
        result = tool_run(ctx, "find_customer", args)
        assert result.result == {"found": True, "verified": False} and "Hedy" not in str(result.result)


def test_verification_locks_after_three_failures_and_opens_one_ticket(ctx, call):
    customer = CustomerFactory(date_of_birth=dt.date(1985, 5, 5))
    tool_run(ctx, "find_customer", {"account_number": customer.account_number})
    first = tool_run(ctx, "verify_customer", {"date_of_birth": "1990-01-01"})
    assert first.ok and first.result == {"verified": False, "locked": False, "attempts_left": 2}
    tool_run(ctx, "verify_customer", {"date_of_birth": "1990-01-02"})
    third = tool_run(ctx, "verify_customer", {"date_of_birth": "1990-01-03"})
    assert third.result["locked"] and third.result["ticket"]
    # Even the right answer is refused now, and no second ticket is opened.
    again = tool_run(ctx, "verify_customer", {"date_of_birth": "1985-05-05"})
    assert again.result["verified"] is False and again.result["locked"] is True
    ticket = Ticket.objects.get()
    assert ticket.customer == customer and ticket.call == call and ticket.priority == "high" and ticket.category == "account"
    assert tool_run(ctx, "get_account_summary", {}).result["error"] == "verification_locked"


def new_call_ctx(agent, n: int) -> CallContext:
    # Alternating channels: the count is the customer's, whichever way the guesses come.
    call = call_start(channel=[Call.Channel.BROWSER, Call.Channel.TEXT][n % 2], agent=agent)
    return CallContext(agent=agent, call_id=call.pk, recorder=CallRecorderService(call))


def test_failures_count_per_customer_across_calls_and_a_lockout_opens_one_ticket_per_window(agent):
    customer = CustomerFactory(date_of_birth=dt.date(1985, 5, 5))

    calls = iter(range(100))

    def guess(day: str):
        ctx = new_call_ctx(agent, next(calls))  # every guess on a new call, which used to get three fresh guesses
        tool_run(ctx, "find_customer", {"account_number": customer.account_number})
        return ctx, tool_run(ctx, "verify_customer", {"date_of_birth": day})

    assert guess("1990-01-01")[1].result["attempts_left"] == 2
    assert guess("1990-01-02")[1].result["attempts_left"] == 1
    _, third = guess("1990-01-03")
    assert third.result["locked"] and third.result["ticket"]
    # Later calls in the window: locked from the start, the right answer refused, no new ticket.
    ctx, fourth = guess("1985-05-05")
    assert ctx.state["identity"]["locked"] is True
    assert fourth.result == {"verified": False, "locked": True, "attempts_left": 0, "ticket": ""}
    assert Ticket.objects.count() == 1
    # A new window after the lockout ends: its lockout opens its own ticket.
    Customer.objects.filter(pk=customer.pk).update(verification_locked_until=timezone.now() - dt.timedelta(seconds=1))
    for day in ("1990-01-04", "1990-01-05", "1990-01-06"):
        _, last = guess(day)
    assert last.result["ticket"] and Ticket.objects.count() == 2


def test_verify_customer_accepts_the_right_facts_and_tells_the_call(ctx, call):
    customer = CustomerFactory(date_of_birth=dt.date(1985, 5, 5), postcode="94103", last_name="Lovelace")
    tool_run(ctx, "find_customer", {"account_number": customer.account_number})
    assert not CallEvent.objects.filter(call=call, name="customer_verified").exists()
    assert tool_run(ctx, "verify_customer", {"date_of_birth": "1985-05-05", "postcode": "94103"}).result["verified"]
    assert ctx.state["identity"]["verified"]
    event = CallEvent.objects.get(call=call, name="customer_verified")
    assert event.kind == "action" and event.payload == {"customer_id": customer.pk, "method": "verify_customer"}


def test_create_ticket_links_the_customer_only_once_verified(ctx, call):
    customer = CustomerFactory()
    ctx.customer_id = customer.pk
    unverified = tool_run(ctx, "create_ticket", {"subject": "Router broken", "category": "technical"})
    ticket = Ticket.objects.get(reference=unverified.result["reference"])
    assert (ticket.customer, ticket.call) == (None, call)
    result = tool_run(verified(ctx, customer), "create_ticket", {"subject": "Router broken", "category": "technical", "priority": "high"})
    ticket = Ticket.objects.get(reference=result.result["reference"])
    assert (ticket.customer, ticket.call, ticket.category, ticket.priority) == (customer, call, "technical", "high")


def test_create_customer_account_uses_the_caller_id_and_identifies_the_caller(agent, call):
    ctx = CallContext(agent=agent, call_id=call.pk, caller_number="+14155550777", recorder=CallRecorderService(call))
    result = tool_run(ctx, "create_customer_account", {"first_name": "kenji", "last_name": "tanaka", "postcode": "94110"})
    customer = Customer.objects.get(pk=result.result["customer_id"])
    assert (customer.first_name, customer.phone, customer.status) == ("Kenji", "+14155550777", "prospect")
    # The caller just created the record: it is theirs.
    assert ctx.customer_id == customer.pk and ctx.state["identity"]["verified"]
    assert CallEvent.objects.filter(call=call, name="customer_verified", payload__method="created").exists()
    again = tool_run(ctx, "create_customer_account", {"first_name": "Kenji"})
    assert again.result["created"] is False and Customer.objects.count() == 1
    bad = tool_run(ctx, "create_customer_account", {"first_name": "X", "phone": "not a phone"})
    assert not bad.ok and bad.result["error"] == "rejected"


def test_a_phone_number_and_first_name_of_an_existing_customer_only_identify_the_caller(agent, call):
    customer = CustomerFactory(first_name="Olga", phone="+14155550778", account_number="55778", balance=Decimal("9.99"))
    ctx = CallContext(agent=agent, call_id=call.pk, recorder=CallRecorderService(call))
    result = tool_run(ctx, "create_customer_account", {"first_name": "olga", "phone": "+1 415 555 0778"})
    assert result.ok and result.result == {"created": False, "existing": True, "verified": False}
    assert "55778" not in str(result.result)
    assert ctx.customer_id == customer.pk and not ctx.state["identity"]["verified"]
    assert not CallEvent.objects.filter(call=call, name="customer_verified").exists()
    assert tool_run(ctx, "get_account_summary", {}).result["error"] == "not_verified"


def test_appointment_tools_book_move_and_cancel(ctx):
    customer = CustomerFactory()
    service = ServiceFactory(name="Repair visit", slug="repair-visit")
    verified(ctx, customer)
    availability = tool_run(ctx, "check_availability", {"service": "repair", "date": tomorrow_at(9).date().isoformat(), "time": "10:00"})
    assert availability.ok and availability.result["requested_available"] and availability.result["service"] == "Repair visit"
    booked = tool_run(ctx, "create_appointment", {"service": "repair-visit", "starts_at": tomorrow_at(10).isoformat()})
    assert booked.ok and "10:00 AM" in booked.result["starts_at_text"]
    clash = tool_run(ctx, "create_appointment", {"service": "repair-visit", "starts_at": tomorrow_at(10).isoformat()})
    assert not clash.ok and "already has an appointment" in clash.result["message"]
    listed = tool_run(ctx, "get_appointments", {})
    assert listed.result["count"] == 1
    appointment_id = listed.result["next"]["id"]
    moved = tool_run(ctx, "reschedule_appointment", {"appointment_id": appointment_id, "starts_at": tomorrow_at(14).isoformat()})
    assert moved.ok and Appointment.objects.get(pk=appointment_id).status == "rescheduled"
    assert tool_run(ctx, "cancel_appointment", {"appointment_id": appointment_id}).ok
    assert Appointment.objects.get(pk=appointment_id).status == "cancelled"
    assert service.pk


def test_appointment_tools_only_touch_the_callers_own_appointments(ctx):
    mine, theirs = CustomerFactory(), CustomerFactory()
    other = AppointmentFactory(customer=theirs, starts_at=tomorrow_at(11), ends_at=tomorrow_at(12))
    verified(ctx, mine)
    result = tool_run(ctx, "cancel_appointment", {"appointment_id": other.pk})
    assert not result.ok and result.result["error"] == "not_found"
    assert Appointment.objects.get(pk=other.pk).status == "booked"


def test_get_orders_reads_the_database(ctx):
    customer = CustomerFactory()
    OrderFactory(customer=customer, number="NW1", status="shipped", tracking_number="1Z9")
    OrderFactory(number="NW2")  # someone else's
    result = tool_run(verified(ctx, customer), "get_orders", {})
    assert result.result["count"] == 1 and "NW1" in result.result["latest"]["text"] and "1Z9" in result.result["latest"]["text"]
    assert tool_run(ctx, "get_orders", {"order_number": "NW2"}).result["count"] == 0


def test_search_knowledge_base(ctx):
    KnowledgeEntryFactory(title="How do I reset my router?", answer="Unplug it for thirty seconds.", tags="router")
    found = tool_run(ctx, "search_knowledge_base", {"query": "how can I restart the router"})
    assert found.result["found"] and found.result["answer"] == "Unplug it for thirty seconds."
    assert not tool_run(ctx, "search_knowledge_base", {"query": "do you sell pizza"}).result["found"]


def test_shared_information_goes_on_the_customer_only_once_verified(ctx, call):
    customer = CustomerFactory()
    ctx.customer_id = customer.pk
    tool_run(ctx, "share_information", {"category": "contact_details", "items": {"email": "new@example.com"}})
    assert InformationRecord.objects.get(call=call, key="email").customer is None
    tool_run(verified(ctx, customer), "share_information", {"category": "contact_details", "items": {"email": "new@example.com"}})
    assert InformationRecord.objects.get(call=call, key="email").customer == customer


def test_share_information_records_by_category(ctx, call):
    result = tool_run(ctx, "share_information", {"category": "debt_info", "items": {"debt_amount": 15000, "secured": False, "empty": ""}})
    assert result.result["saved"] == 2
    rows = dict(InformationRecord.objects.filter(call=call).values_list("key", "value"))
    assert rows == {"debt_amount": "15000", "secured": "no"}
    tool_run(ctx, "share_information", {"category": "debt_info", "items": {"debt_amount": 16000}})
    assert InformationRecord.objects.get(call=call, key="debt_amount").value == "16000"


def test_transfer_and_end_call(ctx, call, agent):
    transfer = tool_run(ctx, "transfer_to_human", {"reason": "caller_request"})
    assert transfer.ok and transfer.result["target"] == agent.transfer_target
    assert CallEvent.objects.filter(call=call, kind="transfer").exists()
    assert tool_run(ctx, "end_call", {"reason": "resolved"}).result == {"ended": True, "reason": "resolved"}
    no_target = CallContext(agent=AgentConfigFactory(transfer_target=""), call_id=None)
    assert tool_run(no_target, "transfer_to_human", {}).result["error"] == "no_transfer_target"


def test_a_failing_tool_rolls_back_its_writes_and_its_state(ctx, monkeypatch):
    from agents.tools import base
    from agents.tools.base import ToolError

    def half_done(ctx_, args):
        Customer.objects.create(first_name="Half", account_number="99990")
        ctx_.state["dirty"] = True
        raise ToolError("boom", "It broke.")

    monkeypatch.setitem(base.REGISTRY, "end_call", base.REGISTRY["end_call"].__class__(
        name="end_call", description="x", parameters={"type": "object"}, func=half_done,
        validator=base.REGISTRY["end_call"].validator.__class__({"type": "object"})))
    result = tool_run(ctx, "end_call", {})
    assert not result.ok and result.result == {"error": "boom", "message": "It broke."}
    assert not Customer.objects.filter(account_number="99990").exists() and "dirty" not in ctx.state


def test_a_transfer_is_logged_once_per_call(ctx, call, agent):
    tool_run(ctx, "transfer_to_human", {"reason": "caller_request"})
    # The channel that carries the transfer out reports it too; the call keeps one.
    CallRecorderService(call).transfer_requested(target=agent.transfer_target, reason="caller_request")
    event = CallEvent.objects.get(call=call, kind="transfer")
    assert event.payload == {"target": agent.transfer_target, "reason": "caller_request"}


def test_tools_report_to_the_recorder_and_write_no_call_records(agent):
    recorder = MemoryRecorder()
    ctx = CallContext(agent=agent, recorder=recorder)
    customer = CustomerFactory(account_number="55502")
    tool_run(ctx, "find_customer", {"account_number": "55502"})
    tool_run(ctx, "share_information", {"category": "qualification", "items": {"employed": True, "income": 4000, "skip": None}})
    tool_run(ctx, "transfer_to_human", {"reason": "caller_request"})
    assert recorder.customers == [(customer.pk, "account_number")]
    assert [(kind, name) for kind, name, _ in recorder.events] == [
        ("tool_call", "find_customer"), ("tool_result", "find_customer"),
        ("tool_call", "share_information"), ("tool_result", "share_information"),
        ("tool_call", "transfer_to_human"), ("tool_result", "transfer_to_human"),
    ]
    assert recorder.information == {("qualification", "employed"): "yes", ("qualification", "income"): "4000"}
    assert recorder.transfers == [(agent.transfer_target, "caller_request")]
    assert not CallEvent.objects.exists() and not InformationRecord.objects.exists()


def test_what_a_failing_tool_recorded_on_the_call_is_rolled_back(ctx, call, monkeypatch):
    from agents.tools import base
    from agents.tools.base import ToolError

    customer = CustomerFactory()

    def records_then_fails(ctx_, args):
        ctx_.customer_id = customer.pk
        ctx_.recorder.customer_identified(customer_id=customer.pk, method="phone")
        ctx_.recorder.information_shared(category="debt_info", items={"debt_amount": "1"}, customer_id=customer.pk)
        raise ToolError("boom", "It broke.")

    monkeypatch.setitem(base.REGISTRY, "end_call", base.REGISTRY["end_call"].__class__(
        name="end_call", description="x", parameters={"type": "object"}, func=records_then_fails,
        validator=base.REGISTRY["end_call"].validator.__class__({"type": "object"})))
    assert not tool_run(ctx, "end_call", {}).ok
    # Read afresh: the recorder's own Call instance is not refreshed, as in a live session.
    assert Call.objects.get(pk=call.pk).customer is None
    assert ctx.customer_id is None and not InformationRecord.objects.exists()
    # Identifying the same customer afterwards still reaches the call.
    tool_run(ctx, "find_customer", {"account_number": customer.account_number})
    assert Call.objects.get(pk=call.pk).customer == customer
