"""Signed webhooks: signatures, fan-out, retries with backoff, the delivery log, auto-disable."""

import datetime as dt
import hashlib
import hmac
import json
import re
import socket
import time

import pytest
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from calls.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from calls.tests.postcall import scenarios
from calls.tests.postcall.conftest import call_with_turns, demo_agent
from calls.webhooks import (
    call_ended_emit,
    endpoint_enable,
    retry_delay,
    webhook_delivery_attempt,
    webhook_secret_rotate,
    webhook_signature,
    webhook_signature_verify,
    webhook_sweep,
)
from core.admin import CrmModelAdmin, export_as_csv

pytestmark = pytest.mark.django_db

ALL_EVENTS = ["call.started", "call.ended", "call.analyzed", "ticket.created"]


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"id":"e1","type":"call.ended"}'
    header = webhook_signature(secret="whsec_test", timestamp=1700000000, body=body)
    expected = hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert webhook_signature_verify(secret="whsec_test", header=header, body=body, now=1700000100)


@pytest.mark.parametrize("case", ["tampered", "wrong secret", "too old", "from the future", "garbage"])
def test_a_receiver_rejects_what_it_should(case):
    body, now = b'{"a":1}', 1700000000
    header = webhook_signature(secret="s", timestamp=now, body=body)
    kwargs = {"secret": "s", "header": header, "body": body, "now": now}
    if case == "tampered":
        kwargs["body"] = b'{"a":2}'
    elif case == "wrong secret":
        kwargs["secret"] = "t"
    elif case == "too old":
        kwargs["now"] = now + 301
    elif case == "from the future":
        kwargs["now"] = now - 301
    else:
        kwargs["header"] = "v1=abc"
    assert not webhook_signature_verify(**kwargs)


def test_several_v1_signatures_are_accepted_during_a_secret_rotation():
    body = b"{}"
    new = webhook_signature(secret="new", timestamp=100, body=body).split(",")[1]
    header = f"t=100,v1={'0' * 64},{new}"
    assert webhook_signature_verify(secret="new", header=header, body=body, now=100)


def test_an_event_goes_once_to_each_active_subscribed_endpoint(broker, django_capture_on_commit_callbacks):
    dispatch = demo_agent("dispatch")
    a = WebhookEndpoint.objects.create(name="all", url="http://127.0.0.1:9/a", events=ALL_EVENTS)
    b = WebhookEndpoint.objects.create(name="ended only", url="http://127.0.0.1:9/b", events=["call.ended"],
                                       agent=dispatch)
    WebhookEndpoint.objects.create(name="off", url="http://127.0.0.1:9/c", events=ALL_EVENTS, active=False)
    WebhookEndpoint.objects.create(name="started only", url="http://127.0.0.1:9/d", events=["call.started"])
    WebhookEndpoint.objects.create(name="other agent", url="http://127.0.0.1:9/e", events=ALL_EVENTS,
                                   agent=demo_agent("support"))
    call = call_with_turns(scenarios.CHECK_IN)
    with django_capture_on_commit_callbacks(execute=True):
        first = call_ended_emit(call=call)
        second = call_ended_emit(call=call)
    deliveries = WebhookDelivery.objects.filter(event="call.ended")
    assert {d.endpoint for d in deliveries} == {a, b} and len(first) == 2 and second == []
    assert len({d.event_id for d in deliveries}) == 1  # one event, one id, whoever receives it
    body = json.loads(deliveries[0].body)
    assert body["type"] == "call.ended" and body["data"]["call"]["id"] == str(call.public_id)
    assert body["data"]["call"]["agent"] == "dispatch"
    assert broker.names() == ["webhook_deliver_task", "webhook_deliver_task"]


def _delivery(endpoint: WebhookEndpoint, **fields) -> WebhookDelivery:
    call = call_with_turns(scenarios.CHECK_IN)
    call_ended_emit(call=call)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint, call=call)
    if fields:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        delivery.refresh_from_db()
    return delivery


def test_a_failed_attempt_is_logged_and_retried_with_backoff_then_succeeds(broker, loopback, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    endpoint = WebhookEndpoint.objects.create(name="r", url=loopback.url + "/hook", events=ALL_EVENTS)
    delivery = _delivery(endpoint)
    loopback.statuses = [500]

    before = timezone.now()
    assert webhook_delivery_attempt(delivery_id=delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and delivery.error == "HTTP 500" and delivery.response_status == 500
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 5 <= wait <= 11  # base 10 s with jitter in [½, 1]
    assert broker.sent[-1][0] == "calls.tasks.webhook_deliver_task" and 5 <= broker.sent[-1][2]["countdown"] <= 10
    assert webhook_delivery_attempt(delivery_id=delivery.pk) is None  # not due yet: a duplicate message does nothing

    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert webhook_delivery_attempt(delivery_id=delivery.pk) == "succeeded"
    delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 2 and delivery.delivered_at
    assert list(WebhookAttempt.objects.filter(delivery=delivery).values_list("number", "response_status")) == [
        (1, 500), (2, 200)]
    assert endpoint.consecutive_failures == 0 and endpoint.failing_since is None and endpoint.last_success_at

    first, second = loopback.requests
    assert first["body"] == second["body"] == delivery.body.encode()
    headers = second["headers"]
    assert headers["X-VoiceCRM-Event"] == "call.ended" and headers["X-VoiceCRM-Event-Id"] == str(delivery.event_id)
    assert headers["X-VoiceCRM-Attempt"] == "2" and headers["Content-Type"] == "application/json"
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", headers["X-VoiceCRM-Signature"])
    assert webhook_signature_verify(secret=endpoint.secret, header=headers["X-VoiceCRM-Signature"], body=second["body"])


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 15
    settings.WEBHOOK_RETRY_MAX_INTERVAL_SECONDS = 3600
    for attempt, full in [(1, 15), (2, 30), (3, 60), (6, 480), (9, 3600), (20, 3600)]:
        delays = [retry_delay(attempt) for _ in range(200)]
        assert full / 2 <= min(delays) and max(delays) <= full
        assert max(delays) - min(delays) > full / 10  # jittered, not all the same


def test_a_delivery_gives_up_after_the_retry_window(broker, loopback, settings):
    endpoint = WebhookEndpoint.objects.create(name="r", url=loopback.url, events=ALL_EVENTS)
    delivery = _delivery(endpoint, created_at=timezone.now() - dt.timedelta(hours=23, minutes=59, seconds=58))
    loopback.statuses = [503]
    assert webhook_delivery_attempt(delivery_id=delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.error.startswith("gave up after 1 attempts over 24 h")


def test_an_unreachable_receiver_is_a_failed_attempt_too(broker, loopback_receivers):
    endpoint = WebhookEndpoint.objects.create(name="r", url="http://127.0.0.1:9/nothing-listens", events=ALL_EVENTS)
    delivery = _delivery(endpoint)
    assert webhook_delivery_attempt(delivery_id=delivery.pk) == "pending"
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.response_status is None and attempt.error.startswith("ConnectError")


def test_410_gone_disables_the_endpoint_with_the_reason(broker, loopback):
    endpoint = WebhookEndpoint.objects.create(name="r", url=loopback.url, events=ALL_EVENTS)
    delivery = _delivery(endpoint)
    loopback.statuses = [410]
    webhook_delivery_attempt(delivery_id=delivery.pk)
    endpoint.refresh_from_db()
    assert not endpoint.active and "410 Gone" in endpoint.disabled_reason and endpoint.disabled_at


def test_an_endpoint_that_keeps_failing_is_disabled_and_comes_back_with_its_held_deliveries(
        broker, loopback, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    settings.WEBHOOK_DISABLE_AFTER_HOURS = 0
    endpoint = WebhookEndpoint.objects.create(name="r", url=loopback.url, events=ALL_EVENTS)
    deliveries = [_delivery(endpoint) for _ in range(3)]
    loopback.statuses = [500, 502, 500]
    for d in deliveries:
        webhook_delivery_attempt(delivery_id=d.pk)
    endpoint.refresh_from_db()
    assert not endpoint.active
    assert endpoint.disabled_reason.endswith("3 failed attempts in a row since "
                                             f"{timezone.localtime(endpoint.failing_since):%Y-%m-%d %H:%M}; "
                                             "last error: HTTP 500")
    # Held, not dropped: nothing is sent while it is off...
    WebhookDelivery.objects.update(next_attempt_at=timezone.now() - dt.timedelta(minutes=1))
    assert webhook_delivery_attempt(delivery_id=deliveries[0].pk) is None
    assert webhook_sweep() == 0
    # ...and everything goes when a supervisor turns it back on.
    broker.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert endpoint_enable(endpoint) == 3
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.disabled_reason == "" and endpoint.consecutive_failures == 0
    assert broker.names() == ["webhook_deliver_task"] * 3


def test_the_sweep_sends_due_deliveries_and_expires_old_ones(broker):
    endpoint = WebhookEndpoint.objects.create(name="r", url="http://127.0.0.1:9/x", events=ALL_EVENTS)
    due = _delivery(endpoint, next_attempt_at=timezone.now() - dt.timedelta(seconds=30))
    _delivery(endpoint, next_attempt_at=timezone.now() + dt.timedelta(minutes=5))
    stuck = _delivery(endpoint, status="sending", locked_until=timezone.now() - dt.timedelta(seconds=1))
    old = _delivery(endpoint, created_at=timezone.now() - dt.timedelta(hours=25))
    broker.clear()
    assert webhook_sweep() == 2
    assert sorted(args[0] for _, args, _ in broker.sent) == sorted([due.pk, stuck.pk])
    old.refresh_from_db()
    assert old.status == "failed" and "within 24 h" in old.error


def test_ticket_created_is_emitted_for_any_new_ticket(broker, django_capture_on_commit_callbacks):
    from tickets.services import ticket_create

    WebhookEndpoint.objects.create(name="t", url="http://127.0.0.1:9/t", events=["ticket.created"])
    with django_capture_on_commit_callbacks(execute=True):
        ticket = ticket_create(subject="Router broken")
    delivery = WebhookDelivery.objects.get(event="ticket.created")
    body = json.loads(delivery.body)
    assert body["data"]["ticket"]["reference"] == ticket.reference and body["data"]["call"] is None
    ticket.subject = "Router still broken"
    ticket.save()
    assert WebhookDelivery.objects.count() == 1


def test_the_test_event_action_body_is_signed_like_any_other(broker, loopback, django_capture_on_commit_callbacks):
    from calls.webhooks import webhook_test_send

    endpoint = WebhookEndpoint.objects.create(name="r", url=loopback.url, events=["call.ended"])
    delivery = webhook_test_send(endpoint=endpoint)
    assert webhook_delivery_attempt(delivery_id=delivery.pk) == "succeeded"
    request = loopback.requests[0]
    assert json.loads(request["body"])["data"]["test"] is True
    assert webhook_signature_verify(secret=endpoint.secret, header=request["headers"]["X-VoiceCRM-Signature"],
                                    body=request["body"], now=time.time())


@pytest.mark.django_db(transaction=True)
def test_in_the_embedded_mode_deliveries_go_from_a_thread_and_wait_out_their_backoff(eager_celery, loopback, settings):
    from calls.tests.postcall.harness import wait_for

    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.4
    endpoint = WebhookEndpoint.objects.create(name="dev", url=loopback.url, events=["call.ended"])
    loopback.statuses = [500]
    call = call_with_turns(scenarios.CHECK_IN)
    started = time.monotonic()
    call_ended_emit(call=call)  # autocommit: sent at once, from a timer thread
    assert time.monotonic() - started < 0.5
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    wait_for(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "succeeded", timeout=10,
             what="the retried delivery")
    first, second = [WebhookAttempt.objects.get(delivery=delivery, number=n).started_at for n in (1, 2)]
    assert (second - first).total_seconds() >= 0.2  # the backoff was waited, not skipped


# --- the admin: secrets stay out of exports, no request kept on the shared admin --------------------

def _export(client, user, endpoints):
    client.force_login(user)
    return client.post(reverse("admin:calls_webhookendpoint_changelist"),
                       {"action": "export_as_csv", "_selected_action": [e.pk for e in endpoints]})


@pytest.mark.parametrize("actor", ["charlie", "bob", "alice"])
def test_no_export_contains_a_webhook_secret_whoever_runs_it(client, actor, request):
    user = request.getfixturevalue(actor)
    endpoints = [WebhookEndpoint.objects.create(name=f"CRM {n}", url=f"https://hooks.example.com/{n}",
                                                events=["call.ended"]) for n in range(2)]
    response = _export(client, user, endpoints)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    header, *rows = text.strip().splitlines()
    assert "url" in header.split(",") and "secret" not in header and len(rows) == 2
    for endpoint in endpoints:
        assert endpoint.url in text and endpoint.secret not in text and endpoint.secret[:10] not in text


def test_a_user_without_view_permission_cannot_export(client, django_user_model, rf):
    dave = django_user_model.objects.create_user("dave", "dave@example.com", "x", is_staff=True)  # no role
    endpoint = WebhookEndpoint.objects.create(name="CRM", url="https://hooks.example.com/x", events=["call.ended"])
    assert _export(client, dave, [endpoint]).status_code == 403
    model_admin = admin.site._registry[WebhookEndpoint]
    request = rf.post("/")
    request.user = dave
    assert "export_as_csv" not in model_admin.get_actions(request)
    with pytest.raises(PermissionDenied):
        export_as_csv(model_admin, request, WebhookEndpoint.objects.all())


def test_a_misspelt_secret_field_stops_the_start():
    class Misspelt(CrmModelAdmin):
        secret_fields = ["secrett"]

    errors = Misspelt(WebhookEndpoint, admin.site).check()
    assert [e.id for e in errors] == ["core.E001"]


def test_the_endpoint_admin_keeps_no_request_between_requests(client, alice, charlie, rf):
    endpoint = WebhookEndpoint.objects.create(name="CRM", url="https://hooks.example.com/x", events=["call.ended"])
    model_admin = admin.site._registry[WebhookEndpoint]
    client.force_login(alice)
    assert endpoint.secret in client.get(reverse("admin:calls_webhookendpoint_change", args=[endpoint.pk])).content.decode()
    assert not [v for v in vars(model_admin).values() if isinstance(v, HttpRequest)]
    # Two requests in flight at once each get their own view of the secret.
    as_alice, as_charlie = rf.get("/"), rf.get("/")
    as_alice.user, as_charlie.user = alice, charlie
    signing = {user: dict(model_admin.get_fieldsets(req, endpoint))["Signing"]["fields"]
               for user, req in (("alice", as_alice), ("charlie", as_charlie))}
    assert signing == {"alice": ["secret_display", "previous_secret_status"],
                       "charlie": ["secret_hint", "previous_secret_status"]}


# --- outbound requests go to public addresses only (SSRF) ---------------------------------------------

INTERNAL_URLS = [
    "http://127.0.0.1:8000/hook", "http://localhost/hook", "http://10.0.0.5/", "http://172.16.3.4/",
    "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/", "http://0.0.0.0/",
    "http://224.0.0.1/", "http://240.0.0.1/", "http://255.255.255.255/", "http://[::1]/", "http://[::]/",
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:169.254.169.254]/", "http://[fe80::1]/", "http://[fc00::1]/",
    "http://[ff02::1]/", "http://[2002:7f00:1::]/", "http://[64:ff9b::a9fe:a9fe]/",
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_an_endpoint_aimed_into_our_own_network_is_refused_when_saved(url, settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = []
    endpoint = WebhookEndpoint(name="x", url=url, events=["call.ended"])
    with pytest.raises(ValidationError) as caught:
        endpoint.full_clean()
    assert "public addresses" in str(caught.value.message_dict["url"])


@pytest.mark.parametrize("url", ["https://93.184.216.34/hook", "https://[2606:4700:4700::1111]/hook",
                                 # Not resolvable here: accepted, and resolved and checked before each request.
                                 "https://hooks.example.com/voicecrm"])
def test_a_public_endpoint_is_accepted(url, settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = []
    WebhookEndpoint(name="x", url=url, events=["call.ended"]).full_clean()


def test_only_http_and_https_urls_are_accepted(settings):
    with pytest.raises(ValidationError):
        WebhookEndpoint(name="x", url="ftp://files.example.com/x", events=["call.ended"]).full_clean()


def test_listed_on_premise_hosts_and_networks_are_allowed(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["localhost", "10.2.0.0/16"]
    for url in ("http://localhost:8080/hook", "http://10.2.3.4/hook"):
        WebhookEndpoint(name="x", url=url, events=["call.ended"]).full_clean()
    for url in ("http://10.3.0.1/hook", "http://127.0.0.1/hook", "http://[::1]/hook"):
        with pytest.raises(ValidationError):
            WebhookEndpoint(name="x", url=url, events=["call.ended"]).full_clean()


def test_the_admin_form_refuses_an_internal_url(client, sam, settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = []
    client.force_login(sam)
    response = client.post(reverse("admin:calls_webhookendpoint_add"), {
        "name": "Metadata", "url": "http://169.254.169.254/latest/meta-data/", "events": '["call.ended"]',
        "active": "on", "deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0",
    })
    assert response.status_code == 200 and "169.254.169.254, a link-local address" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_a_request_to_an_internal_address_is_refused_at_connect_time(broker, loopback, settings):
    # A row saved before the check existed, or a name that resolved elsewhere when it was saved.
    endpoint = WebhookEndpoint.objects.create(name="r", url=loopback.url + "/hook", events=ALL_EVENTS)
    delivery = _delivery(endpoint)
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = []
    assert webhook_delivery_attempt(delivery_id=delivery.pk) == "pending"
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert attempt.response_status is None and attempt.error.startswith("Refused: 127.0.0.1 resolves to 127.0.0.1")
    assert loopback.requests == []


def test_the_connection_goes_to_the_address_that_was_checked(broker, loopback, settings, monkeypatch):
    """DNS rebinding: a name that answers a checked address first and an internal one next time."""
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["127.0.0.1/32"]  # the receiver's address, not its name
    real_getaddrinfo = socket.getaddrinfo
    lookups = []

    def rebinding_dns(host, port, *args, **kwargs):
        if host != "receiver.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        # Nothing listens on 127.0.0.2 (and it is not allowed): a second lookup would fail the request.
        address = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    url = f"http://receiver.test:{loopback.httpd.server_port}/hook"
    endpoint = WebhookEndpoint.objects.create(name="r", url=url, events=ALL_EVENTS)
    delivery = _delivery(endpoint)
    assert webhook_delivery_attempt(delivery_id=delivery.pk) == "succeeded", delivery.attempt_log.last().error
    assert lookups == ["receiver.test"]
    request = loopback.requests[0]
    assert request["path"] == "/hook" and request["headers"]["Host"] == f"receiver.test:{loopback.httpd.server_port}"


def test_viewers_do_not_see_what_a_receiver_answered(client, broker, loopback, sam, charlie):
    loopback.reply_body = b"internal-service-answer-8d1f"
    endpoint = WebhookEndpoint.objects.create(name="r", url=loopback.url, events=ALL_EVENTS)
    delivery = _delivery(endpoint)
    webhook_delivery_attempt(delivery_id=delivery.pk)
    page = reverse("admin:calls_webhookdelivery_change", args=[delivery.pk])
    client.force_login(charlie)
    response = client.get(page)
    assert response.status_code == 200 and "internal-service-answer-8d1f" not in response.content.decode()
    client.force_login(sam)
    assert "internal-service-answer-8d1f" in client.get(page).content.decode()


# --- rotating a secret: both signatures for the overlap window --------------------------------------------

def _signatures(header: str) -> list[str]:
    return [part.split("=", 1)[1] for part in header.split(",") if part.startswith("v1=")]


def test_rotating_keeps_the_old_secret_signing_for_the_overlap_window(client, sam, broker, loopback, settings,
                                                                      django_capture_on_commit_callbacks):
    settings.WEBHOOK_SECRET_OVERLAP_HOURS = 24
    endpoint = WebhookEndpoint.objects.create(name="r", url=loopback.url, events=ALL_EVENTS)
    old = endpoint.secret
    client.force_login(sam)
    client.post(reverse("admin:calls_webhookendpoint_changelist"),
                {"action": "rotate_secret", "_selected_action": [endpoint.pk]})
    endpoint.refresh_from_db()
    new = endpoint.secret
    assert new != old and new.startswith("whsec_") and endpoint.previous_secret == old
    expires_in = (endpoint.rotation_overlap_until - timezone.now()).total_seconds()
    assert 24 * 3600 - 60 < expires_in <= 24 * 3600
    change_page = client.get(reverse("admin:calls_webhookendpoint_change", args=[endpoint.pk])).content.decode()
    assert f"{old[:10]}… also signs every request until" in change_page and old not in change_page

    # During the window: one t, a v1 by the new secret then one by the old; receivers on either verify.
    delivery = _delivery(endpoint)
    assert webhook_delivery_attempt(delivery_id=delivery.pk) == "succeeded"
    request = loopback.requests[-1]
    header, body = request["headers"]["X-VoiceCRM-Signature"], request["body"]
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}", header)
    timestamp = int(header.split(",")[0][2:])
    assert _signatures(header) == [hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
                                   for secret in (new, old)]
    assert webhook_signature_verify(secret=new, header=header, body=body)
    assert webhook_signature_verify(secret=old, header=header, body=body)

    # After the window: only the new secret signs, and the sweep forgets the old one.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(rotation_overlap_until=timezone.now())
    delivery = _delivery(endpoint)
    assert webhook_delivery_attempt(delivery_id=delivery.pk) == "succeeded"
    request = loopback.requests[-1]
    header, body = request["headers"]["X-VoiceCRM-Signature"], request["body"]
    assert len(_signatures(header)) == 1
    assert webhook_signature_verify(secret=new, header=header, body=body)
    assert not webhook_signature_verify(secret=old, header=header, body=body)
    webhook_sweep()
    endpoint.refresh_from_db()
    assert endpoint.previous_secret == "" and endpoint.rotation_overlap_until is None


def test_rotating_twice_keeps_only_the_secret_just_replaced(settings):
    endpoint = WebhookEndpoint.objects.create(name="r", url="https://hooks.example.com/x", events=ALL_EVENTS)
    first = endpoint.secret
    second = webhook_secret_rotate(endpoint=endpoint).secret
    webhook_secret_rotate(endpoint=endpoint)
    endpoint.refresh_from_db()
    assert endpoint.signing_secrets(now=timezone.now()) == [endpoint.secret, second] and first not in (
        endpoint.secret, endpoint.previous_secret)


def test_no_export_contains_the_previous_secret(client, alice):
    endpoint = WebhookEndpoint.objects.create(name="r", url="https://hooks.example.com/x", events=ALL_EVENTS)
    webhook_secret_rotate(endpoint=endpoint)
    text = b"".join(_export(client, alice, [endpoint]).streaming_content).decode()
    assert endpoint.previous_secret not in text and endpoint.secret not in text
