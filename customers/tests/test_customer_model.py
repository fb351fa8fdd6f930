import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from core.phones import normalize_phone
from customers.models import Customer
from customers.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("(415) 555-0123", "+14155550123"),
        ("415.555.0123", "+14155550123"),
        ("+1 415 555 0123", "+14155550123"),
        ("+44 20 7946 0958", "+442079460958"),
        ("", ""),
    ],
)
def test_phone_numbers_are_normalized_to_e164(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize("raw", ["12", "not a phone", "+1 555", "+999 1234 5678"])
def test_invalid_phone_numbers_are_rejected(raw):
    with pytest.raises(ValidationError):
        normalize_phone(raw)


def test_full_clean_normalizes_phone_on_the_model():
    customer = Customer(first_name="Grace", phone="(415) 555-0199")
    customer.full_clean()
    assert customer.phone == "+14155550199"


def test_every_write_stores_e164_and_refuses_bad_numbers():
    customer = CustomerFactory(phone="415-555-0100")
    assert Customer.objects.get(pk=customer.pk).phone == "+14155550100"
    with pytest.raises(ValidationError), transaction.atomic():
        CustomerFactory(phone="call me maybe")
    assert Customer.objects.count() == 1


def test_database_constraint_backs_up_the_field_for_raw_sql():
    customer = CustomerFactory()
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE customers_customer SET phone = %s WHERE id = %s", ["415-555-0100", customer.pk])


def test_account_numbers_are_unique_and_digits_only():
    CustomerFactory(account_number="55555")
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerFactory(account_number="55555")
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerFactory(account_number="AB123")


def test_generated_account_number_can_be_read_out():
    customer = Customer.objects.create(first_name="Grace")
    assert customer.account_number.isdigit() and len(customer.account_number) == 8
    assert not customer.account_number.startswith("0")


def test_str_names_the_customer_and_account():
    assert str(CustomerFactory(first_name="Ada", last_name="Lovelace", account_number="10042")) == "Ada Lovelace (10042)"
