"""/api/v1/webhooks/, /webhook-deliveries/ and /information/: Supervisors point the CRM's data at a URL
(the SSRF rules hold), the secret is shown once, test events and redeliveries go through the real
delivery path; information records are read and filtered by every role."""

import json
import time
import uuid

import pytest
from django.utils import timezone

from calls.models import Call, InformationRecord, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from calls.tests.postcall.conftest import broker, loopback, loopback_receivers  # noqa: F401 (fixtures)
from calls.webhooks import webhook_delivery_attempt, webhook_signature_verify
from customers.tests.factories import CustomerFactory
from voicecrm.tests.test_api_resources import V1, api_as, assert_flat_queries

pytestmark = pytest.mark.django_db
PUBLIC_URL = "https://93.184.215.14/hooks/voicecrm"  # a public address literal: no DNS in tests


@pytest.fixture
def actors(sam, bob, charlie):
    return {"sam": api_as(sam), "bob": api_as(bob), "charlie": api_as(charlie), "nobody": api_as(None)}


def endpoint(**fields) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(**{"name": "TMS", "url": PUBLIC_URL, "events": ["call.ended"], **fields})


def delivery(target: WebhookEndpoint, **fields) -> WebhookDelivery:
    event_id = uuid.uuid4()
    return WebhookDelivery.objects.create(**{
        "endpoint": target, "event": "call.ended", "event_id": event_id, "dedupe_key": f"test:{event_id}",
        "body": json.dumps({"id": str(event_id), "type": "call.ended", "data": {}}), **fields})


# --- Endpoints: who may, and the secret shown once ---------------------------------------------------------


@pytest.mark.parametrize("actor, expected", [("sam", 201), ("bob", 403), ("charlie", 403), ("nobody", 401)])
def test_adding_an_endpoint_by_role_shows_its_secret_once(actors, actor, expected):
    response = actors[actor].post(f"{V1}/webhooks/", {"name": "TMS", "url": PUBLIC_URL,
                                                      "events": ["call.analyzed", "call.ended"]}, format="json")
    assert response.status_code == expected, response.content
    if expected != 201:
        assert not WebhookEndpoint.objects.exists()
        return
    stored = WebhookEndpoint.objects.get()
    assert response.json()["secret"] == stored.secret and stored.secret.startswith("whsec_")
    assert stored.events == ["call.analyzed", "call.ended"] and stored.active
    for url in (f"{V1}/webhooks/", f"{V1}/webhooks/{stored.pk}/"):
        for reader in ("sam", "charlie"):
            answer = actors[reader].get(url)
            assert answer.status_code == 200 and stored.secret not in answer.content.decode()
    assert actors["sam"].get(f"{V1}/webhooks/{stored.pk}/").json()["secret_hint"] == stored.secret[:10] + "…"


def test_a_secret_cannot_be_chosen_or_read_back(sam):
    client = api_as(sam)
    response = client.post(f"{V1}/webhooks/", {"name": "TMS", "url": PUBLIC_URL, "events": ["call.ended"],
                                               "secret": "whsec_mine"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["secret"]
    target = endpoint()
    response = client.patch(f"{V1}/webhooks/{target.pk}/", {"secret": "whsec_mine"}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["secret"]
    assert WebhookEndpoint.objects.get(pk=target.pk).secret == target.secret


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/hook", "http://10.0.0.5/hook", "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook", "http://192.168.1.10/hook", "http://0.0.0.0/hook",
    "ftp://93.184.215.14/hook", "file:///etc/passwd", "not a url",
])
def test_an_internal_target_is_refused_as_in_the_admin(sam, url, settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = []
    client = api_as(sam)
    response = client.post(f"{V1}/webhooks/", {"name": "x", "url": url, "events": ["call.ended"]}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["url"], response.content
    assert not WebhookEndpoint.objects.exists()
    target = endpoint()
    response = client.patch(f"{V1}/webhooks/{target.pk}/", {"url": url}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["url"]
    assert WebhookEndpoint.objects.get(pk=target.pk).url == PUBLIC_URL


@pytest.mark.parametrize("body, name", [
    ({"events": []}, "events"), ({"events": ["call.deleted"]}, "events"), ({"events": "call.ended"}, "events"),
    ({"name": ""}, "name"), ({"agent": "no-such-agent"}, "agent"), ({"url": "https://" + "a" * 500 + ".com/"}, "url"),
])
def test_a_bad_endpoint_is_a_400_naming_the_field(sam, body, name):
    response = api_as(sam).post(f"{V1}/webhooks/", {"name": "TMS", "url": PUBLIC_URL, "events": ["call.ended"], **body},
                                format="json")
    assert response.status_code == 400 and list(response.json()) == [name], response.content
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("actor, expected", [("sam", 200), ("bob", 403), ("charlie", 403), ("nobody", 401)])
def test_changing_an_endpoint_by_role(actors, actor, expected):
    target = endpoint()
    response = actors[actor].patch(f"{V1}/webhooks/{target.pk}/", {"events": ["ticket.created"], "name": "CRM"},
                                   format="json")
    assert response.status_code == expected
    stored = WebhookEndpoint.objects.get(pk=target.pk)
    assert (stored.events, stored.name) == ((["ticket.created"], "CRM") if expected == 200 else (["call.ended"], "TMS"))


def test_switching_an_endpoint_back_on_sends_what_it_held(sam, broker, django_capture_on_commit_callbacks):  # noqa: F811
    target = endpoint(active=False, disabled_reason="410 Gone", disabled_at=timezone.now())
    held = delivery(target)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(sam).patch(f"{V1}/webhooks/{target.pk}/", {"active": True}, format="json")
    assert response.status_code == 200 and response.json()["disabled_reason"] == ""
    assert [(name, args) for name, args, _ in broker.sent] == [("calls.tasks.webhook_deliver_task", (held.pk,))]


@pytest.mark.parametrize("actor, expected", [("sam", 204), ("bob", 403), ("charlie", 403), ("nobody", 401)])
def test_deleting_an_endpoint_by_role(actors, actor, expected):
    target = endpoint()
    assert actors[actor].delete(f"{V1}/webhooks/{target.pk}/").status_code == expected
    assert WebhookEndpoint.objects.filter(pk=target.pk).exists() == (expected != 204)


@pytest.mark.parametrize("actor, expected", [("sam", 200), ("bob", 403), ("charlie", 403), ("nobody", 401)])
def test_rotating_the_secret_by_role_shows_the_new_one_once(actors, actor, expected, settings):
    target = endpoint()
    response = actors[actor].post(f"{V1}/webhooks/{target.pk}/rotate-secret/")
    assert response.status_code == expected
    stored = WebhookEndpoint.objects.get(pk=target.pk)
    if expected != 200:
        assert stored.secret == target.secret
        return
    assert stored.secret != target.secret and stored.previous_secret == target.secret
    assert response.json()["secret"] == stored.secret and response.json()["previous_secret_until"] is not None
    listed = actors["sam"].get(f"{V1}/webhooks/").content.decode()
    assert stored.secret not in listed and target.secret not in listed


# --- Test events and redeliveries go through the delivery path ------------------------------------------------


@pytest.mark.parametrize("actor, expected", [("sam", 202), ("bob", 403), ("charlie", 403), ("nobody", 401)])
def test_a_test_event_by_role_is_signed_and_delivered(actors, actor, expected, broker, loopback,  # noqa: F811
                                                      django_capture_on_commit_callbacks):
    created = actors["sam"].post(f"{V1}/webhooks/", {"name": "Receiver", "url": f"{loopback.url}/hook",
                                                     "events": ["call.ended"]}, format="json").json()
    with django_capture_on_commit_callbacks(execute=True):
        response = actors[actor].post(f"{V1}/webhooks/{created['id']}/test/")
    assert response.status_code == expected
    if expected != 202:
        assert not WebhookDelivery.objects.exists() and broker.sent == []
        return
    sent = WebhookDelivery.objects.get()
    assert response.json()["id"] == str(sent.public_id) and response.json()["status"] == "pending"
    assert [args for _, args, _ in broker.sent] == [(sent.pk,)]
    # What the queued task does: one attempt, signed with the secret the creation showed.
    assert webhook_delivery_attempt(delivery_id=sent.pk) == "succeeded"
    [request] = loopback.requests
    assert request["path"] == "/hook" and json.loads(request["body"])["data"]["test"] is True
    assert webhook_signature_verify(secret=created["secret"], header=request["headers"]["X-VoiceCRM-Signature"],
                                    body=request["body"], now=time.time())


def test_a_disabled_endpoint_gets_no_test(sam):
    target = endpoint(active=False)
    response = api_as(sam).post(f"{V1}/webhooks/{target.pk}/test/")
    assert response.status_code == 409 and "disabled" in response.json()["detail"]
    assert not WebhookDelivery.objects.exists()
    assert api_as(sam).post(f"{V1}/webhooks/999999/test/").status_code == 404


@pytest.mark.parametrize("actor, expected", [("sam", 202), ("bob", 403), ("charlie", 403), ("nobody", 401)])
def test_redelivering_by_role(actors, actor, expected, broker, django_capture_on_commit_callbacks):  # noqa: F811
    failed = delivery(endpoint(), status="failed", attempts=9, error="gave up", next_attempt_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        response = actors[actor].post(f"{V1}/webhook-deliveries/{failed.public_id}/redeliver/")
    assert response.status_code == expected
    stored = WebhookDelivery.objects.get(pk=failed.pk)
    if expected != 202:
        assert stored.status == "failed" and broker.sent == []
        return
    assert stored.status == "pending" and stored.next_attempt_at is not None and stored.created_at > failed.created_at
    assert [args for _, args, _ in broker.sent] == [(failed.pk,)]


def test_what_cannot_be_redelivered_is_a_409(sam, broker):  # noqa: F811
    target = endpoint()
    client = api_as(sam)
    done = delivery(target, status="succeeded")
    response = client.post(f"{V1}/webhook-deliveries/{done.public_id}/redeliver/")
    assert response.status_code == 409 and "succeeded" in response.json()["detail"]
    in_flight = delivery(target, status="sending", locked_until=timezone.now() + timezone.timedelta(seconds=30))
    assert client.post(f"{V1}/webhook-deliveries/{in_flight.public_id}/redeliver/").status_code == 409
    held = delivery(endpoint(name="Off", active=False), status="failed")
    response = client.post(f"{V1}/webhook-deliveries/{held.public_id}/redeliver/")
    assert response.status_code == 409 and "disabled" in response.json()["detail"]
    assert WebhookDelivery.objects.get(pk=held.pk).status == "failed" and broker.sent == []
    assert client.post(f"{V1}/webhook-deliveries/{uuid.uuid4()}/redeliver/").status_code == 404


# --- Deliveries: listed and read ------------------------------------------------------------------------------


@pytest.mark.parametrize("actor, expected", [("sam", 200), ("bob", 200), ("charlie", 200), ("nobody", 401)])
def test_deliveries_are_listed_by_endpoint(actors, actor, expected):
    mine, other = endpoint(), endpoint(name="Other")
    call = Call.objects.create(channel="browser", status="completed")
    newest = delivery(mine, call=call, status="failed")
    delivery(other)
    response = actors[actor].get(f"{V1}/webhook-deliveries/", {"endpoint": mine.pk})
    assert response.status_code == expected
    if expected == 200:
        [row] = response.json()["results"]
        assert (row["id"], row["call"], row["status"]) == (str(newest.public_id), str(call.public_id), "failed")
        assert [r["id"] for r in actors[actor].get(f"{V1}/webhook-deliveries/", {"call": str(call.public_id)}
                                                   ).json()["results"]] == [str(newest.public_id)]


@pytest.mark.parametrize("params, name", [
    ({"endpoint": "x"}, "endpoint"), ({"status": "lost"}, "status"), ({"event": "call.deleted"}, "event"),
    ({"call": "42"}, "call"), ({"search": "x"}, "search"),
])
def test_a_bad_delivery_filter_is_a_400(charlie, params, name):
    response = api_as(charlie).get(f"{V1}/webhook-deliveries/", params)
    assert response.status_code == 400 and list(response.json()) == [name]


def test_a_delivery_shows_its_body_and_attempts_and_only_supervisors_see_what_receivers_said(sam, charlie):
    sent = delivery(endpoint(), status="pending", attempts=1)
    WebhookAttempt.objects.create(delivery=sent, number=1, response_status=500, response_body="db password: hunter2",
                                  error="HTTP 500")
    as_sam = api_as(sam).get(f"{V1}/webhook-deliveries/{sent.public_id}/").json()
    assert as_sam["payload"]["type"] == "call.ended"
    assert as_sam["attempt_log"][0]["response_body"] == "db password: hunter2"
    as_charlie = api_as(charlie).get(f"{V1}/webhook-deliveries/{sent.public_id}/")
    assert as_charlie.status_code == 200 and "hunter2" not in as_charlie.content.decode()
    assert as_charlie.json()["attempt_log"][0]["response_status"] == 500
    assert api_as(charlie).get(f"{V1}/webhook-deliveries/{uuid.uuid4()}/").status_code == 404
    assert api_as(charlie).get(f"{V1}/webhook-deliveries/{sent.pk}/").status_code == 404


def test_webhook_lists_and_details_cost_the_same_queries_for_more_rows(charlie, django_assert_max_num_queries):
    target = endpoint()
    first = delivery(target, call=Call.objects.create(channel="browser"))
    WebhookAttempt.objects.create(delivery=first, number=1, error="timeout")

    def grow():
        for n in range(3):
            more = endpoint(name=f"More {n}")
            extra = delivery(more, call=Call.objects.create(channel="browser"))
            WebhookAttempt.objects.create(delivery=extra, number=1, error="timeout")
            WebhookAttempt.objects.create(delivery=first, number=2 + n, error="timeout")

    client = api_as(charlie)
    assert_flat_queries(client, f"{V1}/webhooks/", grow, 6, django_assert_max_num_queries)
    assert_flat_queries(client, f"{V1}/webhooks/{target.pk}/", grow, 5, django_assert_max_num_queries)
    assert_flat_queries(client, f"{V1}/webhook-deliveries/", grow, 6, django_assert_max_num_queries)
    assert_flat_queries(client, f"{V1}/webhook-deliveries/{first.public_id}/", grow, 6, django_assert_max_num_queries)


# --- Information records -----------------------------------------------------------------------------------


def facts():
    customer = CustomerFactory(phone="+14155550123")
    call = Call.objects.create(channel="twilio", from_number="+14155550123", customer=customer)
    other_call = Call.objects.create(channel="browser")
    return {
        "customer": customer, "call": call,
        "email": InformationRecord.objects.create(call=call, customer=customer, category="contact_details",
                                                  key="email", value="ada@example.com"),
        "debt": InformationRecord.objects.create(call=call, customer=customer, category="debt_info", key="amount",
                                                 value="420"),
        "anonymous": InformationRecord.objects.create(call=other_call, category="contact_details", key="name",
                                                      value="Sam"),
    }


@pytest.mark.parametrize("actor, expected", [("sam", 200), ("bob", 200), ("charlie", 200), ("nobody", 401)])
def test_information_is_read_by_every_role_and_filtered(actors, actor, expected):
    known = facts()
    client = actors[actor]
    response = client.get(f"{V1}/information/", {"category": "contact_details"})
    assert response.status_code == expected
    if expected != 200:
        return

    def keys(params) -> set[str]:
        answer = client.get(f"{V1}/information/", params)
        assert answer.status_code == 200, answer.content
        return {row["key"] for row in answer.json()["results"]}

    assert {row["key"] for row in response.json()["results"]} == {"email", "name"}
    assert keys({"customer": known["customer"].pk}) == {"email", "amount"}
    assert keys({"caller": "(415) 555-0123"}) == {"email", "amount"}
    assert keys({"call": str(known["call"].public_id), "category": "debt_info"}) == {"amount"}
    assert keys({"search": "example.com"}) == {"email"}
    row = client.get(f"{V1}/information/{known['email'].pk}/").json()
    assert row["call"] == str(known["call"].public_id) and row["customer"] == known["customer"].pk


@pytest.mark.parametrize("params, name", [
    ({"call": "nope"}, "call"), ({"customer": "-1"}, "customer"), ({"caller": "12"}, "caller"),
    ({"category": "\x00"}, "category"), ({"ordering": "value"}, "ordering"),
])
def test_a_bad_information_filter_is_a_400(charlie, params, name):
    response = api_as(charlie).get(f"{V1}/information/", params)
    assert response.status_code == 400 and list(response.json()) == [name]


def test_information_is_read_only_and_costs_the_same_queries_for_more_rows(sam, charlie, django_assert_max_num_queries):
    known = facts()
    assert api_as(sam).post(f"{V1}/information/", {"category": "x", "key": "y", "value": "z"},
                            format="json").status_code == 405
    assert api_as(sam).get(f"{V1}/information/999999/").status_code == 404
    client = api_as(charlie)
    assert_flat_queries(client, f"{V1}/information/", facts, 6, django_assert_max_num_queries)
    assert_flat_queries(client, f"{V1}/information/{known['email'].pk}/", facts, 5, django_assert_max_num_queries)
