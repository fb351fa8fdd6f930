"""Twilio's webhook requests, checked before anything is read from them.

In this order: the body's size (413), the X-Twilio-Signature (403: Twilio signs the URL it
called, query string included, plus the sorted POST params, with the account's auth token),
then the params themselves (400). The URL is rebuilt from PUBLIC_BASE_URL, never from the Host
header or scheme: behind a TLS proxy the request arrives as http://internal-host/…, while
Twilio signed https://crm.example.com/…. A request refused here has written nothing.

Parsing only: what a webhook means for a call is in services.py.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, QueryDict

from calls.models import Call
from telephony.twilio.client import signature_valid
from telephony.twilio.security import public_url

logger = logging.getLogger(__name__)

# Twilio's webhook bodies are 1-2 KB; anything near this is not Twilio.
MAX_BODY_BYTES = 32 * 1024
_CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")
_ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")
_MAX_ADDRESS = 64  # Call.from_number / to_number; caller ID may be a SIP URI or "anonymous"

# Twilio's CallStatus → the Call's status. "initiated" (dialing has started) is still queued for
# us: the person's phone has not rung yet.
CALL_STATUSES = {
    "queued": Call.Status.QUEUED, "initiated": Call.Status.QUEUED, "ringing": Call.Status.RINGING,
    "in-progress": Call.Status.IN_PROGRESS, "completed": Call.Status.COMPLETED, "busy": Call.Status.BUSY,
    "no-answer": Call.Status.NO_ANSWER, "failed": Call.Status.FAILED, "canceled": Call.Status.CANCELED,
}
# AnsweredBy of answering-machine detection (machine_start only with MachineDetection=Enable).
ANSWERED_BY = {"human", "machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax",
               "unknown"}


class WebhookRejected(Exception):
    """The request is refused with `status`; `reason` is for the log, never for the caller."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason

    def response(self) -> HttpResponse:
        return HttpResponse(status=self.status)


@dataclass(frozen=True)
class VoiceWebhook:
    """An incoming call asks what to do (the number's "A call comes in" URL)."""

    call_sid: str
    from_number: str
    to_number: str
    call_status: str


@dataclass(frozen=True)
class StatusCallback:
    """Where a call is (StatusCallback): Twilio's CallStatus and ours."""

    call_sid: str
    call_status: str
    status: str
    duration: float | None  # CallDuration, seconds, on the final report
    sequence: int | None
    call_ref: uuid.UUID | None  # ?call=<public id> on outbound calls' callback URLs


@dataclass(frozen=True)
class AmdCallback:
    """Who answered an outbound call (asynchronous answering-machine detection)."""

    call_sid: str
    answered_by: str
    detection_ms: int | None
    call_ref: uuid.UUID | None


def signed_params(request: HttpRequest) -> QueryDict:
    """The POST params of a request Twilio signed; WebhookRejected(413 or 403) otherwise."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise WebhookRejected(400, "bad Content-Length") from None
    try:
        if declared > MAX_BODY_BYTES or len(request.body) > MAX_BODY_BYTES:
            raise WebhookRejected(413, "body over the webhook limit")
        params = request.POST
    except RequestDataTooBig:
        raise WebhookRejected(413, "body over DATA_UPLOAD_MAX_MEMORY_SIZE") from None
    url = public_url(request.get_full_path())
    if not signature_valid(url=url, params=params, signature=request.headers.get("X-Twilio-Signature")):
        raise WebhookRejected(403, "TWILIO_AUTH_TOKEN is not set" if not settings.TWILIO_AUTH_TOKEN else f"bad signature for {url}")
    return params


def _call_sid(params: QueryDict) -> str:
    sid = params.get("CallSid", "")
    if not _CALL_SID.match(sid):
        raise WebhookRejected(400, f"CallSid {sid[:40]!r}")
    account = params.get("AccountSid")
    if account is not None and not _ACCOUNT_SID.match(account):
        raise WebhookRejected(400, f"AccountSid {account[:40]!r}")
    return sid


def _address(params: QueryDict, name: str, *, required: bool) -> str:
    value = params.get(name, "").strip()
    if (required and not value) or len(value) > _MAX_ADDRESS or any(ord(c) < 32 for c in value):
        raise WebhookRejected(400, f"{name} {value[:40]!r}")
    return value


def _number(params: QueryDict, name: str, *, maximum: int) -> int | None:
    value = params.get(name, "")
    if value == "":
        return None
    if not value.isdigit() or int(value) > maximum:
        raise WebhookRejected(400, f"{name} {value[:40]!r}")
    return int(value)


def _call_ref(request: HttpRequest) -> uuid.UUID | None:
    value = request.GET.get("call")
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise WebhookRejected(400, f"call {value[:40]!r}") from None


def voice_webhook(request: HttpRequest) -> VoiceWebhook:
    params = signed_params(request)
    call_status = params.get("CallStatus", "")
    if call_status not in CALL_STATUSES:
        raise WebhookRejected(400, f"CallStatus {call_status[:40]!r}")
    return VoiceWebhook(call_sid=_call_sid(params), from_number=_address(params, "From", required=False),
                        to_number=_address(params, "To", required=True), call_status=call_status)


def status_callback(request: HttpRequest) -> StatusCallback:
    params = signed_params(request)
    call_status = params.get("CallStatus", "")
    if call_status not in CALL_STATUSES:
        raise WebhookRejected(400, f"CallStatus {call_status[:40]!r}")
    duration = _number(params, "CallDuration", maximum=10**7)
    return StatusCallback(call_sid=_call_sid(params), call_status=call_status, status=CALL_STATUSES[call_status],
                          duration=float(duration) if duration is not None else None,
                          sequence=_number(params, "SequenceNumber", maximum=10**6), call_ref=_call_ref(request))


def amd_callback(request: HttpRequest) -> AmdCallback:
    params = signed_params(request)
    answered_by = params.get("AnsweredBy", "")
    if answered_by not in ANSWERED_BY:
        raise WebhookRejected(400, f"AnsweredBy {answered_by[:40]!r}")
    return AmdCallback(call_sid=_call_sid(params), answered_by=answered_by,
                       detection_ms=_number(params, "MachineDetectionDuration", maximum=10**7),
                       call_ref=_call_ref(request))
