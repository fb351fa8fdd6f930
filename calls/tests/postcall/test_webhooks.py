"""Signed webhooks: signatures, fan-out, retries with backoff, the delivery log, auto-disable."""

import datetime as dt
import hashlib
import hmac
import json
import re
import time

import pytest
from django.contrib import admin
from django.core.exceptions import PermissionDenied
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


def test_an_unreachable_receiver_is_a_failed_attempt_too(broker):
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
    assert signing == {"alice": ["secret_display"], "charlie": ["secret_hint"]}
