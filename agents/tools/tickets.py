"""Support tickets opened for the caller."""

from __future__ import annotations

from agents.engine import CallContext
from agents.tools.base import tool, verified_customer_id
from customers.selectors import customer_get
from tickets.services import ticket_create


@tool(
    name="create_ticket",
    description="Open a support ticket (on the caller's account once they are verified) and return its reference.",
    parameters={
        "type": "object",
        "properties": {
            "subject": {"type": "string", "minLength": 3, "maxLength": 200},
            "description": {"type": "string", "maxLength": 5000},
            "category": {"enum": ["billing", "technical", "account", "sales", "cancellation", "complaint", "emergency", "other"]},
            "priority": {"enum": ["low", "normal", "high", "urgent"]},
        },
        "required": ["subject"],
        "additionalProperties": False,
    },
)
def create_ticket(ctx: CallContext, args: dict) -> dict:
    # Anyone may report something, but only a verified caller's ticket goes on a customer's
    # account: an unverified one stays on the call, where staff see who the caller claimed to be.
    ticket = ticket_create(
        subject=args["subject"], description=args.get("description", ""), category=args.get("category", "other"),
        priority=args.get("priority", "normal"), customer=customer_get(customer_id=verified_customer_id(ctx)),
        call_id=ctx.call_id,
    )
    ctx.state.setdefault("tickets", []).append(ticket.reference)
    return {"reference": ticket.reference, "reference_text": " ".join(ticket.reference), "priority": ticket.priority,
            "category": ticket.category, "sla_due_at": ticket.sla_due_at}
