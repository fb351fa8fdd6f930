import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from customers.models import Customer
from customers.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

HEADER = "account_number,first_name,last_name,phone,email,plan,balance,status,postcode\n"


def upload(client, text: str):
    csv_file = SimpleUploadedFile("customers.csv", text.encode(), content_type="text/csv")
    return client.post(
        reverse("admin:customers_customer_import"),
        {"import_file": csv_file, "format": "0", "resource": "0"},
    )


def test_a_good_file_is_previewed_then_imported_on_confirmation(client, alice):
    client.force_login(alice)
    response = upload(
        client,
        HEADER + "30001,Ann,Lee,(415) 555-0111,ann@example.com,basic,10.00,active,94103\n"
        "30002,Bo,Chan,415 555 0112,bo@example.com,premium,0,active,10001\n",
    )
    assert response.status_code == 200
    assert b"confirm" in response.content.lower()
    assert Customer.objects.count() == 0  # preview only
    form = response.context["confirm_form"]
    confirm = client.post(reverse("admin:customers_customer_process_import"), form.initial)
    assert confirm.status_code == 302
    assert sorted(Customer.objects.values_list("phone", flat=True)) == ["+14155550111", "+14155550112"]


def test_a_file_with_bad_rows_shows_each_error_and_imports_nothing(client, alice):
    CustomerFactory(account_number="30009")
    client.force_login(alice)
    response = upload(
        client,
        HEADER + "30001,Ann,Lee,(415) 555-0111,ann@example.com,basic,10.00,active,94103\n"
        "30002,Bad,Phone,12,bad@example.com,basic,0,active,94103\n"
        "30003,Bad,Email,(415) 555-0113,not-an-email,basic,0,active,94103\n"
        "30009,Dup,Account,(415) 555-0114,dup@example.com,basic,0,active,94103\n",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert response.context.get("confirm_form") is None  # a rejected file cannot be confirmed
    assert "is not a phone number" in html or "not a valid phone number" in html
    assert "Enter a valid email address" in html
    assert "already exists" in html
    assert Customer.objects.count() == 1


def test_a_duplicate_inside_the_file_is_rejected(client, alice):
    client.force_login(alice)
    response = upload(
        client,
        HEADER + "30001,Ann,Lee,(415) 555-0111,ann@example.com,basic,10.00,active,94103\n"
        "30001,Ann,Again,(415) 555-0112,ann2@example.com,basic,10.00,active,94103\n",
    )
    assert response.context.get("confirm_form") is None
    assert "already exists" in response.content.decode()
    assert Customer.objects.count() == 0
