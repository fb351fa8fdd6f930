"""What every list and every error of the REST API shares: strict ?search= and ?ordering=, pages with a
client page size up to a maximum, and one error format (docs/api.md, Lists and Errors)."""

import datetime as dt
import re
import secrets
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.db.models import ProtectedError
from django.test import Client
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator
from knox.models import AuthToken
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from calls.models import Call
from customers.models import Customer, Service
from customers.tests.factories import AppointmentFactory, CustomerFactory, OrderFactory, ServiceFactory
from tickets.tests.factories import TicketFactory
from voicecrm.api import filters as api_filters
from voicecrm.api.errors import api_exception_handler
from voicecrm.api.urls import router

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_throttle_counts(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"api-platform-{secrets.token_hex(4)}"}}


def api_as(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


def ids(response) -> list:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# --- ?search= ------------------------------------------------------------------------------------------------

# One row the word "zephyr" finds, one it must not, for each list that existed before the search.
NEEDLES = {
    "customers": lambda: (CustomerFactory(company="Zephyr Logistics"), CustomerFactory(company="Acme")),
    "services": lambda: (ServiceFactory(name="Zephyr tune-up"), ServiceFactory(name="Oil change")),
    "appointments": lambda: (AppointmentFactory(notes="Zephyr gate code 1234"), AppointmentFactory(notes="")),
    "orders": lambda: (OrderFactory(tracking_number="ZEPHYR123"), OrderFactory(tracking_number="1Z999")),
    "calls": lambda: (Call.objects.create(channel="browser", summary="Asked about the Zephyr invoice"),
                      Call.objects.create(channel="browser", summary="Wrong number")),
    "tickets": lambda: (TicketFactory(subject="Zephyr outage"), TicketFactory(subject="Router reset")),
}


def row_id(obj):
    return str(obj.public_id) if isinstance(obj, Call) else obj.pk


@pytest.mark.parametrize("resource", sorted(NEEDLES))
def test_every_list_is_searched_on_its_fields(charlie, resource):
    needle, _hay = NEEDLES[resource]()
    client = api_as(charlie)
    assert ids(client.get(f"/api/v1/{resource}/", {"search": "zephyr"})) == [row_id(needle)]
    assert len(ids(client.get(f"/api/v1/{resource}/", {"search": ""}))) == 2
    assert ids(client.get(f"/api/v1/{resource}/", {"search": "zephyr nothing-like-this"})) == []


def test_each_word_of_a_search_must_match_some_field(charlie):
    ada = CustomerFactory(first_name="Ada", last_name="Byron", company="Analytical Engines")
    CustomerFactory(first_name="Ada", last_name="Smith", company="Looms")
    client = api_as(charlie)
    assert ids(client.get("/api/v1/customers/", {"search": "ada engines"})) == [ada.pk]
    assert ids(client.get("/api/v1/customers/", {"search": ada.account_number})) == [ada.pk]


@pytest.mark.parametrize("value, message", [
    ("ada\x00", "Null characters are not allowed."),
    ("a" * 201, "At most 200 characters."),
    (" ".join(["w"] * 11), "At most 10 words."),
])
def test_a_bad_search_is_a_400_naming_it(charlie, value, message):
    response = api_as(charlie).get("/api/v1/customers/", {"search": value})
    assert response.status_code == 400 and response.json() == {"search": [message]}


class Unsortable(viewsets.ReadOnlyModelViewSet):
    """A list that declares neither search_fields nor ordering_fields."""

    queryset = Customer.objects.all()


def filter_as_list(backend, view, query: str):
    request = APIView().initialize_request(APIRequestFactory().get(f"/x/?{query}"))
    return backend().filter_queryset(request, view.queryset, view)


def test_a_list_without_search_fields_refuses_a_search():
    with pytest.raises(ValidationError) as refused:
        filter_as_list(api_filters.SearchFilter, Unsortable(), "search=ada")
    assert refused.value.detail == {"search": ["This list cannot be searched."]}
    assert filter_as_list(api_filters.SearchFilter, Unsortable(), "search=") is not None
    assert api_filters.SearchFilter().get_schema_operation_parameters(Unsortable()) == []


# --- ?ordering= ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", sorted(NEEDLES))
def test_every_list_orders_by_its_fields_and_refuses_others(charlie, resource):
    NEEDLES[resource]()
    fields = resolve(f"/api/v1/{resource}/").func.cls.ordering_fields
    client = api_as(charlie)
    for field in fields:
        for term in (field, f"-{field}"):
            assert client.get(f"/api/v1/{resource}/", {"ordering": term}).status_code == 200
    refused = client.get(f"/api/v1/{resource}/", {"ordering": f"{fields[0]},nonsense"})
    assert refused.status_code == 400 and list(refused.json()) == ["ordering"]
    assert "nonsense" in refused.json()["ordering"][0]


def test_ordering_sorts_both_ways_and_by_several_fields(charlie):
    low = CustomerFactory(last_name="Young", balance=Decimal("1.00"))
    high = CustomerFactory(last_name="Young", balance=Decimal("99.00"))
    first = CustomerFactory(last_name="Abbot", balance=Decimal("50.00"))
    client = api_as(charlie)
    assert ids(client.get("/api/v1/customers/", {"ordering": "balance"})) == [low.pk, first.pk, high.pk]
    assert ids(client.get("/api/v1/customers/", {"ordering": "-balance"})) == [high.pk, first.pk, low.pk]
    assert ids(client.get("/api/v1/customers/", {"ordering": "last_name, -balance"})) == [first.pk, high.pk, low.pk]


@pytest.mark.parametrize("value", ["password", "date_of_birth", "-", "--balance", "balance,", "customer__balance"])
def test_an_ordering_the_list_does_not_offer_is_a_400(charlie, value):
    response = api_as(charlie).get("/api/v1/customers/", {"ordering": value})
    if value == "balance,":  # an empty term after the comma is no term
        assert response.status_code == 200
    else:
        assert response.status_code == 400 and list(response.json()) == ["ordering"]


def test_a_list_without_ordering_fields_refuses_an_ordering():
    with pytest.raises(ValidationError) as refused:
        filter_as_list(api_filters.OrderingFilter, Unsortable(), "ordering=last_name")
    assert refused.value.detail == {"ordering": ["This list cannot be ordered."]}
    assert api_filters.OrderingFilter().get_schema_operation_parameters(Unsortable()) == []


def test_pages_of_rows_that_tie_neither_repeat_nor_skip_rows(charlie):
    customers = CustomerFactory.create_batch(7, last_name="Same", balance=Decimal("5.00"))
    client = api_as(charlie)
    seen = []
    for page in (1, 2, 3, 4):
        seen += ids(client.get("/api/v1/customers/", {"ordering": "balance", "page_size": 2, "page": page}))
    assert sorted(seen) == sorted(c.pk for c in customers) and len(seen) == 7


def test_every_generic_viewset_has_the_strict_backends():
    for prefix, viewset, _basename in router.registry:
        if issubclass(viewset, viewsets.GenericViewSet):
            backends = set(viewset.filter_backends)
            assert {api_filters.SearchFilter, api_filters.OrderingFilter} <= backends, prefix


# --- Pages ---------------------------------------------------------------------------------------------------


@pytest.fixture
def many_customers():
    Customer.objects.bulk_create([Customer(account_number=str(500000 + n), first_name=f"C{n}", last_name="Bulk")
                                  for n in range(205)])


def test_a_client_chooses_the_page_size_up_to_the_maximum(charlie, many_customers):
    client = api_as(charlie)
    default = client.get("/api/v1/customers/").json()
    assert default["count"] == 205 and len(default["results"]) == 50
    assert len(client.get("/api/v1/customers/", {"page_size": 7}).json()["results"]) == 7
    biggest = client.get("/api/v1/customers/", {"page_size": 1000}).json()
    assert len(biggest["results"]) == 200 and "page_size=1000" in biggest["next"]
    last = client.get("/api/v1/customers/", {"page_size": 200, "page": "last"}).json()
    assert len(last["results"]) == 5 and last["next"] is None


@pytest.mark.parametrize("params, name", [
    ({"page_size": "abc"}, "page_size"), ({"page_size": "0"}, "page_size"), ({"page_size": "-5"}, "page_size"),
    ({"page_size": "1.5"}, "page_size"), ({"page_size": "²"}, "page_size"),
    ({"page": "abc"}, "page"), ({"page": "0"}, "page"), ({"page": "-1"}, "page"),
])
def test_a_bad_page_or_page_size_is_a_400_naming_it(charlie, params, name):
    response = api_as(charlie).get("/api/v1/customers/", params)
    assert response.status_code == 400 and response.json() == {name: ["A whole number, 1 or more."]}


def test_a_page_past_the_last_is_a_404(charlie):
    CustomerFactory()
    response = api_as(charlie).get("/api/v1/customers/", {"page": 2})
    assert response.status_code == 404 and set(response.json()) == {"detail"}


# --- One error format --------------------------------------------------------------------------------------


def test_field_errors_are_a_400_naming_each_field(sam):
    response = api_as(sam).post("/api/v1/customers/", {"phone": "12", "email": "not-an-email"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert {"first_name", "phone", "email"} <= set(body) and all(isinstance(v, list) for v in body.values())


def test_malformed_json_is_a_400_with_detail(sam):
    response = api_as(sam).generic("POST", "/api/v1/customers/", '{"first_name": ', content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]


def test_an_unknown_object_is_a_404(charlie):
    client = api_as(charlie)
    for url in ("/api/v1/customers/999999/", "/api/v1/customers/abc/",
                "/api/v1/calls/00000000-0000-0000-0000-000000000000/", "/api/v1/tickets/999999/"):
        response = client.get(url)
        assert response.status_code == 404 and set(response.json()) == {"detail"}, url


def test_an_unknown_path_under_the_api_is_a_json_404(charlie, settings):
    settings.DEBUG = False
    response = api_as(charlie).get("/api/v1/no-such-thing/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}
    # Outside the API, Django's own page.
    assert "application/json" not in Client().get("/no-such-page/")["Content-Type"]


def test_a_method_the_endpoint_lacks_is_a_405(sam):
    call = Call.objects.create(channel="browser")
    response = api_as(sam).delete(f"/api/v1/calls/{call.public_id}/")
    assert response.status_code == 405 and response.json() == {"detail": 'Method "DELETE" not allowed.'}
    assert "GET" in response["Allow"]
    assert Call.objects.filter(pk=call.pk).exists()


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/yaml"])
def test_a_body_the_api_cannot_read_is_a_415(sam, content_type):
    response = api_as(sam).generic("POST", "/api/v1/customers/", "first_name: Eve", content_type=content_type)
    assert response.status_code == 415 and response.json() == {"detail": f'Unsupported media type "{content_type}" in request.'}
    assert not Customer.objects.exists()


def test_an_oversized_body_is_a_413(sam, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = api_as(sam).post("/api/v1/customers/", {"first_name": "Eve", "notes": "x" * 2048}, format="json")
    assert response.status_code == 413 and set(response.json()) == {"detail"}
    assert not Customer.objects.exists()


def test_too_many_requests_is_a_429_with_retry_after(charlie, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "user", "1/minute")
    client = api_as(charlie)
    assert client.get("/api/v1/customers/").status_code == 200
    response = client.get("/api/v1/customers/")
    assert response.status_code == 429 and 0 < int(response["Retry-After"]) <= 60
    assert set(response.json()) == {"detail"}


def test_no_credentials_is_a_401_and_no_role_a_403(django_user_model):
    response = APIClient().get("/api/v1/customers/")
    assert response.status_code == 401 and set(response.json()) == {"detail"} and response["WWW-Authenticate"]
    nobody = django_user_model.objects.create_user("nobody", password="nobody-password-123")
    response = api_as(nobody).get("/api/v1/customers/")
    assert response.status_code == 403 and set(response.json()) == {"detail"}


def test_head_needs_the_view_permission(django_user_model, charlie):
    CustomerFactory()
    nobody = django_user_model.objects.create_user("nobody", password="nobody-password-123")
    assert api_as(nobody).head("/api/v1/customers/").status_code == 403
    assert api_as(charlie).head("/api/v1/customers/").status_code == 200
    nobody.groups.add(Group.objects.get(name="Viewer"))
    assert api_as(nobody).head("/api/v1/customers/").status_code == 200


def test_a_crash_under_the_api_is_a_json_500_without_a_traceback(charlie, settings, monkeypatch):
    settings.DEBUG = False

    def crash(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(Customer.objects.__class__, "all", crash)
    client = Client(raise_request_exception=False)
    token = AuthToken.objects.create(user=charlie)[1]
    response = client.get("/api/v1/customers/", headers={"authorization": f"Token {token}"})
    assert response.status_code == 500 and response.json() == {"detail": "Server error."}
    assert b"secret internals" not in response.content


def test_a_services_validation_error_is_a_400_naming_the_field():
    response = api_exception_handler(DjangoValidationError({"phone": ["Not a phone number."], "__all__": ["Clash."]}), {})
    assert response.status_code == 400
    assert response.data == {"phone": ["Not a phone number."], "non_field_errors": ["Clash."]}
    response = api_exception_handler(DjangoValidationError("The slot is taken."), {})
    assert response.status_code == 400 and response.data == {"non_field_errors": ["The slot is taken."]}


def test_a_message_list_is_wrapped_into_an_object():
    response = api_exception_handler(ValidationError("Pick a later day."), {})
    assert response.status_code == 400 and response.data == {"non_field_errors": ["Pick a later day."]}


def test_deleting_what_other_rows_still_need_is_a_409():
    appointment = AppointmentFactory()
    with pytest.raises(ProtectedError) as protected:
        Service.objects.filter(pk=appointment.service_id).delete()
    response = api_exception_handler(protected.value, {})
    assert response.status_code == 409 and "appointments" in response.data["detail"]
    assert Service.objects.filter(pk=appointment.service_id).exists()


# --- The errors in the schema ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_every_operation_documents_its_errors_in_the_one_format(schema):
    assert schema["components"]["schemas"]["Error"]["properties"] == {"detail": {"type": "string"}}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "429" in responses and "Retry-After" in responses["429"]["headers"], (method, path)
            for code, response in responses.items():
                if code.startswith("4"):
                    assert response["content"] == {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}, (
                        method, path, code)
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= set(responses), (method, path)
            if any(p["in"] == "path" for p in operation.get("parameters", [])):
                assert "404" in responses, (method, path)


def test_lists_document_search_ordering_and_pages(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/customers/"]["get"]["parameters"]}
    assert parameters["page_size"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 200}
    assert "-balance" in parameters["ordering"]["schema"]["items"]["enum"]
    assert parameters["ordering"]["explode"] is False
    assert "account_number" in parameters["search"]["description"]


def test_ordering_by_a_date_that_may_be_empty(charlie):
    # A date field with NULLs (ended_at of a live call) orders without error both ways.
    Call.objects.create(channel="browser", ended_at=None)
    Call.objects.create(channel="browser", started_at=dt.datetime(2025, 12, 31, tzinfo=dt.UTC),
                        ended_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    client = api_as(charlie)
    assert len(ids(client.get("/api/v1/calls/", {"ordering": "-ended_at"}))) == 2
    assert len(ids(client.get("/api/v1/calls/", {"ordering": "ended_at"}))) == 2


def test_a_time_of_day_is_described_as_drf_writes_it(schema):
    opens = schema["components"]["schemas"]["OpeningHours"]["properties"]["opens"]
    assert "format" not in opens and re.fullmatch(opens["pattern"], "09:00:00")


# --- Values the database would refuse ----------------------------------------------------------------------


@pytest.mark.parametrize("value, status", [
    ("2026-01-01T00:00:00+16:30", 200),  # ISO allows the offset, PostgreSQL does not: moved to UTC
    ("2026-01-01T00:00:00-23:59", 200),
    ("0001-01-01T00:00:00+05:00", 400),  # before year 1 in UTC
    ("9999-12-31T23:59:59-05:00", 400),  # after year 9999 in UTC
    ("2026-13-01T00:00:00Z", 400),
])
def test_a_time_filter_takes_any_offset_iso_allows(charlie, value, status):
    Call.objects.create(channel="browser", started_at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
    response = api_as(charlie).get("/api/v1/calls/", {"started_after": value})
    assert response.status_code == status, response.content
    if status == 400:
        assert list(response.json()) == ["started_after"]


def test_a_value_the_database_refuses_is_a_400():
    response = api_exception_handler(DataError("integer out of range"), {})
    assert response.status_code == 400 and list(response.data) == ["non_field_errors"]
