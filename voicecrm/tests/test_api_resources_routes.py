"""/api/v1/routes/: phone numbers, extensions and widget keys, with Route.clean()'s rules; Supervisors write."""

import pytest

from agents.tests.factories import AgentConfigFactory
from telephony.models import Route
from voicecrm.tests.test_api_resources import V1, api_as, assert_flat_queries

pytestmark = pytest.mark.django_db


@pytest.fixture
def actors(sam, bob, charlie):
    return {"sam": api_as(sam), "bob": api_as(bob), "charlie": api_as(charlie), "nobody": api_as(None)}


@pytest.fixture
def agent():
    return AgentConfigFactory(slug="reception")


@pytest.mark.parametrize("actor, expected", [("sam", 201), ("bob", 403), ("charlie", 403), ("nobody", 401)])
def test_adding_a_phone_number_by_role_stores_it_in_e164(actors, actor, expected, agent):
    response = actors[actor].post(f"{V1}/routes/", {"kind": "phone_number", "address": "(415) 555-0100",
                                                    "agent": "reception", "label": "Main line"}, format="json")
    assert response.status_code == expected, response.content
    if expected != 201:
        assert not Route.objects.exists()
        return
    route = Route.objects.get()
    assert (route.address, route.agent, route.label) == ("+14155550100", agent, "Main line")
    assert response.json()["address"] == "+14155550100" and response.json()["agent"] == "reception"


def test_a_widget_key_left_empty_is_generated_with_its_origins(sam, agent):
    response = api_as(sam).post(f"{V1}/routes/", {"kind": "widget_key", "agent": "reception", "allowed_origins": [
        "https://shop.example", "http://localhost:8000/"]}, format="json")
    assert response.status_code == 201, response.content
    route = Route.objects.get()
    assert len(route.address) >= 20 and response.json()["address"] == route.address
    assert route.allows_origin("https://shop.example") and route.allows_origin("http://localhost:8000")
    assert response.json()["allowed_origins"] == ["https://shop.example", "http://localhost:8000/"]


@pytest.mark.parametrize("body, name", [
    ({"kind": "phone_number", "address": "12"}, "address"),
    ({"kind": "phone_number", "address": ""}, "address"),
    ({"kind": "asterisk_extension", "address": "1001; DROP"}, "address"),
    ({"kind": "widget_key", "allowed_origins": ["https://shop.example/checkout"]}, "allowed_origins"),
    ({"kind": "widget_key", "allowed_origins": ["javascript:alert(1)"]}, "allowed_origins"),
    ({"kind": "widget_key", "allowed_origins": "https://shop.example"}, "allowed_origins"),
    ({"kind": "fax", "address": "1"}, "kind"),
    ({"kind": "phone_number", "address": "+14155550100", "agent": "nobody-here"}, "agent"),
    ({"kind": "phone_number", "address": "+14155550100", "created_at": "2020-01-01T00:00:00Z", "secret": 1}, "secret"),
])
def test_a_bad_route_is_a_400_naming_the_field_and_creates_nothing(sam, agent, body, name):
    response = api_as(sam).post(f"{V1}/routes/", {"agent": "reception", **body}, format="json")
    assert response.status_code == 400 and list(response.json()) == [name], response.content
    assert not Route.objects.exists()


def test_an_address_already_routed_for_its_kind_is_a_400_on_the_address(sam, agent):
    Route.objects.create(kind="phone_number", address="+14155550100", agent=agent)
    client = api_as(sam)
    response = client.post(f"{V1}/routes/", {"kind": "phone_number", "address": "415.555.0100", "agent": "reception"},
                           format="json")
    assert response.status_code == 400 and list(response.json()) == ["address"]
    # The same digits as an extension are another address.
    response = client.post(f"{V1}/routes/", {"kind": "asterisk_extension", "address": "4155550100",
                                             "agent": "reception"}, format="json")
    assert response.status_code == 201
    assert Route.objects.count() == 2


@pytest.mark.parametrize("actor, expected", [("sam", 200), ("bob", 403), ("charlie", 403), ("nobody", 401)])
def test_changing_a_route_by_role_checks_it_again(actors, actor, expected, agent):
    route = Route.objects.create(kind="phone_number", address="+14155550100", agent=agent)
    other = AgentConfigFactory(slug="dispatch")
    response = actors[actor].patch(f"{V1}/routes/{route.pk}/", {"agent": "dispatch", "active": False}, format="json")
    assert response.status_code == expected
    route.refresh_from_db()
    assert (route.agent, route.active) == ((other, False) if expected == 200 else (agent, True))


def test_a_new_kind_checks_the_address_again(sam, agent):
    route = Route.objects.create(kind="asterisk_extension", address="1001", agent=agent)
    client = api_as(sam)
    response = client.patch(f"{V1}/routes/{route.pk}/", {"kind": "phone_number"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["address"]
    assert Route.objects.get(pk=route.pk).kind == "asterisk_extension"
    response = client.patch(f"{V1}/routes/{route.pk}/", {"kind": "phone_number", "address": "+1 415 555 0101"},
                            format="json")
    assert response.status_code == 200 and Route.objects.get(pk=route.pk).address == "+14155550101"


@pytest.mark.parametrize("actor, expected", [("sam", 204), ("bob", 403), ("charlie", 403), ("nobody", 401)])
def test_deleting_a_route_by_role(actors, actor, expected, agent):
    route = Route.objects.create(kind="asterisk_extension", address="1001", agent=agent)
    assert actors[actor].delete(f"{V1}/routes/{route.pk}/").status_code == expected
    assert Route.objects.filter(pk=route.pk).exists() == (expected != 204)


@pytest.mark.parametrize("actor, expected", [("sam", 200), ("bob", 200), ("charlie", 200), ("nobody", 401)])
def test_routes_are_read_by_every_role_and_filtered(actors, actor, expected, agent):
    number = Route.objects.create(kind="phone_number", address="+14155550100", agent=agent)
    Route.objects.create(kind="asterisk_extension", address="1001", agent=AgentConfigFactory(slug="dispatch"),
                         active=False)
    client = actors[actor]
    response = client.get(f"{V1}/routes/", {"agent": "reception"})
    assert response.status_code == expected
    if expected != 200:
        return
    assert [row["id"] for row in response.json()["results"]] == [number.pk]
    assert [row["address"] for row in client.get(f"{V1}/routes/", {"active": "false"}).json()["results"]] == ["1001"]
    assert [row["address"] for row in client.get(f"{V1}/routes/", {"search": "555"}).json()["results"]] == [
        "+14155550100"]
    assert client.get(f"{V1}/routes/", {"kind": "fax"}).status_code == 400
    assert client.get(f"{V1}/routes/", {"active": "sometimes"}).status_code == 400
    assert client.get(f"{V1}/routes/999999/").status_code == 404


def test_route_list_and_detail_cost_the_same_queries_for_more_rows(charlie, agent, django_assert_max_num_queries):
    route = Route.objects.create(kind="asterisk_extension", address="1000", agent=agent)
    extensions = iter(range(2000, 3000))

    def grow():
        for _ in range(4):
            Route.objects.create(kind="asterisk_extension", address=str(next(extensions)), agent=AgentConfigFactory())

    client = api_as(charlie)
    assert_flat_queries(client, f"{V1}/routes/", grow, 6, django_assert_max_num_queries)
    assert_flat_queries(client, f"{V1}/routes/{route.pk}/", grow, 5, django_assert_max_num_queries)
