"""Stage 4: the agent's escalation rules turn extracted fields into CRM actions.

    [{"when": {"injury_status": ["minor", "serious"]}, "action": "urgent_ticket", "notify": "supervisors"},
     {"when": {"qualified": [true]}, "action": "follow_up_appointment", "service": "consultation"},
     {"when": {"debt_amount": {"gte": 10000}}, "action": "ticket", "priority": "high"}]

`when` maps a field (of the extracted data, or the call's intent/outcome/sentiment) to the
allowed values, a single value, or operators, or is a condition itself: the flows' condition
language (core/conditions.py: eq, ne, gt, gte, lt, lte, in, not_in, contains, set). Actions:
`urgent_ticket`, `ticket` (priority, category), `follow_up_appointment` (service slug),
`update_customer`, `notify` ("supervisors"). Contact details that changed (phone, email)
update the identified customer unless a rule `{"action": "update_customer", "enabled": false}`
turns that off.

Nothing is written onto an existing customer (contact details, a follow-up appointment) unless
the caller was verified as that customer during the call (the dialog's `customer_verified`
event): identifying a customer takes only an account number, a phone number or a name, which
anyone may know. What is not written is recorded as an `error` event saying why.

Every action is keyed on the call (CallEvent.idempotency_key, unique per call) and runs in a
transaction holding the call's row lock: a re-run, a redelivered task or two workers at once
find the key taken and create nothing. All ticket rules that match make one ticket, with the
highest priority among them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.tools.base import CUSTOMER_VERIFIED_EVENT
from calls.models import Call, CallEvent
from core.conditions import when_holds
from core.phones import phone_or_none
from customers.models import Appointment, Customer, Service
from customers.services import appointment_book, service_available_slots
from tickets.models import Ticket
from tickets.services import ticket_create, ticket_set_priority

logger = logging.getLogger(__name__)

PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
TICKET_ACTIONS = {"urgent_ticket", "ticket"}
KNOWN_ACTIONS = TICKET_ACTIONS | {"follow_up_appointment", "update_customer", "notify"}
INTENT_CATEGORIES = {
    "complaint": "complaint", "cancellation": "cancellation", "cancel": "cancellation", "billing": "billing",
    "billing_balance": "billing", "payment": "billing", "technical": "technical", "technical_support": "technical",
    "internet_down": "technical", "account": "account", "sales": "sales",
}
FOLLOW_UP_SEARCH_DAYS = 14


# --- matching ----------------------------------------------------------------------------------

def rule_matches(when: dict, facts: dict) -> bool:
    """Whether a rule's `when` holds, in the flows' condition language (core/conditions.py)."""
    return when_holds(when or {}, facts)


def facts_for(call: Call) -> dict:
    return {"intent": call.intent, "outcome": call.outcome, "sentiment": call.sentiment, **(call.structured_data or {})}


# --- helpers -----------------------------------------------------------------------------------

def _locked(call: Call) -> Call:
    """The call row, locked for this transaction: actions on one call run one at a time."""
    return Call.objects.select_for_update().get(pk=call.pk)


def _done(call: Call, key: str) -> CallEvent | None:
    return CallEvent.objects.filter(call=call, idempotency_key=key).first()


def _record(call: Call, *, key: str, name: str, payload: dict, kind: str = CallEvent.Kind.ACTION) -> CallEvent:
    return CallEvent.objects.create(call=call, kind=kind, name=name, payload=payload, idempotency_key=key)


def caller_verified_as_customer(call: Call) -> bool:
    """Whether the caller proved during the call to be the call's customer."""
    return bool(call.customer_id) and CallEvent.objects.filter(
        call=call, kind=CallEvent.Kind.ACTION, name=CUSTOMER_VERIFIED_EVENT, payload__customer_id=call.customer_id,
    ).exists()


def _unverified(call: Call, *, action: str, what: str, **details) -> dict:
    """Record (once) that `action` was not applied to the call's customer, who was not verified."""
    error = f"not applied: the caller was not verified as customer {call.customer.account_number}; {what}"
    with transaction.atomic():
        _locked(call)
        if not _done(call, f"unverified:{action}"):
            _record(call, key=f"unverified:{action}", name=action, payload={"error": error, **details},
                    kind=CallEvent.Kind.ERROR)
    return {"action": action, "error": error, **details}


def _describe_facts(facts: dict) -> str:
    return "\n".join(f"- {k.replace('_', ' ')}: {v}" for k, v in facts.items() if v not in (None, "", [], {}))


# --- tickets -----------------------------------------------------------------------------------

def _ticket_action(call: Call, rules: list[dict], facts: dict) -> dict:
    priority = max((r.get("priority") or ("urgent" if r["action"] == "urgent_ticket" else "normal") for r in rules),
                   key=lambda p: PRIORITY_RANK.get(p, 1))
    if priority not in PRIORITY_RANK:
        priority = "normal"
    emergency = facts.get("emergency_type") not in (None, "", "none") or any(r["action"] == "urgent_ticket" for r in rules)
    category = next((r["category"] for r in rules if r.get("category") in Ticket.Category.values), None)
    category = category or ("emergency" if emergency and priority == "urgent" else
                            INTENT_CATEGORIES.get(str(facts.get("intent") or ""), Ticket.Category.OTHER))
    key = "ticket"
    with transaction.atomic():
        _locked(call)
        event = _done(call, key)
        if event is not None:
            ticket = Ticket.objects.filter(reference=event.payload.get("ticket")).first()
            created, adopted = False, False
        else:
            # A ticket the agent opened during the call is the call's ticket: no second one.
            ticket = Ticket.objects.filter(call=call).order_by("created_at").first()
            adopted = ticket is not None
            created = False
            if ticket is None:
                agent = call.agent.name if call.agent_id else "Voice agent"
                headline = (call.summary.split(". ")[0].rstrip(".") if call.summary else "") or "Call needs follow-up"
                ticket = ticket_create(
                    subject=f"{agent}: {headline}"[:200],
                    description=(f"{call.summary}\n\nExtracted from call {call.public_id}:\n{_describe_facts(facts)}\n\n"
                                 f"Rules: {json.dumps([r.get('when', {}) for r in rules])}"),
                    category=category, priority=priority, customer=call.customer, call=call,
                )
                created = True
        raised = False
        if ticket is not None and ticket.is_open and PRIORITY_RANK[priority] > PRIORITY_RANK.get(ticket.priority, 1):
            ticket_set_priority(ticket=ticket, priority=priority)
            raised = True
        payload = {"ticket": ticket.reference if ticket else None, "priority": priority, "category": category,
                   "created": created, "adopted": adopted, "rules": [r.get("when", {}) for r in rules]}
        if event is None:
            _record(call, key=key, name="urgent_ticket" if priority == "urgent" else "ticket", payload=payload,
                    kind=CallEvent.Kind.ESCALATION if priority == "urgent" else CallEvent.Kind.ACTION)
        elif raised:
            _record(call, key=f"ticket_priority:{priority}", name="ticket_priority_raised", payload=payload)
    return {"action": "ticket", **payload, "already_done": event is not None}


# --- supervisors ---------------------------------------------------------------------------------

def _supervisors_notify(call: Call, *, reason: str, ticket_reference: str | None) -> dict:
    key = f"notify_supervisors:{ticket_reference or reason}"
    if _done(call, key):
        return {"action": "notify", "already_done": True}
    User = get_user_model()
    emails = sorted(set(
        User.objects.filter(is_active=True).filter(Q(groups__name="Supervisor") | Q(is_superuser=True))
        .exclude(email="").values_list("email", flat=True)
    ))
    subject = f"[VoiceCRM] {reason}" + (f" — ticket {ticket_reference}" if ticket_reference else "")
    body = f"{call.summary}\n\nCall {call.public_id} from {call.from_number or 'an unknown number'}."
    emailed, error = 0, ""
    # Sent before it is recorded: a crash in between repeats the alert rather than losing it.
    if emails:
        try:
            emailed = send_mail(subject, body, None, emails)
        except Exception as exc:  # mail is best effort; the event says what happened
            error = f"email failed: {exc}"
            logger.warning("supervisor email for call %s failed: %s", call.pk, exc)
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)("supervisors", {
                "type": "supervisor.alert", "call": str(call.public_id), "reason": reason, "ticket": ticket_reference,
            })
    except Exception as exc:
        error = (error + "; " if error else "") + f"live alert failed: {exc}"
    payload = {"reason": reason, "ticket": ticket_reference, "recipients": len(emails), "emailed": emailed,
               "error": error}
    with transaction.atomic():
        _locked(call)
        if not _done(call, key):
            _record(call, key=key, name="notify_supervisors", payload=payload, kind=CallEvent.Kind.ESCALATION)
    return {"action": "notify", **payload}


# --- appointments --------------------------------------------------------------------------------

def _customer_for(call: Call, facts: dict):
    """The call's customer, or a prospect made from what the caller said."""
    if call.customer_id:
        return call.customer, False
    name = str(facts.get("full_name") or facts.get("name") or "").strip()
    first, _, last = name.partition(" ")
    phone = phone_or_none(str(facts.get("phone") or "")) or phone_or_none(call.from_number) or ""
    email = str(facts.get("email") or "")
    try:
        validate_email(email)
    except ValidationError:
        email = ""
    customer = Customer.objects.create(first_name=first or "Unknown", last_name=last, phone=phone, email=email,
                                       status=Customer.Status.PROSPECT, notes=f"Created from call {call.public_id}.")
    Call.objects.filter(pk=call.pk).update(customer=customer)
    call.customer = customer
    return customer, True


def _appointment_action(call: Call, rule: dict, facts: dict) -> dict:
    slug = rule.get("service") or "consultation"
    key = f"appointment:{slug}"
    with transaction.atomic():
        _locked(call)
        event = _done(call, key)
        if event is not None:
            return {"action": "follow_up_appointment", **event.payload, "already_done": True}
        service = Service.objects.filter(slug=slug, active=True).first()
        if service is None:
            # Not keyed: once the service exists, a re-run books it.
            CallEvent.objects.create(call=call, kind=CallEvent.Kind.ERROR, name="follow_up_appointment",
                                     payload={"error": f"no active service {slug!r}"})
            return {"action": "follow_up_appointment", "error": f"no active service {slug!r}"}
        if call.customer_id and not caller_verified_as_customer(call):
            return _unverified(call, action="follow_up_appointment", what="book the follow-up by hand")
        customer, created_customer = _customer_for(call, facts)
        appointment = Appointment.objects.filter(source_call=call, service=service,
                                                 status__in=Appointment.ACTIVE_STATUSES).first()
        error = ""
        if appointment is None:
            day = timezone.localdate() + dt.timedelta(days=1)
            for _ in range(FOLLOW_UP_SEARCH_DAYS):
                for starts_at in service_available_slots(service=service, day=day, limit=3):
                    try:
                        appointment = appointment_book(customer=customer, service=service, starts_at=starts_at,
                                                       source_call=call, notes=f"Follow-up from call {call.public_id}")
                        break
                    except ValidationError as exc:  # taken meanwhile, or the customer is busy then
                        error = "; ".join(exc.messages)
                if appointment is not None:
                    break
                day += dt.timedelta(days=1)
        if appointment is None:
            CallEvent.objects.create(call=call, kind=CallEvent.Kind.ERROR, name="follow_up_appointment",
                                     payload={"error": error or f"no free {service.name} slot in {FOLLOW_UP_SEARCH_DAYS} days"})
            return {"action": "follow_up_appointment", "error": error or "no free slot"}
        payload = {"appointment": appointment.pk, "service": slug, "customer": customer.account_number,
                   "customer_created": created_customer,
                   "starts_at": timezone.localtime(appointment.starts_at).isoformat()}
        _record(call, key=key, name="follow_up_appointment", payload=payload)
    return {"action": "follow_up_appointment", **payload, "already_done": False}


# --- contact details -------------------------------------------------------------------------------

CONTACT_FIELDS = {"phone": "phone", "phone_number": "phone", "callback_number": "phone",
                  "email": "email", "email_address": "email"}


def _contact_update(call: Call, facts: dict) -> dict | None:
    if not call.customer_id:
        return None
    customer = Customer.objects.get(pk=call.customer_id)
    changes: dict[str, dict] = {}
    for name, target in CONTACT_FIELDS.items():
        raw = facts.get(name)
        if not raw or target in changes:
            continue
        if target == "phone":
            value = phone_or_none(str(raw))
            if value and value != customer.phone:
                changes["phone"] = {"before": customer.phone, "after": value}
        else:
            value = str(raw).strip().lower()
            try:
                validate_email(value)
            except ValidationError:
                continue
            if value != customer.email.lower():
                changes["email"] = {"before": customer.email, "after": value}
    if not changes:
        return None
    if not caller_verified_as_customer(call):
        return _unverified(call, action="update_customer", what="check the new details with the account holder",
                           changes=changes)
    key = "update_customer:" + hashlib.sha1(json.dumps(changes, sort_keys=True).encode()).hexdigest()[:16]
    with transaction.atomic():
        _locked(call)
        if _done(call, key):
            return {"action": "update_customer", "changes": changes, "already_done": True}
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        for target, change in changes.items():
            setattr(customer, target, change["after"])
        customer.save(update_fields=[*changes, "updated_at"])
        _record(call, key=key, name="update_customer", payload={"customer": customer.account_number, "changes": changes})
    return {"action": "update_customer", "changes": changes, "already_done": False}


# --- the stage -------------------------------------------------------------------------------------

def call_act(*, call: Call) -> dict:
    rules = list(call.agent.escalation_rules or []) if call.agent_id else []
    facts = facts_for(call)
    matched = [r for r in rules if r.get("enabled", True) and r.get("action") in KNOWN_ACTIONS
               and rule_matches(r.get("when") or {}, facts)]
    unknown = sorted({str(r.get("action")) for r in rules if r.get("action") not in KNOWN_ACTIONS})
    results: list[dict] = []
    ticket_rules = [r for r in matched if r["action"] in TICKET_ACTIONS]
    ticket_reference = None
    if ticket_rules:
        result = _ticket_action(call, ticket_rules, facts)
        ticket_reference = result.get("ticket")
        results.append(result)
    for rule in matched:
        if rule["action"] == "follow_up_appointment":
            results.append(_appointment_action(call, rule, facts))
    notify_rules = [r for r in matched if r.get("notify") == "supervisors" or r["action"] == "notify"]
    if notify_rules:
        reason = "Urgent call" if any(r["action"] == "urgent_ticket" for r in notify_rules) else "Call needs attention"
        results.append(_supervisors_notify(call, reason=reason, ticket_reference=ticket_reference))
    contact_rules = [r for r in rules if r.get("action") == "update_customer"]
    if not contact_rules or any(r in matched for r in contact_rules):
        if not any(r.get("enabled", True) is False for r in contact_rules):
            result = _contact_update(call, facts)
            if result:
                results.append(result)
    return {"matched_rules": len(matched), "actions": results, "unknown_actions": unknown}
