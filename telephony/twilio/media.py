"""What the Media Streams consumer needs, apart from the socket: reading Twilio's `start`, the
Call it names, the voice session for it, the REST steering at its end, and the counts of bad
input (docs/protocols.md, "Twilio Media Streams").

The consumer (consumers.py) stays a thin adapter; everything here can be tested on its own.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import asdict, dataclass

from django.db import connection

from calls import services
from calls.models import Call, CallEvent
from calls.session import VoiceSession
from telephony.base import TelephonyError
from telephony.registry import get_provider
from telephony.twilio.transport import CLOSE_GONE, CLOSE_NORMAL, TwilioTransport  # noqa: F401 - listed with the others

logger = logging.getLogger(__name__)

# Close codes (docs/protocols.md). A bad signature gets no WebSocket at all: the handshake is
# refused (HTTP 403) before anything is accepted or written.
# CLOSE_NORMAL (1000, the call is over) and CLOSE_GONE (4410, the call had already ended) come
# from the transport, which closes with them.
CLOSE_TOO_BIG = 1009
CLOSE_BAD_PROTOCOL = 4400  # a `start` that is not a μ-law 8 kHz mono stream, or is malformed
CLOSE_FORBIDDEN = 4403  # the stream token does not match the call
CLOSE_UNKNOWN_CALL = 4404  # no such Twilio call (or another CallSid's)
CLOSE_IDLE = 4408  # no `start` in time, or no valid message for a while
CLOSE_DUPLICATE = 4409  # this process already streams that call
CLOSE_RATE_LIMITED = 4429
CLOSE_SERVER_ERROR = 4500
CLOSE_BUSY = 4503  # the process is at MAX_CALLS_PER_PROCESS or draining

MEDIA_BYTES = 160  # 20 ms of μ-law at 8 kHz: what Twilio sends in every `media` message
# Twilio sends 50 media messages a second, a mark echo per agent sentence and a few DTMF digits.
# Twice that rate is allowed with 3 s of burst (a stalled network delivers a backlog at once);
# beyond it messages are dropped and counted, and a flood that lasts another burst closes 4429.
MESSAGES_PER_SECOND = 100.0
MESSAGE_BURST = 150
INBOUND_QUEUE = 250  # messages waiting for the handlers: 5 s of media
START_TIMEOUT_S = 10.0  # Twilio sends `connected` and `start` at once
IDLE_TIMEOUT_S = 15.0  # Twilio streams caller audio (silence too) for the whole call
DTMF_DIGITS = frozenset("0123456789*#ABCD")
_SID = re.compile(r"[A-Za-z0-9]{2,64}")


def voicemail_group(call_sid: str) -> str:
    """The channel-layer group that hears about this call (the answering-machine result)."""
    return f"twilio_call_{call_sid}"


@dataclass
class Counters:
    """Bad input dropped without ending the call, per stream."""

    bad_json: int = 0  # not a JSON object with a string `event`, or a binary frame
    unknown_events: int = 0
    bad_messages: int = 0  # missing or invalid fields, another stream's streamSid, a second start
    bad_payload: int = 0  # media payload that is not base64
    bad_size: int = 0  # media payload that is not 160 bytes
    early: int = 0  # media, dtmf or mark before `start`
    unknown_marks: int = 0  # an echo of a mark this stream never sent
    over_rate: int = 0  # beyond the stream's token bucket
    media_in: int = 0
    dtmf_in: int = 0

    @property
    def dropped(self) -> int:
        return (self.bad_json + self.unknown_events + self.bad_messages + self.bad_payload + self.bad_size
                + self.early + self.unknown_marks + self.over_rate)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StreamStart:
    stream_sid: str
    call_sid: str
    call_id: str  # the Call's public id, from customParameters
    token: str


def start_parse(message: dict) -> StreamStart | None:
    """The `start` message's stream and call, or None when it is malformed or not the μ-law
    8 kHz mono stream this consumer decodes."""
    start = message.get("start")
    if not isinstance(start, dict):
        return None
    stream_sid, call_sid = start.get("streamSid", message.get("streamSid")), start.get("callSid")
    params = start.get("customParameters")
    media_format = start.get("mediaFormat")
    if not (isinstance(stream_sid, str) and _SID.fullmatch(stream_sid) and isinstance(call_sid, str)
            and _SID.fullmatch(call_sid) and isinstance(params, dict) and isinstance(media_format, dict)):
        return None
    if (media_format.get("encoding") != "audio/x-mulaw" or str(media_format.get("sampleRate")) != "8000"
            or str(media_format.get("channels", 1)) != "1"):
        return None
    call_id, token = params.get("call"), params.get("token")
    if not isinstance(call_id, str) or not isinstance(token, str):
        return None
    return StreamStart(stream_sid=stream_sid, call_sid=call_sid, call_id=call_id, token=token)


def stream_call(*, public_id: str, call_sid: str) -> tuple[Call | None, int]:
    """The Twilio call a stream belongs to, or None and the close code that refuses it: unknown
    (or another CallSid's, or without an agent) 4404, ended 4410. Reads only."""
    try:
        public_id = uuid.UUID(public_id)
    except ValueError:
        return None, CLOSE_UNKNOWN_CALL
    call = Call.objects.select_related("agent").filter(public_id=public_id).first()
    if (call is None or call.channel != Call.Channel.TWILIO or call.provider_call_id != call_sid
            or call.agent is None):
        return None, CLOSE_UNKNOWN_CALL
    if call.is_finished:
        return None, CLOSE_GONE
    return call, 0


def session_create(*, call: Call, transport: TwilioTransport) -> VoiceSession:
    """The caller is the far end: who called in, or whom an outbound call reached. Their number
    is the caller-ID lookup's key, as on every channel."""
    inbound = call.direction == Call.Direction.INBOUND
    return VoiceSession(
        agent=call.agent, transport=transport, channel=Call.Channel.TWILIO, direction=call.direction,
        caller_number=call.from_number if inbound else call.to_number,
        called_number=call.to_number if inbound else call.from_number,
        provider_call_id=call.provider_call_id, call=call,
    )


def call_steer(*, call: Call, action: str, target: str = "") -> bool:
    """Carry out the session's decision on the phone network (blocking: run it in a worker
    thread): "transfer" bridges the call to `target`, "hang_up" ends it. A failure is logged on
    the call as an error event, never raised. Returns True when the provider took it."""
    try:
        return _steer(call=call, action=action, target=target)
    finally:
        connection.close()  # this worker thread's own connection, if the provider or the log opened one


def _steer(*, call: Call, action: str, target: str) -> bool:
    try:
        provider = get_provider("twilio")
        if action == "transfer":
            provider.transfer(call, target=target)
        else:
            provider.hang_up(call)
        return True
    except TelephonyError as error:
        logger.warning("twilio: %s of call %s failed: %s", action, call.pk, error.message)
        payload = {"message": error.message[:500], "permanent": error.permanent}
    except Exception as error:  # noqa: BLE001 - a provider bug must not stop the call's end
        logger.exception("twilio: %s of call %s failed", action, call.pk)
        payload = {"message": repr(error)[:500], "permanent": False}
    services.call_event_log(call=call, kind=CallEvent.Kind.ERROR, name=f"twilio_{action}",
                            payload={**payload, **({"target": target} if target else {})})
    return False


def call_log_dropped_input(*, call_id: int, counters: dict) -> None:
    """Bad input the stream carried during the call, for whoever debugs it."""
    call = Call.objects.filter(pk=call_id).first()
    if call is not None:
        services.call_event_log(call=call, kind=CallEvent.Kind.ERROR, name="twilio_dropped_input", payload=counters)
