"""Reads of customers, appointments, services and orders: finding the caller, and what the agent
may tell them about their account."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from core.phones import phone_or_none
from customers.models import Appointment, Customer, Order, Service


def _live() -> QuerySet[Customer]:
    # A closed account is never matched to a caller.
    return Customer.objects.exclude(status=Customer.Status.CLOSED)


def customer_get(*, customer_id: int | None) -> Customer | None:
    return Customer.objects.filter(pk=customer_id).first() if customer_id else None


def customer_find_by_phone(phone: str) -> Customer | None:
    """Caller ID lookup: an exact E.164 match, most recently updated first."""
    if not phone:
        return None
    return _live().filter(phone=phone).order_by("-updated_at").first()


def customer_find_by_account(account_number: str) -> Customer | None:
    if not account_number:
        return None
    return _live().filter(account_number=account_number).first()


def customer_find_by_phone_and_first_name(*, phone: str, first_name: str) -> Customer | None:
    """A caller who already has a record under this number and first name (before creating another)."""
    if not phone:
        return None
    return _live().filter(phone=phone, first_name__iexact=first_name).first()


def customer_search_by_name(*, name: str, postcode: str) -> list[Customer]:
    """Customers with the last word of `name` as last name and this postcode (with or without its
    spaces); when several match and a first name was given, those with that first name, if any."""
    words = name.split()
    if not words:
        return []
    matches = list(_live().filter(last_name__iexact=words[-1]).filter(
        Q(postcode__iexact=postcode.replace(" ", "").upper()) | Q(postcode__iexact=postcode.strip().upper())))
    if len(words) > 1 and len(matches) > 1:
        matches = [m for m in matches if m.first_name.lower() == words[0].lower()] or matches
    return matches


@dataclass(frozen=True)
class CustomerMatch:
    customer: Customer | None
    method: str  # how it was looked for: "account_number", "phone" or "name_postcode"
    ambiguous: bool = False  # several customers fit the name and postcode


def customer_find(*, account_number: str = "", phone: str = "", name: str = "", postcode: str = "") -> CustomerMatch:
    """The caller's record from what they said: the account number if given, else the phone number
    (as said; a number that is not one matches nobody), else the name with the postcode. Nothing
    is matched when several customers fit."""
    if account_number:
        return CustomerMatch(customer_find_by_account(account_number), "account_number")
    if phone:
        return CustomerMatch(customer_find_by_phone(phone_or_none(phone) or ""), "phone")
    matches = customer_search_by_name(name=name, postcode=postcode)
    if len(matches) > 1:
        return CustomerMatch(None, "name_postcode", ambiguous=True)
    return CustomerMatch(matches[0] if matches else None, "name_postcode")


def service_list_bookable() -> list[Service]:
    return list(Service.objects.filter(active=True))


def appointment_get_for_customer(*, customer_id: int | None, appointment_id: int) -> Appointment | None:
    """One of this customer's appointments; None for anyone else's."""
    if not customer_id:
        return None
    return Appointment.objects.select_related("service").filter(pk=appointment_id, customer_id=customer_id).first()


def appointment_list_for_customer(*, customer_id: int | None, include_past: bool = False, limit: int = 5) -> list[Appointment]:
    """The customer's active appointments, soonest first; only those still to come unless `include_past`."""
    qs = Appointment.objects.select_related("service").filter(customer_id=customer_id, status__in=Appointment.ACTIVE_STATUSES)
    if not include_past:
        qs = qs.filter(starts_at__gte=timezone.now())
    return list(qs.order_by("starts_at")[:limit])


def appointment_next_for_customer(*, customer_id: int | None) -> Appointment | None:
    upcoming = appointment_list_for_customer(customer_id=customer_id, limit=1)
    return upcoming[0] if upcoming else None


def order_list_for_customer(*, customer_id: int | None, number: str = "", limit: int = 3) -> list[Order]:
    """The customer's orders, newest first; with `number`, the one with that number or ending in it
    (punctuation and case ignored)."""
    qs = Order.objects.filter(customer_id=customer_id)
    if number:
        wanted = re.sub(r"[^0-9A-Za-z]", "", number).upper()
        qs = qs.filter(Q(number__iexact=wanted) | Q(number__endswith=wanted))
    return list(qs.order_by("-placed_at")[:limit])
