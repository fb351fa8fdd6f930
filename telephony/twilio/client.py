"""Everything that touches the `twilio` SDK: request signatures, TwiML, and the REST client
behind `TwilioProvider`. The rest of the channel calls these and never imports the SDK.

REST errors become `TelephonyError`, permanent where trying again cannot help (a 4xx: a bad
number, no permission to call that country, wrong credentials) and temporary where it may (a
5xx, 429, a timeout, a refused connection). Every request has a timeout (REST_TIMEOUT_S): a
provider call runs in a Celery task, a webhook or a call's worker thread, and Twilio being slow
must not hold any of them for the operating system's TCP timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

from calls.services import call_transfer_log
from core.phones import normalize_phone
from telephony.base import TelephonyError, TelephonyProvider
from telephony.twilio.security import public_url, stream_token, stream_url

if TYPE_CHECKING:
    from calls.models import Call

# Twilio answers call requests in well under a second; a webhook waiting on it has 15 s in all.
REST_TIMEOUT_S = 10.0
# Status callbacks asked for on outbound calls (Twilio's names; "answered" reports in-progress).
STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
# Errors that mean "this call is over": 20404 the call is unknown (or gone), 21220 it is no
# longer in progress (Twilio's answer to redirecting or recording a completed call).
CALL_ENDED_CODES = {20404, 21220}
# 4xx that are worth another try: rate limits and a request timeout on Twilio's side.
_TEMPORARY_STATUSES = {408, 429}


def signature_valid(*, url: str, params: Mapping[str, str] | None, signature: str | None) -> bool:
    """X-Twilio-Signature over `url` (the public URL Twilio called, query string included) and
    the POST params (a dict, or a QueryDict when a name repeats; none for the Media Streams
    upgrade). False without an auth token or a signature."""
    if not settings.TWILIO_AUTH_TOKEN or not signature:
        return False
    return RequestValidator(settings.TWILIO_AUTH_TOKEN).validate(url, params or {}, signature)


# --- TwiML ----------------------------------------------------------------------------------------


def twiml_stream(call: Call) -> str:
    """Connect the call's audio to the Media Streams consumer. The URL has no query string
    (Twilio refuses one): the call's public id and its signed token travel as <Parameter>s."""
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=stream_url())
    stream.parameter(name="call", value=str(call.public_id))
    stream.parameter(name="token", value=stream_token(str(call.public_id)))
    response.append(connect)
    return str(response)


def twiml_say_hangup(message: str) -> str:
    """Say `message` (nothing when empty) in Twilio's voice, then hang up."""
    response = VoiceResponse()
    if message.strip():
        response.say(message)
    response.hangup()
    return str(response)


def twiml_dial(target: str) -> str:
    """Bridge the call to `target`: a phone number, or a SIP URI (sip:desk@pbx.example.com)."""
    response = VoiceResponse()
    dial = Dial()
    if target.lower().startswith("sip:"):
        dial.sip(target)
    else:
        dial.number(target)
    response.append(dial)
    return str(response)


def twiml_empty() -> str:
    return str(VoiceResponse())


# --- REST -----------------------------------------------------------------------------------------


class TwilioApiError(TelephonyError):
    """Twilio's REST API refused a request; `code` is Twilio's error code (21211, 20404…)."""

    def __init__(self, message: str, *, permanent: bool, status: int, code: int | None) -> None:
        super().__init__(message, permanent=permanent)
        self.status, self.code = status, code

    @property
    def call_ended(self) -> bool:
        """The call is not live on Twilio any more (unknown, or no longer in progress)."""
        return self.status == 404 or self.code in CALL_ENDED_CODES


def telephony_error(error: Exception, *, doing: str) -> TelephonyError:
    """A REST or network failure as a TelephonyError that says whether retrying can help."""
    if isinstance(error, TwilioException) and hasattr(error, "status"):
        status, code = int(getattr(error, "status", 0) or 0), getattr(error, "code", None)
        code = int(code) if str(code).isdigit() else None
        detail = getattr(error, "msg", "") or getattr(error, "title", "") or type(error).__name__
        permanent = 400 <= status < 500 and status not in _TEMPORARY_STATUSES and code != 20429
        text = f"Twilio could not {doing}: {detail} (HTTP {status}" + (f", error {code})" if code else ")")
        return TwilioApiError(text, permanent=permanent, status=status, code=code)
    if isinstance(error, requests.Timeout):
        return TelephonyError(f"Twilio did not answer in time ({REST_TIMEOUT_S:g} s) to {doing}.")
    if isinstance(error, requests.RequestException):
        return TelephonyError(f"Twilio could not be reached to {doing}: {type(error).__name__}.")
    return TelephonyError(f"Twilio could not {doing}: {type(error).__name__}: {error}")


def missing_settings() -> list[str]:
    """What the REST client still needs, in words (empty: configured)."""
    missing = [name for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN") if not getattr(settings, name)]
    if urlsplit(settings.PUBLIC_BASE_URL).scheme != "https":
        missing.append("an https PUBLIC_BASE_URL (Twilio calls webhooks and opens streams over TLS only)")
    return missing


def callback_url(name: str, call: Call) -> str:
    """A callback URL naming the call by public id: Twilio may report on an outbound call before
    its CallSid is stored (the dial request has not returned yet)."""
    return public_url(reverse(name)) + "?" + urlencode({"call": str(call.public_id)})


class TwilioProvider(TelephonyProvider):
    """Places and steers calls through Twilio's REST API (the real SDK; TWILIO_API_BASE_URL
    points it elsewhere for tests)."""

    name = "twilio"

    def __init__(self) -> None:
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            client = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN,
                            http_client=TwilioHttpClient(timeout=REST_TIMEOUT_S))
            if settings.TWILIO_API_BASE_URL:
                client.api.base_url = settings.TWILIO_API_BASE_URL
            self._client = client
        return self._client

    def check_configured(self) -> None:
        missing = missing_settings()
        if missing:
            raise TelephonyError("Twilio is not configured: set " + ", ".join(missing) + ".", permanent=True)

    def place_call(self, call: Call) -> str:
        """Dial with the stream TwiML inline (no extra webhook when the person answers), status
        callbacks for every step, and answering-machine detection in the background: the
        conversation starts at once, and a machine is reported to the AMD callback after its beep."""
        self.check_configured()
        try:
            created = self.client.calls.create(
                to=call.to_number, from_=call.from_number, twiml=twiml_stream(call),
                status_callback=callback_url("twilio-status", call), status_callback_event=list(STATUS_EVENTS),
                status_callback_method="POST",
                machine_detection="DetectMessageEnd", async_amd="true",
                async_amd_status_callback=callback_url("twilio-amd", call), async_amd_status_callback_method="POST",
            )
        except (TwilioException, requests.RequestException) as error:
            raise telephony_error(error, doing=f"place the call to {call.to_number}") from error
        return created.sid

    def transfer(self, call: Call, *, target: str) -> None:
        """Replace the call's TwiML with <Dial>target</Dial>: the stream ends and Twilio bridges
        the caller to the person. Logged as the call's transfer (once, whoever logs it first)."""
        target = (target or "").strip()
        if not target.lower().startswith("sip:"):
            try:
                target = normalize_phone(target)
            except ValidationError:
                target = ""
        if not target:
            raise TelephonyError("The transfer target is not a phone number or a sip: URI.", permanent=True)
        self._update(call, doing=f"transfer the call to {target}", twiml=twiml_dial(target))
        call_transfer_log(call=call, target=target, reason="transfer")

    def hang_up(self, call: Call) -> None:
        """Status=completed; a call Twilio has already ended (20404, 21220) is not an error."""
        if not self._sid(call, required=False):
            return  # never dialed: nothing to end on Twilio's side
        try:
            self._update(call, doing="hang up", status="completed")
        except TwilioApiError as error:
            if not error.call_ended:
                raise

    def say_and_hang_up(self, call_sid: str, message: str) -> bool:
        """Say `message` with Twilio's voice and hang up (the voicemail fallback when no stream
        is listening). False when the call had already ended."""
        try:
            self._update_sid(call_sid, doing="leave the voicemail message", twiml=twiml_say_hangup(message))
        except TwilioApiError as error:
            if error.call_ended:
                return False
            raise
        return True

    def _sid(self, call: Call, *, required: bool = True) -> str:
        sid = call.provider_call_id if call.provider_call_id.startswith("CA") else ""
        if required and not sid:
            raise TelephonyError("The call has no Twilio CallSid (it was never dialed).", permanent=True)
        return sid

    def _update(self, call: Call, *, doing: str, **changes) -> None:
        self._update_sid(self._sid(call), doing=doing, **changes)

    def _update_sid(self, call_sid: str, *, doing: str, **changes) -> None:
        self.check_configured()
        try:
            self.client.calls(call_sid).update(**changes)
        except (TwilioException, requests.RequestException) as error:
            raise telephony_error(error, doing=doing) from error
