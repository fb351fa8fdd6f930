"""Writes to customers, appointments and orders, with their rules and side effects, and the
decision whether a caller is who they say they are."""

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypedDict, Unpack

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from customers.models import Appointment, Customer, Order, Service, max_overlap

# How far ahead an appointment may be booked. Also keeps the end time (start + duration) and the
# time zone arithmetic inside the calendar for any date a client sends.
BOOKING_HORIZON = dt.timedelta(days=3650)


def _start_problem(starts_at: dt.datetime) -> str | None:
    now = timezone.now()
    if starts_at <= now:
        return "The appointment must start in the future."
    if starts_at > now + BOOKING_HORIZON:
        return f"Appointments can be booked at most {BOOKING_HORIZON.days} days ahead."
    return None


@transaction.atomic
def appointment_book(
    *,
    customer: Customer,
    service: Service,
    starts_at: dt.datetime,
    source_call=None,
    source_call_id: int | None = None,
    notes: str = "",
) -> Appointment:
    """`source_call` (a calls.Call) or `source_call_id`: the call that booked it, if any.

    ValidationError (code "slot") when the time is past, closed, taken or clashes with another of
    the customer's appointments.
    """
    if problem := _start_problem(starts_at):
        raise ValidationError(problem, code="slot")
    # Lock the service row so two callers cannot both take its last free place.
    service = Service.objects.select_for_update().get(pk=service.pk)
    ends_at = starts_at + service.duration
    problem = Appointment.slot_problem(service=service, customer=customer, starts_at=starts_at, ends_at=ends_at)
    if problem:
        raise ValidationError(problem, code="slot")
    return Appointment.objects.create(
        customer=customer, service=service, starts_at=starts_at, ends_at=ends_at, notes=notes,
        source_call_id=source_call.pk if source_call is not None else source_call_id,
    )


@transaction.atomic
def appointment_reschedule(*, appointment: Appointment, starts_at: dt.datetime) -> Appointment:
    """ValidationError: code "inactive" for a cancelled, completed or missed appointment, "slot"
    when the new time cannot be booked (as in appointment_book)."""
    service = Service.objects.select_for_update().get(pk=appointment.service_id)
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if not appointment.is_active:
        raise ValidationError(f"A {appointment.get_status_display().lower()} appointment cannot be rescheduled.",
                              code="inactive")
    if problem := _start_problem(starts_at):
        raise ValidationError(problem, code="slot")
    ends_at = starts_at + service.duration
    problem = Appointment.slot_problem(
        service=service, customer=appointment.customer, starts_at=starts_at, ends_at=ends_at, exclude_id=appointment.pk
    )
    if problem:
        raise ValidationError(problem, code="slot")
    appointment.starts_at, appointment.ends_at = starts_at, ends_at
    appointment.status = Appointment.Status.RESCHEDULED
    appointment.save(update_fields=["starts_at", "ends_at", "status", "updated_at"])
    return appointment


@transaction.atomic
def appointment_cancel(*, appointment: Appointment) -> Appointment:
    """ValidationError (code "inactive") when it is already cancelled, completed or missed."""
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if not appointment.is_active:
        raise ValidationError(f"The appointment is already {appointment.get_status_display().lower()}.", code="inactive")
    appointment.status = Appointment.Status.CANCELLED
    appointment.save(update_fields=["status", "updated_at"])
    return appointment


def service_available_slots(*, service: Service, day: dt.date, limit: int | None = None) -> list[dt.datetime]:
    """Start times on `day`, on a grid of the service's duration, with a free place.

    Past slots are left out. One query for the day's bookings, then pure arithmetic.
    """
    now = timezone.now()
    intervals = service.open_intervals(day)
    if not intervals:
        return []
    day_start, day_end = min(i[0] for i in intervals), max(i[1] for i in intervals)
    booked = list(
        Appointment.objects.filter(
            service=service, status__in=Appointment.ACTIVE_STATUSES, starts_at__lt=day_end, ends_at__gt=day_start
        ).values_list("starts_at", "ends_at")
    )
    slots: list[dt.datetime] = []
    for opens, closes in intervals:
        start = opens
        while start + service.duration <= closes:
            end = start + service.duration
            overlapping = [(max(s, start), min(e, end)) for s, e in booked if s < end and e > start]
            if start > now and max_overlap(overlapping) < service.capacity:
                slots.append(start)
                if limit and len(slots) >= limit:
                    return slots
            start = end
    return slots


class CustomerAccount(TypedDict, total=False):
    """What staff set beyond a caller's own details: the account's terms and identifiers."""

    company: str
    plan: str
    balance: Decimal
    notes: str
    account_number: str  # left out: a new random one


class CustomerChanges(CustomerAccount, total=False):
    """What may be changed on an existing customer; verification counters are customer_verify's."""

    first_name: str
    last_name: str
    phone: str
    email: str
    postcode: str
    status: str


def customer_create(
    *,
    first_name: str,
    last_name: str = "",
    phone: str = "",
    email: str = "",
    postcode: str = "",
    status: str = Customer.Status.PROSPECT,
    **account: Unpack[CustomerAccount],
) -> Customer:
    """A new customer record, validated like a form would (ValidationError names the bad field)."""
    unknown = set(account) - set(CustomerAccount.__annotations__)
    if unknown:
        raise TypeError(f"customer_create() cannot set {', '.join(sorted(unknown))}")
    customer = Customer(first_name=first_name, last_name=last_name, phone=phone, email=email, postcode=postcode,
                        status=status, **account)
    customer.full_clean()
    customer.save()
    return customer


@transaction.atomic
def customer_update(*, customer: Customer, **changes: Unpack[CustomerChanges]) -> Customer:
    """Apply `changes` with the model's validation and normalisation (E.164 phone, upper-case
    postcode) and return the saved row. Only fields whose value changed are written, and nothing
    at all when none did: `updated_at` moves only on a real change (a caller ID lookup prefers
    the most recently updated record), and verification counters written meanwhile are kept."""
    unknown = set(changes) - set(CustomerChanges.__annotations__)
    if unknown:
        raise TypeError(f"customer_update() cannot set {', '.join(sorted(unknown))}")
    # The stored row, locked: two edits at once are applied one after the other.
    stored = Customer.objects.select_for_update().get(pk=customer.pk)
    before = {name: getattr(stored, name) for name in changes}
    for name, value in changes.items():
        setattr(stored, name, value)
    stored.full_clean()
    changed = sorted(name for name in changes if getattr(stored, name) != before[name])
    if changed:
        stored.save(update_fields=[*changed, "updated_at"])
    return stored


ORDER_NUMBER = re.compile(r"^[A-Z0-9]{3,20}$")


def new_order_number() -> str:
    """"ORD" and eight digits; a caller reads out the digits (the agent matches the end of a number)."""
    while True:
        number = f"ORD{secrets.randbelow(90_000_000) + 10_000_000}"
        if not Order.objects.filter(number=number).exists():
            return number


def order_create(
    *,
    customer: Customer,
    items: list[dict[str, Any]] | None = None,
    total: Decimal | None = None,
    number: str = "",
    status: str = Order.Status.PENDING,
    tracking_number: str = "",
    placed_at: dt.datetime | None = None,
) -> Order:
    """A new order. `items` are {"sku", "name", "qty", "price"}; without a `total`, it is the sum
    of qty × price. A given `number` is upper-cased and must be 3 to 20 letters and digits (it is
    read out on calls); without one, a new one. ValidationError names the bad field."""
    items = [dict(item) for item in items or []]
    for item in items:
        item["price"] = str(Decimal(item["price"]).quantize(Decimal("0.01")))
    if total is None:
        total = sum((Decimal(item["price"]) * item["qty"] for item in items), Decimal("0.00"))
    number = number.strip().upper() or new_order_number()
    if not ORDER_NUMBER.match(number):
        raise ValidationError({"number": "An order number is 3 to 20 letters and digits."})
    order = Order(customer=customer, items=items, total=total, number=number, status=status,
                  tracking_number=tracking_number, placed_at=placed_at or timezone.now())
    order.full_clean()
    order.save()
    return order


@dataclass(frozen=True)
class Verification:
    verified: bool
    failures: int  # failed verifications counted on the customer, this attempt included
    attempts_left: int
    locked: bool  # verification is locked for this customer, on every call, until `locked_until`
    locked_until: dt.datetime | None = None
    # This attempt started the lockout: exactly one attempt per lockout window gets True, so
    # whatever follows a lockout (the ticket) happens once per window, however many calls fail.
    lock_started: bool = False


def _facts_match(customer: Customer, *, date_of_birth: str | None, postcode: str | None, last_name: str | None) -> bool:
    checks = []
    if date_of_birth is not None:
        checks.append(customer.date_of_birth is not None and customer.date_of_birth.isoformat() == date_of_birth)
    if postcode is not None:
        checks.append(bool(customer.postcode) and customer.postcode.replace(" ", "").upper() == postcode.replace(" ", "").upper())
    if last_name is not None:
        checks.append(bool(customer.last_name) and customer.last_name.lower() == last_name.strip().lower())
    return all(checks)


@transaction.atomic
def customer_verify(
    *,
    customer: Customer,
    date_of_birth: str | None = None,
    postcode: str | None = None,
    last_name: str | None = None,
    max_failures: int | None = None,
) -> Verification:
    """Check what the caller said against the record; every fact given must match.

    `date_of_birth` is YYYY-MM-DD; postcodes are compared without spaces or case, last names
    without case. Failures are counted on the customer, whatever the call or channel: the one
    that reaches `max_failures` (default settings.VERIFICATION_MAX_FAILURES) locks verification
    for settings.VERIFICATION_LOCKOUT_MINUTES, and while it is locked nothing is checked, not even
    the right answer. Failures older than the lockout window are forgotten; a success clears them.
    """
    if date_of_birth is None and postcode is None and last_name is None:
        raise ValueError("customer_verify() needs at least one fact to check")
    limit = max(1, min(max_failures or settings.VERIFICATION_MAX_FAILURES, settings.VERIFICATION_MAX_FAILURES))
    window = dt.timedelta(minutes=settings.VERIFICATION_LOCKOUT_MINUTES)
    now = timezone.now()
    # The row lock: two calls guessing for the same customer at once are counted one after the
    # other, so neither gets a guess beyond the limit.
    row = Customer.objects.select_for_update().get(pk=customer.pk)
    if row.verification_locked(now):
        return Verification(verified=False, failures=row.verification_failures, attempts_left=0, locked=True,
                            locked_until=row.verification_locked_until)
    failures = row.verification_failures
    if row.verification_locked_until is not None or (row.verification_failed_at and row.verification_failed_at <= now - window):
        failures = 0  # the lockout is over, or the last failure is too old to count
    if _facts_match(row, date_of_birth=date_of_birth, postcode=postcode, last_name=last_name):
        fields = {"verification_failures": 0, "verification_failed_at": None, "verification_locked_until": None}
        locked_until = None
        verified = True
    else:
        failures += 1
        locked_until = now + window if failures >= limit else None
        fields = {"verification_failures": failures, "verification_failed_at": now, "verification_locked_until": locked_until}
        verified = False
    # update(), not save(): updated_at says when the record changed, and a caller ID lookup
    # prefers the most recently updated record, which a guess must not change.
    Customer.objects.filter(pk=row.pk).update(**fields)
    for name, value in fields.items():
        setattr(customer, name, value)
    return Verification(verified=verified, failures=failures, attempts_left=max(0, limit - failures),
                        locked=locked_until is not None, locked_until=locked_until, lock_started=locked_until is not None)


def customer_verification_unlock(*, customer: Customer) -> None:
    """Clear the failed verifications and any lockout (staff, once they have checked who is calling)."""
    Customer.objects.filter(pk=customer.pk).update(
        verification_failures=0, verification_failed_at=None, verification_locked_until=None)
    customer.verification_failures, customer.verification_failed_at, customer.verification_locked_until = 0, None, None
