"""The CRM tools the agents use. Each reads and writes through the apps' models and services.

Results hold what the agent may say, taken from the database: balances, dates and ticket
references are never made up by the dialog engine. Fields ending in `_text` are ready to be read
out ("$42.50", "Tuesday 7 January at 10:00 AM").
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from django.db.models import Q
from django.utils import dateparse, timezone
from rapidfuzz import fuzz, process

from agents.text import datetime_text, join_words, money_text, time_text
from agents.tools.base import MAX_VERIFICATION_ATTEMPTS, ToolError, identity, tool

if TYPE_CHECKING:
    from agents.engine import CallContext

_STR = {"type": "string", "maxLength": 200}
_ID = {"type": "integer", "minimum": 1}


# --- helpers -------------------------------------------------------------------------------

def _call(ctx: "CallContext"):
    from calls.models import Call

    return Call.objects.filter(pk=ctx.call_id).first() if ctx.call_id else None


def _customer(ctx: "CallContext"):
    from customers.models import Customer

    customer = Customer.objects.filter(pk=ctx.customer_id).first() if ctx.customer_id else None
    if customer is None:
        raise ToolError("not_identified", "The caller has not been identified yet.")
    return customer


def _identify(ctx: "CallContext", customer, *, method: str, verified: bool = False) -> None:
    """Attach the customer to the conversation and to the call (its timeline)."""
    ident = identity(ctx)
    if ident.get("customer_id") != customer.pk:
        ident.update(customer_id=customer.pk, verified=verified, attempts=0, locked=False)
    elif verified:
        ident["verified"] = True
    ident["method"] = method
    ctx.customer_id = customer.pk
    call = _call(ctx)
    if call is not None:
        from calls.services import call_set_customer

        call_set_customer(call=call, customer=customer)


def _public_customer(customer) -> dict:
    """What may be said before verification: enough to greet, nothing about the account."""
    return {"id": customer.pk, "first_name": customer.first_name}


def _parse_date(value: str) -> dt.date:
    parsed = dateparse.parse_date(value[:10]) if value else None
    if parsed is None:
        raise ToolError("invalid_arguments", f"{value!r} is not a date (YYYY-MM-DD).")
    return parsed


def _parse_datetime(value: str) -> dt.datetime:
    parsed = dateparse.parse_datetime(value) if value else None
    if parsed is None:
        raise ToolError("invalid_arguments", f"{value!r} is not a date and time (ISO 8601).")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def _find_service(name: str):
    from customers.models import Service

    services = list(Service.objects.filter(active=True))
    if not services:
        raise ToolError("no_services", "No services can be booked.")
    wanted = (name or "").strip().lower()
    for service in services:
        if wanted in (service.slug.lower(), service.name.lower()):
            return service
    if not wanted:
        if len(services) == 1:
            return services[0]
        raise ToolError("service_required", "Which service? " + join_words([s.name for s in services]) + ".",
                        services=[s.name for s in services])
    match = process.extractOne(wanted, {s.pk: s.name.lower() for s in services}, scorer=fuzz.token_set_ratio)
    if match and match[1] >= 70:
        return next(s for s in services if s.pk == match[2])
    raise ToolError("unknown_service", f"We don't offer {name!r}. We offer " + join_words([s.name for s in services]) + ".",
                    services=[s.name for s in services])


def _appointment_dict(appointment) -> dict:
    return {
        "id": appointment.pk, "service": appointment.service.name, "starts_at": appointment.starts_at,
        "starts_at_text": datetime_text(appointment.starts_at), "status": appointment.status,
    }


def _own_appointment(ctx: "CallContext", appointment_id: int):
    from customers.models import Appointment

    appointment = Appointment.objects.select_related("service").filter(pk=appointment_id, customer_id=ctx.customer_id).first()
    if appointment is None:
        raise ToolError("not_found", "That appointment was not found on the caller's account.")
    return appointment


# --- identity -------------------------------------------------------------------------------

@tool(
    name="find_customer",
    description="Find the caller's customer record by account number, phone number, or last name and postcode.",
    parameters={
        "type": "object",
        "properties": {
            "account_number": {"type": "string", "pattern": "^[0-9]{5,10}$"},
            "phone": _STR,
            "name": {**_STR, "description": "Full name or last name."},
            "postcode": {"type": "string", "maxLength": 12},
        },
        "anyOf": [{"required": ["account_number"]}, {"required": ["phone"]}, {"required": ["name", "postcode"]}],
        "additionalProperties": False,
    },
)
def find_customer(ctx: "CallContext", args: dict) -> dict:
    from customers.models import Customer
    from core.phones import phone_or_none

    live = Customer.objects.exclude(status=Customer.Status.CLOSED)
    customer, method = None, ""
    if args.get("account_number"):
        customer, method = live.filter(account_number=args["account_number"]).first(), "account_number"
    elif args.get("phone"):
        phone = phone_or_none(args["phone"])
        customer = live.filter(phone=phone).order_by("-updated_at").first() if phone else None
        method = "phone"
    else:
        words = args["name"].split()
        postcode = args["postcode"].replace(" ", "").upper()
        matches = list(live.filter(last_name__iexact=words[-1]).filter(
            Q(postcode__iexact=postcode) | Q(postcode__iexact=args["postcode"].strip().upper())))
        if len(words) > 1 and len(matches) > 1:
            matches = [m for m in matches if m.first_name.lower() == words[0].lower()] or matches
        if len(matches) > 1:
            return {"found": False, "ambiguous": True, "message": "More than one customer matches."}
        customer, method = (matches[0] if matches else None), "name_postcode"
    if customer is None:
        return {"found": False}
    _identify(ctx, customer, method=method)
    return {"found": True, "customer": _public_customer(customer), "verified": identity(ctx)["verified"]}


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
def verify_customer(ctx: "CallContext", args: dict) -> dict:
    from tickets.models import Priority, Ticket
    from tickets.services import ticket_create

    ident = identity(ctx)
    max_attempts = int((ctx.agent.flow or {}).get("identity", {}).get("max_attempts", MAX_VERIFICATION_ATTEMPTS))
    if ident.get("locked"):
        return {"verified": False, "locked": True, "attempts_left": 0, "ticket": ident.get("ticket", "")}
    if ident.get("verified"):
        return {"verified": True, "locked": False}
    customer = _customer(ctx)
    checks = []
    if "date_of_birth" in args:
        checks.append(customer.date_of_birth is not None and customer.date_of_birth.isoformat() == args["date_of_birth"])
    if "postcode" in args:
        checks.append(bool(customer.postcode) and customer.postcode.replace(" ", "").upper() == args["postcode"].replace(" ", "").upper())
    if "last_name" in args:
        checks.append(bool(customer.last_name) and customer.last_name.lower() == args["last_name"].strip().lower())
    if all(checks):
        ident.update(verified=True)
        return {"verified": True, "locked": False, "customer": {"id": customer.pk, "first_name": customer.first_name}}
    ident["attempts"] = int(ident.get("attempts", 0)) + 1
    left = max(0, max_attempts - ident["attempts"])
    if left:
        return {"verified": False, "locked": False, "attempts_left": left}
    ident["locked"] = True
    ticket = ticket_create(
        subject=f"Identity verification failed {ident['attempts']} times on a call",
        description=(f"A caller claiming to be account {customer.account_number} failed verification "
                     f"{ident['attempts']} times; verification was locked for the call."),
        category=Ticket.Category.ACCOUNT, priority=Priority.HIGH, customer=customer, call=_call(ctx),
    )
    ident["ticket"] = ticket.reference
    return {"verified": False, "locked": True, "attempts_left": 0, "ticket": ticket.reference}


# --- account --------------------------------------------------------------------------------

@tool(
    name="get_account_summary",
    description="The verified caller's account: plan, status, balance, open tickets and the next appointment.",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
    requires="account",
)
def get_account_summary(ctx: "CallContext", args: dict) -> dict:
    from customers.models import Appointment

    customer = _customer(ctx)
    open_tickets = list(customer.tickets.filter(status__in=["new", "open", "pending"]).order_by("-created_at")[:3])
    upcoming = (customer.appointments.select_related("service")
                .filter(status__in=Appointment.ACTIVE_STATUSES, starts_at__gte=timezone.now()).order_by("starts_at").first())
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
        "next_appointment": _appointment_dict(upcoming) if upcoming else None,
    }


@tool(
    name="create_ticket",
    description="Open a support ticket for the caller (or an anonymous one) and return its reference.",
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
def create_ticket(ctx: "CallContext", args: dict) -> dict:
    from customers.models import Customer
    from tickets.services import ticket_create

    customer = Customer.objects.filter(pk=ctx.customer_id).first() if ctx.customer_id else None
    ticket = ticket_create(
        subject=args["subject"], description=args.get("description", ""), category=args.get("category", "other"),
        priority=args.get("priority", "normal"), customer=customer, call=_call(ctx),
    )
    ctx.state.setdefault("tickets", []).append(ticket.reference)
    return {"reference": ticket.reference, "reference_text": " ".join(ticket.reference), "priority": ticket.priority,
            "category": ticket.category, "sla_due_at": ticket.sla_due_at}


@tool(
    name="create_customer_account",
    description="Create a customer record for a new caller (a prospect unless told otherwise).",
    parameters={
        "type": "object",
        "properties": {
            "first_name": {"type": "string", "minLength": 1, "maxLength": 80},
            "last_name": {"type": "string", "maxLength": 80},
            "phone": _STR,
            "email": {"type": "string", "maxLength": 254},
            "postcode": {"type": "string", "maxLength": 12},
            "status": {"enum": ["prospect", "active"]},
        },
        "required": ["first_name"],
        "additionalProperties": False,
    },
)
def create_customer_account(ctx: "CallContext", args: dict) -> dict:
    from customers.models import Customer
    from core.phones import normalize_phone, phone_or_none

    phone = args.get("phone") or ctx.caller_number
    phone = normalize_phone(phone) if args.get("phone") else (phone_or_none(phone) or "")
    if phone:
        existing = (Customer.objects.filter(phone=phone, first_name__iexact=args["first_name"])
                    .exclude(status=Customer.Status.CLOSED).first())
        if existing:
            _identify(ctx, existing, method="created", verified=True)
            return {"created": False, "customer_id": existing.pk, "account_number": existing.account_number,
                    "account_number_text": " ".join(existing.account_number), "first_name": existing.first_name}
    customer = Customer(
        first_name=args["first_name"].strip().title(), last_name=args.get("last_name", "").strip().title(), phone=phone,
        email=args.get("email", "").strip().lower(), postcode=args.get("postcode", "").strip().upper(),
        status=args.get("status", Customer.Status.PROSPECT),
    )
    customer.full_clean()
    customer.save()
    # The caller just gave these details: they own the new record.
    _identify(ctx, customer, method="created", verified=True)
    return {"created": True, "customer_id": customer.pk, "account_number": customer.account_number,
            "account_number_text": " ".join(customer.account_number), "first_name": customer.first_name}


# --- appointments ---------------------------------------------------------------------------

@tool(
    name="get_appointments",
    description="The caller's upcoming appointments.",
    parameters={"type": "object", "properties": {"include_past": {"type": "boolean"}}, "additionalProperties": False},
    requires="account",
)
def get_appointments(ctx: "CallContext", args: dict) -> dict:
    from customers.models import Appointment

    qs = Appointment.objects.select_related("service").filter(customer_id=ctx.customer_id, status__in=Appointment.ACTIVE_STATUSES)
    if not args.get("include_past"):
        qs = qs.filter(starts_at__gte=timezone.now())
    appointments = [_appointment_dict(a) for a in qs.order_by("starts_at")[:5]]
    first = appointments[0] if appointments else None
    return {
        "count": len(appointments), "appointments": appointments, "next": first,
        "appointments_text": join_words([f"a {a['service'].lower()} on {a['starts_at_text']}" for a in appointments], "and"),
    }


@tool(
    name="check_availability",
    description="Free start times for a service on a date; says whether a requested time is free.",
    parameters={
        "type": "object",
        "properties": {
            "service": _STR,
            "date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}"},
            "time": {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 20},
        },
        "required": ["date"],
        "additionalProperties": False,
    },
)
def check_availability(ctx: "CallContext", args: dict) -> dict:
    from customers.services import service_available_slots

    service = _find_service(args.get("service", ""))
    day = _parse_date(args["date"])
    limit = args.get("limit", 3)
    slots = service_available_slots(service=service, day=day)
    requested = None
    if args.get("time"):
        hour, minute = (int(x) for x in args["time"][:5].split(":"))
        wanted = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=timezone.get_current_timezone())
        requested = next((s for s in slots if s == wanted), None)
        # Offer the free times closest to the one asked for.
        slots = sorted(slots, key=lambda s: abs((s - wanted).total_seconds()))[:limit]
        slots.sort()
    else:
        slots = slots[:limit]
    return {
        "service": service.name, "service_slug": service.slug, "date": day, "day_text": f"{day:%A} {day.day} {day:%B}",
        "available": bool(slots), "requested_available": requested is not None,
        "requested": requested, "requested_text": datetime_text(requested) if requested else "",
        "slots": [{"starts_at": s, "text": time_text(s)} for s in slots],
        "slots_text": join_words([time_text(s) for s in slots]),
        "first_slot": slots[0] if slots else None,
    }


@tool(
    name="create_appointment",
    description="Book an appointment for the identified caller.",
    parameters={
        "type": "object",
        "properties": {
            "service": _STR,
            "starts_at": {"type": "string", "minLength": 16, "maxLength": 40, "description": "ISO 8601 date and time."},
            "notes": {"type": "string", "maxLength": 1000},
        },
        "required": ["starts_at"],
        "additionalProperties": False,
    },
    requires="identified",
)
def create_appointment(ctx: "CallContext", args: dict) -> dict:
    from customers.services import appointment_book

    service = _find_service(args.get("service", ""))
    starts_at = _parse_datetime(args["starts_at"])
    if starts_at <= timezone.now():
        raise ToolError("in_the_past", "That time has already passed.")
    appointment = appointment_book(customer=_customer(ctx), service=service, starts_at=starts_at, source_call=_call(ctx),
                                   notes=args.get("notes", ""))
    return {"booked": True, **_appointment_dict(appointment)}


@tool(
    name="reschedule_appointment",
    description="Move one of the caller's appointments to a new time.",
    parameters={
        "type": "object",
        "properties": {"appointment_id": _ID, "starts_at": {"type": "string", "minLength": 16, "maxLength": 40}},
        "required": ["appointment_id", "starts_at"],
        "additionalProperties": False,
    },
    requires="account",
)
def reschedule_appointment(ctx: "CallContext", args: dict) -> dict:
    from customers.services import appointment_reschedule

    appointment = _own_appointment(ctx, args["appointment_id"])
    starts_at = _parse_datetime(args["starts_at"])
    if starts_at <= timezone.now():
        raise ToolError("in_the_past", "That time has already passed.")
    previous = datetime_text(appointment.starts_at)
    appointment = appointment_reschedule(appointment=appointment, starts_at=starts_at)
    return {"rescheduled": True, "previous_text": previous, **_appointment_dict(appointment)}


@tool(
    name="cancel_appointment",
    description="Cancel one of the caller's appointments.",
    parameters={
        "type": "object", "properties": {"appointment_id": _ID}, "required": ["appointment_id"], "additionalProperties": False,
    },
    requires="account",
)
def cancel_appointment(ctx: "CallContext", args: dict) -> dict:
    from customers.services import appointment_cancel

    appointment = appointment_cancel(appointment=_own_appointment(ctx, args["appointment_id"]))
    return {"cancelled": True, **_appointment_dict(appointment)}


# --- orders ---------------------------------------------------------------------------------

@tool(
    name="get_orders",
    description="The caller's recent orders, or one order by its number.",
    parameters={
        "type": "object",
        "properties": {"order_number": {"type": "string", "maxLength": 20}, "limit": {"type": "integer", "minimum": 1, "maximum": 10}},
        "additionalProperties": False,
    },
    requires="account",
)
def get_orders(ctx: "CallContext", args: dict) -> dict:
    from customers.models import Order

    qs = Order.objects.filter(customer_id=ctx.customer_id)
    if args.get("order_number"):
        wanted = re.sub(r"[^0-9A-Za-z]", "", args["order_number"]).upper()
        qs = qs.filter(Q(number__iexact=wanted) | Q(number__endswith=wanted))
    orders = list(qs.order_by("-placed_at")[: args.get("limit", 3)])
    items = []
    for order in orders:
        names = join_words([item.get("name", item.get("sku", "item")) for item in order.items if isinstance(item, dict)], "and")
        tracking = f", tracking number {order.tracking_number}" if order.tracking_number else ""
        items.append({
            "number": order.number, "status": order.status, "status_text": order.get_status_display().lower(),
            "total": order.total, "total_text": money_text(order.total), "items_text": names,
            "placed_at": order.placed_at, "tracking_number": order.tracking_number,
            "text": f"order {order.number} for {names or 'your items'} is {order.get_status_display().lower()}{tracking}",
        })
    return {"count": len(items), "orders": items, "latest": items[0] if items else None,
            "orders_text": join_words([o["text"] for o in items], "and")}


# --- knowledge, information, control ----------------------------------------------------------

@tool(
    name="search_knowledge_base",
    description="Search the agent's knowledge base for an answer to the caller's question.",
    parameters={"type": "object", "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 1000}},
                "required": ["query"], "additionalProperties": False},
)
def search_knowledge_base(ctx: "CallContext", args: dict) -> dict:
    from agents.knowledge import knowledge_search

    hits = knowledge_search(agent=ctx.agent, query=args["query"], limit=3)
    best = hits[0] if hits and hits[0].confident else None
    return {
        "found": best is not None, "answer": best.entry.answer if best else "", "title": best.entry.title if best else "",
        "confidence": round(hits[0].confidence, 3) if hits else 0.0,
        "results": [{"title": h.entry.title, "confidence": round(h.confidence, 3)} for h in hits],
    }


@tool(
    name="share_information",
    description="Record facts the caller shared, grouped by category (contact_details, debt_info, personal_info, qualification…).",
    parameters={
        "type": "object",
        "properties": {
            "category": {"type": "string", "pattern": "^[a-z0-9_-]{1,48}$"},
            "items": {
                "type": "object", "minProperties": 1, "maxProperties": 30,
                "propertyNames": {"pattern": "^[A-Za-z0-9_]{1,64}$"},
                "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
            },
        },
        "required": ["category", "items"],
        "additionalProperties": False,
    },
)
def share_information(ctx: "CallContext", args: dict) -> dict:
    from calls.models import InformationRecord

    shared = ctx.state.setdefault("shared", {}).setdefault(args["category"], {})
    rows = []
    for key, value in args["items"].items():
        if value is None or value == "":
            continue
        text = ("yes" if value else "no") if isinstance(value, bool) else str(value)
        shared[key] = value
        rows.append(InformationRecord(call_id=ctx.call_id, category=args["category"], key=key, value=text[:5000],
                                      customer_id=ctx.customer_id))
    if ctx.call_id and rows:
        # One upsert for all the facts: a later answer replaces an earlier one for the same key.
        InformationRecord.objects.bulk_create(rows, update_conflicts=True, unique_fields=["call", "category", "key"],
                                              update_fields=["value", "customer"])
    saved = len(rows)
    return {"saved": saved, "category": args["category"]}


@tool(
    name="transfer_to_human",
    description="Transfer the caller to a person (the agent's transfer target).",
    parameters={"type": "object", "properties": {"reason": {"type": "string", "maxLength": 200}}, "additionalProperties": False},
)
def transfer_to_human(ctx: "CallContext", args: dict) -> dict:
    target = ctx.agent.transfer_target
    if not target:
        raise ToolError("no_transfer_target", "Nobody is available to take a transfer on this line.")
    if ctx.call_id:
        from calls.models import Call
        from calls.services import call_event_log

        call_event_log(call=Call(pk=ctx.call_id), kind="transfer", name="transfer_to_human",
                       payload={"target": target, "reason": args.get("reason", "")})
    return {"transferred": True, "target": target, "reason": args.get("reason", "")}


@tool(
    name="end_call",
    description="End the call after saying goodbye, with the reason (resolved, caller_goodbye, not_qualified, callback…).",
    parameters={"type": "object", "properties": {"reason": {"type": "string", "pattern": "^[a-z0-9_]{1,48}$"}},
                "required": ["reason"], "additionalProperties": False},
)
def end_call(ctx: "CallContext", args: dict) -> dict:
    ctx.state["ended"] = True
    return {"ended": True, "reason": args["reason"]}
