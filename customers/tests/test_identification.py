"""Finding the caller's record and verifying them (the rules the agent's identity tools apply)."""

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from customers.models import Customer
from customers.selectors import customer_find, customer_find_by_phone, customer_find_by_phone_and_first_name
from customers.services import customer_create, customer_verification_unlock, customer_verify
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
    assert (wrong.verified, wrong.failures, wrong.attempts_left, wrong.locked) == (False, 1, 2, False)
    # A fact the record does not hold cannot be confirmed.
    assert not customer_verify(customer=CustomerFactory(date_of_birth=None), date_of_birth="1985-05-05").verified
    with pytest.raises(ValueError):
        customer_verify(customer=customer)


@override_settings(VERIFICATION_MAX_FAILURES=3, VERIFICATION_LOCKOUT_MINUTES=30)
def test_failures_are_counted_on_the_customer_whoever_calls_and_lock_for_the_window():
    customer = CustomerFactory(date_of_birth=dt.date(1985, 5, 5))
    # Each attempt as a new call would make it: a fresh object, nothing carried over but the database.
    first = customer_verify(customer=Customer.objects.get(pk=customer.pk), date_of_birth="1990-01-01")
    second = customer_verify(customer=Customer.objects.get(pk=customer.pk), date_of_birth="1990-01-02")
    assert (first.failures, first.attempts_left, second.failures, second.attempts_left) == (1, 2, 2, 1)
    third = customer_verify(customer=Customer.objects.get(pk=customer.pk), date_of_birth="1990-01-03")
    assert (third.verified, third.locked, third.lock_started, third.attempts_left) == (False, True, True, 0)
    stored = Customer.objects.get(pk=customer.pk)
    assert stored.verification_failures == 3 and stored.verification_locked()
    assert abs((stored.verification_locked_until - timezone.now()) - dt.timedelta(minutes=30)) < dt.timedelta(minutes=1)
    # Locked: even the right answer is refused, and no second lockout starts.
    right = customer_verify(customer=Customer.objects.get(pk=customer.pk), date_of_birth="1985-05-05")
    assert (right.verified, right.locked, right.lock_started) == (False, True, False)
    # Once the window is over the customer may try again, with a fresh count.
    Customer.objects.filter(pk=customer.pk).update(verification_locked_until=timezone.now() - dt.timedelta(seconds=1))
    again = customer_verify(customer=Customer.objects.get(pk=customer.pk), date_of_birth="1990-01-04")
    assert (again.locked, again.failures, again.attempts_left) == (False, 1, 2)
    assert customer_verify(customer=Customer.objects.get(pk=customer.pk), date_of_birth="1985-05-05").verified
    assert Customer.objects.get(pk=customer.pk).verification_failures == 0


def test_old_failures_are_forgotten_and_a_guess_does_not_touch_updated_at():
    customer = CustomerFactory(date_of_birth=dt.date(1985, 5, 5))
    updated_at = Customer.objects.get(pk=customer.pk).updated_at
    customer_verify(customer=customer, date_of_birth="1990-01-01")
    customer_verify(customer=customer, date_of_birth="1990-01-01")
    Customer.objects.filter(pk=customer.pk).update(verification_failed_at=timezone.now() - dt.timedelta(hours=2))
    later = customer_verify(customer=customer, date_of_birth="1990-01-01")
    assert (later.failures, later.locked) == (1, False)
    # The caller ID lookup prefers the most recently updated record: guesses must not reorder it.
    assert Customer.objects.get(pk=customer.pk).updated_at == updated_at


def test_an_agent_may_lower_the_limit_but_not_raise_it():
    customer = CustomerFactory(date_of_birth=dt.date(1985, 5, 5))
    assert customer_verify(customer=customer, date_of_birth="1990-01-01", max_failures=1).locked
    other = CustomerFactory(date_of_birth=dt.date(1985, 5, 5))
    outcomes = [customer_verify(customer=other, date_of_birth="1990-01-01", max_failures=10) for _ in range(3)]
    assert [o.locked for o in outcomes] == [False, False, True]


def test_staff_can_clear_a_lockout():
    customer = CustomerFactory(date_of_birth=dt.date(1985, 5, 5))
    for _ in range(3):
        customer_verify(customer=customer, date_of_birth="1990-01-01")
    customer_verification_unlock(customer=customer)
    assert customer_verify(customer=Customer.objects.get(pk=customer.pk), date_of_birth="1985-05-05").verified


@pytest.mark.django_db(transaction=True)
def test_a_verification_waits_for_another_call_verifying_the_same_customer():
    customer = CustomerFactory(date_of_birth=dt.date(1985, 5, 5))
    holding, release, done = threading.Event(), threading.Event(), threading.Event()
    outcomes = []

    def other_call() -> None:
        try:
            with transaction.atomic():
                Customer.objects.select_for_update().get(pk=customer.pk)
                holding.set()
                release.wait(5)
        finally:
            connection.close()

    def this_call() -> None:
        try:
            outcomes.append(customer_verify(customer=customer, date_of_birth="1990-01-01"))
            done.set()
        finally:
            connection.close()

    holder = threading.Thread(target=other_call)
    holder.start()
    assert holding.wait(5)
    guesser = threading.Thread(target=this_call)
    guesser.start()
    # The row is locked by the other call: this one cannot read the count until that one is done.
    assert not done.wait(0.5)
    release.set()
    holder.join(5)
    guesser.join(5)
    assert done.is_set() and outcomes[0].failures == 1


@pytest.mark.django_db(transaction=True)
@override_settings(VERIFICATION_MAX_FAILURES=3)
def test_concurrent_guesses_get_no_more_than_the_limit():
    customer = CustomerFactory(date_of_birth=dt.date(1985, 5, 5))
    start = threading.Barrier(6)
    outcomes = []

    def guess(n: int) -> None:
        try:
            start.wait(5)
            outcomes.append(customer_verify(customer=Customer.objects.get(pk=customer.pk), date_of_birth=f"1990-01-0{n + 1}"))
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    counted = [o for o in outcomes if not o.locked or o.lock_started]
    assert len(outcomes) == 6 and len(counted) == 3
    assert sum(o.lock_started for o in outcomes) == 1
    assert Customer.objects.get(pk=customer.pk).verification_failures == 3


def test_customer_create_validates_and_saves():
    customer = customer_create(first_name="Kenji", last_name="Tanaka", phone="+14155550106", postcode="94110")
    assert Customer.objects.get(pk=customer.pk).status == Customer.Status.PROSPECT and customer.account_number
    assert customer_find_by_phone_and_first_name(phone="+14155550106", first_name="kenji") == customer
    with pytest.raises(ValidationError):
        customer_create(first_name="Bad", email="not an email")
    assert not Customer.objects.filter(first_name="Bad").exists()
