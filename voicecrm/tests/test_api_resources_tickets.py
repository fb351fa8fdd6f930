"""/api/v1/tickets/: full CRUD and comments through tickets/services.py, for each role."""

import datetime as dt

import pytest
from django.utils import timezone

from calls.models import Call
from customers.tests.factories import CustomerFactory
from tickets.models import Ticket, TicketComment
from tickets.services import ticket_comment_add
from tickets.tests.factories import SlaPolicyFactory, TicketFactory
from voicecrm.tests.test_api_resources import V1, api_as, assert_flat_queries

pytestmark = pytest.mark.django_db


@pytest.fixture
def actors(sam, bob, charlie):
    return {"sam": api_as(sam), "bob": api_as(bob), "charlie": api_as(charlie), "nobody": api_as(None)}


@pytest.fixture
def policies():
    return {"urgent": SlaPolicyFactory(priority="urgent", first_response_minutes=15, resolution_minutes=240),
            "normal": SlaPolicyFactory(priority="normal", first_response_minutes=240, resolution_minutes=1440)}


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# --- Reading ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor, expected", [("sam", 200), ("bob", 200), ("charlie", 200), ("nobody", 401)])
def test_tickets_are_listed_by_role(actors, actor, expected):
    TicketFactory()
    assert actors[actor].get(f"{V1}/tickets/").status_code == expected


def test_tickets_are_filtered_by_state_customer_and_call(charlie, policies):
    customer = CustomerFactory(account_number="424242")
    call = Call.objects.create(channel="browser", status="completed")
    late = TicketFactory(customer=customer, priority="urgent", status="open")
    Ticket.objects.filter(pk=late.pk).update(sla_due_at=timezone.now() - dt.timedelta(minutes=1))
    from_call = TicketFactory(call=call, subject="Dropped calls all week")
    done = TicketFactory(status="resolved")
    client = api_as(charlie)
    assert ids(client.get(f"{V1}/tickets/", {"overdue": "true"})) == [late.pk]
    assert ids(client.get(f"{V1}/tickets/", {"open": "false"})) == [done.pk]
    assert set(ids(client.get(f"{V1}/tickets/", {"open": "true"}))) == {late.pk, from_call.pk}
    assert ids(client.get(f"{V1}/tickets/", {"customer": customer.pk})) == [late.pk]
    assert ids(client.get(f"{V1}/tickets/", {"search": "424242"})) == [late.pk]
    assert ids(client.get(f"{V1}/tickets/", {"search": "dropped week"})) == [from_call.pk]
    assert ids(client.get(f"{V1}/tickets/", {"priority": "urgent", "status": "open"})) == [late.pk]
    body = client.get(f"{V1}/tickets/", {"call": str(call.public_id)}).json()
    # Calls are addressed by their public id, as /calls/{id}/ is.
    assert [row["id"] for row in body["results"]] == [from_call.pk] and body["results"][0]["call"] == str(call.public_id)


@pytest.mark.parametrize("params, name", [
    ({"status": "lost"}, "status"), ({"priority": "asap"}, "priority"), ({"call": "123"}, "call"),
    ({"overdue": "maybe"}, "overdue"), ({"customer": "ada"}, "customer"), ({"ordering": "subject"}, "ordering"),
    ({"created_after": "yesterday"}, "created_after"),
])
def test_a_bad_ticket_filter_is_a_400_naming_it(charlie, params, name):
    response = api_as(charlie).get(f"{V1}/tickets/", params)
    assert response.status_code == 400 and list(response.json()) == [name]


def test_ticket_list_detail_and_comments_cost_the_same_queries_for_more_rows(charlie, bob, django_assert_max_num_queries):
    ticket = TicketFactory(call=Call.objects.create(channel="browser"))

    def grow():
        for _ in range(3):
            more = TicketFactory(call=Call.objects.create(channel="browser"), customer=CustomerFactory())
            ticket_comment_add(ticket=more, author=bob, body="On it")
            ticket_comment_add(ticket=ticket, author=bob, body="Still on it")

    client = api_as(charlie)
    assert_flat_queries(client, f"{V1}/tickets/", grow, 7, django_assert_max_num_queries)
    assert_flat_queries(client, f"{V1}/tickets/{ticket.pk}/", grow, 6, django_assert_max_num_queries)
    assert_flat_queries(client, f"{V1}/tickets/{ticket.pk}/comments/", grow, 7, django_assert_max_num_queries)


# --- Writing through the services ---------------------------------------------------------------------------


@pytest.mark.parametrize("actor, expected", [("sam", 201), ("bob", 201), ("charlie", 403), ("nobody", 401)])
def test_opening_a_ticket_by_role_applies_the_sla(actors, actor, expected, policies):
    response = actors[actor].post(f"{V1}/tickets/", {"subject": "Outage", "priority": "urgent",
                                                     "category": "technical"}, format="json")
    assert response.status_code == expected, response.content
    if expected != 201:
        assert not Ticket.objects.exists()
        return
    ticket = Ticket.objects.get()
    assert ticket.sla_due_at - ticket.created_at == dt.timedelta(hours=4)
    assert response.json()["reference"] == ticket.reference and response.json()["call"] is None


@pytest.mark.parametrize("actor, expected", [("sam", 200), ("bob", 200), ("charlie", 403), ("nobody", 401)])
def test_a_patch_by_role_goes_through_the_sla_and_status_rules(actors, actor, expected, policies):
    ticket = TicketFactory(priority="normal")
    response = actors[actor].patch(f"{V1}/tickets/{ticket.pk}/", {"priority": "urgent", "status": "resolved"},
                                   format="json")
    assert response.status_code == expected, response.content
    stored = Ticket.objects.get(pk=ticket.pk)
    if expected == 200:
        assert stored.sla_due_at - stored.created_at == dt.timedelta(hours=4) and stored.resolved_at is not None
        # Every field is in a PATCH's answer too, a ticket without a call included.
        assert response.json()["resolved_at"] is not None and response.json()["call"] is None
    else:
        assert (stored.priority, stored.status, stored.resolved_at) == ("normal", "new", None)


def test_stamps_and_due_times_are_ignored_and_unknown_fields_refused(bob, policies):
    ticket = TicketFactory(priority="normal")
    due = ticket.sla_due_at
    client = api_as(bob)
    response = client.patch(f"{V1}/tickets/{ticket.pk}/", {
        "sla_due_at": "2000-01-01T00:00:00Z", "resolved_at": "2000-01-01T00:00:00Z", "reference": "T000001",
        "call": "8a0b5c8e-7f00-4c4e-9d62-0d5a4b1c2e3f"}, format="json")
    assert response.status_code == 200
    stored = Ticket.objects.get(pk=ticket.pk)
    assert (stored.sla_due_at, stored.resolved_at, stored.reference, stored.call_id) == (due, None, ticket.reference, None)
    response = client.patch(f"{V1}/tickets/{ticket.pk}/", {"first_responded": True, "subject": "New"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["first_responded"]
    assert Ticket.objects.get(pk=ticket.pk).subject == ticket.subject


def test_a_ticket_is_assigned_only_to_active_staff(bob, django_user_model, policies):
    ticket = TicketFactory()
    outsider = django_user_model.objects.create_user("mallory", password="x-password-123")
    client = api_as(bob)
    response = client.patch(f"{V1}/tickets/{ticket.pk}/", {"assignee": outsider.pk}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["assignee"]
    assert client.patch(f"{V1}/tickets/{ticket.pk}/", {"assignee": bob.pk}, format="json").status_code == 200
    assert Ticket.objects.get(pk=ticket.pk).assignee == bob


@pytest.mark.parametrize("body, name", [
    ({"subject": ""}, "subject"), ({"subject": "x" * 201}, "subject"), ({"status": "lost"}, "status"),
    ({"customer": 999999}, "customer"), ({"category": "weather"}, "category"),
])
def test_a_bad_ticket_is_a_400_naming_the_field_and_changes_nothing(sam, body, name):
    response = api_as(sam).post(f"{V1}/tickets/", {"subject": "Outage", **body}, format="json")
    assert response.status_code == 400 and list(response.json()) == [name]
    assert not Ticket.objects.exists()


@pytest.mark.parametrize("actor, expected", [("sam", 204), ("bob", 403), ("charlie", 403), ("nobody", 401)])
def test_deleting_a_ticket_is_a_supervisors(actors, actor, expected):
    ticket = TicketFactory()
    assert actors[actor].delete(f"{V1}/tickets/{ticket.pk}/").status_code == expected
    assert Ticket.objects.filter(pk=ticket.pk).exists() == (expected != 204)


def test_an_unknown_ticket_is_a_404(sam):
    client = api_as(sam)
    assert client.get(f"{V1}/tickets/999999/").status_code == 404
    assert client.patch(f"{V1}/tickets/999999/", {"status": "open"}, format="json").status_code == 404
    assert client.delete(f"{V1}/tickets/999999/").status_code == 404
    assert client.get(f"{V1}/tickets/999999/comments/").status_code == 404
    assert client.post(f"{V1}/tickets/999999/comments/", {"body": "x"}, format="json").status_code == 404


# --- Comments -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor, expected", [("sam", 201), ("bob", 201), ("charlie", 403), ("nobody", 401)])
def test_commenting_by_role_stamps_the_first_response(actors, actor, expected, request):
    ticket = TicketFactory()
    response = actors[actor].post(f"{V1}/tickets/{ticket.pk}/comments/", {"body": "A technician is on the way."},
                                  format="json")
    assert response.status_code == expected, response.content
    stored = Ticket.objects.get(pk=ticket.pk)
    if expected != 201:
        assert not TicketComment.objects.exists() and stored.first_responded_at is None
        return
    comment = TicketComment.objects.get()
    assert comment.author == request.getfixturevalue(actor) and response.json()["author"] == comment.author_id
    assert stored.first_responded_at == comment.created_at


def test_an_internal_note_is_no_response_and_the_author_cannot_be_forged(sam, bob):
    ticket = TicketFactory()
    client = api_as(bob)
    response = client.post(f"{V1}/tickets/{ticket.pk}/comments/", {"body": "Customer sounded upset",
                                                                   "internal": True, "author": sam.pk}, format="json")
    assert response.status_code == 201
    assert TicketComment.objects.get().author == bob
    assert Ticket.objects.get(pk=ticket.pk).first_responded_at is None
    assert client.post(f"{V1}/tickets/{ticket.pk}/comments/", {"body": ""}, format="json").json() == {
        "body": ["This field may not be blank."]}
    assert client.post(f"{V1}/tickets/{ticket.pk}/comments/", {"text": "x"}, format="json").status_code == 400
    assert TicketComment.objects.count() == 1


@pytest.mark.parametrize("actor, expected", [("sam", 200), ("bob", 200), ("charlie", 200), ("nobody", 401)])
def test_comments_are_listed_oldest_first_by_role(actors, actor, expected, bob):
    ticket = TicketFactory()
    first = ticket_comment_add(ticket=ticket, author=bob, body="First")
    second = ticket_comment_add(ticket=ticket, author=None, body="Second", internal=True)
    ticket_comment_add(ticket=TicketFactory(), author=bob, body="Another ticket's")
    response = actors[actor].get(f"{V1}/tickets/{ticket.pk}/comments/")
    assert response.status_code == expected
    if expected == 200:
        assert [row["id"] for row in response.json()["results"]] == [first.pk, second.pk]
