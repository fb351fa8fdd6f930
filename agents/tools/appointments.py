"""Booking: free times, and the caller's appointments (list, book, move, cancel)."""

from __future__ import annotations

import datetime as dt

from django.utils import dateparse, timezone
from rapidfuzz import fuzz, process

from agents.engine import CallContext
from agents.text import datetime_text, join_words, time_text
from agents.tools.base import ROW_ID, SHORT_TEXT, ToolError, caller_customer, tool
from customers.models import Appointment, Service
from customers.selectors import appointment_get_for_customer, appointment_list_for_customer, service_list_bookable
from customers.services import appointment_book, appointment_cancel, appointment_reschedule, service_available_slots


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


def _find_service(name: str) -> Service:
    """The bookable service the caller named (slug, name, or close to a name); the only one if
    there is one and no name was given."""
    services = service_list_bookable()
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


def appointment_dict(appointment: Appointment) -> dict:
    return {
        "id": appointment.pk, "service": appointment.service.name, "starts_at": appointment.starts_at,
        "starts_at_text": datetime_text(appointment.starts_at), "status": appointment.status,
    }


def _own_appointment(ctx: CallContext, appointment_id: int) -> Appointment:
    appointment = appointment_get_for_customer(customer_id=ctx.customer_id, appointment_id=appointment_id)
    if appointment is None:
        raise ToolError("not_found", "That appointment was not found on the caller's account.")
    return appointment


def _future(value: str) -> dt.datetime:
    starts_at = _parse_datetime(value)
    if starts_at <= timezone.now():
        raise ToolError("in_the_past", "That time has already passed.")
    return starts_at


@tool(
    name="get_appointments",
    description="The caller's upcoming appointments.",
    parameters={"type": "object", "properties": {"include_past": {"type": "boolean"}}, "additionalProperties": False},
    requires="verified",
)
def get_appointments(ctx: CallContext, args: dict) -> dict:
    found = appointment_list_for_customer(customer_id=ctx.customer_id, include_past=bool(args.get("include_past")), limit=5)
    appointments = [appointment_dict(a) for a in found]
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
            "service": SHORT_TEXT,
            "date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}"},
            "time": {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 20},
        },
        "required": ["date"],
        "additionalProperties": False,
    },
)
def check_availability(ctx: CallContext, args: dict) -> dict:
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
    description="Book an appointment for the verified caller.",
    parameters={
        "type": "object",
        "properties": {
            "service": SHORT_TEXT,
            "starts_at": {"type": "string", "minLength": 16, "maxLength": 40, "description": "ISO 8601 date and time."},
            "notes": {"type": "string", "maxLength": 1000},
        },
        "required": ["starts_at"],
        "additionalProperties": False,
    },
    requires="verified",
)
def create_appointment(ctx: CallContext, args: dict) -> dict:
    service = _find_service(args.get("service", ""))
    starts_at = _future(args["starts_at"])
    appointment = appointment_book(customer=caller_customer(ctx), service=service, starts_at=starts_at,
                                   source_call_id=ctx.call_id, notes=args.get("notes", ""))
    return {"booked": True, **appointment_dict(appointment)}


@tool(
    name="reschedule_appointment",
    description="Move one of the caller's appointments to a new time.",
    parameters={
        "type": "object",
        "properties": {"appointment_id": ROW_ID, "starts_at": {"type": "string", "minLength": 16, "maxLength": 40}},
        "required": ["appointment_id", "starts_at"],
        "additionalProperties": False,
    },
    requires="verified",
)
def reschedule_appointment(ctx: CallContext, args: dict) -> dict:
    appointment = _own_appointment(ctx, args["appointment_id"])
    starts_at = _future(args["starts_at"])
    previous = datetime_text(appointment.starts_at)
    appointment = appointment_reschedule(appointment=appointment, starts_at=starts_at)
    return {"rescheduled": True, "previous_text": previous, **appointment_dict(appointment)}


@tool(
    name="cancel_appointment",
    description="Cancel one of the caller's appointments.",
    parameters={
        "type": "object", "properties": {"appointment_id": ROW_ID}, "required": ["appointment_id"], "additionalProperties": False,
    },
    requires="verified",
)
def cancel_appointment(ctx: CallContext, args: dict) -> dict:
    appointment = appointment_cancel(appointment=_own_appointment(ctx, args["appointment_id"]))
    return {"cancelled": True, **appointment_dict(appointment)}
