import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from customers.models import Appointment
from customers.services import appointment_book, appointment_cancel, appointment_reschedule, service_available_slots
from customers.tests.factories import CustomerFactory, ServiceFactory

pytestmark = pytest.mark.django_db

MONDAY = dt.date(2030, 1, 7)


def at(hour: int, minute: int = 0, day: dt.date = MONDAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=timezone.get_current_timezone())


def test_slots_follow_opening_hours_and_duration():
    service = ServiceFactory(duration_minutes=60)
    slots = service_available_slots(service=service, day=MONDAY)
    assert slots == [at(h) for h in range(9, 17)]


def test_booking_fills_a_slot_up_to_capacity():
    service = ServiceFactory(capacity=2)
    appointment_book(customer=CustomerFactory(), service=service, starts_at=at(10))
    assert at(10) in service_available_slots(service=service, day=MONDAY)
    appointment_book(customer=CustomerFactory(), service=service, starts_at=at(10))
    assert at(10) not in service_available_slots(service=service, day=MONDAY)
    with pytest.raises(ValidationError, match="fully booked"):
        appointment_book(customer=CustomerFactory(), service=service, starts_at=at(10, 30))
    assert Appointment.objects.count() == 2


def test_overlapping_booking_is_refused_but_back_to_back_is_fine():
    service = ServiceFactory(duration_minutes=60)
    appointment_book(customer=CustomerFactory(), service=service, starts_at=at(10))
    with pytest.raises(ValidationError):
        appointment_book(customer=CustomerFactory(), service=service, starts_at=at(10, 30))
    appointment_book(customer=CustomerFactory(), service=service, starts_at=at(11))


def test_a_customer_cannot_be_in_two_places():
    customer = CustomerFactory()
    appointment_book(customer=customer, service=ServiceFactory(capacity=5), starts_at=at(10))
    with pytest.raises(ValidationError, match="already has an appointment"):
        appointment_book(customer=customer, service=ServiceFactory(capacity=5), starts_at=at(10, 30))


def test_booking_outside_opening_hours_is_refused():
    with pytest.raises(ValidationError, match="not open"):
        appointment_book(customer=CustomerFactory(), service=ServiceFactory(), starts_at=at(16, 30))


def test_cancelling_frees_the_slot_and_rescheduling_moves_it():
    service = ServiceFactory()
    first = appointment_book(customer=CustomerFactory(), service=service, starts_at=at(10))
    appointment_cancel(appointment=first)
    second = appointment_book(customer=CustomerFactory(), service=service, starts_at=at(10))
    moved = appointment_reschedule(appointment=second, starts_at=at(14))
    assert moved.status == Appointment.Status.RESCHEDULED and moved.ends_at == at(15)
    assert at(10) in service_available_slots(service=service, day=MONDAY)
    with pytest.raises(ValidationError):
        appointment_reschedule(appointment=first, starts_at=at(15))


def test_admin_validation_uses_the_same_rule():
    service = ServiceFactory()
    appointment_book(customer=CustomerFactory(), service=service, starts_at=at(10))
    clash = Appointment(customer=CustomerFactory(), service=service, starts_at=at(10), ends_at=at(11))
    with pytest.raises(ValidationError):
        clash.full_clean()


def test_past_slots_are_not_offered():
    service = ServiceFactory()
    assert service_available_slots(service=service, day=dt.date(2020, 1, 6)) == []
