"""Everything that touches the `twilio` SDK: request signatures (and, beside them, the REST
client and TwiML). The rest of the channel calls these functions and never imports the SDK."""

from __future__ import annotations

from django.conf import settings
from twilio.request_validator import RequestValidator


def signature_valid(*, url: str, params: dict[str, str] | None, signature: str | None) -> bool:
    """X-Twilio-Signature over `url` (the public URL Twilio called) and the POST params (none for
    the Media Streams upgrade). False without an auth token or a signature."""
    if not settings.TWILIO_AUTH_TOKEN or not signature:
        return False
    return RequestValidator(settings.TWILIO_AUTH_TOKEN).validate(url, params or {}, signature)
