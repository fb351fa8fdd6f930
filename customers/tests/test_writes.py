"""customers/services.py writes the API uses: customer_update, order_create, and booking only ahead."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from customers.models import Appointment, Customer, Order
from customers.services import (
    BOOKING_HORIZON,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    customer_create,
    customer_update,
    order_create,
)
from customers.tests.factories import CustomerFactory, OrderFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def test_customer_create_sets_the_account_terms_a_supervisor_gives():
    customer = customer_create(first_name="Ada", status="active", plan="premium", balance=Decimal("-5.00"),
                               account_number="123456", company="Analytical", notes="VIP")
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.plan, stored.balance, stored.account_number, stored.company) == (
        "premium", Decimal("-5.00"), "123456", "Analytical")
    with pytest.raises(ValidationError) as raised:
        customer_create(first_name="Eve", account_number="12")
    assert list(raised.value.message_dict) == ["account_number"]
    with pytest.raises(TypeError):
        customer_create(first_name="Eve", verification_failures=0)


def test_customer_update_validates_normalises_and_writes_only_what_changed():
    customer = CustomerFactory(phone="+14155550123", postcode="94103", notes="")
    stamp = Customer.objects.get(pk=customer.pk).updated_at
    assert customer_update(customer=customer, phone="415-555-0123").updated_at == stamp
    # A verification counted meanwhile is not written over by an edit of another field.
    Customer.objects.filter(pk=customer.pk).update(verification_failures=2)
    updated = customer_update(customer=customer, postcode=" sw1a 1aa", notes="Called")
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.postcode, stored.notes, stored.verification_failures) == ("SW1A 1AA", "Called", 2)
    assert updated.updated_at == stored.updated_at > stamp
    with pytest.raises(ValidationError) as raised:
        customer_update(customer=customer, phone="12", notes="lost")
    assert list(raised.value.message_dict) == ["phone"]
    assert Customer.objects.get(pk=customer.pk).notes == "Called"
    with pytest.raises(TypeError):
        customer_update(customer=customer, verification_locked_until=None)


def test_order_create_totals_the_items_and_numbers_the_order():
    customer = CustomerFactory()
    order = order_create(customer=customer, items=[{"sku": "RTR", "name": "Router", "qty": 3, "price": Decimal("9.5")}])
    stored = Order.objects.get(pk=order.pk)
    assert stored.total == Decimal("28.50") and stored.items[0]["price"] == "9.50"
    assert stored.number.startswith("ORD") and len(stored.number) == 11 and stored.status == "pending"
    given = order_create(customer=customer, number=" nw7 ", total=Decimal("1.00"))
    assert given.number == "NW7" and given.items == [] and given.total == Decimal("1.00")


def test_order_create_refuses_bad_numbers_and_totals():
    customer = OrderFactory(number="NW9").customer
    for number in ("NW9", "N-9", "x" * 21):
        with pytest.raises(ValidationError) as raised:
            order_create(customer=customer, number=number, total=Decimal("1.00"))
        assert list(raised.value.message_dict) == ["number"], number
    with pytest.raises(ValidationError) as raised:
        order_create(customer=customer, total=Decimal("-1.00"))
    assert "total" in raised.value.message_dict
    assert Order.objects.count() == 1


def _at(days: int, hour: int) -> dt.datetime:
    day = timezone.localdate() + dt.timedelta(days=days)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=timezone.get_current_timezone())


def test_appointments_are_booked_and_moved_only_ahead_and_within_the_horizon():
    service, customer = ServiceFactory(), CustomerFactory()
    for starts_at in (_at(-1, 10), timezone.now() + BOOKING_HORIZON + dt.timedelta(days=1)):
        with pytest.raises(ValidationError) as raised:
            appointment_book(customer=customer, service=service, starts_at=starts_at)
        assert raised.value.code == "slot"
    appointment = appointment_book(customer=customer, service=service, starts_at=_at(2, 10))
    with pytest.raises(ValidationError) as raised:
        appointment_reschedule(appointment=appointment, starts_at=_at(-2, 10))
    assert raised.value.code == "slot" and "future" in raised.value.messages[0]
    appointment_cancel(appointment=appointment)
    with pytest.raises(ValidationError) as raised:
        appointment_reschedule(appointment=appointment, starts_at=_at(3, 10))
    assert raised.value.code == "inactive"
    with pytest.raises(ValidationError) as raised:
        appointment_cancel(appointment=appointment)
    assert raised.value.code == "inactive"
    assert Appointment.objects.get().starts_at == _at(2, 10)
