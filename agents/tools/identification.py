"""Who the caller is: finding their record, verifying them, or creating one for a new caller."""

from __future__ import annotations

from agents.engine import CallContext
from agents.tools.base import SHORT_TEXT, caller_customer, identity, tool
from core.phones import normalize_phone, phone_or_none
from customers.models import Customer
from customers.selectors import customer_find, customer_find_by_phone_and_first_name
from customers.services import MAX_VERIFICATION_ATTEMPTS, customer_create, customer_verify
from tickets.models import Priority, Ticket
from tickets.services import ticket_create


def identify(ctx: CallContext, customer: Customer, *, method: str, verified: bool = False) -> None:
    """Attach the customer to the conversation, and tell the call (its customer's timeline)."""
    ident = identity(ctx)
    if ident.get("customer_id") != customer.pk:
        ident.update(customer_id=customer.pk, verified=verified, attempts=0, locked=False)
    elif verified:
        ident["verified"] = True
    ident["method"] = method
    ctx.customer_id = customer.pk
    ctx.recorder.customer_identified(customer_id=customer.pk, method=method)


def _public_customer(customer: Customer) -> dict:
    """What may be said before verification: enough to greet, nothing about the account."""
    return {"id": customer.pk, "first_name": customer.first_name}


@tool(
    name="find_customer",
    description="Find the caller's customer record by account number, phone number, or last name and postcode.",
    parameters={
        "type": "object",
        "properties": {
            "account_number": {"type": "string", "pattern": "^[0-9]{5,10}$"},
            "phone": SHORT_TEXT,
            "name": {**SHORT_TEXT, "description": "Full name or last name."},
            "postcode": {"type": "string", "maxLength": 12},
        },
        "anyOf": [{"required": ["account_number"]}, {"required": ["phone"]}, {"required": ["name", "postcode"]}],
        "additionalProperties": False,
    },
)
def find_customer(ctx: CallContext, args: dict) -> dict:
    match = customer_find(account_number=args.get("account_number", ""), phone=args.get("phone", ""),
                          name=args.get("name", ""), postcode=args.get("postcode", ""))
    if match.ambiguous:
        return {"found": False, "ambiguous": True, "message": "More than one customer matches."}
    if match.customer is None:
        return {"found": False}
    identify(ctx, match.customer, method=match.method)
    return {"found": True, "customer": _public_customer(match.customer), "verified": identity(ctx)["verified"]}


@tool(
    name="verify_customer",
    description=(
        "Verify the identified caller with facts from their record (date of birth, postcode, last name). "
        f"After {MAX_VERIFICATION_ATTEMPTS} failures verification is locked for the call and a ticket is opened."
    ),
    parameters={
        "type": "object",
        "properties": {
            "date_of_birth": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
            "postcode": {"type": "string", "maxLength": 12},
            "last_name": {"type": "string", "maxLength": 80},
        },
        "minProperties": 1,
        "additionalProperties": False,
    },
    requires="identified",
)
def verify_customer(ctx: CallContext, args: dict) -> dict:
    ident = identity(ctx)
    max_attempts = int((ctx.agent.flow or {}).get("identity", {}).get("max_attempts", MAX_VERIFICATION_ATTEMPTS))
    if ident.get("locked"):
        return {"verified": False, "locked": True, "attempts_left": 0, "ticket": ident.get("ticket", "")}
    if ident.get("verified"):
        return {"verified": True, "locked": False}
    customer = caller_customer(ctx)
    outcome = customer_verify(
        customer=customer, date_of_birth=args.get("date_of_birth"), postcode=args.get("postcode"),
        last_name=args.get("last_name"), attempts=int(ident.get("attempts", 0)), max_attempts=max_attempts,
    )
    if outcome.verified:
        ident.update(verified=True)
        return {"verified": True, "locked": False, "customer": _public_customer(customer)}
    ident["attempts"] = outcome.attempts
    if not outcome.locked:
        return {"verified": False, "locked": False, "attempts_left": outcome.attempts_left}
    ident["locked"] = True
    ticket = ticket_create(
        subject=f"Identity verification failed {ident['attempts']} times on a call",
        description=(f"A caller claiming to be account {customer.account_number} failed verification "
                     f"{ident['attempts']} times; verification was locked for the call."),
        category=Ticket.Category.ACCOUNT, priority=Priority.HIGH, customer=customer, call_id=ctx.call_id,
    )
    ident["ticket"] = ticket.reference
    return {"verified": False, "locked": True, "attempts_left": 0, "ticket": ticket.reference}


@tool(
    name="create_customer_account",
    description="Create a customer record for a new caller (a prospect unless told otherwise).",
    parameters={
        "type": "object",
        "properties": {
            "first_name": {"type": "string", "minLength": 1, "maxLength": 80},
            "last_name": {"type": "string", "maxLength": 80},
            "phone": SHORT_TEXT,
            "email": {"type": "string", "maxLength": 254},
            "postcode": {"type": "string", "maxLength": 12},
            "status": {"enum": ["prospect", "active"]},
        },
        "required": ["first_name"],
        "additionalProperties": False,
    },
)
def create_customer_account(ctx: CallContext, args: dict) -> dict:
    # A number the caller gives must be valid; the caller ID is used only when it is a number.
    phone = normalize_phone(args["phone"]) if args.get("phone") else (phone_or_none(ctx.caller_number) or "")
    existing = customer_find_by_phone_and_first_name(phone=phone, first_name=args["first_name"])
    if existing:
        identify(ctx, existing, method="created", verified=True)
        return {"created": False, "customer_id": existing.pk, "account_number": existing.account_number,
                "account_number_text": " ".join(existing.account_number), "first_name": existing.first_name}
    customer = customer_create(
        first_name=args["first_name"].strip().title(), last_name=args.get("last_name", "").strip().title(), phone=phone,
        email=args.get("email", "").strip().lower(), postcode=args.get("postcode", "").strip().upper(),
        status=args.get("status", Customer.Status.PROSPECT),
    )
    # The caller just gave these details: they own the new record.
    identify(ctx, customer, method="created", verified=True)
    return {"created": True, "customer_id": customer.pk, "account_number": customer.account_number,
            "account_number_text": " ".join(customer.account_number), "first_name": customer.first_name}
