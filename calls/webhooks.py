"""Signed outbound webhooks: call.started, call.ended, call.analyzed, ticket.created.

An event becomes one WebhookDelivery per subscribed endpoint, written in the transaction
that caused it (so the deliveries are their own outbox) and sent after commit by a Celery
task on the `default` queue. Each request carries

    X-VoiceCRM-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

signed afresh per attempt, over the same body bytes every time (with one more v1, by the
previous secret, for WEBHOOK_SECRET_OVERLAP_HOURS after a rotation). A failed attempt is retried
with exponential backoff and jitter for WEBHOOK_RETRY_WINDOW_HOURS; every request is logged
(WebhookAttempt); an endpoint that keeps failing, or answers 410 Gone, is disabled with the
reason shown in the admin. Delivery is at least once: receivers deduplicate on the event id.
Requests go only to public addresses: the host is resolved once per attempt, every address is
checked, and the connection is pinned to a checked one (no DNS rebinding, no proxies, no redirects).
docs/webhooks.md is the receiver's side.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import random
import socket
import threading
import time
import uuid
from typing import Any

import httpx
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from calls.models import (
    Call,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookTargetRefused,
    new_webhook_secret,
    webhook_target_addresses,
)
from core.queues import PUBLISH_RETRY, celery_is_eager
from tickets.models import Ticket

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-VoiceCRM-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
USER_AGENT = "VoiceCRM-Webhooks/1"
# Retries due within this delay ride on a Celery countdown (well under the visibility
# timeout); later ones wait for the periodic sweep, so no ETA task sits in a worker for hours.
COUNTDOWN_LIMIT_SECONDS = 300
RESPONSE_EXCERPT_CHARS = 1000


# --- signatures -----------------------------------------------------------------------------------

def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    return webhook_signature_header(secrets=[secret], timestamp=timestamp, body=body)


def webhook_signature_header(*, secrets: list[str], timestamp: int, body: bytes) -> str:
    """`t=<t>,v1=<mac>` with one v1 per secret, the current secret's first."""
    macs = [hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()
            for secret in secrets]
    return ",".join([f"t={timestamp}", *(f"v1={mac}" for mac in macs)])


def webhook_secret_rotate(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Give the endpoint a new secret; the old one keeps signing too for WEBHOOK_SECRET_OVERLAP_HOURS.

    Rotating again inside the window drops the oldest secret: only one previous secret is kept.
    """
    endpoint.previous_secret = endpoint.secret
    endpoint.rotation_overlap_until = timezone.now() + dt.timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
    endpoint.secret = new_webhook_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "rotation_overlap_until", "updated_at"])
    return endpoint


def webhook_signature_verify(*, secret: str, header: str, body: bytes,
                             tolerance: int = DEFAULT_TOLERANCE_SECONDS, now: float | None = None) -> bool:
    """What a receiver does: parse t and every v1, recompute, compare in constant time, and
    refuse timestamps more than `tolerance` seconds away (replays)."""
    try:
        parts = [item.split("=", 1) for item in header.split(",")]
        timestamp = int(next(v for k, v in parts if k.strip() == "t"))
        signatures = [v.strip() for k, v in parts if k.strip() == "v1"]
    except (ValueError, StopIteration):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, s) for s in signatures)


# --- payloads ----------------------------------------------------------------------------------------

def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def call_payload(call: Call) -> dict[str, Any]:
    customer = call.customer
    return {
        "id": str(call.public_id),
        "channel": call.channel,
        "direction": call.direction,
        "from": call.from_number,
        "to": call.to_number,
        "status": call.status,
        "agent": call.agent.slug if call.agent_id else None,
        "customer": {"account_number": customer.account_number, "name": customer.full_name} if customer else None,
        "started_at": _iso(call.started_at),
        "answered_at": _iso(call.answered_at),
        "ended_at": _iso(call.ended_at),
        "duration_seconds": call.duration_seconds,
        "end_reason": call.end_reason,
    }


def analyzed_payload(call: Call) -> dict[str, Any]:
    tickets = list(Ticket.objects.filter(call=call).values("reference", "priority", "status"))
    return {
        "call": call_payload(call),
        "summary": call.summary,
        "outcome": call.outcome,
        "sentiment": call.sentiment,
        "intent": call.intent,
        "data": call.structured_data,
        "extraction_errors": call.extraction_errors,
        "schema_version": call.schema_version,
        "tickets": tickets,
    }


def ticket_payload(ticket) -> dict[str, Any]:
    return {
        "ticket": {
            "reference": ticket.reference, "subject": ticket.subject, "category": ticket.category,
            "priority": ticket.priority, "status": ticket.status, "created_at": _iso(ticket.created_at),
            "customer": ticket.customer.account_number if ticket.customer_id else None,
        },
        "call": call_payload(ticket.call) if ticket.call_id else None,
    }


# --- emitting ----------------------------------------------------------------------------------------

def _endpoints_for(event: str, agent_id: int | None) -> list[WebhookEndpoint]:
    # Few endpoints exist; filtering the JSON list in Python works on every database.
    return [e for e in WebhookEndpoint.objects.filter(active=True).filter(Q(agent__isnull=True) | Q(agent_id=agent_id))
            if e.subscribes_to(event)]


def webhook_event_emit(*, event: str, data: dict[str, Any], dedupe_key: str, call: Call | None = None,
                       agent_id: int | None = None) -> list[int]:
    """Write one delivery per subscribed endpoint (once per dedupe_key) and send them after commit.

    Call it inside the transaction that made the event happen.
    """
    if event not in WebhookEvent.values:
        raise ValueError(f"unknown webhook event {event!r}")
    endpoints = _endpoints_for(event, agent_id if agent_id is not None else (call.agent_id if call else None))
    if not endpoints:
        return []
    event_id = uuid.uuid4()
    now = timezone.now()
    body = json.dumps({"id": str(event_id), "type": event, "created": now.isoformat(), "data": data},
                      cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)
    ids = []
    for endpoint in endpoints:
        try:
            with transaction.atomic():
                delivery = WebhookDelivery.objects.create(
                    endpoint=endpoint, event=event, event_id=event_id, dedupe_key=dedupe_key[:200], call=call,
                    body=body, next_attempt_at=now,
                )
        except IntegrityError:
            continue  # this event already went to this endpoint
        ids.append(delivery.pk)
    if ids:
        transaction.on_commit(lambda: webhook_deliveries_enqueue(ids))
    return ids


def webhook_deliveries_enqueue(ids: list[int], *, countdown: float | None = None) -> None:
    """Hand deliveries to the broker; if it is down they stay pending for the sweep."""
    if celery_is_eager():
        # Embedded mode: no worker, and an eager task would POST inside the caller's thread
        # (a voice session starting) and ignore retry delays. A timer thread does both right.
        for pk in ids:
            timer = threading.Timer(countdown or 0.0, _deliver_in_thread, args=(pk,))
            timer.daemon = True
            timer.start()
        return
    # Cycle: calls.tasks imports this module for the deliveries it runs.
    from calls.tasks import webhook_deliver_task  # noqa: PLC0415

    for pk in ids:
        try:
            webhook_deliver_task.apply_async((pk,), countdown=countdown, retry=True, retry_policy=PUBLISH_RETRY)
        except Exception as exc:  # broker down: the sweep sends it later
            logger.warning("webhook delivery %s not queued (%s); the sweep will send it", pk, exc)


def _deliver_in_thread(delivery_id: int) -> None:
    try:
        webhook_delivery_attempt(delivery_id=delivery_id)
    except Exception:
        logger.exception("webhook delivery %s failed", delivery_id)
    finally:
        connection.close()




# --- delivering ----------------------------------------------------------------------------------------

def retry_delay(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: base × 2^(attempts-1), capped, with jitter in [½, 1]."""
    delay = min(settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1), settings.WEBHOOK_RETRY_MAX_INTERVAL_SECONDS)
    return delay * random.uniform(0.5, 1.0)


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None or response.status_code not in (429, 503):
        return None
    try:
        return min(float(response.headers.get("Retry-After", "")), settings.WEBHOOK_RETRY_MAX_INTERVAL_SECONDS)
    except ValueError:
        return None


def endpoint_disable(endpoint: WebhookEndpoint, *, reason: str) -> None:
    now = timezone.now()
    WebhookEndpoint.objects.filter(pk=endpoint.pk, active=True).update(
        active=False, disabled_at=now, disabled_reason=f"{timezone.localtime(now):%Y-%m-%d %H:%M}: {reason}"[:2000],
        updated_at=now,
    )
    logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, reason)


def endpoint_enable(endpoint: WebhookEndpoint) -> int:
    """Turn an endpoint back on and send its held deliveries that are still inside the window; returns how many."""
    now = timezone.now()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        active=True, disabled_at=None, disabled_reason="", consecutive_failures=0, failing_since=None, updated_at=now,
    )
    window_start = now - dt.timedelta(hours=settings.WEBHOOK_RETRY_WINDOW_HOURS)
    held = WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDelivery.Status.PENDING,
                                          created_at__gte=window_start)
    count = held.update(next_attempt_at=now)
    ids = list(held.values_list("pk", flat=True))
    transaction.on_commit(lambda: webhook_deliveries_enqueue(ids))
    return count


class _PinnedTarget:
    """Where one attempt connects: a checked IP address, with the URL's own name for Host and TLS."""

    def __init__(self, url: str) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise WebhookTargetRefused(f"{url!r} is not an http(s) URL")
        host = parsed.raw_host.decode("ascii")
        try:
            addresses = webhook_target_addresses(host=host, port=parsed.port or (443 if parsed.scheme == "https" else 80))
        except (socket.gaierror, UnicodeError) as exc:
            raise WebhookTargetRefused(f"{host} does not resolve: {exc}") from None
        # httpx gets an IP literal, so it never resolves the name again (a second answer could
        # be a private address); Host and the TLS server name (SNI and the certificate check)
        # stay the URL's.
        self.url = parsed.copy_with(host=str(addresses[0]))
        self.headers = {"Host": parsed.netloc.decode("ascii")}
        self.extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}


def webhook_delivery_attempt(*, delivery_id: int) -> str | None:
    """Make one attempt if the delivery is due and nobody else holds it; returns the new status."""
    now = timezone.now()
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    claimed = WebhookDelivery.objects.filter(pk=delivery_id, endpoint__active=True).filter(
        Q(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now)
        # A worker that died mid-request leaves "sending" behind; its lock runs out.
        | Q(status=WebhookDelivery.Status.SENDING, locked_until__lt=now)
    ).update(status=WebhookDelivery.Status.SENDING, locked_until=now + dt.timedelta(seconds=timeout + 30),
             attempts=F("attempts") + 1, last_attempt_at=now)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    endpoint = delivery.endpoint
    body = delivery.body.encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-VoiceCRM-Event": delivery.event,
        "X-VoiceCRM-Event-Id": str(delivery.event_id),
        "X-VoiceCRM-Delivery": str(delivery.public_id),
        "X-VoiceCRM-Attempt": str(delivery.attempts),
        SIGNATURE_HEADER: webhook_signature_header(secrets=endpoint.signing_secrets(now=now),
                                                   timestamp=int(time.time()), body=body),
    }
    started = time.perf_counter()
    response, error, excerpt = None, "", ""
    try:
        target = _PinnedTarget(endpoint.url)
        # No proxies from the environment: the proxy, not this check, would pick the address.
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client, client.stream(
                "POST", target.url, content=body, headers={**headers, **target.headers},
                extensions=target.extensions) as response:
            # Only the start of the answer is kept: a receiver cannot make us read megabytes.
            received = b""
            for chunk in response.iter_bytes():
                received += chunk
                if len(received) >= RESPONSE_EXCERPT_CHARS * 4:
                    break
            excerpt = received.decode("utf-8", errors="replace")[:RESPONSE_EXCERPT_CHARS]
    except WebhookTargetRefused as exc:
        error = f"Refused: {exc}"[:1000]
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    duration_ms = int((time.perf_counter() - started) * 1000)
    status_code = response.status_code if response is not None else None
    ok = status_code is not None and 200 <= status_code < 300 and not error
    if response is not None and not ok and not error:
        error = f"HTTP {status_code}"
    WebhookAttempt.objects.create(
        delivery=delivery, number=delivery.attempts, started_at=now, duration_ms=duration_ms,
        response_status=status_code, response_body=excerpt, error=error,
    )
    finished = timezone.now()
    if ok:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.SUCCEEDED, delivered_at=finished, response_status=status_code, error="",
            locked_until=None, next_attempt_at=None,
        )
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0, failing_since=None,
                                                              last_success_at=finished)
        return WebhookDelivery.Status.SUCCEEDED
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=F("consecutive_failures") + 1, last_failure_at=finished,
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=finished)
    endpoint.refresh_from_db()
    delay = max(retry_delay(delivery.attempts), _retry_after(response) or 0)
    deadline = delivery.created_at + dt.timedelta(hours=settings.WEBHOOK_RETRY_WINDOW_HOURS)
    if status_code == 410:
        endpoint_disable(endpoint, reason=f"the receiver answered 410 Gone for {delivery.event} (delivery {delivery.public_id})")
    elif (endpoint.consecutive_failures >= settings.WEBHOOK_DISABLE_AFTER_FAILURES and endpoint.failing_since
          and finished - endpoint.failing_since >= dt.timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS)):
        endpoint_disable(endpoint, reason=(
            f"{endpoint.consecutive_failures} failed attempts in a row since "
            f"{timezone.localtime(endpoint.failing_since):%Y-%m-%d %H:%M}; last error: {error}"))
    if finished + dt.timedelta(seconds=delay) > deadline:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.FAILED, response_status=status_code, locked_until=None, next_attempt_at=None,
            error=f"gave up after {delivery.attempts} attempts over {settings.WEBHOOK_RETRY_WINDOW_HOURS:g} h; last: {error}",
        )
        return WebhookDelivery.Status.FAILED
    next_at = finished + dt.timedelta(seconds=delay)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.Status.PENDING, response_status=status_code, error=error, locked_until=None,
        next_attempt_at=next_at,
    )
    if delay <= COUNTDOWN_LIMIT_SECONDS:
        webhook_deliveries_enqueue([delivery.pk], countdown=delay)
    return WebhookDelivery.Status.PENDING


def webhook_sweep(*, grace_seconds: float = 5.0) -> int:
    """Queue deliveries that are due but not in flight (broker outages, long backoffs, dead workers)."""
    now = timezone.now()
    # What is past the window expires first, held deliveries of disabled endpoints included.
    window_start = now - dt.timedelta(hours=settings.WEBHOOK_RETRY_WINDOW_HOURS)
    WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, created_at__lt=window_start).update(
        status=WebhookDelivery.Status.FAILED, next_attempt_at=None,
        error=f"not delivered within {settings.WEBHOOK_RETRY_WINDOW_HOURS:g} h (the endpoint was failing or disabled)",
    )
    due = WebhookDelivery.objects.filter(endpoint__active=True).filter(
        Q(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now - dt.timedelta(seconds=grace_seconds))
        | Q(status=WebhookDelivery.Status.SENDING, locked_until__lt=now)
    )
    ids = list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:500])
    webhook_deliveries_enqueue(ids)
    # A rotated-out secret is not kept past its overlap window (signing already ignores it).
    WebhookEndpoint.objects.filter(rotation_overlap_until__lte=now).update(
        previous_secret="", rotation_overlap_until=None)
    return len(ids)


# --- the events ----------------------------------------------------------------------------------------

def call_started_emit(*, call: Call) -> list[int]:
    return webhook_event_emit(event=WebhookEvent.CALL_STARTED, data={"call": call_payload(call)},
                              dedupe_key=f"call.started:{call.public_id}", call=call)


def call_ended_emit(*, call: Call) -> list[int]:
    return webhook_event_emit(event=WebhookEvent.CALL_ENDED, data={"call": call_payload(call)},
                              dedupe_key=f"call.ended:{call.public_id}", call=call)


def call_analyzed_emit(*, call: Call, run_number: int) -> list[int]:
    return webhook_event_emit(event=WebhookEvent.CALL_ANALYZED, data=analyzed_payload(call),
                              dedupe_key=f"call.analyzed:{call.public_id}:{run_number}", call=call)


def ticket_created_emit(*, ticket) -> list[int]:
    call = ticket.call if ticket.call_id else None
    return webhook_event_emit(event=WebhookEvent.TICKET_CREATED, data=ticket_payload(ticket),
                              dedupe_key=f"ticket.created:{ticket.reference}", call=call,
                              agent_id=call.agent_id if call else None)


def webhook_test_send(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A sample call.started to one endpoint, from the admin's "Send a test event"."""
    now = timezone.now()
    event_id = uuid.uuid4()
    data = {"test": True, "call": {"id": str(uuid.uuid4()), "channel": "api", "status": "in_progress",
                                   "started_at": now.isoformat()}}
    body = json.dumps({"id": str(event_id), "type": WebhookEvent.CALL_STARTED, "created": now.isoformat(), "data": data},
                      separators=(",", ":"))
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=WebhookEvent.CALL_STARTED, event_id=event_id,
                                              dedupe_key=f"test:{event_id}", body=body, next_attempt_at=now)
    transaction.on_commit(lambda: webhook_deliveries_enqueue([delivery.pk]))
    return delivery


# --- endpoints and deliveries, for the REST API -------------------------------------------------------

class WebhookStateError(Exception):
    """A request that the endpoint's or the delivery's state refuses (the API answers 409)."""


def webhook_endpoint_create(*, name: str, url: str, events: list[str], agent=None, active: bool = True) -> WebhookEndpoint:
    """A new endpoint with a new secret; the URL is checked against the SSRF rules (validate_webhook_url)."""
    endpoint = WebhookEndpoint(name=name, url=url, events=events, agent=agent, active=active)
    endpoint.full_clean()
    endpoint.save()
    return endpoint


@transaction.atomic
def webhook_endpoint_update(*, endpoint: WebhookEndpoint, **changes: Any) -> WebhookEndpoint:
    """Change name, url, events, agent or active, validated as on creation. Switched back on, the
    endpoint sends the deliveries it held (endpoint_enable), as the admin does."""
    unknown = set(changes) - {"name", "url", "events", "agent", "active"}
    if unknown:
        raise TypeError(f"webhook_endpoint_update() cannot set {', '.join(sorted(unknown))}")
    stored = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    was_active = stored.active
    for name, value in changes.items():
        setattr(stored, name, value)
    stored.full_clean()
    stored.save(update_fields=[*sorted(changes), "updated_at"])
    if stored.active and not was_active:
        endpoint_enable(stored)
        stored.refresh_from_db()
    return stored


def webhook_delivery_retry(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again now, with a new retry window, as the admin's "Retry now" does.

    WebhookStateError when it was delivered already (receivers have it), is being sent right now,
    or its endpoint is disabled (nothing is sent to it; enabling it sends what it held).
    """
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
        if delivery.status == WebhookDelivery.Status.SUCCEEDED:
            raise WebhookStateError("This delivery succeeded already.")
        if not delivery.endpoint.active:
            raise WebhookStateError("The endpoint is disabled: enable it, and its held deliveries are sent.")
        now = timezone.now()
        if delivery.status == WebhookDelivery.Status.SENDING and delivery.locked_until and delivery.locked_until > now:
            raise WebhookStateError("This delivery is being sent right now.")
        delivery.status, delivery.next_attempt_at, delivery.created_at = WebhookDelivery.Status.PENDING, now, now
        delivery.locked_until = None
        delivery.save(update_fields=["status", "next_attempt_at", "created_at", "locked_until"])
        transaction.on_commit(lambda: webhook_deliveries_enqueue([delivery.pk]))
    return delivery
