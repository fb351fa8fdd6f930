"""Writes to customers, appointments and orders, with their rules and side effects."""

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from customers.models import Appointment, Customer, Service


def _max_overlap(intervals: list[tuple[dt.datetime, dt.datetime]]) -> int:
    """Most intervals in progress at any one instant (end is exclusive)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals], key=lambda e: (e[0], e[1]))
    busiest = running = 0
    for _, step in edges:
        running += step
        busiest = max(busiest, running)
    return busiest


def appointment_conflicts(
    *,
    service: Service,
    customer: Customer,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    exclude_id: int | None = None,
) -> str | None:
    """Why this slot cannot be booked, or None if it can."""
    if ends_at <= starts_at:
        return "The appointment must end after it starts."
    if not service.is_open_for(starts_at, ends_at):
        return f"{service.name} is not open at that time."
    overlapping_any = Appointment.objects.filter(
        status__in=Appointment.ACTIVE_STATUSES, starts_at__lt=ends_at, ends_at__gt=starts_at
    ).exclude(pk=exclude_id)
    if overlapping_any.filter(customer=customer).exists():
        return "The customer already has an appointment at that time."
    overlapping = overlapping_any.filter(service=service)
    intervals = [(max(a.starts_at, starts_at), min(a.ends_at, ends_at)) for a in overlapping]
    if _max_overlap(intervals) >= service.capacity:
        return f"{service.name} is fully booked at that time."
    return None


@transaction.atomic
def appointment_book(
    *,
    customer: Customer,
    service: Service,
    starts_at: dt.datetime,
    source_call=None,
    notes: str = "",
) -> Appointment:
    # Lock the service row so two callers cannot both take its last free place.
    service = Service.objects.select_for_update().get(pk=service.pk)
    ends_at = starts_at + service.duration
    problem = appointment_conflicts(service=service, customer=customer, starts_at=starts_at, ends_at=ends_at)
    if problem:
        raise ValidationError(problem)
    return Appointment.objects.create(
        customer=customer, service=service, starts_at=starts_at, ends_at=ends_at, source_call=source_call, notes=notes
    )


@transaction.atomic
def appointment_reschedule(*, appointment: Appointment, starts_at: dt.datetime) -> Appointment:
    service = Service.objects.select_for_update().get(pk=appointment.service_id)
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if not appointment.is_active:
        raise ValidationError(f"A {appointment.get_status_display().lower()} appointment cannot be rescheduled.")
    ends_at = starts_at + service.duration
    problem = appointment_conflicts(
        service=service, customer=appointment.customer, starts_at=starts_at, ends_at=ends_at, exclude_id=appointment.pk
    )
    if problem:
        raise ValidationError(problem)
    appointment.starts_at, appointment.ends_at = starts_at, ends_at
    appointment.status = Appointment.Status.RESCHEDULED
    appointment.save(update_fields=["starts_at", "ends_at", "status", "updated_at"])
    return appointment


@transaction.atomic
def appointment_cancel(*, appointment: Appointment) -> Appointment:
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if not appointment.is_active:
        raise ValidationError(f"The appointment is already {appointment.get_status_display().lower()}.")
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
            if start > now and _max_overlap(overlapping) < service.capacity:
                slots.append(start)
                if limit and len(slots) >= limit:
                    return slots
            start = end
    return slots


def customer_find_by_phone(phone: str) -> Customer | None:
    """Caller ID lookup: an exact E.164 match, most recently updated first."""
    if not phone:
        return None
    return Customer.objects.filter(phone=phone).exclude(status=Customer.Status.CLOSED).order_by("-updated_at").first()
