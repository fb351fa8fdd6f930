"""Finding the caller's record and verifying them (the rules the agent's identity tools apply)."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from customers.models import Customer
from customers.selectors import customer_find, customer_find_by_phone, customer_find_by_phone_and_first_name
from customers.services import MAX_VERIFICATION_ATTEMPTS, customer_create, customer_verify
from customers.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_the_account_number_wins_over_the_phone_and_the_name():
    ada = CustomerFactory(account_number="71001", phone="+14155550101")
    grace = CustomerFactory(account_number="71002", phone="+14155550102", first_name="Grace", last_name="Hopper")
    match = customer_find(account_number="71001", phone="+14155550102", name="Grace Hopper", postcode=grace.postcode)
    assert (match.customer, match.method, match.ambiguous) == (ada, "account_number", False)
    assert customer_find(account_number="79999").customer is None


def test_a_phone_number_is_matched_as_said_and_a_bad_one_matches_nobody():
    ada = CustomerFactory(phone="+14155550103", last_name="Lovelace", postcode="94103")
    assert customer_find(phone="(415) 555-0103").customer == ada
    # Not a number: nobody, and the name given alongside is not tried instead.
    match = customer_find(phone="call me maybe", name="Ada Lovelace", postcode="94103")
    assert (match.customer, match.method) == (None, "phone")


def test_the_most_recently_updated_record_answers_for_a_shared_phone():
    CustomerFactory(phone="+14155550104")
    newer = CustomerFactory(phone="+14155550104")
    assert customer_find_by_phone("+14155550104") == newer
    assert customer_find_by_phone("") is None


def test_a_name_and_postcode_match_ignores_case_and_narrows_by_first_name():
    ada = CustomerFactory(first_name="Ada", last_name="Byron", postcode="N19GU")
    annabella = CustomerFactory(first_name="Annabella", last_name="Byron", postcode="N19GU")
    spaced = CustomerFactory(first_name="Augusta", last_name="Leigh", postcode="SW1A 1AA")
    assert customer_find(name="ada byron", postcode="n1 9gu").customer == ada
    assert customer_find(name="Annabella Byron", postcode="N19GU").customer == annabella
    assert customer_find(name="Leigh", postcode="sw1a 1aa ").customer == spaced
    both = customer_find(name="Byron", postcode="N19GU")
    assert (both.customer, both.method, both.ambiguous) == (None, "name_postcode", True)
    assert customer_find(name="Byron", postcode="SW1A1AA").customer is None
    assert customer_find(name="  ", postcode="N19GU").customer is None


def test_closed_accounts_are_never_matched():
    closed = CustomerFactory(account_number="71005", phone="+14155550105", status=Customer.Status.CLOSED)
    assert customer_find(account_number="71005").customer is None
    assert customer_find(phone="+14155550105").customer is None
    assert customer_find_by_phone_and_first_name(phone="+14155550105", first_name=closed.first_name) is None


def test_every_fact_given_must_match():
    customer = CustomerFactory(date_of_birth=dt.date(1985, 5, 5), postcode="SW1A 1AA", last_name="Lovelace")
    assert customer_verify(customer=customer, date_of_birth="1985-05-05", postcode="sw1a1aa", last_name=" lovelace ").verified
    wrong = customer_verify(customer=customer, date_of_birth="1985-05-05", postcode="N1 9GU")
    assert (wrong.verified, wrong.attempts, wrong.attempts_left, wrong.locked) == (False, 1, MAX_VERIFICATION_ATTEMPTS - 1, False)
    # A fact the record does not hold cannot be confirmed.
    assert not customer_verify(customer=CustomerFactory(date_of_birth=None), date_of_birth="1985-05-05").verified
    with pytest.raises(ValueError):
        customer_verify(customer=customer)


def test_the_failure_that_uses_the_last_attempt_locks_verification():
    customer = CustomerFactory(date_of_birth=dt.date(1985, 5, 5))
    second = customer_verify(customer=customer, date_of_birth="1990-01-01", attempts=1, max_attempts=3)
    assert (second.attempts, second.attempts_left, second.locked) == (2, 1, False)
    third = customer_verify(customer=customer, date_of_birth="1990-01-01", attempts=2, max_attempts=3)
    assert (third.attempts, third.attempts_left, third.locked) == (3, 0, True)
    once = customer_verify(customer=customer, date_of_birth="1990-01-01", max_attempts=1)
    assert once.locked
    # A right answer before the lock does not add a failure.
    right = customer_verify(customer=customer, date_of_birth="1985-05-05", attempts=2, max_attempts=3)
    assert (right.verified, right.attempts, right.locked) == (True, 2, False)


def test_customer_create_validates_and_saves():
    customer = customer_create(first_name="Kenji", last_name="Tanaka", phone="+14155550106", postcode="94110")
    assert Customer.objects.get(pk=customer.pk).status == Customer.Status.PROSPECT and customer.account_number
    assert customer_find_by_phone_and_first_name(phone="+14155550106", first_name="kenji") == customer
    with pytest.raises(ValidationError):
        customer_create(first_name="Bad", email="not an email")
    assert not Customer.objects.filter(first_name="Bad").exists()
