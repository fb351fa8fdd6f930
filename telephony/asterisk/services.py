"""What the FastAGI steps do to calls: route an inbound call, store what answered an outbound one,
hand a transfer to the dialplan, report a call that ended before its audio connected.

The server (fastagi.py) reads and writes the channel; these functions own the database. The PBX is
not a verified caller, so what goes back into channel variables is ids, a slug and a count, never
a name or a balance.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from calls.models import Call, CallEvent
from calls.services import call_event_log, call_start, call_status_apply
from core.phones import phone_or_none
from customers.selectors import customer_find_by_phone
from telephony.models import Route
from telephony.outbound import outbound_call_ended
from telephony.selectors import route_list_active
from tickets.models import Ticket

logger = logging.getLogger(__name__)

# AMD()'s AMDSTATUS as Call.answered_by (the AudioSocket server leaves the voicemail message
# when it starts with "machine").
ANSWERED_BY = {"HUMAN": "human", "MACHINE": "machine", "NOTSURE": "unknown", "HANGUP": "unknown"}
# Dial()'s DIALSTATUS for a call that never connected its audio.
DIAL_STATUSES = {"BUSY": Call.Status.BUSY, "NOANSWER": Call.Status.NO_ANSWER, "CANCEL": Call.Status.CANCELED}
# Q.850 hang-up causes when DIALSTATUS says no more (CONGESTION and CHANUNAVAIL carry the trunk's
# cause): 17 user busy, 21 call rejected, 18 no user responding, 19 no answer.
HANGUP_CAUSES = {"17": Call.Status.BUSY, "21": Call.Status.BUSY, "18": Call.Status.NO_ANSWER, "19": Call.Status.NO_ANSWER}
# A transfer target goes into Dial()/Goto() arguments: nothing that could end an argument or
# start an expression (",", "|", "(", "$", "{"…), so a bad target cannot add Dial() options.
SAFE_TARGET = re.compile(r"[A-Za-z0-9+*#@._:-]{1,64}")
# Caller ID that is not a number.
_NO_CALLER_ID = {"", "unknown", "anonymous", "restricted", "private"}


@dataclass(frozen=True)
class RouteDecision:
    """An inbound call that reached an agent, and what the dialplan may know about it."""

    call: Call
    agent_slug: str
    customer_id: int | None
    open_tickets: int

    def variables(self) -> dict[str, str]:
        return {
            "VOICECRM_CALL_UUID": str(self.call.public_id),
            "VOICECRM_CUSTOMER": str(self.customer_id or ""),
            "VOICECRM_AGENT": self.agent_slug,
            "VOICECRM_OPEN_TICKETS": str(self.open_tickets),
        }


def asterisk_route_for_extension(extension: str) -> Route | None:
    """The active route of an extension whose agent is active, or None."""
    if not extension:
        return None
    return route_list_active(kind=Route.Kind.ASTERISK_EXTENSION).filter(address=extension).first()


def asterisk_call_route(*, unique_id: str, caller_id: str, dialed: Iterable[str]) -> RouteDecision | None:
    """Create the inbound Call for the first of `dialed` (the AGI argument, the extension, the
    DNID) that is an active extension; None when none is, and nothing is written.

    The call is created unanswered: it is answered when its audio connects. A retried AGI for the
    same channel (unique id) finds the same Call."""
    route, extension = None, ""
    for candidate in dialed:
        extension = (candidate or "").strip()[:64]
        route = asterisk_route_for_extension(extension)
        if route is not None:
            break
    if route is None:
        return None
    caller = _printable(caller_id)[:64]
    phone = phone_or_none(caller) if caller.lower() not in _NO_CALLER_ID else None
    # Not put on the call: the voice session matches the caller ID itself, as on every channel,
    # and decides whether the match counts as verified (AgentConfig.trust_caller_id).
    customer = customer_find_by_phone(phone) if phone else None
    call = call_start(
        channel=Call.Channel.ASTERISK, agent=route.agent, direction=Call.Direction.INBOUND,
        from_number=phone or ("" if caller.lower() in _NO_CALLER_ID else caller), to_number=extension,
        provider_call_id=unique_id[:64], answered=False,
    )
    open_tickets = (
        Ticket.objects.filter(customer_id=customer.pk, status__in=Ticket.OPEN_STATUSES).count() if customer else 0
    )
    agent_slug = call.agent.slug if call.agent_id else route.agent.slug
    return RouteDecision(call=call, agent_slug=agent_slug, customer_id=customer.pk if customer else None,
                         open_tickets=open_tickets)


def asterisk_call_find(*, call_uuid: str = "", unique_id: str = "") -> Call | None:
    """The Asterisk call named by VOICECRM_CALL_UUID, else by the channel's unique id."""
    try:
        public_id = uuid.UUID(call_uuid) if call_uuid else None
    except ValueError:
        public_id = None
    calls = Call.objects.select_related("agent").filter(channel=Call.Channel.ASTERISK)
    if public_id is not None:
        return calls.filter(public_id=public_id).first()
    return calls.filter(provider_call_id=unique_id).first() if unique_id else None


def asterisk_amd_record(*, call: Call | None, status: str, cause: str) -> str:
    """Store what AMD() heard answer an outbound call; returns the answered_by value."""
    answered_by = ANSWERED_BY.get(status.strip().upper(), "unknown")
    if call is None:
        return answered_by
    # Only a change is logged: a retried AGI reports the same thing again.
    if Call.objects.filter(pk=call.pk).exclude(answered_by=answered_by).update(answered_by=answered_by):
        call.answered_by = answered_by
        call_event_log(call=call, kind=CallEvent.Kind.ACTION, name="answering_machine_detection",
                       payload={"answered_by": answered_by, "amd_status": status[:32], "amd_cause": cause[:64]})
    return answered_by


@dataclass(frozen=True)
class TransferCheck:
    target: str  # "" when there is nothing to transfer
    settled: bool  # False: the session may still log a transfer (the call is still in progress)


def asterisk_transfer_target(*, call: Call | None) -> TransferCheck:
    """After the audio ended: where the dialplan should transfer the caller, if the agent handed
    over. The hand-over to the PBX is logged once (CallEvent "transfer", name "asterisk_dial")."""
    if call is None:
        return TransferCheck("", settled=True)
    call.refresh_from_db(fields=["status"])
    requested = CallEvent.objects.filter(call=call, kind=CallEvent.Kind.TRANSFER).order_by("created_at", "id").first()
    if requested is None:
        # The session logs the transfer before it ends the call, so once the call is over (or
        # never connected) no transfer is coming.
        return TransferCheck("", settled=call.status != Call.Status.IN_PROGRESS)
    target = str(requested.payload.get("target") or "") or (call.agent.transfer_target if call.agent else "")
    if not SAFE_TARGET.fullmatch(target):
        if not CallEvent.objects.filter(call=call, kind=CallEvent.Kind.ERROR, name="transfer_target_refused").exists():
            call_event_log(call=call, kind=CallEvent.Kind.ERROR, name="transfer_target_refused",
                           payload={"target": target[:80]})
        logger.warning("call %s: transfer target %r is not one the dialplan can dial", call.pk, target[:80])
        return TransferCheck("", settled=True)
    if not CallEvent.objects.filter(call=call, kind=CallEvent.Kind.TRANSFER, name="asterisk_dial").exists():
        call_event_log(call=call, kind=CallEvent.Kind.TRANSFER, name="asterisk_dial", payload={"target": target})
    return TransferCheck(target, settled=True)


def asterisk_call_hangup(*, call: Call | None, dial_status: str, hangup_cause: str, transfer: str = "") -> str:
    """The channel hung up (the dialplan's h extension). Returns what was recorded:

    - after a transfer: the transfer's outcome ("transfer_answer", "transfer_busy"…), logged once
      as CallEvent "transfer" named "asterisk_transfer_answer"…;
    - a call whose audio never connected: its end (busy, no answer, canceled, failed), and for an
      outbound call the retry it may get (telephony.outbound.outbound_call_ended);
    - "" otherwise: a connected call is ended by its voice session (or the lost-call sweep).
    """
    if call is None:
        return ""
    dial = dial_status.strip().upper()[:16]
    cause = hangup_cause.strip()[:8]
    if transfer and CallEvent.objects.filter(call=call, kind=CallEvent.Kind.TRANSFER, name="asterisk_dial").exists():
        outcome = f"transfer_{dial.lower() or 'ended'}"
        if not CallEvent.objects.filter(call=call, kind=CallEvent.Kind.TRANSFER, name__startswith="asterisk_transfer_").exists():
            call_event_log(call=call, kind=CallEvent.Kind.TRANSFER, name=f"asterisk_{outcome}",
                           payload={"target": transfer[:64], "dial_status": dial, "hangup_cause": cause})
        return outcome
    call.refresh_from_db(fields=["status"])
    if call.is_finished or call.status == Call.Status.IN_PROGRESS:
        return ""
    status = _unconnected_status(call, dial, cause)
    changed = call_status_apply(call_id=call.pk, status=status, provider_status=f"{dial or '-'}/{cause or '-'}")
    if changed and call.direction == Call.Direction.OUTBOUND:
        outbound_call_ended(call)
    return status


def _unconnected_status(call: Call, dial: str, cause: str) -> str:
    if call.direction == Call.Direction.INBOUND:
        return Call.Status.CANCELED  # the caller hung up before the agent picked up
    if dial in DIAL_STATUSES:
        return DIAL_STATUSES[dial]
    # ANSWER here means answered but the audio never connected; CONGESTION/CHANUNAVAIL and an
    # empty status say it in the cause.
    return HANGUP_CAUSES.get(cause, Call.Status.FAILED) if dial != "ANSWER" else Call.Status.FAILED


def _printable(text: str) -> str:
    return "".join(ch for ch in (text or "") if ch.isprintable()).strip()
