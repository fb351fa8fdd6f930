"""Staff hang up a live call (POST /api/calls/{id}/hangup/).

    call_hang_up(call=call, requested_by="sam")

Two ways reach the call, and a phone call takes both:
- the phone network: `get_provider(call.channel).hang_up(call)` ends a Twilio or Asterisk call at
  once, whichever process serves its audio;
- the voice session: a hang-up request is stored (calls.services.call_hangup_request), and the
  heartbeat of the process serving the call reads it and ends the session (calls/session/live.py):
  the agent says its closing line and the call is finalized as "staff_hangup". This is what ends a
  browser call, which has no network to ask; it takes up to CALL_HEARTBEAT_SECONDS (at once when
  the request is served by the call's own process).

Only calls in progress can be hung up; text chats end when the person chatting closes them.
"""

from __future__ import annotations

from django.db import transaction

from calls.models import Call
from calls.services import call_hangup_request, call_is_live
from calls.session import live
from telephony.registry import get_provider

PHONE_CHANNELS = {Call.Channel.TWILIO, Call.Channel.ASTERISK}
SESSION_CHANNELS = {Call.Channel.BROWSER}


class CallNotLive(Exception):
    """The call cannot be hung up: it is not in progress, or nothing live serves it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def call_hang_up(*, call: Call, requested_by: str = "") -> None:
    """End a live call. Raises CallNotLive, or TelephonyError when the phone network refuses (the
    request stays stored, so the session serving the call still ends it)."""
    if call.status != Call.Status.IN_PROGRESS:
        raise CallNotLive(f"The call is {call.get_status_display().lower()}, not in progress.")
    if call.channel not in PHONE_CHANNELS | SESSION_CHANNELS:
        raise CallNotLive(f"A {call.get_channel_display().lower()} call cannot be hung up from here.")
    if call.channel in SESSION_CHANNELS and not call_is_live(call):
        raise CallNotLive("No process serves this call any more: the lost-call sweep ends it.")
    with transaction.atomic():
        call_hangup_request(call=call, requested_by=requested_by)
        # This process's own calls end at once rather than at the next beat.
        transaction.on_commit(live.heartbeat_now)
    if call.channel in PHONE_CHANNELS:
        get_provider(call.channel).hang_up(call)
