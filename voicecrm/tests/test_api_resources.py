"""/api/v1/ customers, services, appointments and orders: lookups, writes through customers/services.py,
each role (sam the Supervisor, bob the Agent, charlie the Viewer, and nobody), and query counts."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from customers.models import Appointment, Customer, Order
from customers.services import appointment_book, service_available_slots
from customers.tests.factories import AppointmentFactory, CustomerFactory, OrderFactory, ServiceFactory

pytestmark = pytest.mark.django_db
V1 = "/api/v1"


def api_as(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


@pytest.fixture
def actors(sam, bob, charlie):
    return {"sam": api_as(sam), "bob": api_as(bob), "charlie": api_as(charlie), "nobody": api_as(None)}


def assert_flat_queries(client, url: str, grow, max_queries: int, django_assert_max_num_queries) -> None:
    """The request costs at most `max_queries`, and as many after `grow()` adds rows: no N+1.

    Every request starts with 4: the token (knox reads it twice) and the role's permissions (2).
    """
    with CaptureQueriesContext(connection) as before:
        assert client.get(url).status_code == 200
    grow()
    with django_assert_max_num_queries(max_queries), CaptureQueriesContext(connection) as after:
        response = client.get(url)
    assert response.status_code == 200
    assert len(after) == len(before), [q["sql"] for q in after.captured_queries]


def next_weekday(weekday: int = 0) -> dt.date:
    """A day a week or more ahead (0: Monday), so every slot on it is in the future."""
    today = timezone.localdate() + dt.timedelta(days=7)
    return today + dt.timedelta(days=(weekday - today.weekday()) % 7)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=timezone.get_current_timezone())


# --- Customers: lookups ---------------------------------------------------------------------------------


def test_customers_are_found_by_phone_in_any_format_account_number_and_name(charlie):
    ada = CustomerFactory(first_name="Ada", last_name="Lovelace", phone="+14155550123", account_number="55501")
    grace = CustomerFactory(first_name="Grace", last_name="Hopper", phone="+14155550124", account_number="55502",
                            company="Navy")
    client = api_as(charlie)

    def ids(params) -> list[int]:
        response = client.get(f"{V1}/customers/", params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids({"phone": "(415) 555-0123"}) == [ada.pk]
    assert ids({"account_number": "55502"}) == [grace.pk]
    assert ids({"name": "ada LOVE"}) == [ada.pk]
    assert ids({"name": "hopper"}) == [grace.pk]
    assert ids({"name": "ada hopper"}) == []
    assert ids({"search": "navy"}) == [grace.pk]
    assert ids({"search": "5550124"}) == [grace.pk]
    assert ids({"ordering": "-account_number"}) == [grace.pk, ada.pk]
    assert sorted(ids({"status": "active", "plan": "basic"})) == sorted([ada.pk, grace.pk])


@pytest.mark.parametrize("params, name", [
    ({"status": "nonsense"}, "status"), ({"plan": "gold"}, "plan"), ({"name": "x" * 200}, "name"),
    ({"email": "\x00"}, "email"), ({"name": "\x00"}, "name"),
])
def test_a_bad_customer_filter_is_a_400_naming_it(charlie, params, name):
    response = api_as(charlie).get(f"{V1}/customers/", params)
    assert response.status_code == 400 and name in response.json()


def test_customer_list_and_detail_cost_the_same_queries_for_more_rows(charlie, django_assert_max_num_queries):
    customer = CustomerFactory()
    client = api_as(charlie)
    assert_flat_queries(client, f"{V1}/customers/", lambda: CustomerFactory.create_batch(5), 6,
                        django_assert_max_num_queries)
    assert_flat_queries(client, f"{V1}/customers/{customer.pk}/", lambda: CustomerFactory.create_batch(5), 5,
                        django_assert_max_num_queries)


# --- Customers: writes through the services -------------------------------------------------------------


@pytest.mark.parametrize("actor, expected", [("sam", 201), ("bob", 201), ("charlie", 403), ("nobody", 401)])
def test_creating_a_customer_by_role(actors, actor, expected):
    response = actors[actor].post(f"{V1}/customers/", {"first_name": "Eve", "phone": "(415) 555-0188",
                                                       "postcode": " sw1a 1aa "}, format="json")
    assert response.status_code == expected, response.content
    if expected != 201:
        assert not Customer.objects.exists()
        return
    customer = Customer.objects.get()
    # The model's clean() ran (the service's full_clean), as in the admin: postcode normalised.
    assert (customer.phone, customer.postcode, customer.status) == ("+14155550188", "SW1A 1AA", "active")
    assert response.json()["account_number"] == customer.account_number and len(customer.account_number) == 8


def test_a_taken_account_number_is_a_400_and_creates_nothing(sam):
    CustomerFactory(account_number="77777")
    response = api_as(sam).post(f"{V1}/customers/", {"first_name": "Eve", "account_number": "77777"}, format="json")
    assert response.status_code == 400 and "account_number" in response.json()
    assert Customer.objects.count() == 1


def test_an_update_that_changes_nothing_leaves_updated_at_alone(bob):
    customer = CustomerFactory(phone="+14155550123", postcode="94103")
    stamp = Customer.objects.get(pk=customer.pk).updated_at
    response = api_as(bob).patch(f"{V1}/customers/{customer.pk}/", {"phone": "(415) 555-0123"}, format="json")
    assert response.status_code == 200, response.content
    # A caller ID lookup prefers the most recently updated record: an edit that changed nothing must not count.
    assert Customer.objects.get(pk=customer.pk).updated_at == stamp
    response = api_as(bob).patch(f"{V1}/customers/{customer.pk}/", {"postcode": "sw1a 1aa"}, format="json")
    stored = Customer.objects.get(pk=customer.pk)
    assert response.json()["postcode"] == stored.postcode == "SW1A 1AA" and stored.updated_at > stamp


def test_an_update_with_a_bad_value_changes_nothing(sam):
    customer = CustomerFactory(email="ada@example.com")
    response = api_as(sam).patch(f"{V1}/customers/{customer.pk}/", {"email": "not mail", "notes": "x"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["email"]
    customer.refresh_from_db()
    assert (customer.email, customer.notes) == ("ada@example.com", "")


def test_verification_facts_and_counters_cannot_be_written(sam):
    customer = CustomerFactory()
    response = api_as(sam).patch(f"{V1}/customers/{customer.pk}/", {"verification_failures": 0,
                                                                    "date_of_birth": "2000-01-01"}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"verification_failures", "date_of_birth"}
    assert Customer.objects.get(pk=customer.pk).date_of_birth == customer.date_of_birth


@pytest.mark.parametrize("actor, expected", [("sam", 204), ("bob", 403), ("charlie", 403), ("nobody", 401)])
def test_deleting_a_customer_by_role(actors, actor, expected):
    customer = CustomerFactory()
    assert actors[actor].delete(f"{V1}/customers/{customer.pk}/").status_code == expected
    assert Customer.objects.filter(pk=customer.pk).exists() == (expected != 204)


def test_an_unknown_customer_is_a_404(sam):
    assert api_as(sam).get(f"{V1}/customers/999999/").status_code == 404
    assert api_as(sam).patch(f"{V1}/customers/999999/", {"notes": "x"}, format="json").status_code == 404


# --- Services --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor, expected", [("sam", 200), ("bob", 200), ("charlie", 200), ("nobody", 401)])
def test_services_are_listed_with_opening_hours(actors, actor, expected):
    service = ServiceFactory(name="Repair visit", duration_minutes=60)
    ServiceFactory(name="Old offer", active=False, weekdays_nine_to_five=False)
    response = actors[actor].get(f"{V1}/services/", {"active": "true"})
    assert response.status_code == expected
    if expected == 200:
        [row] = response.json()["results"]
        assert (row["id"], row["duration_minutes"], len(row["opening_hours"])) == (service.pk, 60, 7)
        assert row["opening_hours"][0] == {"weekday": 0, "opens": "09:00:00", "closes": "17:00:00"}


def test_services_are_read_only_and_cost_the_same_queries_for_more_rows(sam, charlie, django_assert_max_num_queries):
    service = ServiceFactory()
    assert api_as(sam).post(f"{V1}/services/", {"name": "x", "slug": "x"}, format="json").status_code == 405
    assert api_as(sam).get(f"{V1}/services/999999/").status_code == 404
    assert api_as(charlie).get(f"{V1}/services/", {"active": "maybe"}).status_code == 400
    client = api_as(charlie)
    assert_flat_queries(client, f"{V1}/services/", lambda: ServiceFactory.create_batch(4), 7,
                        django_assert_max_num_queries)
    assert_flat_queries(client, f"{V1}/services/{service.pk}/", lambda: ServiceFactory.create_batch(4), 6,
                        django_assert_max_num_queries)


# --- Appointments: availability ----------------------------------------------------------------------------


def test_availability_lists_the_free_slots_the_agent_would_offer(charlie):
    service = ServiceFactory(duration_minutes=60, capacity=1)
    day = next_weekday(0)
    appointment_book(customer=CustomerFactory(), service=service, starts_at=at(day, 10))
    response = api_as(charlie).get(f"{V1}/appointments/availability/", {"service": service.pk, "day": day.isoformat()})
    assert response.status_code == 200, response.content
    body = response.json()
    starts = [dt.datetime.fromisoformat(slot["starts_at"]) for slot in body["slots"]]
    # The same function as the agent's check_availability tool: 9:00 to 16:00, but 10:00 is taken.
    assert starts == service_available_slots(service=service, day=day)
    assert at(day, 10) not in starts and at(day, 9) in starts and at(day, 16) in starts and len(starts) == 7
    assert dt.datetime.fromisoformat(body["slots"][0]["ends_at"]) - starts[0] == dt.timedelta(hours=1)
    assert body["service"] == service.pk and body["day"] == day.isoformat()


@pytest.mark.parametrize("params, name", [
    ({"day": "2030-01-07"}, "service"),
    ({"service": "abc", "day": "2030-01-07"}, "service"),
    ({"service": 999999, "day": "2030-01-07"}, "service"),
    ({"service": "{service}"}, "day"),
    ({"service": "{service}", "day": "07/01/2030"}, "day"),
    ({"service": "{service}", "day": "9999-12-31"}, "day"),
    ({"service": "{service}", "day": "2001-01-01"}, "day"),
    ({"service": "{inactive}", "day": "2030-01-07"}, "service"),
])
def test_a_bad_availability_query_is_a_400_naming_the_parameter(charlie, params, name):
    service, inactive = ServiceFactory(), ServiceFactory(active=False)
    params = {key: str(value).format(service=service.pk, inactive=inactive.pk) for key, value in params.items()}
    response = api_as(charlie).get(f"{V1}/appointments/availability/", params)
    assert response.status_code == 400 and list(response.json()) == [name]


def test_availability_needs_a_sign_in():
    assert APIClient().get(f"{V1}/appointments/availability/").status_code == 401


# --- Appointments: book, reschedule, cancel ---------------------------------------------------------------


@pytest.mark.parametrize("actor, expected", [("sam", 201), ("bob", 201), ("charlie", 403), ("nobody", 401)])
def test_booking_by_role(actors, actor, expected):
    service, customer, day = ServiceFactory(duration_minutes=45), CustomerFactory(), next_weekday(1)
    response = actors[actor].post(f"{V1}/appointments/", {
        "customer": customer.pk, "service": service.pk, "starts_at": at(day, 11).isoformat(), "notes": "Side door",
    }, format="json")
    assert response.status_code == expected, response.content
    if expected != 201:
        assert not Appointment.objects.exists()
        return
    appointment = Appointment.objects.get()
    assert (appointment.ends_at, appointment.status, appointment.notes) == (at(day, 11, 45), "booked", "Side door")
    assert response.json()["id"] == appointment.pk and response.json()["source_call"] is None


@pytest.mark.parametrize("when, message", [
    (lambda day: at(day, 10), "already has an appointment"),  # the same customer at the same time
    (lambda day: at(day, 18), "not open"),
    (lambda day: at(day, 11) - dt.timedelta(days=30), "future"),
    (lambda day: at(day, 11) + dt.timedelta(days=4000), "days ahead"),
])
def test_a_time_that_cannot_be_booked_is_a_400_on_starts_at(bob, when, message):
    service, customer, day = ServiceFactory(capacity=3), CustomerFactory(), next_weekday(2)
    appointment_book(customer=customer, service=service, starts_at=at(day, 10))
    response = api_as(bob).post(f"{V1}/appointments/", {
        "customer": customer.pk, "service": service.pk, "starts_at": when(day).isoformat()}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["starts_at"]
    assert message in response.json()["starts_at"][0]
    assert Appointment.objects.count() == 1


def test_a_full_slot_is_refused_and_an_inactive_service_cannot_be_booked(bob):
    service, day = ServiceFactory(capacity=1), next_weekday(3)
    appointment_book(customer=CustomerFactory(), service=service, starts_at=at(day, 10))
    client = api_as(bob)
    response = client.post(f"{V1}/appointments/", {"customer": CustomerFactory().pk, "service": service.pk,
                                                   "starts_at": at(day, 10).isoformat()}, format="json")
    assert response.status_code == 400 and "fully booked" in response.json()["starts_at"][0]
    inactive = ServiceFactory(active=False)
    response = client.post(f"{V1}/appointments/", {"customer": CustomerFactory().pk, "service": inactive.pk,
                                                   "starts_at": at(day, 12).isoformat()}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["service"]
    assert Appointment.objects.count() == 1


def test_status_and_end_time_cannot_be_sent_on_booking(bob):
    service, day = ServiceFactory(), next_weekday(1)
    response = api_as(bob).post(f"{V1}/appointments/", {
        "customer": CustomerFactory().pk, "service": service.pk, "starts_at": at(day, 10).isoformat(),
        "status": "completed", "ends_at": at(day, 17).isoformat()}, format="json")
    assert response.status_code == 400 and set(response.json()) == {"status", "ends_at"}
    assert not Appointment.objects.exists()


@pytest.mark.parametrize("actor, expected", [("sam", 200), ("bob", 200), ("charlie", 403), ("nobody", 401)])
def test_rescheduling_by_role(actors, actor, expected):
    day = next_weekday(0)
    appointment = appointment_book(customer=CustomerFactory(), service=ServiceFactory(), starts_at=at(day, 10))
    response = actors[actor].post(f"{V1}/appointments/{appointment.pk}/reschedule/",
                                  {"starts_at": at(day, 14).isoformat()}, format="json")
    assert response.status_code == expected, response.content
    stored = Appointment.objects.get(pk=appointment.pk)
    if expected == 200:
        assert (stored.starts_at, stored.ends_at, stored.status) == (at(day, 14), at(day, 15), "rescheduled")
        assert response.json()["status"] == "rescheduled"
    else:
        assert (stored.starts_at, stored.status) == (at(day, 10), "booked")


def test_rescheduling_into_a_taken_slot_or_a_cancelled_appointment_is_refused(bob):
    service, day = ServiceFactory(capacity=1), next_weekday(4)
    appointment_book(customer=CustomerFactory(), service=service, starts_at=at(day, 14))
    appointment = appointment_book(customer=CustomerFactory(), service=service, starts_at=at(day, 10))
    client = api_as(bob)
    url = f"{V1}/appointments/{appointment.pk}/reschedule/"
    response = client.post(url, {"starts_at": at(day, 14).isoformat()}, format="json")
    assert response.status_code == 400 and "fully booked" in response.json()["starts_at"][0]
    assert client.post(url, {"starts_at": "tomorrow"}, format="json").status_code == 400
    assert client.post(url, {}, format="json").status_code == 400
    assert client.post(f"{V1}/appointments/{appointment.pk}/cancel/").status_code == 200
    response = client.post(url, {"starts_at": at(day, 16).isoformat()}, format="json")
    assert response.status_code == 409 and "cancelled appointment cannot be rescheduled" in response.json()["detail"]
    assert Appointment.objects.get(pk=appointment.pk).starts_at == at(day, 10)
    assert client.post(f"{V1}/appointments/999999/reschedule/", {"starts_at": at(day, 16).isoformat()},
                       format="json").status_code == 404


@pytest.mark.parametrize("actor, expected", [("sam", 200), ("bob", 200), ("charlie", 403), ("nobody", 401)])
def test_cancelling_by_role_frees_the_slot(actors, actor, expected):
    service, day = ServiceFactory(capacity=1), next_weekday(2)
    appointment = appointment_book(customer=CustomerFactory(), service=service, starts_at=at(day, 10))
    response = actors[actor].post(f"{V1}/appointments/{appointment.pk}/cancel/")
    assert response.status_code == expected
    cancelled = expected == 200
    assert Appointment.objects.get(pk=appointment.pk).status == ("cancelled" if cancelled else "booked")
    assert (at(day, 10) in service_available_slots(service=service, day=day)) == cancelled


def test_cancelling_twice_is_a_409(bob):
    appointment = appointment_book(customer=CustomerFactory(), service=ServiceFactory(), starts_at=at(next_weekday(), 10))
    client = api_as(bob)
    assert client.post(f"{V1}/appointments/{appointment.pk}/cancel/").status_code == 200
    response = client.post(f"{V1}/appointments/{appointment.pk}/cancel/")
    assert response.status_code == 409 and response.json() == {"detail": "The appointment is already cancelled."}
    assert client.post(f"{V1}/appointments/999999/cancel/").status_code == 404


def test_appointments_are_filtered_and_cost_the_same_queries_for_more_rows(charlie, django_assert_max_num_queries):
    customer = CustomerFactory()
    mine = AppointmentFactory(customer=customer)
    AppointmentFactory(status="cancelled")
    client = api_as(charlie)
    rows = client.get(f"{V1}/appointments/", {"customer": customer.pk}).json()["results"]
    assert [row["id"] for row in rows] == [mine.pk]
    assert len(client.get(f"{V1}/appointments/", {"status": "cancelled"}).json()["results"]) == 1
    assert client.get(f"{V1}/appointments/", {"status": "lost"}).status_code == 400
    assert client.get(f"{V1}/appointments/", {"starts_after": "soon"}).status_code == 400
    assert api_as(None).get(f"{V1}/appointments/").status_code == 401
    assert client.get(f"{V1}/appointments/999999/").status_code == 404
    assert_flat_queries(client, f"{V1}/appointments/", lambda: AppointmentFactory.create_batch(4), 6,
                        django_assert_max_num_queries)
    assert_flat_queries(client, f"{V1}/appointments/{mine.pk}/", lambda: AppointmentFactory.create_batch(4), 5,
                        django_assert_max_num_queries)


# --- Orders -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor, expected", [("sam", 201), ("bob", 403), ("charlie", 403), ("nobody", 401)])
def test_creating_an_order_by_role(actors, actor, expected):
    customer = CustomerFactory()
    response = actors[actor].post(f"{V1}/orders/", {"customer": customer.pk, "items": [
        {"sku": "RTR", "name": "Router", "qty": 2, "price": "129.00"},
        {"name": "Cable", "qty": 1, "price": "9.99"}]}, format="json")
    assert response.status_code == expected, response.content
    if expected != 201:
        assert not Order.objects.exists()
        return
    order = Order.objects.get()
    assert order.total == Decimal("267.99") and order.status == "pending" and order.number.startswith("ORD")
    assert order.items[1] == {"sku": "", "name": "Cable", "qty": 1, "price": "9.99"}
    assert response.json()["number"] == order.number and response.json()["total"] == "267.99"


def test_an_order_number_is_normalised_or_refused(sam):
    customer, client = CustomerFactory(), api_as(sam)
    response = client.post(f"{V1}/orders/", {"customer": customer.pk, "number": "nw60001", "total": "5.00"},
                           format="json")
    assert response.status_code == 201 and response.json()["number"] == "NW60001"
    for number in ("NW-60002", "NW60001", "ab"):
        response = client.post(f"{V1}/orders/", {"customer": customer.pk, "number": number, "total": "5.00"},
                               format="json")
        assert response.status_code == 400 and list(response.json()) == ["number"], number
    assert Order.objects.count() == 1


@pytest.mark.parametrize("body, name", [
    ({"items": [{"name": "Router", "qty": 0, "price": "1.00"}]}, "items"),
    ({"items": [{"name": "Router", "qty": 1, "price": "-1.00"}]}, "items"),
    ({"items": "router"}, "items"),
    ({"total": "-5"}, "total"),
    ({"status": "lost"}, "status"),
    ({"customer": 999999}, "customer"),
    ({"tracking_number": "x" * 41}, "tracking_number"),
    ({"id": 5}, "id"),
])
def test_a_bad_order_is_a_400_naming_the_field(sam, body, name):
    response = api_as(sam).post(f"{V1}/orders/", {"customer": CustomerFactory().pk, **body}, format="json")
    assert response.status_code == 400 and list(response.json()) == [name]
    assert not Order.objects.exists()


def test_orders_are_listed_newest_first_and_filtered(sam, charlie, django_assert_max_num_queries):
    customer = CustomerFactory()
    old = OrderFactory(customer=customer, placed_at=timezone.now() - dt.timedelta(days=3))
    new = OrderFactory(customer=customer, status="shipped")
    OrderFactory()
    client = api_as(charlie)
    assert [row["id"] for row in client.get(f"{V1}/orders/", {"customer": customer.pk}).json()["results"]] == [
        new.pk, old.pk]
    assert [row["id"] for row in client.get(f"{V1}/orders/", {"status": "shipped"}).json()["results"]] == [new.pk]
    assert [row["id"] for row in client.get(f"{V1}/orders/", {"search": old.number}).json()["results"]] == [old.pk]
    assert client.get(f"{V1}/orders/{new.pk}/").json()["items"][0]["sku"] == "RTR"
    assert client.get(f"{V1}/orders/", {"customer": "x"}).status_code == 400
    assert client.get(f"{V1}/orders/999999/").status_code == 404
    assert api_as(None).get(f"{V1}/orders/").status_code == 401
    assert api_as(sam).patch(f"{V1}/orders/{new.pk}/", {"status": "delivered"}, format="json").status_code == 405
    assert_flat_queries(client, f"{V1}/orders/", lambda: OrderFactory.create_batch(4), 6,
                        django_assert_max_num_queries)
    assert_flat_queries(client, f"{V1}/orders/{new.pk}/", lambda: OrderFactory.create_batch(4), 5,
                        django_assert_max_num_queries)
