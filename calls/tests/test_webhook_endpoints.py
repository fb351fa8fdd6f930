"""calls/webhooks.py's endpoint and delivery writes: created and changed with the SSRF rules, switched
back on with their held deliveries, retried as the admin's "Retry now" does."""

import datetime as dt
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from calls.models import WebhookDelivery, WebhookEndpoint
from calls.tests.postcall.conftest import broker  # noqa: F401 (fixture)
from calls.webhooks import (
    WebhookStateError,
    webhook_delivery_retry,
    webhook_endpoint_create,
    webhook_endpoint_update,
)

pytestmark = pytest.mark.django_db
PUBLIC_URL = "https://93.184.215.14/hook"


def held(endpoint: WebhookEndpoint, **fields) -> WebhookDelivery:
    event_id = uuid.uuid4()
    return WebhookDelivery.objects.create(**{"endpoint": endpoint, "event": "call.ended", "event_id": event_id,
                                             "dedupe_key": str(event_id), "body": "{}", **fields})


def test_an_endpoint_is_created_with_a_secret_and_only_for_public_targets(settings):
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = []
    endpoint = webhook_endpoint_create(name="TMS", url=PUBLIC_URL, events=["call.ended"])
    assert endpoint.secret.startswith("whsec_") and WebhookEndpoint.objects.get().url == PUBLIC_URL
    with pytest.raises(ValidationError) as raised:
        webhook_endpoint_create(name="Metadata", url="http://169.254.169.254/", events=["call.ended"])
    assert list(raised.value.message_dict) == ["url"]
    with pytest.raises(ValidationError) as raised:
        webhook_endpoint_create(name="None", url=PUBLIC_URL, events=[])
    assert list(raised.value.message_dict) == ["events"]
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = ["10.2.0.0/16"]
    assert webhook_endpoint_create(name="On premise", url="http://10.2.3.4/hook", events=["call.ended"]).pk
    assert WebhookEndpoint.objects.count() == 2


def test_an_update_is_checked_and_switching_back_on_sends_the_held_deliveries(
        broker, django_capture_on_commit_callbacks, settings):  # noqa: F811
    settings.WEBHOOK_ALLOWED_PRIVATE_HOSTS = []
    endpoint = webhook_endpoint_create(name="TMS", url=PUBLIC_URL, events=["call.ended"], active=False)
    waiting = held(endpoint)
    with pytest.raises(ValidationError):
        webhook_endpoint_update(endpoint=endpoint, url="http://127.0.0.1/hook", active=True)
    assert not WebhookEndpoint.objects.get().active and broker.sent == []
    with django_capture_on_commit_callbacks(execute=True):
        updated = webhook_endpoint_update(endpoint=endpoint, active=True, name="TMS 2")
    assert (updated.active, updated.name) == (True, "TMS 2")
    assert [args for _, args, _ in broker.sent] == [(waiting.pk,)]
    with django_capture_on_commit_callbacks(execute=True):
        webhook_endpoint_update(endpoint=endpoint, active=True, name="TMS 3")
    assert len(broker.sent) == 1  # already on: nothing sent again
    with pytest.raises(TypeError):
        webhook_endpoint_update(endpoint=endpoint, secret="whsec_mine")


def test_a_retry_starts_a_new_window_and_refuses_what_it_must(broker, django_capture_on_commit_callbacks):  # noqa: F811
    endpoint = webhook_endpoint_create(name="TMS", url=PUBLIC_URL, events=["call.ended"])
    old = timezone.now() - dt.timedelta(days=2)
    failed = held(endpoint, status="failed", created_at=old, next_attempt_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        retried = webhook_delivery_retry(delivery=failed)
    stored = WebhookDelivery.objects.get(pk=failed.pk)
    assert retried.status == stored.status == "pending" and stored.created_at > old and stored.next_attempt_at
    assert [args for _, args, _ in broker.sent] == [(failed.pk,)]
    for delivery in (held(endpoint, status="succeeded"),
                     held(endpoint, status="sending", locked_until=timezone.now() + dt.timedelta(minutes=1)),
                     held(webhook_endpoint_create(name="Off", url=PUBLIC_URL, events=["call.ended"], active=False),
                          status="failed")):
        with pytest.raises(WebhookStateError):
            webhook_delivery_retry(delivery=delivery)
        assert WebhookDelivery.objects.get(pk=delivery.pk).status == delivery.status
    # A worker that died mid-request leaves "sending" behind; once its lock ran out it may be retried.
    stale = held(endpoint, status="sending", locked_until=timezone.now() - dt.timedelta(minutes=1))
    assert webhook_delivery_retry(delivery=stale).status == "pending"
    assert len(broker.sent) == 1
