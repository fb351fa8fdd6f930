"""The verified caller's account at a glance."""

from __future__ import annotations

from agents.engine import CallContext
from agents.text import join_words, money_text
from agents.tools.appointments import appointment_dict
from agents.tools.base import caller_customer, tool
from customers.selectors import appointment_next_for_customer
from tickets.selectors import ticket_list_open_for_customer


@tool(
    name="get_account_summary",
    description="The verified caller's account: plan, status, balance, open tickets and the next appointment.",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
    requires="verified",
)
def get_account_summary(ctx: CallContext, args: dict) -> dict:
    customer = caller_customer(ctx)
    open_tickets = list(ticket_list_open_for_customer(customer_id=customer.pk))
    upcoming = appointment_next_for_customer(customer_id=customer.pk)
    balance = customer.balance
    if balance > 0:
        balance_text = f"{money_text(balance)} owing"
    elif balance < 0:
        balance_text = f"a credit of {money_text(-balance)}"
    else:
        balance_text = "nothing owing"
    return {
        "account_number": customer.account_number, "first_name": customer.first_name, "last_name": customer.last_name,
        "plan": customer.get_plan_display(), "status": customer.get_status_display(),
        "balance": balance, "balance_text": balance_text,
        "open_tickets": [{"reference": t.reference, "subject": t.subject, "status": t.status} for t in open_tickets],
        "open_tickets_text": join_words([f"{t.reference} about {t.subject.lower()}" for t in open_tickets], "and"),
        "next_appointment": appointment_dict(upcoming) if upcoming else None,
    }
