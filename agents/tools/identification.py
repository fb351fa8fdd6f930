"""Who the caller is: finding their record, verifying them, or creating one for a new caller."""

from __future__ import annotations

from agents.engine import CallContext
from agents.tools.base import SHORT_TEXT, caller_customer, caller_verified, identity, identity_mark_verified, tool
from core.phones import normalize_phone, phone_or_none
from customers.models import Customer
from customers.selectors import customer_find, customer_find_by_phone_and_first_name
from customers.services import customer_create, customer_verify
from tickets.models import Priority, Ticket
from tickets.services import ticket_create


def identify(ctx: CallContext, customer: Customer, *, method: str) -> None:
    """Attach the customer to the conversation, and tell the call (its customer's timeline).

    Identified is not verified: whoever knows an account number, a phone number or a name is
    identified; only verify_customer (or creating the record) proves they are that customer.
    """
    ident = identity(ctx)
    if ident.get("customer_id") != customer.pk:
        ident.update(customer_id=customer.pk, verified=False, attempts=0, locked=customer.verification_locked())
        ident.pop("verified_by", None)
        ident.pop("ticket", None)
    ident["method"] = method
    ctx.customer_id = customer.pk
    ctx.recorder.customer_identified(customer_id=customer.pk, method=method)


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
    # Nothing about the record, not even the first name, before the caller is verified: the
    # account number or the phone number may be someone else's.
    return {"found": True, "verified": identity(ctx)["verified"]}


@tool(
    name="verify_customer",
    description=(
        "Verify the identified caller with facts from their record (date of birth, postcode, last name). "
        "Failures are counted on the customer across calls; after too many, verification is locked for a while "
        "and a ticket is opened."
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
    if ident.get("verified"):
        return {"verified": True, "locked": False}
    customer = caller_customer(ctx)
    max_failures = (ctx.agent.flow or {}).get("identity", {}).get("max_attempts")
    outcome = customer_verify(
        customer=customer, date_of_birth=args.get("date_of_birth"), postcode=args.get("postcode"),
        last_name=args.get("last_name"), max_failures=max_failures,
    )
    ident["locked"] = outcome.locked
    if outcome.verified:
        identity_mark_verified(ctx, method="verify_customer")
        return {"verified": True, "locked": False, "customer": {"id": customer.pk, "first_name": customer.first_name}}
    if not outcome.locked:
        ident["attempts"] = int(ident.get("attempts", 0)) + 1
        return {"verified": False, "locked": False, "attempts_left": outcome.attempts_left}
    if not outcome.lock_started:
        # Locked by earlier failures, maybe on another call: that lockout already has its ticket.
        return {"verified": False, "locked": True, "attempts_left": 0, "ticket": ""}
    ident["attempts"] = int(ident.get("attempts", 0)) + 1
    # One ticket per lockout window: only the failure that started the lockout gets here.
    ticket = ticket_create(
        subject=f"Identity verification failed {outcome.failures} times",
        description=(f"Callers claiming to be account {customer.account_number} failed verification "
                     f"{outcome.failures} times; verification is locked until {outcome.locked_until:%Y-%m-%d %H:%M %Z}. "
                     "Contact the account holder through the details on file."),
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
        # A phone number and a first name are no proof: identified, not verified, and nothing
        # about the record is said (verify_customer comes next).
        identify(ctx, existing, method="phone_and_name")
        return {"created": False, "existing": True, "verified": caller_verified(ctx)}
    customer = customer_create(
        first_name=args["first_name"].strip().title(), last_name=args.get("last_name", "").strip().title(), phone=phone,
        email=args.get("email", "").strip().lower(), postcode=args.get("postcode", "").strip().upper(),
        status=args.get("status", Customer.Status.PROSPECT),
    )
    # The caller just gave these details: the new record is theirs.
    identify(ctx, customer, method="created")
    identity_mark_verified(ctx, method="created")
    return {"created": True, "customer_id": customer.pk, "account_number": customer.account_number,
            "account_number_text": " ".join(customer.account_number), "first_name": customer.first_name,
            "verified": True}
