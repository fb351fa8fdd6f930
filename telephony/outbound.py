"""Outbound calls: the agent phones someone (the seed case: dispatch checks in with a driver).

    call = outbound_call_place(agent=agent, to="+14155550123",
                               variables={"driver_name": "Sam", "load_number": "L-1042"})

The Call is created `queued` with the variables the flow reads as {context.*}, and dialed by a
Celery task once the transaction commits (`outbound_dial`). From there the channel's callbacks
move it along (ringing, in progress, completed / busy / no answer), and when it connects the
voice session greets with the agent's `greeting_outbound`.

Dialing happens at most once per Call: a phone call cannot be taken back, so a worker that dies
mid-dial leaves the call marked as dialing rather than risk a second ring; the retry sweep
fails it after OUTBOUND_DIAL_TIMEOUT_SECONDS. A busy or unanswered attempt is retried as a new
Call (attempt 2, 3…, `retry_of` the previous one) per the agent's retry settings, dialed by the
sweep when it is due (Celery beat, or the serving process in embedded mode).
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import AgentConfig
from calls.models import Call, CallEvent
from calls.services import call_event_log, call_finalize, call_start
from core.phones import normalize_phone
from customers.selectors import customer_find_by_phone
from telephony.base import TelephonyError
from telephony.models import Route
from telephony.registry import get_provider

logger = logging.getLogger(__name__)

# Which route kind gives an agent a line on each channel (its from number or extension).
CHANNEL_ROUTES = {Call.Channel.TWILIO: Route.Kind.PHONE_NUMBER, Call.Channel.ASTERISK: Route.Kind.ASTERISK_EXTENSION}
RETRY_STATUSES = {Call.Status.BUSY, Call.Status.NO_ANSWER}
MAX_VARIABLES = 20
MAX_VARIABLE_CHARS = 200
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
_DIALING = "dialing:"  # provider_call_id while the provider is being asked


class OutboundError(ValidationError):
    """The request cannot become a call (bad number, no line, channel not configured): a 400."""


def outbound_variables_clean(variables) -> dict[str, str]:
    """Context variables: at most MAX_VARIABLES names like driver_name, scalar values as text."""
    if variables in (None, ""):
        return {}
    if not isinstance(variables, dict):
        raise OutboundError({"variables": "An object of names to values."})
    if len(variables) > MAX_VARIABLES:
        raise OutboundError({"variables": f"At most {MAX_VARIABLES} variables."})
    cleaned = {}
    for name, value in variables.items():
        if not isinstance(name, str) or not _VARIABLE_NAME.match(name):
            raise OutboundError({"variables": f"{str(name)[:40]!r} is not a name like driver_name."})
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise OutboundError({"variables": f"{name}: a text or a number."})
        text = str(value).strip()
        if len(text) > MAX_VARIABLE_CHARS:
            raise OutboundError({"variables": f"{name}: at most {MAX_VARIABLE_CHARS} characters."})
        cleaned[name] = text
    return cleaned


def outbound_line(*, agent: AgentConfig, channel: str = "") -> Route:
    """The agent's route that outbound calls go out on: on `channel`, or its only phone channel."""
    kinds = {CHANNEL_ROUTES[channel]} if channel in CHANNEL_ROUTES else set(CHANNEL_ROUTES.values())
    if channel and channel not in CHANNEL_ROUTES:
        raise OutboundError({"channel": f"Outbound calls go out on {' or '.join(CHANNEL_ROUTES)}."})
    routes = list(Route.objects.filter(agent=agent, active=True, kind__in=kinds).order_by("kind", "created_at"))
    if not routes:
        raise OutboundError({"agent": f"{agent.name} has no active phone line (a phone-number or Asterisk "
                                      "extension route) to call from."})
    if len({r.kind for r in routes}) > 1:
        raise OutboundError({"channel": f"{agent.name} has lines on both Twilio and Asterisk: say which channel."})
    return routes[0]


def _channel_of(route: Route) -> str:
    return next(channel for channel, kind in CHANNEL_ROUTES.items() if kind == route.kind)


def _clean_to(to: str, channel: str) -> str:
    to = (to or "").strip()
    if channel == Call.Channel.ASTERISK and re.fullmatch(r"[0-9*#]{2,15}", to):
        return to  # an internal extension
    try:
        number = normalize_phone(to)
    except ValidationError as error:
        raise OutboundError({"to": error.messages}) from None
    if not number:
        raise OutboundError({"to": "The number to call."})
    return number


@transaction.atomic
def outbound_call_place(
    *, agent: AgentConfig, to: str, variables=None, channel: str = "", request_key: str = "",
    retry_of: Call | None = None,
) -> Call:
    """Validate, create the queued outbound Call and dial it once the transaction commits.

    `request_key` makes the request idempotent (the API's Idempotency-Key): the same key returns
    the Call it made the first time and dials nothing. Raises OutboundError for a request that
    cannot become a call: no line, a bad number or variables, a channel without credentials.
    """
    if request_key:
        existing = Call.objects.filter(request_key=request_key).first()
        if existing is not None:
            return existing
    if not agent.active:
        raise OutboundError({"agent": f"{agent.name} is not active."})
    route = outbound_line(agent=agent, channel=channel)
    channel = _channel_of(route)
    number = _clean_to(to, channel)
    cleaned = outbound_variables_clean(variables)
    try:
        get_provider(channel).check_configured()
    except TelephonyError as error:
        raise OutboundError({"channel": f"{channel}: {error.message}"}) from None
    customer = customer_find_by_phone(number) if number.startswith("+") else None
    try:
        with transaction.atomic():
            call = call_start(channel=channel, agent=agent, direction=Call.Direction.OUTBOUND,
                              from_number=route.address, to_number=number, customer=customer, answered=False)
            Call.objects.filter(pk=call.pk).update(
                variables=cleaned, request_key=request_key, attempt=(retry_of.attempt + 1) if retry_of else 1,
                retry_of=retry_of,
            )
    except IntegrityError:  # the same key, at the same moment, from a concurrent request
        return Call.objects.get(request_key=request_key)
    call.refresh_from_db()
    transaction.on_commit(lambda: _enqueue_dial(call.pk))
    return call


def _enqueue_dial(call_id: int) -> None:
    from telephony.tasks import outbound_dial_task  # noqa: PLC0415 - tasks import this module

    outbound_dial_task.delay(call_id)


def outbound_dial(*, call_id: int) -> str:
    """Ask the provider to dial a queued call, once. Returns what happened: "dialed", "skipped"
    (dialed already, or no longer queued), "failed" (a permanent error). A temporary provider
    error is raised again (TelephonyError) for the task to retry, with the call still queued."""
    claimed = Call.objects.filter(pk=call_id, status=Call.Status.QUEUED, provider_call_id="").update(
        provider_call_id=f"{_DIALING}{call_id}", updated_at=timezone.now())
    if not claimed:
        return "skipped"
    call = Call.objects.select_related("agent").get(pk=call_id)
    try:
        provider_id = get_provider(call.channel).place_call(call)
    except TelephonyError as error:
        _dial_failed(call, error)
        if not error.permanent:
            raise
        return "failed"
    except Exception as error:  # a provider bug: the call must not stay "dialing" forever
        _dial_failed(call, TelephonyError(f"unexpected error: {error!r}", permanent=True))
        raise
    Call.objects.filter(pk=call_id).update(provider_call_id=provider_id[:64], provider_error="",
                                           updated_at=timezone.now())
    call_event_log(call=call, kind=CallEvent.Kind.ACTION, name="dialed",
                   payload={"provider_call_id": provider_id, "to": call.to_number, "attempt": call.attempt})
    return "dialed"


def _dial_failed(call: Call, error: TelephonyError) -> None:
    """Record the error; a permanent one ends the call, a temporary one leaves it to be dialed again."""
    with transaction.atomic():
        Call.objects.filter(pk=call.pk).update(
            provider_error=error.message[:2000], updated_at=timezone.now(),
            provider_call_id=f"{_DIALING}{call.pk}" if error.permanent else "",
        )
        call_event_log(call=call, kind=CallEvent.Kind.ERROR, name="dial_failed",
                       payload={"message": error.message[:500], "permanent": error.permanent})
        if error.permanent:
            call_finalize(call_id=call.pk, status=Call.Status.FAILED, end_reason="provider_error")
    logger.warning("dialing call %s failed (%s): %s", call.pk, "permanent" if error.permanent else "will retry",
                   error.message)


def outbound_dial_gave_up(*, call_id: int, message: str) -> None:
    """The dial task ran out of retries on temporary errors: the call fails."""
    call = Call.objects.filter(pk=call_id).first()
    if call is not None and call.status == Call.Status.QUEUED:
        _dial_failed(call, TelephonyError(message, permanent=True))


def outbound_call_ended(call: Call) -> dt.datetime | None:
    """After an outbound attempt ended: schedule the next one if it was busy or not answered and
    the agent retries. Returns when it is due (None: no retry). Idempotent."""
    call = Call.objects.select_related("agent").get(pk=call.pk)
    agent = call.agent
    if (call.direction != Call.Direction.OUTBOUND or call.status not in RETRY_STATUSES or agent is None
            or call.attempt > agent.retry_attempts or call.retry_due_at is not None or call.retries.exists()):
        return None
    due = (call.ended_at or timezone.now()) + dt.timedelta(minutes=agent.retry_spacing_minutes)
    Call.objects.filter(pk=call.pk).update(retry_due_at=due, updated_at=timezone.now())
    call_event_log(call=call, kind=CallEvent.Kind.ACTION, name="retry_scheduled",
                   payload={"due": due.isoformat(), "next_attempt": call.attempt + 1})
    return due


def outbound_sweep(*, now: dt.datetime | None = None) -> dict:
    """Dial the retries that are due, and fail calls stuck dialing (their worker died mid-dial).
    Safe to run concurrently: each retry is claimed under its row lock, skipping locked rows."""
    now = now or timezone.now()
    retried = 0
    while True:
        with transaction.atomic():
            call = (Call.objects.select_for_update(skip_locked=True, of=("self",)).select_related("agent")
                    .filter(retry_due_at__lte=now).order_by("retry_due_at").first())
            if call is None:
                break
            Call.objects.filter(pk=call.pk).update(retry_due_at=None)
            if call.agent is None or not call.agent.active:
                continue
            try:
                outbound_call_place(agent=call.agent, to=call.to_number, variables=call.variables,
                                    channel=call.channel, retry_of=call)
                retried += 1
            except OutboundError as error:
                call_event_log(call=call, kind=CallEvent.Kind.ERROR, name="retry_failed",
                               payload={"message": "; ".join(error.messages)[:500]})
    stuck_before = now - dt.timedelta(seconds=settings.OUTBOUND_DIAL_TIMEOUT_SECONDS)
    stuck = Call.objects.filter(status=Call.Status.QUEUED, provider_call_id__startswith=_DIALING,
                                updated_at__lt=stuck_before).values_list("pk", flat=True)
    failed = 0
    for call_id in list(stuck[:200]):
        failed += call_finalize(call_id=call_id, status=Call.Status.FAILED, end_reason="dial_lost")
    return {"retried": retried, "dial_lost": failed}
