"""What Twilio is trusted with: the public URLs it signs, and the per-call stream token.

Twilio signs every webhook and the Media Streams WebSocket upgrade with the account's auth
token over the URL it called (client.signature_valid). Behind a TLS proxy the Host header and
scheme VoiceCRM sees are not what Twilio called, so every URL is built from PUBLIC_BASE_URL.

The stream URL carries no query string (Twilio refuses one), so the TwiML that opens a stream
passes the call's public id and a token signed with SECRET_KEY as <Parameter>s; they come back
in the stream's `start.customParameters`, and the consumer checks them before any audio flows.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core import signing
from django.urls import reverse

STREAM_PATH = "/ws/telephony/twilio/media/"
_TOKEN_SALT = "telephony.twilio.stream"
# A stream starts seconds after the TwiML that names it; an hour covers queued outbound calls too.
STREAM_TOKEN_MAX_AGE_S = 3600


def public_url(path: str) -> str:
    """The https URL Twilio uses for `path` (a path, or a URL name to reverse)."""
    if not path.startswith("/"):
        path = reverse(path)
    return settings.PUBLIC_BASE_URL + path


def stream_url() -> str:
    """wss:// (ws:// for a plain-http dev origin) URL of the Media Streams consumer, no params."""
    parts = urlsplit(settings.PUBLIC_BASE_URL)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, STREAM_PATH, "", ""))


def stream_token(call_public_id: str) -> str:
    return signing.dumps(str(call_public_id), salt=_TOKEN_SALT, compress=False)


def stream_token_valid(token: str, call_public_id: str) -> bool:
    """The token was made by this server for this call, within STREAM_TOKEN_MAX_AGE_S."""
    try:
        return signing.loads(token, salt=_TOKEN_SALT, max_age=STREAM_TOKEN_MAX_AGE_S) == str(call_public_id)
    except (signing.BadSignature, TypeError):
        return False
