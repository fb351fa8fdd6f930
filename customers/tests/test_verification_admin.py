"""Staff see a customer's verification lockout in the admin and can clear it."""

import datetime as dt

import pytest
from django.urls import reverse

from customers.models import Customer
from customers.services import customer_verify
from customers.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_the_customer_page_shows_the_lockout_and_the_action_clears_it(client, alice):
    customer = CustomerFactory(date_of_birth=dt.date(1985, 5, 5))
    for _ in range(3):
        customer_verify(customer=customer, date_of_birth="1990-01-01")
    client.force_login(alice)
    page = client.get(reverse("admin:customers_customer_change", args=[customer.pk])).content.decode()
    assert "Locked until" in page and "after 3 failed attempts" in page
    changelist = reverse("admin:customers_customer_changelist")
    assert "export_as_csv" in client.get(changelist).content.decode()  # the shared actions are kept
    response = client.post(changelist, {"action": "clear_verification_lockout", "_selected_action": [customer.pk]})
    assert response.status_code == 302
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.verification_failures, stored.verification_locked_until) == (0, None)
    assert customer_verify(customer=stored, date_of_birth="1985-05-05").verified
