"""What Twilio's webhooks mean for calls: answer an incoming call, apply a status report, act on
answering-machine detection. The views parse and verify (webhooks.py); the rules live here.

Twilio retries webhooks and may send status reports out of order, so every function here is
idempotent: a repeated incoming-call webhook finds its Call, a repeated AMD report is stored once
and acted on once, and `call_status_apply` only ever moves a call forward.

Voicemail. An outbound call is dialed with asynchronous detection, so the conversation starts at
once and Twilio reports a machine after its greeting and beep (DetectMessageEnd). Two paths
then leave the agent's message:
- primary, while a voice session serves the call (in progress, heartbeat fresh): a
  `twilio.voicemail` message to the group `twilio_call_<CallSid>`. The Media Streams consumer
  has the session say it in the agent's own voice and end the call ("voicemail"), so the
  recording and transcript hold it and the session finalizes the call as it does any other.
- fallback, when the channel layer cannot be reached or no session serves the call (its stream
  never started or has ended): a REST update of the call to <Say>message</Say><Hangup/>, in
  Twilio's voice. A call that has already ended (in our records, or on Twilio's side) is left
  alone: after a transfer, the person the caller was bridged to must not be hung up on.
A fax machine gets no message: the call just ends.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from agents.deterministic import voicemail_text as agent_voicemail_text
from calls.models import Call, CallEvent
from calls.services import call_event_log, call_is_live, call_start, call_status_apply
from telephony.base import TelephonyError
from telephony.outbound import outbound_call_ended
from telephony.selectors import phone_route_for_number
from telephony.twilio.client import TwilioProvider, twiml_say_hangup, twiml_stream
from telephony.twilio.webhooks import AmdCallback, StatusCallback, VoiceWebhook

logger = logging.getLogger(__name__)

NOT_IN_SERVICE = "Sorry, this number is not in service. Goodbye."
MACHINE = {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
# A channel layer that does not take a message in this long is treated as unreachable.
CHANNEL_LAYER_TIMEOUT_S = 2.0


def stream_group(call_sid: str) -> str:
    """The channel-layer group a call's Media Streams consumer listens on."""
    return f"twilio_call_{call_sid}"


# --- Incoming calls -------------------------------------------------------------------------------


def twilio_inbound_answer(*, hook: VoiceWebhook) -> str:
    """TwiML for an incoming call: the stream to the number's agent, or a polite goodbye for a
    number no active route serves (no Call is made for it)."""
    route = phone_route_for_number(hook.to_number)
    if route is None:
        logger.warning("Twilio call %s to %s refused: no active phone-number route with an active agent",
                       hook.call_sid, hook.to_number)
        return twiml_say_hangup(NOT_IN_SERVICE)
    # Idempotent per CallSid: Twilio retries this webhook when an answer is slow or lost.
    call = call_start(channel=Call.Channel.TWILIO, agent=route.agent, from_number=hook.from_number,
                      to_number=route.address, provider_call_id=hook.call_sid, answered=False)
    if call.is_finished:
        return twiml_say_hangup("")
    return twiml_stream(call)


# --- Callbacks on a call --------------------------------------------------------------------------


def twilio_callback_call(*, call_sid: str, call_ref) -> Call | None:
    """The call a status or AMD callback is about: by the public id in its URL (outbound calls:
    Twilio may report before the CallSid is stored), else by CallSid. None when unknown, or
    when the URL's call already has another CallSid."""
    calls = Call.objects.select_related("agent").filter(channel=Call.Channel.TWILIO)
    if call_ref is None:
        return calls.filter(provider_call_id=call_sid).first()
    call = calls.filter(public_id=call_ref).first()
    if call is not None and call.provider_call_id.startswith("CA") and call.provider_call_id != call_sid:
        logger.warning("Twilio callback for call %s names CallSid %s, but the call is %s", call_ref, call_sid,
                       call.provider_call_id)
        return None
    return call


def twilio_status_apply(*, hook: StatusCallback) -> Call | None:
    """Move the call along (once, forward only), keeping Twilio's CallDuration, and once an
    outbound attempt has ended busy or unanswered, let outbound calling schedule the next attempt.
    None for an unknown call."""
    call = twilio_callback_call(call_sid=hook.call_sid, call_ref=hook.call_ref)
    if call is None:
        return None
    changed = call_status_apply(call_id=call.pk, status=hook.status, provider_status=hook.call_status,
                                duration=hook.duration)
    call.refresh_from_db()
    if changed and call.is_finished and hook.duration is not None:
        # This report ended the call (no session was serving it): the network's own count of
        # the answered seconds beats the gap between two webhooks' arrival times.
        Call.objects.filter(pk=call.pk).update(duration_seconds=hook.duration)
        call.duration_seconds = hook.duration
    if call.direction == Call.Direction.OUTBOUND and call.is_finished:
        outbound_call_ended(call)  # idempotent: a repeated final report schedules nothing more
    return call


# --- Answering-machine detection ------------------------------------------------------------------


def voicemail_text(call: Call) -> str:
    """The agent's voicemail message with the call's variables filled in."""
    return agent_voicemail_text(call.agent, call.variables) if call.agent else ""


def twilio_amd_apply(*, hook: AmdCallback) -> str | None:
    """Store who answered, and for a machine leave the voicemail message (see the module
    docstring). Returns what was done: "stored" (a person, or unknown), "repeated", "ended"
    (the call was already over), "stream", "rest", "failed"; None for an unknown call."""
    call = twilio_callback_call(call_sid=hook.call_sid, call_ref=hook.call_ref)
    if call is None:
        return None
    with transaction.atomic():
        stored = Call.objects.filter(pk=call.pk, answered_by="").update(answered_by=hook.answered_by,
                                                                         updated_at=timezone.now())
        if not stored:
            return "repeated"  # Twilio retried the callback: acted on already
        call_event_log(call=call, kind=CallEvent.Kind.STATUS_CHANGE, name="answered_by",
                       payload={"answered_by": hook.answered_by, "detection_ms": hook.detection_ms})
    if hook.answered_by not in MACHINE:
        return "stored"  # a person is already talking with the agent; "unknown" carries on too
    call.refresh_from_db()
    if call.is_finished:
        return "ended"
    message = "" if hook.answered_by == "fax" else voicemail_text(call)
    if call_is_live(call) and _tell_stream(hook.call_sid, message):
        return "stream"
    return _voicemail_by_rest(call, hook.call_sid, message)


def _tell_stream(call_sid: str, message: str) -> bool:
    """Hand the voicemail to the call's stream consumer. False when the layer cannot take it."""
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        async_to_sync(_group_send)(layer, stream_group(call_sid), {"type": "twilio.voicemail", "message": message})
    except Exception as error:  # Redis down or slow: the REST fallback still leaves the message
        logger.warning("channel layer unreachable for the voicemail of %s (%r): using the REST API", call_sid, error)
        return False
    return True


async def _group_send(layer, group: str, message: dict) -> None:
    await asyncio.wait_for(layer.group_send(group, message), timeout=CHANNEL_LAYER_TIMEOUT_S)


def _voicemail_by_rest(call: Call, call_sid: str, message: str) -> str:
    try:
        live = TwilioProvider().say_and_hang_up(call_sid, message)
    except TelephonyError as error:
        logger.warning("voicemail for call %s could not be left: %s", call.pk, error.message)
        call_event_log(call=call, kind=CallEvent.Kind.ERROR, name="voicemail_failed",
                       payload={"message": error.message[:500], "permanent": error.permanent})
        return "failed"
    call_event_log(call=call, kind=CallEvent.Kind.ACTION, name="voicemail_left" if live else "voicemail_too_late",
                   payload={"via": "rest", "message": message[:500]})
    return "rest" if live else "ended"
